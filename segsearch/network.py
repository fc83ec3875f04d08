"""Builder: an :class:`~segsearch.space.Arch` and a role (teacher or student) to a concrete network.

Layout (FasterSeg): a stem brings the image to 1/8; every branch is a chain of cells following its
``beta`` row; branches share the cells of their common prefix (same layers, same downsampling
decisions, hence same operators and widths), so a shared prefix is built and run once. Each branch is
decoded back to 1/8 by refining its deepest output with its own last 1/16 and 1/8 features, and the
fusion head concatenates the branches, re-weights channels and predicts classes at the input size.

Every size follows one rule: a stride-2 step maps ``h`` to ``ceil(h / 2)``, so any input size works
and :func:`scaled_size` predicts every feature's size without running the network (the latency table
needs that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segsearch.space import (
    CHANNELS_PER_SCALE,
    OPS,
    SCALES,
    STUDENT_STEM_HEAD_WIDTH,
    WIDTH_RATIOS,
    Arch,
    channels,
    check_arch,
)

ROLES = ("student", "teacher")
MAX_CLASSES = 1000  # far beyond Cityscapes' 19: a bound that keeps the logits' memory sane
SMALLEST_SCALE = 2 * SCALES[-1]  # a zoomed convolution at the deepest scale runs at half of it
# peak memory of one forward and backward pass (a student's statistics pass, measured on a CPU) per input
# pixel: activations and gradients, plus the logits and their gradients per class
BYTES_PER_PIXEL = 1500
BYTES_PER_PIXEL_PER_CLASS = 16


def scaled_size(size: tuple[int, int], factor: int) -> tuple[int, int]:
    """Size of a feature at ``1/factor`` of an input of ``size`` (``factor`` a power of two)."""
    return math.ceil(size[0] / factor), math.ceil(size[1] / factor)


def smallest_scale(arch: Arch) -> int:
    """The downsampling factor of the smallest feature ``arch``'s networks compute: a cell's output, or
    half of it inside a zoomed convolution (at most :data:`SMALLEST_SCALE`)."""
    factors = [SCALES[0]]
    for branch in range(arch.num_branches):
        path = arch.path(branch)
        for layer in range(arch.num_layers):
            zoomed = OPS[arch.alpha[layer][path[layer]]].startswith("zoomed")
            factors.append(SCALES[path[layer + 1]] * (2 if zoomed else 1))
    return max(factors)


def fits_batch_norm(batch: int, size: tuple[int, int], scale: int = SMALLEST_SCALE) -> bool:
    """Whether every batch norm of a network training on ``batch`` images of ``size`` sees more than one
    value per channel (torch refuses a single one), given the ``1/scale`` of its smallest feature (by
    default the smallest in the whole space)."""
    height, width = scaled_size(size, scale)
    return batch * height * width > 1


def estimated_bytes(batch: int, size: tuple[int, int], num_classes: int) -> int:
    """Rough peak memory of a forward and backward pass of ``batch`` images of ``size``, so that an
    absurd size is refused before anything is allocated."""
    return batch * size[0] * size[1] * (BYTES_PER_PIXEL + BYTES_PER_PIXEL_PER_CLASS * num_classes)


class ConvNorm(nn.Sequential):
    """Convolution, batch norm, ReLU: FasterSeg's basic unit."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class FactorizedReduce(nn.Module):
    """Stride-2 skip: two 1x1 convolutions on the image and on it shifted by one pixel, concatenated."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.even = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.odd = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
        self.norm = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.relu(self.norm(torch.cat([self.even(x), self.odd(shifted)], dim=1)))


class Zoomed(nn.Module):
    """Zoomed convolution: run ``body`` at half resolution, then upsample back (bilinear)."""

    def __init__(self, body: nn.Module, stride: int) -> None:
        super().__init__()
        self.body, self.stride = body, stride

    def forward(self, x: Tensor) -> Tensor:
        half = (math.ceil(x.shape[2] / 2), math.ceil(x.shape[3] / 2))
        out_size = (math.ceil(x.shape[2] / self.stride), math.ceil(x.shape[3] / self.stride))
        small = F.interpolate(x, size=half, mode="bilinear", align_corners=False)
        return F.interpolate(self.body(small), size=out_size, mode="bilinear", align_corners=False)


def make_op(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """One of :data:`~segsearch.space.OPS` mapping ``c_in`` to ``c_out`` channels at ``stride``."""
    if op == "skip":
        if stride == 2:
            return FactorizedReduce(c_in, c_out)
        return nn.Identity() if c_in == c_out else ConvNorm(c_in, c_out, 1)
    conv = ConvNorm(c_in, c_out, 3, stride)
    body = conv if op.endswith("conv") else nn.Sequential(conv, ConvNorm(c_out, c_out, 3, 1))
    return Zoomed(body, stride) if op.startswith("zoomed") else body


class Stem(nn.Sequential):
    """Three stride-2 steps from the image to 1/8 (FasterSeg's ConvNorm + two double convolutions)."""

    def __init__(self, width: float) -> None:
        c1, c2 = round(2 * CHANNELS_PER_SCALE * width) * 2, round(4 * CHANNELS_PER_SCALE * width) * 2
        super().__init__(ConvNorm(3, c1, 3, 2), make_op("conv_x2", c1, c2, 2),
                         make_op("conv_x2", c2, channels(0, width), 2))
        self.config = f"stem:{width:.4f}"


class Cell(nn.Module):
    """One operator of a branch, remembered with its configuration for the latency table."""

    def __init__(self, op: str, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.op = make_op(op, c_in, c_out, stride)
        self.config = f"cell:{op}:{c_in}:{c_out}:{stride}"

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class BranchDecoder(nn.Module):
    """From a branch's final scale back to 1/8: 1x1 reduce, upsample, concatenate the branch's own
    feature at that scale, 3x3 refine (FasterSeg's arms and refines)."""

    def __init__(self, final_scale: int, head_width: float, skip_channels: list[int]) -> None:
        super().__init__()
        steps = []
        for scale, skip in zip(range(final_scale, 0, -1), skip_channels, strict=True):
            c_low = channels(scale - 1, head_width)
            steps.append(nn.ModuleList([ConvNorm(channels(scale, head_width), c_low, 1),
                                        ConvNorm(c_low + skip, c_low, 3)]))
        self.steps = nn.ModuleList(steps)
        self.config = f"decoder:{final_scale}:{head_width:.4f}:{skip_channels}"

    def forward(self, x: Tensor, *skips: Tensor) -> Tensor:
        for (reduce, refine), skip in zip(self.steps, skips, strict=True):
            up = F.interpolate(reduce(x), size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = refine(torch.cat([up, skip], dim=1))
        return x


class FusionHead(nn.Module):
    """Concatenate the branches at 1/8, re-weight channels (feature fusion with channel attention),
    predict classes and upsample to the input size."""

    def __init__(self, c_in: int, c_mid: int, num_classes: int) -> None:
        super().__init__()
        self.fuse = ConvNorm(c_in, c_in, 1)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_in, c_in, 1), nn.ReLU(),
                                       nn.Conv2d(c_in, c_in, 1), nn.Sigmoid())
        self.classify = nn.Sequential(ConvNorm(c_in, c_mid, 3), nn.Conv2d(c_mid, num_classes, 1))
        self.config = f"head:{c_in}:{c_mid}:{num_classes}"

    def forward(self, *branches: Tensor, out_size: tuple[int, int]) -> Tensor:
        x = self.fuse(torch.cat(branches, dim=1))
        x = x + x * self.attention(x)
        return F.interpolate(self.classify(x), size=out_size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class LatencyBlock:
    """A part of a network timed on its own: ``module(*random inputs of input_shapes, **kwargs)``."""

    key: str
    module: nn.Module
    input_shapes: tuple[tuple[int, ...], ...]
    kwargs: dict


def _prefix(downs: tuple[int, ...], layer: int) -> str:
    return f"{layer}_" + "".join(map(str, downs[: layer + 1]))


@dataclass(frozen=True)
class CellPlan:
    """Where a cell of a branch sits: its module key, layer, input and output scale and channels."""

    key: str
    layer: int
    in_scale: int
    c_in: int
    out_scale: int
    c_out: int


class SegNet(nn.Module):
    """A FasterSeg network: stem, shared branch cells, branch decoders, fusion head."""

    def __init__(self, arch: Arch, num_classes: int = 19, role: str = "student") -> None:
        super().__init__()
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        check_arch(arch)
        self.arch, self.role, self.num_classes = arch, role, num_classes
        stem_head = STUDENT_STEM_HEAD_WIDTH if role == "student" else 1.0
        self.c8 = channels(0, stem_head)
        self.stem = Stem(stem_head)
        self.cells = nn.ModuleDict()
        self.plans = [self._plan_branch(b, stem_head) for b in range(arch.num_branches)]
        for plan in self.plans:
            for p in plan:
                if p.key not in self.cells:
                    op = OPS[arch.alpha[p.layer][p.in_scale]]
                    self.cells[p.key] = Cell(op, p.c_in, p.c_out, 1 + p.out_scale - p.in_scale)
        self.decoders = nn.ModuleList(
            BranchDecoder(plan[-1].out_scale, stem_head, [c for _, _, c in self._skips(plan)])
            for plan in self.plans)
        self.head = FusionHead(self.c8 * arch.num_branches, self.c8, num_classes)

    def _plan_branch(self, branch: int, stem_head: float) -> list[CellPlan]:
        downs, path = self.arch.beta[branch], self.arch.path(branch)
        plan, c_in = [], self.c8
        for l in range(self.arch.num_layers):
            out_scale = path[l + 1]
            if l == self.arch.num_layers - 1:
                width = stem_head
            elif self.role == "teacher":
                width = 1.0
            else:
                width = WIDTH_RATIOS[self.arch.ratio[l][out_scale]]
            plan.append(CellPlan(_prefix(downs, l), l, path[l], c_in, out_scale, channels(out_scale, width)))
            c_in = plan[-1].c_out
        return plan

    def _skips(self, plan: list[CellPlan]) -> list[tuple[int, int, int]]:
        """(scale, index of the cell giving it or -1 for the stem, channels) of the branch's last
        feature at each scale below its final one, deepest first: what its decoder concatenates."""
        last = {0: (0, -1, self.c8)}
        for i, p in enumerate(plan):
            last[p.out_scale] = (p.out_scale, i, p.c_out)
        return [last[s] for s in range(plan[-1].out_scale - 1, -1, -1)]

    def forward(self, x: Tensor) -> Tensor:
        stem = self.stem(x)
        computed: dict[str, Tensor] = {}
        branch_outputs = []
        for plan, decoder in zip(self.plans, self.decoders, strict=True):
            outputs, out = [], stem
            for p in plan:
                if p.key not in computed:
                    computed[p.key] = self.cells[p.key](out)
                out = computed[p.key]
                outputs.append(out)
            skips = (stem if i < 0 else outputs[i] for _, i, _ in self._skips(plan))
            branch_outputs.append(decoder(out, *skips))
        return self.head(*branch_outputs, out_size=x.shape[2:])

    def latency_blocks(self, size: tuple[int, int]) -> list[LatencyBlock]:
        """Every part of the network with the input shapes it sees for a ``size`` image (batch 1), in
        execution order; shared cells appear once. Their summed latency predicts the network's."""
        def shape(scale: int, c: int) -> tuple[int, ...]:
            return (1, c, *scaled_size(size, 8 * 2**scale))

        blocks = [LatencyBlock(f"{self.stem.config}@{size}", self.stem, ((1, 3, *size),), {})]
        seen: set[str] = set()
        for plan, decoder in zip(self.plans, self.decoders, strict=True):
            for p in plan:
                if p.key not in seen:
                    seen.add(p.key)
                    in_shape = shape(p.in_scale, p.c_in)
                    cell = self.cells[p.key]
                    blocks.append(LatencyBlock(f"{cell.config}@{in_shape[2:]}", cell, (in_shape,), {}))
            final = plan[-1].out_scale
            shapes = (shape(final, plan[-1].c_out),
                      *(shape(s, c) for s, _, c in self._skips(plan)))
            blocks.append(LatencyBlock(f"{decoder.config}@{size}", decoder, shapes, {}))
        branch_shapes = tuple(shape(0, self.c8) for _ in self.plans)
        head_key = f"{self.head.config}@{size}"
        blocks.append(LatencyBlock(head_key, self.head, branch_shapes, {"out_size": size}))
        return blocks


def build_network(arch: Arch, num_classes: int = 19, role: str = "student") -> SegNet:
    """The concrete network of ``arch``: the student (searched widths, fixed stem/head width) or the
    teacher (every cell at full width)."""
    return SegNet(arch, num_classes, role)
