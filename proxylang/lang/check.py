"""The type checker: levels and symbolic shapes of every sub-expression, before anything runs.

An accepted proxy never meets a shape error on real statistics (see ``types``); a rejected one raises
``ProxyTypeError`` naming the offending sub-expression in canonical text, with its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxylang.errors import ProxyTypeError
from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.primitives import PRIMITIVES
from proxylang.lang.printer import to_text
from proxylang.lang.types import CONSTANT, INPUT_TYPES, RuleError, Type


@dataclass(frozen=True)
class Typed:
    """A node with its type and its typed arguments."""

    node: Node
    type: Type
    args: tuple[Typed, ...] = ()


def _error(node: Node, message: str, source: str) -> ProxyTypeError:
    line, column = (node.span.line, node.span.column) if node.span else (None, None)
    return ProxyTypeError(f"{to_text(node)}: {message}", line, column, source)


def infer(op: str, arg_types: list[Type]) -> Type:
    """The type of ``op`` applied to arguments of ``arg_types``; ``RuleError`` when the rule fails.

    Cheap and local, so the genetic operators can build only well-typed trees.
    """
    return PRIMITIVES[op].rule(arg_types)


def check_expr(node: Node, source: str = "<expr>") -> Typed:
    """Type any sub-expression (it need not be a whole proxy)."""
    if isinstance(node, Input):
        return Typed(node, INPUT_TYPES[node.name])
    if isinstance(node, Num):
        return Typed(node, CONSTANT)
    if not isinstance(node, Call) or node.op not in PRIMITIVES:
        raise _error(node, "not an expression of the language", source)
    primitive = PRIMITIVES[node.op]
    if len(node.args) != primitive.arity:
        raise _error(node, f"{node.op} takes {primitive.arity} arguments, got {len(node.args)}", source)
    if primitive.literal_exponent and not isinstance(node.args[1], Num):
        raise _error(node, f"the exponent of {node.op} must be a number", source)
    args = tuple(check_expr(a, source) for a in node.args)
    try:
        return Typed(node, infer(node.op, [a.type for a in args]), args)
    except RuleError as exc:
        raise _error(node, str(exc), source) from None


def check(node: Node, source: str = "<expr>") -> Typed:
    """Type a whole proxy: it must read a statistic and be one scalar per site or per network."""
    typed = check_expr(node, source)
    if typed.type.level is None:
        raise _error(node, "a proxy must read at least one statistic (A, G, W or R)", source)
    if typed.type.is_matrix:
        raise _error(node, f"a proxy must be a scalar, got a {typed.type} matrix; reduce it, e.g. sum(...)",
                     source)
    return typed
