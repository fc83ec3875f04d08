"""Canonical text and LaTeX of an expression.

``to_text`` writes the one spelling ``parse`` reads back to an equal tree: function form for every
primitive, infix for the arithmetic and comparison operators with only the parentheses precedence needs.
"""

from __future__ import annotations

import math

from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.primitives import PRIMITIVES

# the loosest operators, comparisons, do not chain (grammar/proxy.lark)
_COMPARISON = min(p.precedence for p in PRIMITIVES.values() if p.infix)


def number_text(value: float) -> str:
    """Shortest exact spelling of a literal (``2`` rather than ``2.0``)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def _strength(node: Node) -> float:
    """How tightly a node's text binds: its operator's precedence, or an atom's infinity."""
    primitive = PRIMITIVES.get(node.op) if isinstance(node, Call) else None
    if primitive is not None and primitive.infix:
        return primitive.precedence
    if isinstance(node, Num) and node.value < 0:
        return PRIMITIVES["mul"].precedence  # a sign on a number, which binds as the product -1 * x does
    return math.inf


def to_text(node: Node) -> str:
    """Canonical source text; ``parse(to_text(e)) == e``."""
    if isinstance(node, Input):
        return node.name
    if isinstance(node, Num):
        return number_text(node.value)
    assert isinstance(node, Call)
    primitive = PRIMITIVES.get(node.op)  # the checker prints unknown operators in its errors too
    if primitive is not None and primitive.infix:
        left, right = node.args
        strength = primitive.precedence
        # left-associative: the left operand may be as weak as the operator, the right one must be stronger
        # (comparisons do not associate at all)
        left_min = strength + 1 if strength == _COMPARISON else strength
        lt = to_text(left) if _strength(left) >= left_min else f"({to_text(left)})"
        rt = to_text(right) if _strength(right) > strength else f"({to_text(right)})"
        return f"{lt} {primitive.infix} {rt}"
    return f"{node.op}({', '.join(to_text(a) for a in node.args)})"


def to_latex(node: Node) -> str:
    """LaTeX for papers and plots (each primitive's template in the registry)."""
    if isinstance(node, Input):
        return node.name
    if isinstance(node, Num):
        return number_text(node.value)
    assert isinstance(node, Call)
    parts = [f"\\left({to_latex(a)}\\right)" if _latex_needs_parens(node.op, a) else to_latex(a)
             for a in node.args]
    return PRIMITIVES[node.op].latex.format(*parts)


def _latex_needs_parens(op: str, arg: Node) -> bool:
    """A bare infix (a sum, a product) set as an operand of a template that sets its operands bare (a
    product, a power, a matrix product) needs parentheses; brackets and fractions group themselves."""
    if not (isinstance(arg, Call) and PRIMITIVES[arg.op].latex_infix):
        return False
    outer = PRIMITIVES[op]
    return outer.latex_tight and not (op == arg.op and outer.associative)
