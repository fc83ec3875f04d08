"""Genetic operators over expressions: random well-typed trees, mutation and crossover.

Generation is type-directed: a tree grows bottom-up and each node picks only among the primitives whose
shape rule (``check.infer``) accepts its children, so almost every random tree is well typed by
construction. Mutation and crossover re-check the whole child and return ``None`` for an ill-typed or
oversized one, before any statistic is touched. ``REJECTIONS`` counts why candidates were discarded.

Every operator takes either a ``random.Random`` or a ``numpy.random.Generator`` (what ``evolve`` uses).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from proxylang.errors import ProxyTypeError
from proxylang.lang.ast import Call, Input, Node, Num, depth, size
from proxylang.lang.check import Typed, check, check_expr, infer
from proxylang.lang.primitives import BINARY, REDUCERS, UNARY
from proxylang.lang.types import CONV, INPUT_TYPES, RELU, RuleError, Type
from proxylang.stats.netstats import CONV_INPUTS, RELU_INPUTS

MAX_DEPTH = 7
MAX_SIZE = 32
EXPONENTS = (0.5, 2.0, 3.0, -1.0)
LITERALS = (0.0, 1.0, 2.0, 0.5)
GENERATED_UNARY = tuple(op for op in UNARY if op != "norm_avt")
REJECTIONS: Counter[str] = Counter()
Path = tuple[int, ...]


def _rng(rng: Any) -> random.Random:
    """A ``random.Random`` drawn from either kind of generator (deterministic in its state)."""
    return rng if isinstance(rng, random.Random) else random.Random(int(rng.integers(2**63)))


def _apply(op: str, args: list[Typed]) -> Typed | None:
    try:
        return Typed(Call(op, tuple(a.node for a in args)), infer(op, [a.type for a in args]), tuple(args))
    except RuleError:
        return None


def _leaf(rng: random.Random, site: str) -> Typed:
    return check_expr(Input(rng.choice(CONV_INPUTS if site == CONV else RELU_INPUTS)))


def _literal(rng: random.Random) -> Typed:
    return check_expr(Num(rng.choice(LITERALS)))


def _grow(rng: random.Random, max_depth: int, site: str) -> Typed:
    """A random well-typed sub-tree of at most ``max_depth`` levels over the inputs of ``site``."""
    if max_depth <= 1 or rng.random() < 0.25:
        return _leaf(rng, site)
    if rng.random() < 0.6:
        child = _grow(rng, max_depth - 1, site)
        ops = [op for op in GENERATED_UNARY + ("pow",) if op != "pow" or child.type.level is not None]
        rng.shuffle(ops)
        for op in ops:
            args = [child, check_expr(Num(rng.choice(EXPONENTS)))] if op == "pow" else [child]
            typed = _apply(op, args)
            if typed is not None:
                return typed
        REJECTIONS["no unary op fits"] += 1
        return child
    left = _grow(rng, max_depth - 1, site)
    right = _literal(rng) if rng.random() < 0.2 else _grow(rng, max_depth - 1, site)
    if rng.random() < 0.5:
        left, right = right, left
    ops = list(BINARY)
    rng.shuffle(ops)
    for op in ops:
        typed = _apply(op, [left, right])
        if typed is not None and typed.type.level is not None:
            return typed
    REJECTIONS["no binary op fits"] += 1
    return left if left.type.level is not None else right


def _as_proxy(rng: random.Random, typed: Typed) -> Typed | None:
    """Reduce a matrix to a scalar with a random reducer (``slogdet`` too when square)."""
    if not typed.type.is_matrix:
        return typed
    reducers = list(REDUCERS) + (["slogdet"] if typed.type.shape[0] == typed.type.shape[1] else [])
    return _apply(rng.choice(reducers), [typed])


def _accept(node: Node, max_depth: int, max_size: int) -> Node | None:
    if depth(node) > max_depth or size(node) > max_size:
        REJECTIONS["too large"] += 1
        return None
    try:
        check(node)
    except ProxyTypeError:
        REJECTIONS["ill typed"] += 1
        return None
    return node


def random_expr(rng: Any, max_depth: int = 5, max_size: int = MAX_SIZE, attempts: int = 50) -> Node | None:
    """A random well-typed proxy (``None`` only if ``attempts`` draws all fail)."""
    r = _rng(rng)
    for _ in range(attempts):
        site = CONV if r.random() < 0.8 else RELU
        typed = _as_proxy(r, _grow(r, max_depth - 1, site))
        if typed is None or typed.type.level is None:
            REJECTIONS["not a proxy"] += 1
            continue
        node = _accept(typed.node, max_depth, max_size)
        if node is not None:
            return node
    return None


def subtrees(node: Node, path: Path = ()) -> list[tuple[Path, Node]]:
    """Every sub-tree with its path of argument indices from the root (the root has path ``()``)."""
    out = [(path, node)]
    for i, child in enumerate(node.children):
        out += subtrees(child, path + (i,))
    return out


def replace_at(node: Node, path: Path, new: Node) -> Node:
    """``node`` with the sub-tree at ``path`` replaced by ``new``."""
    if not path:
        return new
    children = list(node.children)
    children[path[0]] = replace_at(children[path[0]], path[1:], new)
    return node.with_children(tuple(children))


def _swap_primitive(r: random.Random, sub: Call) -> Node | None:
    arg_types = [check_expr(a).type for a in sub.args]
    pool = GENERATED_UNARY if len(sub.args) == 1 else BINARY if sub.op != "pow" else ()
    choices = [op for op in pool if op != sub.op]
    r.shuffle(choices)
    for op in choices:
        try:
            infer(op, arg_types)
            return Call(op, sub.args)
        except RuleError:
            continue
    return None


def _site_of(t: Type) -> str:
    return RELU if t.level == RELU else CONV


def _grow_like(r: random.Random, wanted: Type, tries: int = 10) -> Node:
    """A random sub-tree of type ``wanted`` when one turns up in ``tries`` draws (else the last draw)."""
    for _ in range(tries):
        grown = _grow(r, r.randint(1, 3), _site_of(wanted))
        if not wanted.is_matrix and grown.type.is_matrix:
            grown = _as_proxy(r, grown) or grown
        if grown.type == wanted:
            break
    return grown.node


def mutate(node: Node, rng: Any, max_depth: int = MAX_DEPTH, max_size: int = MAX_SIZE) -> Node | None:
    """Swap a primitive for another of the same arity, change an input or a literal, or regrow a sub-tree
    (of the same type where one can be found, so that the child type-checks)."""
    r = _rng(rng)
    path, sub = r.choice(subtrees(node))
    wanted = check_expr(sub).type
    current = sub.name if isinstance(sub, Input) else None
    same_type_inputs = [name for name, t in INPUT_TYPES.items() if t == wanted and name != current]
    new: Node | None
    if isinstance(sub, Input) and same_type_inputs and r.random() < 0.5:
        new = Input(r.choice(same_type_inputs))
    elif isinstance(sub, Num):
        new = Num(r.choice(EXPONENTS + LITERALS))
    elif isinstance(sub, Call) and sub.op != "norm_avt" and r.random() < 0.5:
        new = _swap_primitive(r, sub)
    else:
        new = _grow_like(r, wanted)
    if new is None:
        REJECTIONS["no swap fits"] += 1
        return None
    return _accept(replace_at(node, path, new), max_depth, max_size)


def crossover(a: Node, b: Node, rng: Any, max_depth: int = MAX_DEPTH,
              max_size: int = MAX_SIZE) -> Node | None:
    """``a`` with one of its sub-trees replaced by a sub-tree of ``b`` (of the same type when ``b`` has
    one)."""
    r = _rng(rng)
    path, target = r.choice(subtrees(a))
    wanted = check_expr(target).type
    donors = [n for _, n in subtrees(b) if not isinstance(n, Num)]
    fitting = [n for n in donors if check_expr(n).type == wanted]
    return _accept(replace_at(a, path, r.choice(fitting or donors)), max_depth, max_size)
