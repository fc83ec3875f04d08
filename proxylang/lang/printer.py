"""Canonical text and LaTeX of an expression.

``to_text`` writes the one spelling ``parse`` reads back to an equal tree: function form for every
primitive, infix for the arithmetic and comparison operators with only the parentheses precedence needs.
"""

from __future__ import annotations

from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.primitives import INFIX, PRIMITIVES

# binding strength of each infix operator; comparisons do not chain
_PRECEDENCE = {"lt": 1, "gt": 1, "eq": 1, "add": 2, "sub": 2, "mul": 3, "div": 3}
_ATOM = 4


def number_text(value: float) -> str:
    """Shortest exact spelling of a literal (``2`` rather than ``2.0``)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def _strength(node: Node) -> int:
    if isinstance(node, Call) and node.op in _PRECEDENCE:
        return _PRECEDENCE[node.op]
    if isinstance(node, Num) and node.value < 0:
        return 3  # a negative literal reads as a sign applied to a number
    return _ATOM


def to_text(node: Node) -> str:
    """Canonical source text; ``parse(to_text(e)) == e``."""
    if isinstance(node, Input):
        return node.name
    if isinstance(node, Num):
        return number_text(node.value)
    assert isinstance(node, Call)
    if node.op in INFIX:
        left, right = node.args
        strength = _PRECEDENCE[node.op]
        # left-associative: the left operand may be as weak as the operator, the right one must be stronger
        # (comparisons do not associate at all)
        left_min = strength + 1 if strength == 1 else strength
        lt = to_text(left) if _strength(left) >= left_min else f"({to_text(left)})"
        rt = to_text(right) if _strength(right) > strength else f"({to_text(right)})"
        return f"{lt} {INFIX[node.op]} {rt}"
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
    """Comparisons are typeset as brackets and fractions group themselves; sums and products inside a
    product, a power or a matrix product need parentheses."""
    if not (isinstance(arg, Call) and arg.op in ("add", "sub", "mul")) or op in ("lt", "gt", "eq", "div"):
        return False
    return op in ("mul", "sub", "pow", "gram", "matmul") and not (op == "mul" and arg.op == "mul")
