"""TransNAS-Bench-101 encoders: a ResNet-like skeleton of modules (macro code) made of two cells
each, where a cell is either a searched 4-node micro cell or a ResNet basic block."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from proxylang.bench.transnas.ops import ReLUConvBN, cell_edge

BASE_CHANNELS = 64
CELLS_PER_MODULE = 2
MICRO_SKELETON = (4, 1, 4, 1, 4)  # the fixed macro code of the micro space ("64-41414-...")


class MicroCell(nn.Module):
    """Nodes 0..3; node j sums one edge from every earlier node. ``ops`` lists the edges in the order
    (0->1), (0->2), (1->2), (0->3), (1->3), (2->3). Only edges leaving node 0 change the shape."""

    def __init__(self, ops: Sequence[int], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        sources = [src for dst in (1, 2, 3) for src in range(dst)]
        self.edges = nn.ModuleList(
            cell_edge(op, c_in, c_out, stride) if src == 0 else cell_edge(op, c_out, c_out, 1)
            for op, src in zip(ops, sources, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        edge = 0
        for dst in (1, 2, 3):
            total = 0
            for src in range(dst):
                total = total + self.edges[edge](nodes[src])
                edge += 1
            nodes.append(total)
        return nodes[-1]


class BasicBlock(nn.Module):
    """ResNet basic block of two ReLU-conv3x3-BN units; a strided 1x1 conv + BN on the shortcut when
    the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


CellFactory = Callable[[int, int, int], nn.Module]


class Encoder(nn.Module):
    """Stem (two stride-2 convs, /4) then one module per macro code: 1 keep, 2 double the channels,
    3 halve the resolution, 4 both. ``out_channels`` and ``reduction`` size the decoder."""

    def __init__(self, macro_code: Sequence[int], make_cell: CellFactory) -> None:
        super().__init__()
        c = BASE_CHANNELS
        self.stem = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2),
            ReLUConvBN(c // 2, c, 3, 2),
        )
        self.reduction = 4
        modules = []
        for code in macro_code:
            c_out = 2 * c if code in (2, 4) else c
            stride = 2 if code in (3, 4) else 1
            cells = [make_cell(c, c_out, stride)]
            cells += [make_cell(c_out, c_out, 1) for _ in range(CELLS_PER_MODULE - 1)]
            modules.append(nn.Sequential(*cells))
            c, self.reduction = c_out, self.reduction * stride
        self.layers = nn.Sequential(*modules)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


def micro_encoder(cell_ops: Sequence[int]) -> Encoder:
    """The micro space: fixed skeleton 41414, the searched cell everywhere."""
    return Encoder(MICRO_SKELETON, lambda c_in, c_out, stride: MicroCell(cell_ops, c_in, c_out, stride))


def macro_encoder(macro_code: Sequence[int]) -> Encoder:
    """The macro space: the searched skeleton, ResNet basic blocks everywhere."""
    return Encoder(macro_code, BasicBlock)
