"""How much memory and work a checked proxy needs on given statistics, known before it runs.

The checker gives every sub-expression a symbolic shape over the dimensions of a site (``N``, ``O``, ``K``,
``P``, ``F_r``, see ``types``); the statistics of a batch of networks give those dimensions a value at
every site. Walking the interpreters' schedule (``ProxyGraph.steps``, which drops a value after its last
reader) with each value's size in bytes gives the peak. Counted: the packed inputs the proxy reads, every
live intermediate, and a matrix primitive's working copies (its operands stacked by shape, and its
per-stack results before they are joined). Not counted: torch's own scratch inside a kernel, which is
small beside these. The work is counted the same way, in two parts that run at very different rates:
the elements every primitive but a matrix one reads and writes (``streamed``), and a matrix primitive's
multiply-adds (its ``work`` entry in the registry: ``m·n·d`` for ``gram``, ``matmul``, ``pairwise`` and
``hamming``, ``m³`` for ``slogdet``). A search rejects too slow a candidate by them: the same verdict on
any machine and under any load, where timing a run gives neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.check import Typed
from proxylang.lang.graph import ProxyGraph
from proxylang.lang.pack import PackedStats
from proxylang.lang.primitives import PRIMITIVES
from proxylang.lang.types import CONV, NET, RELU, F_r, K, N, O, P
from proxylang.stats.netstats import NetStats

_SYMBOLS = (N, O, K, P, F_r)
FLOAT64_OUTPUTS = frozenset({"hamming", "layersum"})  # counted in float64 whatever the statistics' dtype


@dataclass(frozen=True)
class SiteDims:
    """The dimensions at every site of a batch of networks: per level, one array per symbol (one
    entry per site of every network), and the batch size of each network for net-level values."""

    levels: dict[str, dict[sympy.Symbol, np.ndarray]]
    itemsize: int

    @classmethod
    def of(cls, stats: Sequence[NetStats] | PackedStats) -> SiteDims:
        """Read off the statistics' own tensors (or a packed batch's layouts); nothing is computed."""
        if isinstance(stats, PackedStats):
            shapes = {name: value.layout.shapes for name, value in stats.inputs.items()}
            owners = {name: value.layout.owner.tolist() for name, value in stats.inputs.items()}
            batch = stats.batch_sizes
            itemsize = stats.dtype.itemsize
        else:
            shapes = {name: [tuple(t.shape) for s in stats for t in s.tensors(name)] for name in "AGWR"}
            owners = {name: [i for i, s in enumerate(stats) for _ in s.tensors(name)] for name in "AGWR"}
            batch = [s.batch_size for s in stats]
            first = next((t for s in stats for t in s.W + s.R), None)
            itemsize = first.dtype.itemsize if first is not None else 4
        conv_owner = next((owners[n] for n in "WGA" if n in shapes), [])
        weights = next((shapes[n] for n in "WG" if n in shapes), None)
        o = np.array([w[0] for w in weights] if weights else [1] * len(conv_owner), dtype=np.float64)
        k = np.array([w[1] for w in weights] if weights else [1] * len(conv_owner), dtype=np.float64)
        # P is only ever read as O*P (the columns of A), so without W or G, O = 1 and P = O*P will do
        columns = (np.array([a[1] for a in shapes["A"]], dtype=np.float64) if "A" in shapes
                   else np.ones_like(o))
        n_conv = np.array([batch[i] for i in conv_owner], dtype=np.float64)
        relu_owner = owners.get("R", [])
        relu = {N: np.array([batch[i] for i in relu_owner], dtype=np.float64),
                F_r: np.array([r[1] for r in shapes.get("R", [])], dtype=np.float64)}
        conv = {N: n_conv, O: o, K: k, P: columns / np.maximum(o, 1)}
        net = {N: np.array(batch, dtype=np.float64)}
        return cls({CONV: conv, RELU: relu, NET: net}, itemsize)

    def numel(self, typed: Typed) -> float:
        """Elements of a value over every site (or network) of the batch."""
        return self.total(typed.type.level, typed.type.shape)

    def total(self, level: str | None, factors: tuple[sympy.Expr, ...]) -> float:
        """The product of ``factors`` (dimensions) summed over every site of ``level`` (1 for a constant)."""
        if level is None:
            return 1.0
        values = self.levels[level]
        sites = len(next(iter(values.values()))) if values else 0
        if not factors:
            return float(sites)
        counts = _numel_function(factors)(*(values.get(s, np.ones(sites)) for s in _SYMBOLS))
        return float(np.sum(np.broadcast_to(counts, (sites,))))


@lru_cache(maxsize=4096)
def _numel_function(shape: tuple[sympy.Expr, ...]) -> Callable[..., np.ndarray]:
    return sympy.lambdify(_SYMBOLS, sympy.Mul(*shape), "numpy")


@dataclass(frozen=True)
class Cost:
    """The peak of a proxy's memory on a batch, the step where the largest value is made, and the
    proxy's work: elements streamed and multiply-adds (see the module docstring)."""

    peak_bytes: int
    largest: Node
    largest_bytes: int
    streamed: float
    multiply_adds: float


def _work(typed: Typed, dims: SiteDims) -> tuple[float, float]:
    """Elements streamed and multiply-adds of one step (none for an input or a literal)."""
    node = typed.node
    if not isinstance(node, Call):
        return 0.0, 0.0
    count = PRIMITIVES[node.op].work
    if count is None:
        return dims.numel(typed) + sum(dims.numel(a) for a in typed.args), 0.0
    level = typed.args[0].type.level  # a matrix primitive's result is at its arguments' level
    return 0.0, dims.total(level, count(tuple(a.type.shape for a in typed.args), typed.type.shape))


def proxy_cost(graph: ProxyGraph, dims: SiteDims) -> Cost:
    """The peak bytes and the work of running ``graph`` (a compiled proxy's) on statistics of
    dimensions ``dims``."""
    live = peak = 0
    streamed = multiply_adds = 0.0
    sizes: dict[Node, int] = {}
    largest, largest_bytes = graph.root, -1
    for step in graph.steps:
        node = step.typed.node
        itemsize = 8 if isinstance(node, Call) and node.op in FLOAT64_OUTPUTS else dims.itemsize
        size = 0 if isinstance(node, Num) else int(dims.numel(step.typed) * itemsize)
        working = 0
        if isinstance(node, Call) and PRIMITIVES[node.op].kind == "matrix":
            working = size + sum(sizes[a] for a in step.args)  # stacked operands, per-stack results
        sizes[node] = size
        elements, products = _work(step.typed, dims)
        streamed, multiply_adds = streamed + elements, multiply_adds + products
        live += size
        peak = max(peak, live + working)
        if size > largest_bytes and not isinstance(node, Input):
            largest, largest_bytes = node, size
        for freed in step.frees:
            if not isinstance(freed, Input):  # packed inputs stay in the batch until it is scored
                live -= sizes[freed]
    return Cost(peak, largest, max(largest_bytes, 0), streamed, multiply_adds)
