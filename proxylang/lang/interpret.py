"""Interpreters of a proxy's graph: one schedule, one dispatcher, two meanings of a value.

``Interpreter.run`` walks ``ProxyGraph.steps`` with an environment from node to value, dropping each value
after its last reader ran; ``run_node`` dispatches a primitive to the method named by its kind, which
applies the kernel from the primitive's registry entry. ``Fused`` values are packed (every site of every
network at once, ``pack``); ``Eager`` values belong to one network, a list of per-site tensors at a site
level, and define the semantics the fused compiler is tested against.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

import torch
from torch import Tensor

from proxylang.errors import ProxylangError
from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.check import Typed
from proxylang.lang.graph import ProxyGraph
from proxylang.lang.pack import Layout, PackedSegments, PackedStats, Value, concrete_shape, contiguous_sums
from proxylang.lang.primitives import PRIMITIVES, OneMatrix, Primitive
from proxylang.lang.types import NET
from proxylang.stats.netstats import NetStats

Bounds = dict[Node, tuple[float, float]]
V = TypeVar("V")


class Interpreter(ABC, Generic[V]):
    """Runs a graph step by step; a subclass says what a value is by implementing each kind."""

    def __init__(self, graph: ProxyGraph) -> None:
        self.graph = graph
        self.env: dict[Node, V] = {}

    def run(self) -> V:
        """The proxy's value per network (a site-level proxy summed over its sites)."""
        env = self.env = {}
        for step in self.graph.steps:
            env[step.typed.node] = self.run_node(step.typed, [env[a] for a in step.args])
            for node in step.frees:
                del env[node]
        return self.to_net(env[self.graph.root], self.graph.typed)

    def run_node(self, typed: Typed, args: list[V]) -> V:
        node = typed.node
        if isinstance(node, Input):
            return self.input(node.name)
        if isinstance(node, Num):
            return self.constant(node.value)
        assert isinstance(node, Call)
        primitive = PRIMITIVES[node.op]
        return getattr(self, primitive.kind)(primitive, typed, args)

    @abstractmethod
    def input(self, name: str) -> V: ...

    @abstractmethod
    def constant(self, value: float) -> V: ...

    @abstractmethod
    def to_net(self, value: V, typed: Typed) -> V:
        """A whole proxy's value per network: a site-level one summed over the sites, in float64."""

    # one method per kind of primitive (``primitives``), called with the primitive's entry
    @abstractmethod
    def elementwise(self, primitive: Primitive, typed: Typed, args: list[V]) -> V: ...

    @abstractmethod
    def segment(self, primitive: Primitive, typed: Typed, args: list[V]) -> V: ...

    @abstractmethod
    def matrix(self, primitive: Primitive, typed: Typed, args: list[V]) -> V: ...

    def layersum(self, primitive: Primitive, typed: Typed, args: list[V]) -> V:
        return self.to_net(args[0], typed.args[0])

    @abstractmethod
    def norm_avt(self, primitive: Primitive, typed: Typed, args: list[V]) -> V: ...


class Fused(Interpreter[Value]):
    """Every network at once on packed statistics, one torch call per node for the whole batch."""

    def __init__(self, graph: ProxyGraph, packed: PackedStats, bounds: Bounds, calibrating: bool) -> None:
        super().__init__(graph)
        self.packed, self.bounds, self.calibrating = packed, bounds, calibrating
        self.n = len(packed)
        self.device, self.dtype = packed.device, packed.dtype
        self.bad = torch.zeros(self.n, dtype=torch.bool, device=self.device)

    def score(self) -> tuple[Tensor, Tensor]:
        scores = self.run().data.to(torch.float64)
        return scores, torch.isfinite(scores) & ~self.bad

    def run_node(self, typed: Typed, args: list[Value]) -> Value:
        out = super().run_node(typed, args)
        node = typed.node
        if isinstance(node, Num) or (isinstance(node, Call) and PRIMITIVES[node.op].keeps_finite):
            return out
        return self.flag_nonfinite(out)

    def flag_nonfinite(self, value: Value) -> Value:
        if bool(torch.isfinite(value.data.sum())):  # one cheap pass: no NaN or Inf anywhere
            return value
        finite = torch.isfinite(value.data)  # (or a finite sum overflowed: look element by element)
        if bool(finite.all()):
            return value
        if value.layout is None:
            self.bad[:] = True
            return value
        broken = ~finite
        if value.layout.shapes is not None:  # a segment is broken when any of its elements is
            broken = contiguous_sums(broken.to(self.dtype), value.layout.numel) > 0
        self.bad[value.layout.owner[broken]] = True
        return value

    def input(self, name: str) -> Value:
        return self.packed.input(name)

    def constant(self, value: float) -> Value:
        return Value(torch.tensor(value, dtype=self.dtype, device=self.device), None)

    def elementwise(self, primitive: Primitive, typed: Typed, args: list[Value]) -> Value:
        """A per-segment scalar meeting a matrix is spread over the matrix's elements first."""
        layout = next((a.layout for a in args if a.layout is not None and a.layout.shapes is not None),
                      next((a.layout for a in args if a.layout is not None), None))
        data = [a.data.index_select(0, layout.seg) if (a.layout is not None and a.layout.shapes is None
                                                       and layout.shapes is not None) else a.data
                for a in args]
        return Value(primitive.kernel(*data), layout)

    def segment(self, primitive: Primitive, typed: Typed, args: list[Value]) -> Value:
        layout = args[0].layout
        out = primitive.kernel(PackedSegments(layout, args[0].data.dtype), *(a.data for a in args))
        return Value(out, layout if typed.type.is_matrix else layout.scalar())

    def matrix(self, primitive: Primitive, typed: Typed, args: list[Value]) -> Value:
        """Group segments by the shapes of all operands and run the kernel on each stack."""
        layouts = [a.layout for a in args]
        pieces = [list(torch.split(a.data, lay.sizes)) for a, lay in zip(args, layouts, strict=True)]
        groups: dict[tuple, list[int]] = {}
        for i in range(layouts[0].segments):
            groups.setdefault(tuple(lay.shapes[i] for lay in layouts), []).append(i)
        results: list[Tensor | None] = [None] * layouts[0].segments
        for shapes, members in groups.items():
            stacks = [torch.stack([p[i].view(shape) for i in members])
                      for p, shape in zip(pieces, shapes, strict=True)]
            out = primitive.kernel(*stacks)
            for j, i in enumerate(members):
                results[i] = out[j]
        owner, gives_matrix = layouts[0].owner, typed.type.is_matrix
        if not results:  # no site of this kind in the whole batch
            empty = torch.zeros(0, dtype=self.dtype, device=self.device)
            return Value(empty, Layout(owner, [] if gives_matrix else None, self.n))
        if not gives_matrix:
            return Value(torch.stack(results), Layout(owner, None, self.n))
        shapes = [tuple(r.shape) for r in results]
        return Value(torch.cat([r.reshape(-1) for r in results]), Layout(owner, shapes, self.n))

    def to_net(self, value: Value, typed: Typed) -> Value:
        """Sums over sites are float64, so sums of counts stay exact past 2**24."""
        if typed.type.level == NET:
            return value
        nets = torch.arange(self.n, device=self.device)
        data = value.data.to(torch.float64)
        if value.layout.shapes is None:
            total = torch.zeros(self.n, dtype=torch.float64, device=self.device)
            return Value(total.index_add_(0, value.layout.owner, data), Layout(nets, None, self.n))
        shapes = [concrete_shape(typed.type.shape, b) for b in self.packed.batch_sizes]
        out_layout = Layout(nets, shapes, self.n)
        target = out_layout.starts[value.layout.owner[value.layout.seg]] + value.layout.offset
        total = torch.zeros(int(out_layout.numel.sum()), dtype=torch.float64, device=self.device)
        return Value(total.index_add_(0, target, data), out_layout)

    def norm_avt(self, primitive: Primitive, typed: Typed, args: list[Value]) -> Value:
        p = self.to_net(args[0], typed.args[0])
        key = typed.node
        if key not in self.bounds:
            if not self.calibrating:
                raise ProxylangError("this proxy uses norm_avt: call calibrate(stats) on a pre-sample first")
            usable = p.data[torch.isfinite(p.data) & ~self.bad]
            if len(usable) == 0:
                raise ProxylangError(f"cannot calibrate norm_avt: no valid score in the pre-sample of "
                                     f"{self.n} networks")
            self.bounds[key] = (float(usable.min()), float(usable.max()))
        lo, hi = self.bounds[key]
        return Value((p.data - lo) / (hi - lo), p.layout)


EagerValue = Tensor | list[Tensor]  # a value of one network: per site at a site level


class Eager(Interpreter[EagerValue]):
    """One network, one site at a time, straight from the kernels; any non-finite value anywhere
    invalidates the network. With ``observing``, each ``norm_avt`` term's own value on this network is
    recorded in ``observed`` (NaN where it is unusable: non-finite, or the network already invalid, as
    the fused calibration excludes it) instead of being normalised: a calibration one network at a time."""

    def __init__(self, graph: ProxyGraph, stats: NetStats, bounds: Bounds, dtype: torch.dtype,
                 observing: bool = False) -> None:
        super().__init__(graph)
        self.stats, self.bounds, self.dtype = stats, bounds, dtype
        self.valid = True
        self.observed: dict[Node, float] | None = {} if observing else None

    def run_node(self, typed: Typed, args: list[EagerValue]) -> EagerValue:
        out = super().run_node(typed, args)
        if self.valid and not all(is_finite(t) for t in _sites(out)):
            self.valid = False
        return out

    def input(self, name: str) -> EagerValue:
        return list(self.stats.tensors(name))

    def constant(self, value: float) -> EagerValue:
        return torch.tensor(value, dtype=self.dtype)

    @staticmethod
    def per_site(fn: Callable[..., Tensor], args: list[EagerValue]) -> EagerValue:
        """``fn`` on each site's arguments (a constant or net value is the same at every site)."""
        sites = next((len(a) for a in args if isinstance(a, list)), None)
        if sites is None:
            return fn(*args)
        return [fn(*(a[i] if isinstance(a, list) else a for a in args)) for i in range(sites)]

    def elementwise(self, primitive: Primitive, typed: Typed, args: list[EagerValue]) -> EagerValue:
        return self.per_site(primitive.kernel, args)

    def segment(self, primitive: Primitive, typed: Typed, args: list[EagerValue]) -> EagerValue:
        return self.per_site(lambda *xs: primitive.kernel(OneMatrix(xs[0]), *xs), args)

    def matrix(self, primitive: Primitive, typed: Typed, args: list[EagerValue]) -> EagerValue:
        return self.per_site(lambda *xs: primitive.kernel(*(x.unsqueeze(0) for x in xs))[0], args)

    def to_net(self, value: EagerValue, typed: Typed) -> EagerValue:
        if typed.type.level == NET:
            return value
        if not value:
            return torch.zeros(concrete_shape(typed.type.shape, self.stats.batch_size), dtype=torch.float64)
        return sum(v.to(torch.float64) for v in value)

    def norm_avt(self, primitive: Primitive, typed: Typed, args: list[EagerValue]) -> EagerValue:
        if self.observed is not None:
            value = float(self.to_net(args[0], typed.args[0]))
            self.observed[typed.node] = value if self.valid and math.isfinite(value) else math.nan
            return torch.tensor(0.0, dtype=torch.float64)
        if typed.node not in self.bounds:
            raise ProxylangError("this proxy uses norm_avt: give the calibrated bounds")
        lo, hi = self.bounds[typed.node]
        return (self.to_net(args[0], typed.args[0]) - lo) / (hi - lo)


def is_finite(t: Tensor) -> bool:
    """No NaN or Inf in ``t``: one cheap sum first (``isfinite`` writes a mask as large as ``t``), and the
    element-by-element test only when the sum is not finite (it may have overflowed on finite values)."""
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def _sites(value: EagerValue) -> list[Tensor]:
    return value if isinstance(value, list) else [value]
