"""One network's live statistics scored in blocks, so a proxy costs little beside the pass that
measured them (``stats.extract`` with ``copy=False``; ``CompiledProxy.score_network``).

Scoring a whole-matrix expression such as ``sum(lt(softmax(W), relu(G)))`` one primitive at a time
writes every intermediate in full: for TransNAS-Bench-101 weights (up to ~170 MB per network) that is
several passes through main memory, each costing a few percent of the network's forward and backward
pass. Most of a proxy is *block-local*: elementwise primitives map a block of rows or of columns to
the same block of their result, row-wise ones (softmax) a block of rows; and a primitive with a
combining rule in the registry (``row_blocks``/``column_blocks``: sum, mean, Frobenius norm; ``gram``
over columns) builds its value on whole matrices from its values on blocks. :func:`tile_plan` finds
the block-local regions that end in such a primitive (``sum(lt(softmax(W), relu(G)))`` over rows of
``W`` and ``G``; NWOT's ``gram(c) + gram(1 - c)`` over columns of ``R``); :class:`Tiled` runs each region
block by block (a block fits in the CPU's cache, so its intermediates never reach main memory) and
everything else as the eager oracle does, site by site. The result is the oracle's up to the order of
floating-point additions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.check import Typed
from proxylang.lang.graph import ProxyGraph
from proxylang.lang.interpret import Bounds, Eager, EagerValue, is_finite
from proxylang.lang.primitives import PRIMITIVES, OneMatrix, Primitive
from proxylang.lang.types import NET
from proxylang.stats.netstats import NetStats

# elements of one block: 256K float32 values (1 MB) stay in a core's cache between steps, and the ~10 torch
# calls per block stay cheap beside the work. SasWOT- on a macro network's 167 MB of weights (2-core CPU):
# 229 ms whole, 167 ms in 1 MB blocks, 231 ms in 256 KB blocks, 1.3 s in 16 KB blocks (call overhead)
BLOCK_ELEMENTS = 1 << 19


@dataclass(frozen=True)
class Region:
    """Reductions computed together, block by block along ``axis`` (0: rows, 1: columns): ``nodes`` in
    schedule order (the intermediates, then the reductions), read from ``sources`` (values computed
    before, sliced per block when they are matrices)."""

    axis: int
    roots: tuple[Node, ...]
    nodes: tuple[Node, ...]
    sources: tuple[Node, ...]


@dataclass(frozen=True)
class TilePlan:
    """Which steps of a graph run in blocks: ``regions`` by the position of the step that runs them,
    ``skipped`` the nodes that no step computes alone, ``frees`` the values each step is the last to
    read (a region's reads counted at the step that runs it), and ``checked_in_blocks`` the inputs that
    only regions read, whose finiteness is checked block by block instead of in a pass of their own."""

    regions: dict[int, Region]
    skipped: frozenset[Node]
    frees: dict[int, tuple[Node, ...]]
    checked_in_blocks: frozenset[Node]


COMBINE_RULES = ("sum", "mean", "norm")


def _blocks(node: Node, axis: int) -> str | None:
    """How the primitive of ``node`` acts on blocks along ``axis`` (the registry's rule)."""
    if not isinstance(node, Call):
        return None
    primitive = PRIMITIVES[node.op]
    if primitive.kind == "elementwise":
        return "map"
    return primitive.row_blocks if axis == 0 else primitive.column_blocks


def _local(typed: Typed, axis: int) -> bool:
    """A site-level matrix whose blocks along ``axis`` come from the same blocks of its arguments."""
    level = typed.type.level
    if not typed.type.is_matrix or level is None or level == NET:
        return False
    return isinstance(typed.node, Input) or _blocks(typed.node, axis) == "map"


def _root_axis(typed: Typed) -> int | None:
    """The axis along which a primitive of matrices combines its values on blocks (rows first)."""
    if not all(a.type.is_matrix for a in typed.args) or typed.type.level in (None, NET):
        return None
    return next((axis for axis in (0, 1) if _blocks(typed.node, axis) in COMBINE_RULES), None)


def tile_plan(graph: ProxyGraph) -> TilePlan:
    """The regions of ``graph`` (see the module docstring). A block-local value read by anything but a
    region is computed whole, as a source; combining primitives of equal-shape matrices along the same
    axis whose sources are all computed by the first one's step run in one region, so shared
    intermediates are computed once."""
    typed_of = {step.typed.node: step.typed for step in graph.steps}
    position = {step.typed.node: i for i, step in enumerate(graph.steps)}
    readers = {node: list(graph.dag.successors(node)) for node in typed_of}
    axis_of = {n: a for n in typed_of if (a := _root_axis(typed_of[n])) is not None}
    inner: dict[Node, int] = {}  # intermediates that only regions read, and the axis of their blocks
    for axis in (0, 1):
        roots = {n for n, a in axis_of.items() if a == axis}
        found = {n for n in typed_of if not isinstance(n, Input) and _local(typed_of[n], axis)}
        changed = True
        while changed:
            changed = False
            for node in list(found):
                if not all(r in found or r in roots for r in readers[node]):
                    found.discard(node)
                    changed = True
        inner.update(dict.fromkeys(found, axis))

    def members(root: Node) -> set[Node]:
        found, stack = set(), list(graph.dag.predecessors(root))
        while stack:
            node = stack.pop()
            if inner.get(node) == axis_of[root] and node not in found:
                found.add(node)
                stack.extend(graph.dag.predecessors(node))
        return found

    def sources(nodes: set[Node]) -> set[Node]:
        return {a for n in nodes for a in graph.dag.predecessors(n) if a not in nodes}

    regions: dict[int, Region] = {}
    runs_at: dict[Node, int] = {}
    pending = sorted(axis_of, key=position.__getitem__)
    while pending:
        first = pending.pop(0)
        if not members(first):
            continue  # a reduction straight of its inputs: one pass already, nothing to fuse
        at, axis, shape = position[first], axis_of[first], typed_of[first].args[0].type.shape
        group = [first]
        for other in list(pending):
            outside = sources(members(other) | {other})
            if (axis_of[other] == axis and typed_of[other].args[0].type.shape == shape
                    and all(isinstance(s, Num) or runs_at.get(s, position[s]) < at for s in outside)):
                group.append(other)
                pending.remove(other)
        body = set().union(*(members(r) for r in group)) | set(group)
        nodes = tuple(sorted(body, key=position.__getitem__))
        outside = tuple(sorted(sources(body), key=position.__getitem__))
        regions[at] = Region(axis, tuple(group), nodes, outside)
        for node in nodes:
            runs_at[node] = at
    # a value is dropped after the last step that reads it, counting a region's reads at its step
    last: dict[Node, int] = {}
    for node in typed_of:
        for reader in readers[node]:
            last[node] = max(last.get(node, -1), runs_at.get(reader, position[reader]))
    frees: dict[int, list[Node]] = {}
    for node, at in last.items():
        frees.setdefault(at, []).append(node)
    skipped = frozenset(n for n in runs_at if runs_at[n] != position[n])
    in_blocks = frozenset(n for n in typed_of if isinstance(n, Input) and readers[n]
                          and all(r in runs_at for r in readers[n]))
    return TilePlan(regions, skipped, {at: tuple(nodes) for at, nodes in frees.items()}, in_blocks)


class Tiled(Eager):
    """The eager oracle with the regions of a :class:`TilePlan` run in blocks."""

    def __init__(self, graph: ProxyGraph, plan: TilePlan, stats: NetStats, bounds: Bounds,
                 dtype: torch.dtype, block_elements: int = BLOCK_ELEMENTS) -> None:
        super().__init__(graph, stats, bounds, dtype)
        self.plan, self.block_elements = plan, block_elements
        self.steps = {step.typed.node: step for step in graph.steps}
        self._sums: list[Tensor] = []  # each checked block value's sum, tested once per region
        self._exact = False  # test each block value element by element (a region's sums overflowed)

    def run(self) -> EagerValue:
        env = self.env = {}
        for i, step in enumerate(self.graph.steps):
            node = step.typed.node
            if i in self.plan.regions:
                env.update(self.run_region(self.plan.regions[i]))
            elif node in self.plan.checked_in_blocks:
                env[node] = self.input(node.name)
            elif node not in self.plan.skipped:
                env[node] = self.run_node(step.typed, [env[a] for a in step.args])
            for done in self.plan.frees.get(i, ()):
                env.pop(done, None)
        return self.to_net(env[self.graph.root], self.graph.typed)

    def run_region(self, region: Region) -> dict[Node, list[Tensor]]:
        """Each combining primitive of ``region`` at every site, from blocks along its axis. A block
        value is finite when its sum is, and the sums are tested once at the end; when one is not finite
        (a NaN or Inf, or finite values whose float32 sum overflowed) the region runs again with each
        block value tested exactly."""
        out = self._run_region(region)
        sums_finite = not self._sums or bool(torch.isfinite(torch.stack(self._sums)).all())
        self._sums.clear()
        if self.valid and not sums_finite:
            self._exact = True
            out = self._run_region(region)
            self._exact = False
        return out

    def _run_region(self, region: Region) -> dict[Node, list[Tensor]]:
        sources, checks, program, roots = self._program(region)
        first = next((i for i, s in enumerate(region.sources) if self.steps[s].typed.type.is_matrix), None)
        sites = len(sources[first]) if first is not None else 0
        out: dict[Node, list[Tensor]] = {root: [] for root in region.roots}
        for site in range(sites):
            shape = sources[first][site].shape
            length, across = shape[region.axis], shape[1 - region.axis]
            step = max(1, self.block_elements // max(across, 1))
            parts: list[list[tuple[Tensor, int]]] = [[] for _ in roots]
            for start in range(0, max(length, 1), step):
                block = self.run_block(region, sources, checks, program, site, start, step)
                for part, (slot, size_slot) in zip(parts, roots, strict=True):
                    part.append((block[slot], block[size_slot].shape[region.axis]))
            for root, part in zip(region.roots, parts, strict=True):
                out[root].append(_combine(_blocks(root, region.axis), part, max(length, 1)))
        return out

    def run_block(self, region: Region, sources: list[EagerValue], checks: list[bool],
                  program: list[Instruction], site: int, start: int, size: int) -> list[EagerValue]:
        """The region's values on one block, ``size`` rows or columns from ``start`` at ``site``, in
        slots: its sources (``checks``: those whose finiteness is tested here), then its nodes."""
        block: list[EagerValue] = []
        for value, check in zip(sources, checks, strict=True):
            if isinstance(value, list):
                value = value[site]
                if value.dim() == 2:
                    value = value[start:start + size] if region.axis == 0 else value[:, start:start + size]
                    if check:
                        self.check(value)
            block.append(value)
        for primitive, args in program:
            values = [block[a] for a in args]
            if primitive.kind == "elementwise":
                value = primitive.kernel(*values)
            elif primitive.kind == "matrix":
                value = primitive.kernel(*(v.unsqueeze(0) for v in values))[0]
            else:  # a row-wise op, or a reduction, of this block
                value = primitive.kernel(OneMatrix(values[0]), *values)
            if not primitive.keeps_finite:
                self.check(value)
            block.append(value)
        return block

    def check(self, value: Tensor) -> None:
        """Note whether a block's value is finite: its plain sum is kept for :meth:`run_region` to test,
        sparing a device sync per block. A sum is the cheapest full read: a float64 sum costs 8× and
        ``aminmax`` 5× on a column block, which it copies (8 × 65536 float32, 2-core CPU)."""
        if self._exact:
            self.valid = self.valid and is_finite(value)
        elif self.valid:
            self._sums.append(value.sum())

    def _program(self, region: Region) -> tuple[list[EagerValue], list[bool], list[Instruction],
                                                list[tuple[int, int]]]:
        """The region's source values and which of them are tested in blocks, its nodes as instructions
        over numbered slots (sources first), and each root's slot with the slot of its first argument
        (whose block size it is weighted by). Slots, not nodes, key a block's values: a node's hash walks
        its whole subtree."""
        slots = {node: i for i, node in enumerate((*region.sources, *region.nodes))}
        sources = [self.constant(s.value) if isinstance(s, Num) else self.env[s] for s in region.sources]
        program = [(PRIMITIVES[n.op], tuple(slots[a] for a in self.steps[n].args)) for n in region.nodes]
        roots = [(slots[r], slots[self.steps[r].args[0]]) for r in region.roots]
        checks = [s in self.plan.checked_in_blocks for s in region.sources]
        return sources, checks, program, roots


Instruction = tuple[Primitive, tuple[int, ...]]  # a primitive and the slots of its arguments


def _combine(rule: str, parts: list[tuple[Tensor, int]], length: int) -> Tensor:
    """A primitive's value on whole matrices from its values on blocks of ``(value, size along the
    axis)``, in float64; ``length`` is the whole size along the axis."""
    values = [value.to(torch.float64) for value, _ in parts]
    if rule == "sum":
        total = sum(values)
    elif rule == "mean":
        total = sum(v * (n / length) for v, (_, n) in zip(values, parts, strict=True))
    elif rule == "norm":
        total = sum(v.square() for v in values).sqrt()
    else:
        raise ValueError(f"unknown block rule {rule!r}")
    return total if isinstance(total, Tensor) else torch.tensor(math.nan, dtype=torch.float64)
