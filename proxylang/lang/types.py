"""Types of proxy values: a level (which sites, or the whole network) and a symbolic shape.

Shapes are tuples of sympy expressions over the dimension symbols of the statistics, so two shapes agree
only when they are the same expression. That is stricter than comparing numbers at run time, and it is
what lets the checker promise that an accepted proxy never meets a shape error on real statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

N, O, K, P, F_r = sympy.symbols("N O K P F_r", positive=True, integer=True)
NET_DIMENSIONS = frozenset({N})  # the batch size is shared by every site of a network

CONV, RELU, NET = "conv", "relu", "net"


class RuleError(Exception):
    """A primitive's shape or level rule does not hold; the checker adds the place and the expression."""


@dataclass(frozen=True)
class Type:
    """Level (``conv``/``relu`` site, ``net``, or ``None`` for a constant) and shape (``()`` or 2-tuple)."""

    level: str | None
    shape: tuple[sympy.Expr, ...]

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) == 2

    def __str__(self) -> str:
        shape = "scalar" if not self.is_matrix else f"{self.shape[0]}×{self.shape[1]}"
        return f"{self.level or 'constant'} {shape}"


SCALAR = ()
INPUT_TYPES: dict[str, Type] = {
    "W": Type(CONV, (O, K)),
    "G": Type(CONV, (O, K)),
    "A": Type(CONV, (N, O * P)),
    "R": Type(RELU, (N, F_r)),
}
CONSTANT = Type(None, SCALAR)


def joint_level(*types: Type) -> str | None:
    """The level of a value computed from ``types``: they must agree, constants aside."""
    levels = {t.level for t in types if t.level is not None}
    if len(levels) > 1:
        raise RuleError(f"mixes {' and '.join(sorted(levels))} values")
    return levels.pop() if levels else None


def require_matrix(t: Type, what: str = "argument") -> tuple[sympy.Expr, sympy.Expr]:
    if not t.is_matrix:
        raise RuleError(f"{what} must be a matrix, got {t}")
    return t.shape[0], t.shape[1]
