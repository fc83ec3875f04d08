"""Properties of the language over random well-typed proxy trees, drawn by hypothesis.

The strategy is built from the primitive registry: every node applies a primitive whose shape rule
accepts the (already typed) children it was drawn over, so a tree comes with the type the registry gives
it, independently of ``check``. Hypothesis shrinks a failure to a small tree, which a hand-rolled loop
over ``random_expr`` could not do, and it also reaches trees ``random_expr`` never builds (``layersum``,
``norm_avt``, literals anywhere, deeper comparisons).
"""

from __future__ import annotations

import itertools
import random

import pytest
import sympy
import torch
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from proxylang import (
    canonical_key,
    check,
    compile_proxy,
    crossover,
    evaluate_eager,
    mutate,
    parse,
    simplify,
    to_text,
)
from proxylang.errors import ProxylangError
from proxylang.lang.ast import Call, Input, Node, Num, depth, size
from proxylang.lang.primitives import PRIMITIVES
from proxylang.lang.types import CONSTANT, INPUT_TYPES, RuleError, Type
from proxylang.search.genetic import MAX_DEPTH, MAX_SIZE

LITERALS = (0.0, 1.0, 2.0, 0.5, -1.0, 3.0)
EXPONENTS = (0.5, 2.0, 3.0, -1.0, 0.0, 1.0)
UNARY = sorted(n for n, p in PRIMITIVES.items() if p.arity == 1)
WITHOUT_AVT = [n for n in UNARY if n != "norm_avt"]  # norm_avt needs calibrating: not where simplify runs
BINARY = sorted(n for n, p in PRIMITIVES.items() if p.arity == 2 and not p.literal_exponent)
POWERS = sorted(n for n, p in PRIMITIVES.items() if p.literal_exponent)

Tree = tuple[Node, Type]  # a node and the type the registry's rules give it

PROPERTY = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _apply(op: str, args: list[Tree]) -> Tree | None:
    try:
        return Call(op, tuple(node for node, _ in args)), PRIMITIVES[op].rule([t for _, t in args])
    except RuleError:
        return None


def _fitting(draw, ops: list[str], args: list[Tree], scalar: bool = False) -> Tree | None:
    """One of ``ops`` whose rule accepts ``args`` (and gives a scalar, if asked), or ``None``."""
    results = [tree for op in ops
               if (tree := _apply(op, args)) is not None and not (scalar and tree[1].is_matrix)]
    return draw(st.sampled_from(results)) if results else None


LEAVES = st.one_of(
    st.sampled_from(sorted(INPUT_TYPES)).map(lambda name: (Input(name), INPUT_TYPES[name])),
    st.sampled_from(LITERALS).map(lambda value: (Num(value), CONSTANT)),
)


def _extend(children: st.SearchStrategy[Tree], unary: list[str]) -> st.SearchStrategy[Tree]:
    @st.composite
    def node(draw) -> Tree:
        arity = draw(st.sampled_from([1, 1, 1, 2, 2, 2, "pow"]))
        first = draw(children)
        if arity == "pow":
            args = [first, (Num(draw(st.sampled_from(EXPONENTS))), CONSTANT)]
            ops = POWERS
        elif arity == 1:
            args, ops = [first], unary
        else:
            args, ops = [first, draw(children)], BINARY
            if draw(st.booleans()):
                args.reverse()
        return _fitting(draw, ops, args) or first  # no primitive fits: keep the first child

    return node()


SUBTREES = {avt: st.recursive(LEAVES, lambda children, ops=ops: _extend(children, ops), min_leaves=2,
                              max_leaves=10)
            for avt, ops in ((True, UNARY), (False, WITHOUT_AVT))}


@st.composite
def proxies(draw, with_norm_avt: bool = True) -> Tree:
    """A well-typed proxy: a sub-tree that reads a statistic, closed by a primitive that makes it one
    scalar per site or per network when it is a matrix (norm_avt anywhere, or nowhere)."""
    node, type_ = draw(SUBTREES[with_norm_avt].filter(lambda tree: tree[1].level is not None))
    if type_.is_matrix:
        node, type_ = _fitting(draw, WITHOUT_AVT, [(node, type_)], scalar=True)  # sum fits any matrix
    if with_norm_avt and draw(st.integers(0, 9)) == 0:
        node, type_ = _apply("norm_avt", [(node, type_)])
    return node, type_


def _uses_norm_avt(node: Node) -> bool:
    return isinstance(node, Call) and (node.op == "norm_avt" or any(map(_uses_norm_avt, node.args)))


class _Nets(list):
    """``real_stats`` under a short name in hypothesis's failure reports (its repr is 40 kB)."""

    def __repr__(self) -> str:
        return "real_stats"


@pytest.fixture(scope="module")
def nets(real_stats) -> _Nets:
    return _Nets(real_stats)


def _score(node: Node, stats) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Fused scores and validity, calibrating ``norm_avt`` terms on the same networks first."""
    proxy = compile_proxy(node)
    if _uses_norm_avt(node):
        proxy.calibrate(stats)
    scores, valid = proxy(stats)
    return scores, valid, proxy.bounds


# ---- rounding noise --------------------------------------------------------------------------------
# The fused compiler and the oracle add up the same numbers in different orders, so their sums differ in
# the last bits. Downstream of an intermediate that is *only* such bits (the sum of a z-score, ``x + x -
# 2 * x``, ``cosine(W, W) - 1``), an inverse, a log, a comparison or a norm_avt turns them into any value:
# there the two evaluators cannot agree and neither is wrong. Such networks are excused, nothing else.

NOISE = 1e-9  # relative size below which an intermediate is rounding noise


def _type_of(node: Node) -> Type:
    if isinstance(node, Input):
        return INPUT_TYPES[node.name]
    if isinstance(node, Num):
        return CONSTANT
    return PRIMITIVES[node.op].rule([_type_of(a) for a in node.args])


def _magnitude(node: Node, stats, bounds: dict) -> torch.Tensor:
    """Per network, the oracle's Σ|value| of a sub-tree that reads a statistic (over elements and sites)."""
    size_of = Call("abs", (node,))
    if _type_of(node).is_matrix:
        size_of = Call("sum", (size_of,))
    return evaluate_eager(size_of, stats, bounds)[0]


def _noise_dominated(node: Node, stats, bounds: dict) -> torch.Tensor:
    """Networks on which some intermediate of ``node`` is rounding noise: a value (or, under a comparison,
    a difference) far smaller than the values it was computed from, or a norm_avt whose range, or whose
    argument's distance from the pre-sample minimum (where the result is exactly 0), is that small."""
    excused = torch.zeros(len(stats), dtype=torch.bool)
    stack = [node]
    while stack:
        sub = stack.pop()
        if not isinstance(sub, Call):
            continue
        stack.extend(sub.args)
        read = [a for a in sub.args if _type_of(a).level is not None]
        if sub.op == "norm_avt":  # a range of noise, or a score the noise away from the pre-sample minimum
            lo, hi = bounds[sub]
            size = NOISE * max(abs(lo), abs(hi))
            arg = evaluate_eager(sub.args[0], stats, bounds)[0]
            excused |= ~(torch.tensor(hi - lo) > size) | ~((arg - lo).abs() > size)
        elif read:
            scale = sum(_magnitude(a, stats, bounds) for a in read)
            target = Call("sub", sub.args) if sub.op in ("lt", "gt", "eq") else sub
            excused |= ~(_magnitude(target, stats, bounds) > NOISE * scale)
    return excused


def _assert_agree(node: Node, stats, bounds: dict, first, second, others=()) -> str:
    """Same validity and close scores (tolerance of tests/lang/test_compile.py) on every network not
    excused by rounding noise in ``node`` (or in ``others``, trees it should equal)."""
    (a, va), (b, vb) = first, second
    agree = (va == vb) & (~va | torch.isclose(a, b, rtol=1e-6, atol=1e-6))
    if bool(agree.all()):
        return "agree"
    excused = _noise_dominated(node, stats, bounds)
    for other in others:
        excused |= _noise_dominated(other, stats, bounds)
    assert torch.equal(va[~excused], vb[~excused]), (to_text(node), va, vb, excused)
    both = va & vb & ~excused
    torch.testing.assert_close(a[both], b[both], rtol=1e-6, atol=1e-6)
    return "differ only where rounding noise decides"


# ---- properties ----------------------------------------------------------------------------------

@settings(PROPERTY, max_examples=300)
@given(proxies())
def test_check_agrees_with_the_registry_typing(tree):
    """check accepts every tree the registry's rules accept, with the same level and symbolic shape."""
    node, type_ = tree
    assert check(node).type == type_
    event(f"level {type_.level}")


@settings(PROPERTY, max_examples=500)
@example((parse("norm_avt(sum(normalize(A)))"), None)).via("a norm_avt range of rounding noise")
@example((parse("invert(sum(normalize(A)))"), None)).via("the inverse of a sum of z-scores")
@example((parse("norm_avt(pow(norm_avt(cosine(A, A)), -1))"), None)).via("1/0 at the pre-sample minimum")
@example((parse("slogdet(layersum(gram(R > 0) + gram(1 - (R > 0))))"), None)).via("NWOT")
@given(proxies())
def test_fused_compile_equals_eager_oracle(nets, tree):
    """The fused compiler never raises on a checked proxy, and agrees with the per-site oracle on the
    validity of every network and on every valid score, except where rounding noise decides."""
    node, _ = tree
    try:
        scores, valid, bounds = _score(node, nets)
    except ProxylangError as exc:  # the one documented failure: nothing valid to calibrate norm_avt on
        assert _uses_norm_avt(node) and "cannot calibrate" in str(exc), exc
        event("norm_avt with no valid score to calibrate on")
        return
    assert scores.shape == valid.shape == (len(nets),)
    event(_assert_agree(node, nets, bounds, (scores, valid), evaluate_eager(node, nets, bounds)))
    event(f"{int(valid.sum())} of {len(nets)} networks valid")


def test_rounding_noise_excuses_only_noise(nets):
    """The excuse above cannot hide a real disagreement: a well-conditioned proxy that scores 1e-3 off
    (relative) fails, while a proxy that is a function of rounding noise is excused."""
    node = parse("sum(W) + mean(A)")
    scores, valid = evaluate_eager(node, nets)
    with pytest.raises(AssertionError):
        _assert_agree(node, nets, {}, (scores * 1.001, valid), (scores, valid))
    with pytest.raises(AssertionError):
        _assert_agree(node, nets, {}, (scores, valid & False), (scores, valid))
    noise = parse("invert(sum(normalize(A)))")
    scores, valid = evaluate_eager(noise, nets)
    assert _assert_agree(noise, nets, {}, (scores * 2, valid), (scores, valid)) != "agree"


@settings(PROPERTY, max_examples=300)
@given(proxies())
def test_printing_round_trips_tree_and_canonical_key(tree):
    """to_text then parse gives back the same tree, so the same canonical key (the key a search
    de-duplicates on survives saving a proxy as text)."""
    node, _ = tree
    again = parse(to_text(node))
    assert again == node, to_text(node)
    assert canonical_key(again) == canonical_key(node)


def _known_key_bug(node: Node) -> str | None:
    """Which known bug of simplify (xfail tests below) the canonical form of ``node`` runs into, if any."""
    key = canonical_key(node)
    form = sympy.parse_expr(key, evaluate=False)
    if sympy.srepr(form) != sympy.srepr(sympy.parse_expr(key)):
        return "a canonical form sympy itself would rewrite further"
    for sub in sympy.preorder_traversal(form):
        if (isinstance(sub, sympy.Mul) and any(isinstance(f, sympy.Add) for f in sub.args)
                and any(f.is_Rational and abs(f) != 1 for f in sub.args) and any(map(_divisor, sub.args))):
            return "a number times a sum, over a divisor"
    return None


def _divisor(factor: sympy.Expr) -> bool:
    """A factor simplify spells as a division: ``ginv(x)``, a power of it, or a negative power."""
    base, exponent = factor.as_base_exp()
    return base.func.__name__ == "ginv" or bool(exponent.is_negative)


def _simplify_keeps_key(node: Node) -> None:
    assert canonical_key(simplify(node)) == canonical_key(node), to_text(simplify(node))


@settings(PROPERTY, max_examples=300)
@given(proxies(with_norm_avt=False))
def test_simplify_keeps_key_type_and_value(nets, tree):
    """simplify rewrites to an equivalent proxy: same key, same type, and the same score on every network
    where both are finite, except where rounding noise decides."""
    node, _ = tree
    simple = simplify(node)
    if bug := _known_key_bug(node):
        event(f"key not compared, known bug (xfail below): {bug}")
    else:
        _simplify_keeps_key(node)
    assert check(simple).type == check(node).type
    (a, va, _), (b, vb, _) = _score(node, nets), _score(simple, nets)
    both = va & vb
    event(_assert_agree(node, nets, {}, (a, both), (b, both), [simple]))
    event("simplified" if simple != node else "already simple")


@settings(PROPERTY, phases=[Phase.explicit])
@example((parse("sum(W / 3)"), None)).via("found as sum(G / (G * 3))")
@example((parse("sum(A + exp(1))"), None)).via("found by test_simplify_keeps_key_type_and_value")
@example((parse("sum(W - W / 3 + 2 * exp(1) * W)"), None)).via("a sum of inexact constants")
@example((parse("sum(pow(W, 0.3333333333333333))"), None)).via("an exponent a float holds but 1/3 not")
@given(proxies(with_norm_avt=False))
def test_simplify_keeps_key_of_inexact_constants(tree):
    """The key of a simplified proxy is its original's, also when a constant is not a binary fraction:
    ``1/3`` is spelled ``1 / 3`` and e ``exp(1)``, not as a float that is another number."""
    _simplify_keeps_key(tree[0])
    assert "0.333" not in to_text(simplify(parse("sum(W / 3)")))


@settings(PROPERTY, phases=[Phase.explicit])
@example((parse("sum(pow(W / abs(W), 2))"), None)).via("found by test_simplify_keeps_key_type_and_value")
@example((parse("sum(pow(invert(abs(G)), 4) * abs(W))"), None)).via("an even power of invert(abs(x))")
@example((parse("sum(abs(invert(W)) - invert(abs(W)))"), None)).via("the two spellings cancel")
@given(proxies(with_norm_avt=False))
def test_simplify_keeps_key_of_even_powers_of_abs(tree):
    """The key of a simplified proxy is its original's, also for even powers of an inverted |x|
    (``ginv(|x|)`` is ``|ginv(x)|``, so sympy's ``|y|**2 = y**2`` applies to both spellings)."""
    _simplify_keeps_key(tree[0])


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="bug: simplify spells c * (x + y) * ginv(z) as c * (x + y) / z, and sympy "
                          "distributes c * (x + y) as the key is built, so the key changes")
@settings(PROPERTY, phases=[Phase.explicit])
@example((parse("sum((W + 1) / (2 * G))"), None)).via("found as sum((A + 1) / (2 * A))")
@given(proxies(with_norm_avt=False))
def test_simplify_keeps_key_of_scaled_sums_over_a_divisor(tree):
    """The key of a simplified proxy is its original's, also for a scaled sum over a divisor."""
    _simplify_keeps_key(tree[0])


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="bug: the canonical form can be one sympy would rewrite further (a factor "
                          "pulled out of abs leaves Abs(Abs(x)) or Abs(1/y)); simplify's spelling of it is "
                          "rebuilt and rewritten, so its key differs")
@settings(PROPERTY, phases=[Phase.explicit])
@example((parse("sum(abs(2 * abs(W)))"), None)).via("found as sum(abs(abs(A) * 2))")
@example((parse("l1norm(pow(A, 2) * pow(frobenius(A), -1))"), None)).via("found by exploring more examples")
@given(proxies(with_norm_avt=False))
def test_simplify_keeps_key_of_forms_sympy_rewrites(tree):
    """The key of a simplified proxy is its original's, also when a factor comes out of an abs."""
    _simplify_keeps_key(tree[0])


@settings(PROPERTY, max_examples=150)
@given(proxies(), proxies(), st.integers(0, 2**32 - 1))
def test_mutation_and_crossover_give_checked_children_or_none(a, b, seed):
    """The genetic operators never raise and never return an ill-typed or oversized child, whatever
    well-typed parents they get (not only the ones random_expr builds)."""
    for child in (mutate(a[0], random.Random(seed)), crossover(a[0], b[0], random.Random(seed))):
        if child is not None:
            assert check(child).type.level is not None
            assert depth(child) <= MAX_DEPTH and size(child) <= MAX_SIZE
        event("child" if child is not None else "none")


def test_strategy_can_build_every_primitive():
    """Every primitive of the registry is one the strategy offers and whose rule accepts types the
    strategy builds within two levels (else a property would silently never test it)."""
    types = {INPUT_TYPES[name] for name in INPUT_TYPES} | {CONSTANT}
    built: set[str] = set()
    for _ in range(2):
        new = set()
        for ops, arity in ((UNARY, 1), (BINARY, 2), (POWERS, 2)):
            for args in itertools.product(sorted(types, key=str), repeat=arity):
                if ops is POWERS and args[1] != CONSTANT:
                    continue
                for op in ops:
                    try:
                        new.add(PRIMITIVES[op].rule(list(args)))
                        built.add(op)
                    except RuleError:
                        pass
        types |= new
    assert built == set(PRIMITIVES), set(PRIMITIVES) - built
