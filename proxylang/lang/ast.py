"""The untyped abstract syntax tree of a proxy expression.

Nodes are frozen dataclasses, so structurally equal sub-trees are equal and hash alike: the compiler
uses that to compute a shared sub-expression once, and the search uses it for de-duplication. ``let``
bindings are inlined by the parser, so a tree never refers to a name. The source position of a node is
kept for error messages but takes no part in equality.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Span:
    """1-based line and column of a node's first character in its source text."""

    line: int
    column: int


@dataclass(frozen=True)
class Node:
    """Base class of every expression node."""

    span: Span | None = field(default=None, compare=False, hash=False, repr=False, kw_only=True)

    @property
    def children(self) -> tuple[Node, ...]:
        return ()

    def with_children(self, children: tuple[Node, ...]) -> Node:
        """The same node over new children (leaves take none)."""
        if children:
            raise ValueError(f"{type(self).__name__} has no children")
        return self


@dataclass(frozen=True)
class Input(Node):
    """A per-layer statistic: ``A``, ``G``, ``W`` (conv sites) or ``R`` (ReLU sites)."""

    name: str


@dataclass(frozen=True)
class Num(Node):
    """A numeric literal, e.g. the exponent of ``pow(W, 2)`` or the ``1`` of ``1 - c``."""

    value: float


@dataclass(frozen=True)
class Call(Node):
    """A primitive applied to its arguments; infix operators parse to calls (``a + b`` is ``add(a, b)``)."""

    op: str
    args: tuple[Node, ...]

    @property
    def children(self) -> tuple[Node, ...]:
        return self.args

    def with_children(self, children: tuple[Node, ...]) -> Node:
        return replace(self, args=tuple(children))


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children (pre-order)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _fold_up(node: Node, combine: Callable[[list[int]], int]) -> int:
    """``combine`` of the children's results, from the leaves up. Iterative, and each shared sub-tree
    is visited once, so neither deep trees nor ``let``-shared ones (whose tree form can be exponentially
    larger than the text) make it costly."""
    known: dict[int, int] = {}
    stack = [node]
    while stack:
        n = stack[-1]
        pending = [c for c in n.children if id(c) not in known]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        known[id(n)] = combine([known[id(c)] for c in n.children])
    return known[id(node)]


def size(node: Node) -> int:
    """Number of nodes, counting a shared sub-tree once per occurrence (the size of the tree written
    out), in time linear in the distinct nodes."""
    return _fold_up(node, lambda sizes: 1 + sum(sizes))


def depth(node: Node) -> int:
    """Length of the longest root-to-leaf path (a leaf has depth 1)."""
    return _fold_up(node, lambda depths: 1 + max(depths, default=0))
