"""The building blocks of TransNAS-Bench-101 networks, with the benchmark's own layer order and
bias settings (which decide the parameter and FLOP counts the data files record)."""

from __future__ import annotations

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU -> bias-free conv -> BatchNorm: the encoder's convolution unit."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The 'none' edge: zeros of the edge's output shape (kept so the cell's wiring stays fixed).
    As in the benchmark, zeros are ``input * 0`` when the channels are kept (so they stay in the
    autograd graph, with zero gradients) and fresh zeros when they change."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if self.c_in == self.c_out:
            return x[:, :, ::s, ::s].mul(0.0)
        n, _, h, w = x.shape
        return x.new_zeros(n, self.c_out, (h + s - 1) // s, (w + s - 1) // s)


class FactorizedReduce(nn.Module):
    """The 'skip' edge when the shape changes: two strided 1x1 convs on pixel grids offset by one,
    concatenated, then BatchNorm (so no spatial position is dropped entirely)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        half = c_out // 2
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c, 1, stride=stride, bias=False) for c in (half, c_out - half))
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1))


def cell_edge(op: int, c_in: int, c_out: int, stride: int) -> nn.Module:
    """One edge of a micro cell: 0 none, 1 skip, 2 ReLU-conv1x1-BN, 3 ReLU-conv3x3-BN."""
    if op == 0:
        return Zero(c_in, c_out, stride)
    if op == 1:
        return nn.Identity() if stride == 1 and c_in == c_out else FactorizedReduce(c_in, c_out, stride)
    return ReLUConvBN(c_in, c_out, 1 if op == 2 else 3, stride)


class DecoderLayer(nn.Sequential):
    """Conv (or 2x transposed conv) with bias -> BatchNorm -> LeakyReLU(0.2): the decoder's unit."""

    def __init__(self, c_in: int, c_out: int, upsample: bool) -> None:
        conv = (nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1) if upsample
                else nn.Conv2d(c_in, c_out, 3, padding=1))
        super().__init__(conv, nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=False))
