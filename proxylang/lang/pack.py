"""Statistics of many networks packed flat for the fused compiler, apart from any proxy.

Every input is packed once into a flat tensor holding all sites of all networks (``pack``), with one
segment per (network, site) stored contiguously. ``Layout`` says where each segment lives; an
elementwise chain is then one torch call per node for the whole batch, and ``PackedSegments`` gives the
registry's segment kernels their per-matrix sums (``torch.segment_reduce`` over contiguous runs) and
rows (torch's own row kernels on each segment's free view).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import sympy
import torch
from torch import Tensor

from proxylang.errors import ProxylangError
from proxylang.lang.types import N
from proxylang.stats.netstats import INPUTS, NetStats


class Layout:
    """Where the elements of a packed value live: one segment per (network, site), or per network.

    ``shapes`` is ``None`` for a scalar value (then the data holds one number per segment).
    """

    def __init__(self, owner: Tensor, shapes: list[tuple[int, int]] | None, n_nets: int) -> None:
        self.owner, self.shapes, self.n_nets = owner, shapes, n_nets

    @property
    def device(self) -> torch.device:
        return self.owner.device

    @property
    def segments(self) -> int:
        return len(self.owner)

    @cached_property
    def sizes(self) -> list[int]:
        return [r * c for r, c in self.shapes]

    @cached_property
    def numel(self) -> Tensor:
        return torch.tensor(self.sizes, dtype=torch.long, device=self.device)

    @cached_property
    def seg(self) -> Tensor:
        """Segment of each element."""
        return torch.repeat_interleave(torch.arange(self.segments, device=self.device), self.numel)

    @cached_property
    def starts(self) -> Tensor:
        """Position of the first element of each segment."""
        return torch.cumsum(self.numel, 0) - self.numel

    @cached_property
    def offset(self) -> Tensor:
        """Position of each element inside its segment."""
        return torch.arange(int(self.numel.sum()), device=self.device) - self.starts[self.seg]

    def scalar(self) -> Layout:
        return Layout(self.owner, None, self.n_nets)


@dataclass
class Value:
    """Packed data and its layout; a constant has no layout and a 0-d tensor."""

    data: Tensor
    layout: Layout | None


def contiguous_sums(data: Tensor, lengths: Tensor) -> Tensor:
    """Sum of each run of ``lengths`` consecutive elements (segments are stored contiguously)."""
    if len(lengths) == 0:
        return torch.zeros(0, dtype=data.dtype, device=data.device)
    return torch.segment_reduce(data, "sum", lengths=lengths)


class PackedSegments:
    """``primitives.Segments`` over the matrices of a packed value: every site of every network at once."""

    def __init__(self, layout: Layout, dtype: torch.dtype) -> None:
        self.layout, self.dtype = layout, dtype

    @property
    def numel(self) -> Tensor:
        return self.layout.numel.to(self.dtype)

    @property
    def rows(self) -> Tensor:
        return torch.tensor([r for r, _ in self.layout.shapes], dtype=self.dtype, device=self.layout.device)

    def sum(self, data: Tensor) -> Tensor:
        return contiguous_sums(data, self.layout.numel)

    def spread(self, values: Tensor) -> Tensor:
        return values.index_select(0, self.layout.seg)

    def first(self, data: Tensor) -> Tensor:
        return data[self.layout.starts]

    def rowwise(self, fn: Callable[..., Tensor], data: Tensor) -> Tensor:
        """Torch's own row kernel on each segment's view. Segments are contiguous, so each view is free:
        measured 5-10x faster on TransNAS-Bench-101 weights than a scatter-based row max over the flat
        data, for a loop of one call per site."""
        parts = torch.split(data, self.layout.sizes)
        rows = [fn(part.view(shape), dim=-1).reshape(-1)
                for part, shape in zip(parts, self.layout.shapes, strict=True)]
        return torch.cat(rows) if rows else data


@dataclass
class PackedStats:
    """The statistics of a batch of networks packed for the compiler; build once with ``pack`` and score
    any number of proxies on it."""

    inputs: dict[str, Value]
    batch_sizes: list[int]
    device: torch.device
    dtype: torch.dtype

    def __len__(self) -> int:
        return len(self.batch_sizes)

    def input(self, name: str) -> Value:
        if name not in self.inputs:
            raise ProxylangError(f"these statistics were packed without {name}; pack(stats) packs all inputs")
        return self.inputs[name]


def pack(stats: Sequence[NetStats] | PackedStats, device: torch.device | str | None = None,
         names: Iterable[str] = INPUTS) -> PackedStats:
    """Flatten each input in ``names`` of every network into one tensor (see ``Layout``)."""
    if isinstance(stats, PackedStats):
        return stats
    stats = list(stats)
    if not stats:
        raise ProxylangError("no networks to score")
    tensors_of = {name: [t for s in stats for t in s.tensors(name)] for name in names}
    first = next((ts[0] for ts in tensors_of.values() if ts), torch.zeros(0))
    device = torch.device(device) if device is not None else first.device
    inputs: dict[str, Value] = {}
    layouts: dict[tuple, Layout] = {}
    for name, tensors in tensors_of.items():
        counts = torch.tensor([len(s.tensors(name)) for s in stats], dtype=torch.long)
        owner = torch.repeat_interleave(torch.arange(len(stats)), counts).to(device)
        shapes = [tuple(t.shape) for t in tensors]
        # W and G share one layout (and its cached segment ids)
        key = (tuple(shapes), tuple(counts.tolist()))
        layout = layouts.setdefault(key, Layout(owner, shapes, len(stats)))
        data = torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.zeros(0)
        inputs[name] = Value(data.to(device=device, dtype=first.dtype), layout)
    return PackedStats(inputs, [s.batch_size for s in stats], device, first.dtype)


def concrete_shape(shape: tuple[sympy.Expr, ...], batch_size: int) -> tuple[int, int]:
    """A net-level shape (only ``N`` may occur, by the layersum rule) for one network."""
    return tuple(int(d.subs(N, batch_size)) for d in shape)
