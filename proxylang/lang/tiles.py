"""One network's live statistics scored in row blocks, so a proxy costs little beside the pass that
measured them (``stats.extract`` with ``copy=False``; ``scoring.proxies.score_network``).

Scoring a whole-matrix expression such as ``sum(lt(softmax(W), relu(G)))`` one primitive at a time writes
every intermediate in full: for TransNAS-Bench-101 weights (up to ~170 MB per network) that is several
passes through main memory, each as slow as a quarter of the network's forward and backward pass.
Most of a proxy is *row-local*: elementwise primitives and row-wise ones (softmax) map a block of rows to
the same block of their result, and a reduction with a ``blockwise`` rule (sum, mean, Frobenius norm, ...)
combines its values on blocks of rows. :func:`tile_plan` finds the row-local regions that end in such a
reduction; :class:`Tiled` runs each region block by block (a block fits in the CPU's cache, so its
intermediates never reach main memory) and everything else as the eager oracle does, site by site.
The result is the oracle's up to the order of floating-point additions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from proxylang.lang.ast import Call, Input, Node
from proxylang.lang.check import Typed
from proxylang.lang.graph import ProxyGraph
from proxylang.lang.interpret import Bounds, Eager, EagerValue, is_finite
from proxylang.lang.primitives import PRIMITIVES, OneMatrix
from proxylang.stats.netstats import NetStats

# elements of one block: 256K float32 values (1 MB) stay in a core's cache between steps, and the ~10 torch
# calls per block stay cheap beside the work. SasWOT- on a macro network's 167 MB of weights (2-core CPU):
# 229 ms whole, 167 ms in 1 MB blocks, 231 ms in 256 KB blocks, 1.3 s in 16 KB blocks (call overhead)
BLOCK_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class Region:
    """Reductions computed together, block by block: ``nodes`` in schedule order (the row-local
    intermediates, then the reductions), read from ``sources`` (values computed before, sliced per
    block when they are matrices)."""

    roots: tuple[Node, ...]
    nodes: tuple[Node, ...]
    sources: tuple[Node, ...]


@dataclass(frozen=True)
class TilePlan:
    """Which steps of a graph run in row blocks: ``regions`` by the position of the step that runs
    them, ``skipped`` the nodes that no step computes alone, and ``frees`` the values each step is the
    last to read, once the regions' reads are counted at the steps that run them."""

    regions: dict[int, Region]
    skipped: frozenset[Node]
    frees: dict[int, tuple[Node, ...]]


def _row_local(typed: Typed) -> bool:
    """A site-level matrix computed from equal-shape matrices (or scalars) row by row."""
    node = typed.node
    if not typed.type.is_matrix or typed.type.level is None or typed.type.level == "net":
        return False
    if isinstance(node, Input):
        return True
    primitive = PRIMITIVES[node.op] if isinstance(node, Call) else None
    return primitive is not None and (primitive.kind == "elementwise" or primitive.rowwise)


def _blockwise(typed: Typed) -> bool:
    """A reduction whose value on a matrix combines its values on blocks of rows."""
    node = typed.node
    return (isinstance(node, Call) and PRIMITIVES[node.op].blockwise is not None
            and all(a.type.is_matrix for a in typed.args))


def tile_plan(graph: ProxyGraph) -> TilePlan:
    """The regions of ``graph`` (see the module docstring). A row-local value read by anything but a
    region is computed whole, as a source; reductions of equal-shape matrices whose sources are all
    computed by the first one's step run in one region, so shared intermediates are computed once."""
    typed_of = {step.typed.node: step.typed for step in graph.steps}
    position = {step.typed.node: i for i, step in enumerate(graph.steps)}
    readers = {node: list(graph.dag.successors(node)) for node in typed_of}
    roots = [n for n in typed_of if _blockwise(typed_of[n])]
    local = {n for n in typed_of if _row_local(typed_of[n]) and not isinstance(n, Input)}
    # an intermediate stays inside regions only when every reader is inside one too
    inner = set(local)
    changed = True
    while changed:
        changed = False
        for node in list(inner):
            if not all(r in inner or r in roots for r in readers[node]):
                inner.discard(node)
                changed = True

    def members(root: Node) -> set[Node]:
        found, stack = set(), list(graph.dag.predecessors(root))
        while stack:
            node = stack.pop()
            if node in inner and node not in found:
                found.add(node)
                stack.extend(graph.dag.predecessors(node))
        return found

    def sources(nodes: set[Node]) -> set[Node]:
        return {a for n in nodes for a in graph.dag.predecessors(n) if a not in nodes}

    regions: dict[int, Region] = {}
    runs_at: dict[Node, int] = {}
    pending = sorted(roots, key=position.__getitem__)
    while pending:
        first = pending.pop(0)
        if not members(first):
            continue  # a reduction straight of its inputs: one pass already, nothing to fuse
        at, shape = position[first], typed_of[first].args[0].type.shape
        group = [first]
        for other in list(pending):
            body = members(other) | {other}
            if (typed_of[other].args[0].type.shape == shape
                    and all(position[s] < at for s in sources(body) if s not in runs_at)
                    and all(runs_at.get(s, -1) < at for s in sources(body) if s in runs_at)):
                group.append(other)
                pending.remove(other)
        body = set().union(*(members(r) for r in group)) | set(group)
        nodes = tuple(sorted(body, key=position.__getitem__))
        regions[at] = Region(tuple(group), nodes, tuple(sorted(sources(body), key=position.__getitem__)))
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
    return TilePlan(regions, skipped, {at: tuple(nodes) for at, nodes in frees.items()})


class Tiled(Eager):
    """The eager oracle with the regions of a :class:`TilePlan` run in row blocks."""

    def __init__(self, graph: ProxyGraph, plan: TilePlan, stats: NetStats, bounds: Bounds,
                 dtype: torch.dtype, block_elements: int = BLOCK_ELEMENTS) -> None:
        super().__init__(graph, stats, bounds, dtype)
        self.plan, self.block_elements = plan, block_elements

    def run(self) -> EagerValue:
        env = self.env = {}
        for i, step in enumerate(self.graph.steps):
            node = step.typed.node
            if i in self.plan.regions:
                env.update(self.run_region(self.plan.regions[i]))
            elif node not in self.plan.skipped:
                env[node] = self.run_node(step.typed, [env[a] for a in step.args])
            for done in self.plan.frees.get(i, ()):
                env.pop(done, None)
        return self.to_net(env[self.graph.root], self.graph.typed)

    def run_region(self, region: Region) -> dict[Node, list[Tensor]]:
        """Each reduction of ``region`` at every site, from blocks of rows."""
        typed_of = {step.typed.node: step for step in self.graph.steps}
        matrices = [s for s in region.sources if isinstance(self.env[s], list)
                    and typed_of[s].typed.type.is_matrix]
        sites = len(self.env[matrices[0]]) if matrices else 0
        out: dict[Node, list[Tensor]] = {root: [] for root in region.roots}
        for site in range(sites):
            whole = self.env[matrices[0]][site]
            rows, cols = whole.shape
            step_rows = max(1, self.block_elements // max(cols, 1))
            parts: dict[Node, list[tuple[Tensor, int]]] = {root: [] for root in region.roots}
            for start in range(0, max(rows, 1), step_rows):
                block: dict[Node, EagerValue] = {}
                for source in region.sources:
                    value = self.env[source]
                    if isinstance(value, list):
                        value = value[site]
                        if source in matrices:
                            value = value[start:start + step_rows]
                    block[source] = value
                for node in region.nodes:
                    step = typed_of[node]
                    args = [block[a] for a in step.args]
                    primitive = PRIMITIVES[node.op]
                    if primitive.kind == "elementwise":
                        value = primitive.kernel(*args)
                    else:  # a row-wise op or a reduction of this block's rows
                        value = primitive.kernel(OneMatrix(args[0]), *args)
                    if self.valid and not primitive.keeps_finite and not is_finite(value):
                        self.valid = False
                    block[node] = value
                for root in region.roots:
                    rows_here = block[typed_of[root].args[0]].shape[0]
                    parts[root].append((block[root], rows_here))
            for root in region.roots:
                out[root].append(_combine(PRIMITIVES[root.op].blockwise, parts[root], max(rows, 1)))
        return out


def _combine(rule: str, parts: list[tuple[Tensor, int]], rows: int) -> Tensor:
    """A reduction's value on a whole matrix from its values on blocks of ``(value, rows)``, in float64."""
    values = [value.to(torch.float64) for value, _ in parts]
    if rule == "sum":
        total = sum(values)
    elif rule == "mean":
        total = sum(v * (n / rows) for v, (_, n) in zip(values, parts, strict=True))
    elif rule == "norm":
        total = sum(v.square() for v in values).sqrt()
    else:
        raise ValueError(f"unknown blockwise rule {rule!r}")
    return total if isinstance(total, Tensor) else torch.tensor(math.nan, dtype=torch.float64)
