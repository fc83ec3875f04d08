"""A canonical key per proxy, so that equivalent spellings count as one candidate in the search.

The expression is rebuilt in sympy: commutative elementwise operators become ``Add``/``Mul`` (sympy sorts
their arguments), ``pow``/``exp``/``log``/``abs``/``sign`` use sympy's own functions and rewrite rules,
idempotent primitives collapse (``relu(relu(x))`` is ``relu(x)``), symmetric ones sort their arguments,
``gt(a, b)`` is ``lt(b, a)``, ``normsum`` is ``mean`` and ``l1norm(x)`` is ``mean(abs(x))``. A constant
matrix (``x - x``, ``pow(x, 0)``) keeps its shape, so ``sum(pow(W, 0))`` and ``sum(pow(A, 0))`` differ.

The guarded primitives are 0 where x = 0 (``invert``, ``div``, ``log``, ``abslog``), so sympy's own ``1/x``
and ``log`` would rewrite them wrongly there (``x/x`` is not 1 but ``[x ≠ 0]``, ``exp(log(x))`` is 1 at
0). They are the functions ``ginv`` and ``glog`` below, which keep only the rules that hold at 0 too and
become sympy's ``1/x`` and ``log`` where sympy knows the argument is nonzero (``exp(x)``, ``1 + |x|``, a
nonzero number).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from proxylang.errors import ProxyTypeError
from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.check import Typed, check_expr
from proxylang.lang.primitives import PRIMITIVES
from proxylang.lang.types import NET
from proxylang.stats.netstats import INPUTS

_SYMBOLS = {name: sympy.Symbol(name, real=True) for name in INPUTS}


def _idempotent_function(name: str) -> type[sympy.Function]:
    def eval_(cls, arg):  # sympy calls it on construction
        if isinstance(arg, cls):
            return arg
        return None

    return type(name, (sympy.Function,), {"eval": classmethod(eval_)})


_FUNCTIONS: dict[str, type[sympy.Function]] = {}


class ginv(sympy.Function):  # noqa: N801 (the name is part of the keys)
    """``invert``: 1/x, 0 at 0 (the scalar pseudo-inverse). It is its own inverse and multiplicative
    (``invert(x * y) = invert(x) * invert(y)`` holds at 0 as well), commutes with ``abs``, and
    ``div(x, y)`` is ``x * ginv(y)``;
    ``x * ginv(x)`` does not cancel."""

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sympy.S.Zero
        if arg.is_zero is False:
            return 1 / arg
        if isinstance(arg, cls):
            return arg.args[0]
        if isinstance(arg, sympy.Mul):
            return sympy.Mul(*(cls(factor) for factor in arg.args))
        if isinstance(arg, sympy.Pow) and arg.exp.is_Integer and arg.exp > 0:
            return cls(arg.base) ** arg.exp
        if isinstance(arg, sympy.Abs):  # 1/|x| = |1/x|, and 0 at 0 on both sides
            return sympy.Abs(cls(arg.args[0]))
        return None

    def _eval_is_real(self):
        return self.args[0].is_real


class glog(sympy.Function):  # noqa: N801
    """``log``: ln x, 0 at 0 (NaN below 0); ``abslog(x)`` is ``glog(|x|)``. No rule of sympy's ``log``
    applies unless the argument is known nonzero, so ``exp(glog(x))`` stays."""

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sympy.S.Zero
        if arg.is_zero is False:
            return sympy.log(arg)
        return None


def _function(name: str) -> type[sympy.Function]:
    """The sympy function of a primitive with no sympy counterpart (or of ``fill``), collapsing when the
    registry says the primitive is idempotent."""
    if name not in _FUNCTIONS:
        idempotent = name in PRIMITIVES and PRIMITIVES[name].idempotent
        _FUNCTIONS[name] = _idempotent_function(name) if idempotent else sympy.Function(name)
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
    op = PRIMITIVES[op].alias_of or op
    simple = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "div": lambda a, b: a * ginv(b), "pow": lambda a, b: a**b, "exp": sympy.exp, "log": glog,
        "abs": sympy.Abs, "abslog": lambda a: glog(sympy.Abs(a)), "invert": ginv,
        "sign": sympy.sign, "l1norm": lambda a: _function("mean")(sympy.Abs(a)),
        "gt": lambda a, b: _function("lt")(b, a),
    }
    if op in simple:
        return simple[op](*args)
    if op == "noop":
        return args[0]
    if PRIMITIVES[op].symmetric:
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
    if expr.is_number and (not expr.is_finite or not expr.is_real):
        raise ValueError(f"no literal for {expr}")
    if expr.is_Rational:
        return _rational(expr)
    if expr is sympy.E:
        return Call("exp", (Num(1.0),))
    if isinstance(expr, sympy.Add):
        return _fold("add", [_from_sympy(a) for a in expr.as_ordered_terms()])
    if isinstance(expr, sympy.Mul):
        above, below = [], []
        for factor in expr.as_ordered_factors():
            divisor = _divisor(factor)
            (above if divisor is None else below).append(factor if divisor is None else divisor)
        numerator = _fold("mul", [_from_sympy(f) for f in above]) if above else Num(1.0)
        return Call("div", (numerator, _fold("mul", [_from_sympy(f) for f in below]))) if below else numerator
    if isinstance(expr, sympy.Pow):
        base, exponent = expr.args
        if exponent == -1 and base.is_zero is False:  # where the plain inverse is the guarded one
            return Call("invert", (_from_sympy(base),))
        if not exponent.is_Rational or sympy.Rational(float(exponent)) != exponent:
            raise ValueError(f"no literal exponent for {exponent}")  # pow's exponent is a literal
        return Call("pow", (_from_sympy(base), Num(float(exponent))))
    if isinstance(expr, (sympy.log, glog)) and isinstance(expr.args[0], sympy.Abs):
        return Call("abslog", (_from_sympy(expr.args[0].args[0]),))
    names = {sympy.exp: "exp", sympy.log: "log", glog: "log", ginv: "invert", sympy.Abs: "abs",
             sympy.sign: "sign"}
    name = names.get(expr.func, expr.func.__name__)
    if name == "fill":
        raise ValueError("a constant matrix has no spelling")
    return Call(name, tuple(_from_sympy(a) for a in expr.args))


def _rational(value: sympy.Rational) -> Node:
    """The literal of a rational that a float holds exactly, else ``p / q``: a float of ``1/3`` is
    another number, so its key would be another key. ``ValueError`` where ``p`` or ``q`` is too large
    for a float to hold."""
    if sympy.Rational(float(value)) == value:
        return Num(float(value))
    p, q = int(value.p), int(value.q)
    if max(abs(p), q) > 2**53:
        raise ValueError(f"no literal for {value}")
    return Call("div", (Num(float(p)), Num(float(q))))


def _divisor(factor: sympy.Expr) -> sympy.Expr | None:
    """``d`` when the factor can be spelled as a (guarded) division by ``d`` with the same key: ``ginv(d)``,
    ``ginv(y)**n`` (``d = y**n``), or ``d**-e`` where sympy knows ``d`` is nonzero. ``None`` otherwise
    (``W**-1`` stays ``pow(W, -1)``: it is infinite at 0, the division is 0 there)."""
    if isinstance(factor, ginv):
        return factor.args[0]
    if isinstance(factor, sympy.Pow) and factor.exp.is_number and factor.exp.is_real:
        base, exponent = factor.args
        if isinstance(base, ginv) and exponent.is_Integer and exponent > 0:
            return base.args[0] ** exponent
        if exponent < 0 and base.is_zero is False:
            return base ** -exponent
    return None


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
