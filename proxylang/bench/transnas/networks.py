"""Arch keys of the data files -> TransNAS-Bench-101 ``segmentsemantic`` networks.

Micro keys hold the 6 edge ops of the cell (0 none, 1 skip, 2 conv1x1, 3 conv3x3); macro keys hold
up to 6 module codes (1 keep, 2 double channels, 3 halve resolution, 4 both) padded with 0.
"""

from __future__ import annotations

import itertools
import re

import torch
from torch import nn

from proxylang.bench.transnas.decoder import SegmentationDecoder
from proxylang.bench.transnas.encoder import Encoder, macro_encoder, micro_encoder
from proxylang.errors import DataError

SPACES = ("micro", "macro")
NUM_CLASSES = 17
KEY_LENGTH = 6
MICRO_OPS = 4  # codes 0-3 on each of the cell's 6 edges
# the macro space's rules (TransNAS-Bench-101, Section 3): 4 to 6 modules, of which 1 to 4 halve the
# resolution (codes 3, 4) and 1 to 3 double the channels (codes 2, 4)
MACRO_MODULES, MACRO_DOWNSAMPLINGS, MACRO_DOUBLINGS = (4, 6), (1, 4), (1, 3)
_KEY = re.compile(r"^\(\s*\d+(\s*,\s*\d+)*\s*,?\s*\)$")


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise DataError(f"unknown TransNAS-Bench-101 space {space!r}; expected micro or macro")


def _validate(space: str, arch: tuple[int, ...], shown: object) -> tuple[int, ...]:
    bad = DataError(f"not a {space} arch: {shown!r}")
    if len(arch) != KEY_LENGTH:
        raise bad
    if space == "micro":
        if not all(0 <= op <= 3 for op in arch):
            raise bad
        return arch
    codes = [c for c in arch if c != 0]
    padded = list(arch[: len(codes)]) == codes
    downsamplings = sum(c in (3, 4) for c in codes)
    legal = all(1 <= c <= 4 for c in codes) and downsamplings <= MACRO_DOWNSAMPLINGS[1]
    if not codes or not padded or not legal:
        raise bad
    return arch


def parse_arch(space: str, key: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """The integer tuple of an arch key such as ``"(1, 0, 0, 2, 1, 0)"`` (a tuple passes through),
    checked against the space's encoding; anything else is a ``DataError`` naming the key."""
    _check_space(space)
    if isinstance(key, str):
        if not _KEY.match(key.strip()):
            raise DataError(f"not a {space} arch: {key!r}")
        arch = tuple(int(v) for v in key.strip()[1:-1].split(",") if v.strip())
    else:
        try:
            arch = tuple(int(v) for v in key)
        except (TypeError, ValueError):
            raise DataError(f"not a {space} arch: {key!r}") from None
    return _validate(space, arch, key)


class SegmentationNet(nn.Module):
    """Encoder then decoder, as the benchmark trains them; logits of shape (N, classes, H, W).

    Strided layers round sizes up, so an input side that is not a multiple of the encoder's
    reduction (e.g. 32 for a macro arch that halves the resolution 4 times) comes back slightly
    larger; it is cropped to the input size (a no-op at the benchmark's 256).
    """

    def __init__(self, encoder: Encoder, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = SegmentationDecoder(encoder.out_channels, encoder.reduction, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))[..., : x.shape[-2], : x.shape[-1]]


def benchmark_init(encoder: nn.Module) -> None:
    """The benchmark's own initialisation of an encoder (its ``MacroNet._kaiming_init``): every
    ``Conv2d`` Kaiming-normal with ``fan_out`` and ReLU gain, every BatchNorm weight 1 and bias 0. It
    doubles the weight norms of PyTorch's default init, which the data files' ``l2_norm`` records; the
    decoder keeps PyTorch's defaults, as in the benchmark."""
    for m in encoder.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_network(space: str, arch: str | tuple[int, ...], num_classes: int = NUM_CLASSES) -> nn.Module:
    """The ``segmentsemantic`` network of ``arch`` in ``space`` ('micro' or 'macro'), freshly
    initialised as the benchmark initialises it (:func:`benchmark_init`; draws from torch's global
    generator). It runs at any input side that is a multiple of 32."""
    ops = parse_arch(space, arch)
    if space == "micro":
        encoder = micro_encoder(ops)
    else:
        encoder = macro_encoder([c for c in ops if c != 0])
    benchmark_init(encoder)
    return SegmentationNet(encoder, num_classes)


def all_archs(space: str) -> list[str]:
    """Every architecture of ``space``, enumerated from its rules, as arch keys: micro 4^6 = 4096 cells,
    macro 3256 module sequences."""
    _check_space(space)
    if space == "micro":
        return [arch_key(ops) for ops in itertools.product(range(MICRO_OPS), repeat=KEY_LENGTH)]
    keys = []
    for length in range(MACRO_MODULES[0], MACRO_MODULES[1] + 1):
        for codes in itertools.product((1, 2, 3, 4), repeat=length):
            downsamplings = sum(c in (3, 4) for c in codes)
            doublings = sum(c in (2, 4) for c in codes)
            if (MACRO_DOWNSAMPLINGS[0] <= downsamplings <= MACRO_DOWNSAMPLINGS[1]
                    and MACRO_DOUBLINGS[0] <= doublings <= MACRO_DOUBLINGS[1]):
                keys.append(arch_key(codes + (0,) * (KEY_LENGTH - length)))
    return keys


def arch_key(arch: tuple[int, ...]) -> str:
    """The data files' spelling of an arch: ``"(1, 0, 0, 2, 1, 0)"``."""
    return "(" + ", ".join(str(v) for v in arch) + ")"


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (the data files' ``params``, in units, not millions)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
