"""A canonical key per proxy, so that equivalent spellings count as one candidate in the search.

The expression is rebuilt in sympy: commutative elementwise operators become ``Add``/``Mul`` (sympy sorts
their arguments), ``pow``/``exp``/``log``/``abs``/``sign`` use sympy's own functions and rewrite rules,
idempotent primitives collapse (``relu(relu(x))`` is ``relu(x)``), symmetric ones sort their arguments,
``gt(a, b)`` is ``lt(b, a)``, ``normsum`` is ``mean`` and ``l1norm(x)`` is ``mean(abs(x))``. A constant
matrix (``x - x``, ``pow(x, 0)``) keeps its shape, so ``sum(pow(W, 0))`` and ``sum(pow(A, 0))`` differ.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from proxylang.ast import Call, Input, Node, Num
from proxylang.check import Typed, check_expr
from proxylang.errors import ProxyTypeError
from proxylang.stats import INPUTS
from proxylang.types import NET

_SYMBOLS = {name: sympy.Symbol(name, real=True) for name in INPUTS}
_IDEMPOTENT = ("relu", "normalize")
_SYMMETRIC = ("eq", "cosine", "mse", "l1loss")
_ALIASES = {"normsum": "mean"}


def _idempotent_function(name: str) -> type[sympy.Function]:
    def eval_(cls, arg):  # sympy calls it on construction
        if isinstance(arg, cls):
            return arg
        return None

    return type(name, (sympy.Function,), {"eval": classmethod(eval_)})


_FUNCTIONS: dict[str, type[sympy.Function]] = {name: _idempotent_function(name) for name in _IDEMPOTENT}


def _function(name: str) -> type[sympy.Function]:
    if name not in _FUNCTIONS:
        _FUNCTIONS[name] = sympy.Function(name)
    return _FUNCTIONS[name]


def _number(value: float) -> sympy.Expr:
    """Exact (the binary fraction the float holds), so arithmetic on literals gives stable keys."""
    return sympy.Rational(value)


def _to_sympy(typed: Typed) -> sympy.Expr:
    node = typed.node
    if isinstance(node, Input):
        return _SYMBOLS[node.name]
    if isinstance(node, Num):
        return _number(node.value)
    assert isinstance(node, Call)
    args = [_to_sympy(a) for a in typed.args]
    expr = _combine(node.op, args)
    if typed.type.is_matrix and expr.is_number:
        rows, cols = typed.type.shape
        expr = _function("fill")(expr, rows, cols)
    return expr


def _combine(op: str, args: list[sympy.Expr]) -> sympy.Expr:
    op = _ALIASES.get(op, op)
    simple = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b, "pow": lambda a, b: a**b, "exp": sympy.exp, "log": sympy.log,
        "abs": sympy.Abs, "abslog": lambda a: sympy.log(sympy.Abs(a)), "invert": lambda a: 1 / a,
        "sign": sympy.sign, "l1norm": lambda a: _function("mean")(sympy.Abs(a)),
        "gt": lambda a, b: _function("lt")(b, a),
    }
    if op in simple:
        return simple[op](*args)
    if op == "noop":
        return args[0]
    if op in _SYMMETRIC:
        args = sorted(args, key=sympy.default_sort_key)
    return _function(op)(*args)


def canonical_expr(node: Node) -> sympy.Expr:
    """The sympy form behind the key, readable with ``str``. A proxy that is one scalar per site is
    wrapped in ``layersum``, as its score is the sum over sites (so ``sum(W)`` is ``layersum(sum(W))``)."""
    typed = check_expr(node)
    expr = _to_sympy(typed)
    return _function("layersum")(expr) if typed.type.level not in (NET, None) else expr


@lru_cache(maxsize=65536)
def canonical_key(node: Node) -> str:
    """Equal for proxies that are the same up to the rewrite rules above (the node must type-check)."""
    return sympy.srepr(canonical_expr(node))


def _from_sympy(expr: sympy.Expr) -> Node:
    """The node spelling of a canonical sympy form (``ValueError`` for forms with no spelling)."""
    if isinstance(expr, sympy.Symbol):
        return Input(expr.name)
    if expr.is_number:
        if not expr.is_finite or not expr.is_real:
            raise ValueError(f"no literal for {expr}")
        return Num(float(expr))
    if isinstance(expr, sympy.Add):
        return _fold("add", [_from_sympy(a) for a in expr.as_ordered_terms()])
    if isinstance(expr, sympy.Mul):
        above, below = [], []
        for factor in expr.as_ordered_factors():
            inverse = isinstance(factor, sympy.Pow) and factor.exp.is_number and factor.exp < 0
            (below if inverse else above).append(1 / factor if inverse else factor)
        numerator = _fold("mul", [_from_sympy(f) for f in above]) if above else Num(1.0)
        return Call("div", (numerator, _fold("mul", [_from_sympy(f) for f in below]))) if below else numerator
    if isinstance(expr, sympy.Pow):
        base, exponent = expr.args
        if exponent == -1:
            return Call("invert", (_from_sympy(base),))
        return Call("pow", (_from_sympy(base), Num(float(exponent))))
    if isinstance(expr, sympy.log) and isinstance(expr.args[0], sympy.Abs):
        return Call("abslog", (_from_sympy(expr.args[0].args[0]),))
    names = {sympy.exp: "exp", sympy.log: "log", sympy.Abs: "abs", sympy.sign: "sign"}
    name = names.get(expr.func, expr.func.__name__)
    if name == "fill":
        raise ValueError("a constant matrix has no spelling")
    return Call(name, tuple(_from_sympy(a) for a in expr.args))


def _fold(op: str, terms: list[Node]) -> Node:
    out = terms[0]
    for term in terms[1:]:
        out = Call(op, (out, term))
    return out


def simplify(node: Node) -> Node:
    """The canonical form spelled as an expression (``layersum`` of a site-level proxy dropped), or
    ``node`` itself when that form has no spelling or would not type the same way."""
    typed = check_expr(node)
    try:
        simple = _from_sympy(_to_sympy(typed))
        if check_expr(simple).type == typed.type:
            return simple
    except (ValueError, TypeError, KeyError, ProxyTypeError):
        pass  # no spelling of the canonical form: keep the original
    return node
