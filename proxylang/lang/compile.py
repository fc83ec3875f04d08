"""Checked expression -> a torch callable that scores many networks at once.

Compiling a proxy checks it and builds its graph (``graph.ProxyGraph``: equal sub-trees are one vertex,
computed once); scoring runs the ``Fused`` interpreter on statistics packed once for a whole batch of
networks (``pack``): an elementwise chain is one torch call per node for the whole batch, reductions are
segment sums over contiguous runs, row-wise softmax runs on each segment's view, and matrix operations
(gram, matmul, slogdet, pairwise, hamming) run batched on stacks of equal-shape matrices.

``evaluate_eager`` is the reference semantics: the ``Eager`` interpreter, per network and per site. The
tests and ``benchmarks/compile_speed.py`` compare the fused compiler against it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from proxylang.errors import MemoryBudgetError, ProxylangError
from proxylang.lang.ast import Call, Input, Node
from proxylang.lang.check import Typed, check
from proxylang.lang.cost import Cost, SiteDims, proxy_cost
from proxylang.lang.graph import ProxyGraph
from proxylang.lang.interpret import Bounds, Eager, Fused
from proxylang.lang.pack import PackedStats, pack
from proxylang.lang.printer import to_text
from proxylang.lang.tiles import Tiled, TilePlan, tile_plan
from proxylang.runtime import MEMORY_ENV, memory_budget, show_bytes
from proxylang.stats.netstats import NetStats

__all__ = ["CompiledProxy", "PackedStats", "compile_proxy", "evaluate_eager", "pack"]


class CompiledProxy:
    """A checked proxy ready to score batches of networks (lists of ``NetStats`` or ``PackedStats``)."""

    def __init__(self, typed: Typed, device: torch.device | str | None = None) -> None:
        self.typed, self.node = typed, typed.node
        self.graph = ProxyGraph(typed)
        self.device = torch.device(device) if device is not None else None
        self.bounds: Bounds = {}
        self.inputs = sorted(n.name for n in self.graph.dag if isinstance(n, Input))
        self._plan: TilePlan | None = None

    def _run(self, stats: Sequence[NetStats] | PackedStats, calibrating: bool) -> tuple[Tensor, Tensor]:
        self.check_memory(stats)
        packed = pack(stats, self.device, self.inputs)  # a list: pack only what this proxy reads
        with torch.no_grad():
            return Fused(self.graph, packed, self.bounds, calibrating).score()

    def check_memory(self, stats: Sequence[NetStats] | PackedStats) -> Cost:
        """The proxy's memory on ``stats`` (:mod:`cost`); ``MemoryBudgetError`` naming the largest
        sub-expression when it is over the budget of the device it would run on."""
        cost = proxy_cost(self.graph, SiteDims.of(stats))
        if isinstance(stats, PackedStats):
            device = self.device or stats.device
        else:
            device = self.device or (_device(stats[0]) if stats else torch.device("cpu"))
        budget = memory_budget(device)
        if cost.peak_bytes > budget:
            raise MemoryBudgetError(
                f"{to_text(self.node):.80}: needs about {show_bytes(cost.peak_bytes)} on {len(stats)} "
                f"network(s), over the memory budget of {show_bytes(budget)} ({MEMORY_ENV} or "
                f"--memory-budget); its largest value is {to_text(cost.largest):.60} at "
                f"{show_bytes(cost.largest_bytes)}")
        return cost

    def calibrate(self, stats: Sequence[NetStats] | PackedStats) -> CompiledProxy:
        """Fit the min/max of every ``norm_avt`` term on a pre-sample of networks (AVT, Eq. 3-4)."""
        self.bounds.clear()
        self._run(stats, calibrating=True)
        return self

    def observe(self, stats: NetStats) -> dict[Node, float]:
        """Each ``norm_avt`` term's value on one network (NaN where unusable), for :meth:`calibrate_on`:
        a pre-sample calibrated one network at a time, e.g. on live statistics or on other machines."""
        self.check_memory([stats])
        interpreter = Eager(self.graph, stats, {}, _dtype(stats), observing=True)
        with torch.no_grad():
            interpreter.run()
        return dict(interpreter.observed or {})

    def calibrate_on(self, observations: Sequence[dict[Node, float]]) -> CompiledProxy:
        """Fit the ``norm_avt`` bounds from :meth:`observe` of each network of a pre-sample; the same
        bounds as :meth:`calibrate` on those networks together."""
        self.bounds.clear()
        for node in (n for n in self.graph.order if isinstance(n, Call) and n.op == "norm_avt"):
            usable = [o[node] for o in observations if math.isfinite(o.get(node, math.nan))]
            if not usable:
                raise ProxylangError(f"cannot calibrate norm_avt: no valid score in the pre-sample of "
                                     f"{len(observations)} networks")
            self.bounds[node] = (min(usable), max(usable))
        return self

    def score_network(self, stats: NetStats) -> tuple[float, bool]:
        """Score and validity of one network. On a CPU its row-local parts run in row blocks
        (:mod:`tiles`), without packing or writing whole intermediates: the cheapest way there. A GPU
        would be launch-bound on the blocks' many small kernels (on an H200, 0.31x the rate of a plain
        forward+backward at ``lite`` against 0.50x packed, ``benchmarks/stats_speed.py``), so there the
        network is scored packed, as one batch."""
        if _device(stats).type in PACKED_DEVICES:
            scores, valid = self._run([stats], calibrating=False)
            return float(scores[0]), bool(valid[0])
        self.check_memory([stats])
        if self._plan is None:
            self._plan = tile_plan(self.graph)
        interpreter = Tiled(self.graph, self._plan, stats, self.bounds, _dtype(stats))
        with torch.no_grad():
            score = float(interpreter.run())
        return score, interpreter.valid and math.isfinite(score)

    def __call__(self, stats: Sequence[NetStats] | PackedStats) -> tuple[Tensor, Tensor]:
        """Scores (float64) and validity (bool), one per network."""
        return self._run(stats, calibrating=False)


def compile_proxy(node: Node, device: torch.device | str | None = None,
                  source: str = "<expr>") -> CompiledProxy:
    """Check ``node`` (raising ``ProxyTypeError``) and compile it."""
    return CompiledProxy(check(node, source), device)


PACKED_DEVICES = ("cuda",)  # where score_network scores packed, not in row blocks


def _device(stats: NetStats) -> torch.device:
    return next((t.device for t in stats.W + stats.R), torch.device("cpu"))


def _dtype(stats: NetStats) -> torch.dtype:
    return next((t.dtype for t in stats.W + stats.R), torch.float32)


def evaluate_eager(node: Node, stats: Sequence[NetStats],
                   bounds: Bounds | None = None) -> tuple[Tensor, Tensor]:
    """Reference scores and validity of a proxy, one network and one site at a time (the oracle)."""
    graph = ProxyGraph(check(node))
    scores, valid = [], []
    for s in stats:
        interpreter = Eager(graph, s, bounds or {}, _dtype(s))
        with torch.no_grad():
            score = float(interpreter.run())
        scores.append(score)
        valid.append(interpreter.valid and score == score and abs(score) != float("inf"))
    return torch.tensor(scores, dtype=torch.float64), torch.tensor(valid, dtype=torch.bool)
