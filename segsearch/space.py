"""The FasterSeg search space: operators, the multi-resolution layer layout and architecture matrices.

An architecture is three integer matrices, as in FasterSeg (Chen et al., ICLR 2020):

* ``alpha`` (layers x 3): the operator of the cell at layer ``l`` whose *input* is at scale ``s``
  (0: 1/8, 1: 1/16, 2: 1/32). It is shared by every branch and by the teacher and the student.
* ``beta`` (branches x layers): 1 where the branch's cell at layer ``l`` downsamples (stride 2), 0
  where it stays. Every branch starts at 1/8 (the stem's output) and goes down at most twice.
* ``ratio`` (layers x 3): the width multiplier (index into :data:`WIDTH_RATIOS`) of the cell at layer
  ``l`` whose *output* is at scale ``s``. Only the student uses it: the teacher runs every cell at
  full width, and the student's stem and head have the fixed width :data:`STUDENT_STEM_HEAD_WIDTH`
  (FasterSeg's co-searched teacher/student pair; SasWOT keeps the student's pruning rate fixed).

Legality (checked by :func:`check_arch`): the matrices have the right shapes and values, no branch
downsamples in its last cell or more than twice, branches end at distinct scales (they are fused by
the head), and every scale a branch visits runs at least one non-skip operator at stride 1 (FasterSeg
forbids a resolution made only of skip connections).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from proxylang.errors import ProxylangError, short_repr
from proxylang.files import atomic_write, read_json

OPS = ("skip", "conv", "conv_x2", "zoomed_conv", "zoomed_conv_x2")
SCALES = (8, 16, 32)  # downsampling factor of each scale index
WIDTH_RATIOS = (4 / 12, 6 / 12, 8 / 12, 10 / 12, 1.0)
STUDENT_STEM_HEAD_WIDTH = 8 / 12
CHANNELS_PER_SCALE = 12  # FasterSeg's Fch: a scale-s feature has round(s * 12 * width) channels
NUM_LAYERS = 16
MAX_LAYERS = 64  # far beyond FasterSeg's 16; an architecture file cannot ask for an absurd network
NUM_BRANCHES = 2
FORMAT = "segsearch-arch/1"
MAX_SAMPLE_TRIES = 10_000


class ArchError(ProxylangError):
    """An architecture (file or matrices) that is malformed or not legal in the space."""


def channels(scale: int, width: float) -> int:
    """Channels of a feature at scale index ``scale`` for a width multiplier (FasterSeg's num_filters)."""
    return int(round(SCALES[scale] * CHANNELS_PER_SCALE * width))


Matrix = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Arch:
    """One point of the space; hashable, so populations can be de-duplicated."""

    alpha: Matrix
    beta: Matrix
    ratio: Matrix

    @property
    def num_layers(self) -> int:
        return len(self.alpha)

    @property
    def num_branches(self) -> int:
        return len(self.beta)

    def path(self, branch: int) -> list[int]:
        """Input scale of every cell of ``branch``, followed by the scale of its final output."""
        scales = [0]
        for down in self.beta[branch]:
            scales.append(scales[-1] + down)
        return scales

    def final_scale(self, branch: int) -> int:
        return sum(self.beta[branch])

    def key(self) -> str:
        """A compact text identity (used for seeding, de-duplication and checkpoints)."""
        rows = ["".join(map(str, r)) for m in (self.alpha, self.beta, self.ratio) for r in m]
        return "-".join(rows)

    def network_key(self) -> str:
        """The identity of the *network*: only the entries a branch path reads (alpha and ratio rows
        also hold choices for scales no branch visits at that layer, which change nothing). Two
        architectures with the same key build the same networks, so the search treats them as one."""
        used = set()
        for b in range(self.num_branches):
            path = self.path(b)
            used.update((l, path[l], path[l + 1]) for l in range(self.num_layers))
        last = self.num_layers - 1  # the last cell has the fixed head width, whatever ratio says
        cells = [f"{l}:{s}:{self.alpha[l][s]}:{self.ratio[l][t] if l < last else ''}"
                 for l, s, t in sorted(used)]
        return "/".join(["".join(map(str, r)) for r in self.beta] + cells)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "ops": list(OPS), "width_ratios": list(WIDTH_RATIOS),
                "alpha": [list(r) for r in self.alpha], "beta": [list(r) for r in self.beta],
                "ratio": [list(r) for r in self.ratio]}


def _matrix(value: object, name: str, rows: int | None, cols: int | None, high: int) -> Matrix:
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        raise ArchError(f"{name} must be a non-empty list of lists of integers")
    if rows is not None and len(value) != rows:
        raise ArchError(f"{name} must have {rows} rows, got {len(value)}")
    for i, row in enumerate(value):
        if cols is not None and len(row) != cols:
            raise ArchError(f"{name} row {i} must have {cols} entries, got {len(row)}")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < high:
                raise ArchError(f"{name} row {i} holds {short_repr(v)}; entries must be integers in "
                                f"[0, {high})")
    return tuple(tuple(r) for r in value)


def check_arch(arch: Arch) -> None:
    """Raise :class:`ArchError` naming the first rule ``arch`` breaks (see the module docstring)."""
    layers = arch.num_layers
    if not 2 <= layers <= MAX_LAYERS:
        raise ArchError(f"an architecture needs 2 to {MAX_LAYERS} layers, got {layers}")
    if len(arch.ratio) != layers:
        raise ArchError(f"alpha has {layers} rows (layers) but ratio has {len(arch.ratio)}")
    _matrix([list(r) for r in arch.alpha], "alpha", layers, len(SCALES), len(OPS))
    _matrix([list(r) for r in arch.ratio], "ratio", layers, len(SCALES), len(WIDTH_RATIOS))
    _matrix([list(r) for r in arch.beta], "beta", None, layers, 2)
    if not 1 <= arch.num_branches <= len(SCALES):
        raise ArchError(f"beta must have 1 to {len(SCALES)} branches, got {arch.num_branches}")
    for b, downs in enumerate(arch.beta):
        if downs[-1]:
            raise ArchError(f"branch {b} downsamples in its last cell")
        if sum(downs) > len(SCALES) - 1:
            raise ArchError(f"branch {b} downsamples {sum(downs)} times; at most {len(SCALES) - 1}")
        path = arch.path(b)
        for scale in range(path[-1] + 1):
            convs = [l for l in range(layers) if path[l] == scale and not downs[l] and arch.alpha[l][scale]]
            if not convs:
                raise ArchError(f"branch {b} has no non-skip stride-1 cell at 1/{SCALES[scale]}")
    finals = [arch.final_scale(b) for b in range(arch.num_branches)]
    if len(set(finals)) != len(finals):
        raise ArchError(f"branches must end at distinct scales, got 1/{finals} indices")


def is_legal(arch: Arch) -> bool:
    try:
        check_arch(arch)
    except ArchError:
        return False
    return True


def arch_from_dict(data: object) -> Arch:
    """Parse and validate the JSON object written by :meth:`Arch.to_dict`."""
    if not isinstance(data, dict):
        raise ArchError("an architecture must be a JSON object with alpha, beta and ratio")
    if data.get("format", FORMAT) != FORMAT:
        raise ArchError(f"unknown architecture format {short_repr(data.get('format'))}; expected {FORMAT!r}")
    if "ops" in data and data["ops"] != list(OPS):
        raise ArchError(f"ops {short_repr(data['ops'])} differ from this space's {list(OPS)}")
    missing = [k for k in ("alpha", "beta", "ratio") if k not in data]
    if missing:
        raise ArchError(f"architecture lacks {', '.join(missing)}")
    arch = Arch(_matrix(data["alpha"], "alpha", None, len(SCALES), len(OPS)),
                _matrix(data["beta"], "beta", None, None, 2),
                _matrix(data["ratio"], "ratio", None, len(SCALES), len(WIDTH_RATIOS)))
    check_arch(arch)
    return arch


def load_arch(path: str | Path) -> Arch:
    """Read an ``arch.json``; any problem is one error line naming the file (a ``DataError`` for a file
    that is not JSON, an :class:`ArchError` for one that holds no legal architecture)."""
    data = read_json(path, "segsearch architecture")
    try:
        return arch_from_dict(data)
    except ArchError as exc:
        raise ArchError(f"{path}: {exc}") from None


def save_arch(arch: Arch, path: str | Path, extra: dict | None = None) -> None:
    """Write ``arch`` (plus ``extra`` fields such as its score) atomically as JSON."""
    atomic_write(path, json.dumps({**arch.to_dict(), **(extra or {})}, indent=1) + "\n")


def _random_downs(rng: random.Random, layers: int, final: int) -> tuple[int, ...]:
    positions = sorted(rng.sample(range(layers - 1), final))
    return tuple(int(l in positions) for l in range(layers))


def random_arch(rng: random.Random, layers: int = NUM_LAYERS, branches: int = NUM_BRANCHES) -> Arch:
    """A uniformly drawn legal architecture (rejection sampling over the rules of :func:`check_arch`)."""
    if not 4 <= layers <= MAX_LAYERS or not 1 <= branches <= len(SCALES):
        raise ArchError(f"need 4 to {MAX_LAYERS} layers and 1 to {len(SCALES)} branches")
    for _ in range(MAX_SAMPLE_TRIES):
        finals = rng.sample(range(len(SCALES)), branches)
        arch = Arch(
            alpha=tuple(tuple(rng.randrange(len(OPS)) for _ in SCALES) for _ in range(layers)),
            beta=tuple(_random_downs(rng, layers, f) for f in finals),
            ratio=tuple(tuple(rng.randrange(len(WIDTH_RATIOS)) for _ in SCALES) for _ in range(layers)),
        )
        if is_legal(arch):
            return arch
    raise ArchError(f"no legal architecture found in {MAX_SAMPLE_TRIES} draws")
