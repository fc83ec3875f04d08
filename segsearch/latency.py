"""Latency: measured frames per second of a network, and FasterSeg's per-operator lookup table.

Measuring a whole network at 1024x2048 takes seconds on a CPU, too slow for every candidate of a
search. The lookup table times each *part* of a network (stem, every cell, every branch decoder, the
fusion head) once at the input shape it sees, keyed by its configuration and shape, and predicts a
network's latency from its parts; parts recur across architectures, so after a few candidates most
lookups are free.

On a GPU, parts timed alone do not add up to the whole: in the whole network the host launches the
next part's kernels while the GPU still runs the previous part's, so launch time and kernel time
overlap (the sum of parts each timed from launch to finish overestimated an H100's latency by 30 %).
So on a GPU each part gets two times: its kernels' own time (timed with the GPU held busy by a spin
kernel while the part is launched behind it, so no launch gap is counted) and the host's time to
launch it; the prediction is the slower of the two streams, ``max(sum of kernel times, sum of launch
times)``. On a CPU the two are one wall-clock time and the prediction is their sum. Caches, memory
traffic and the glue between parts still differ, so the table is *calibrated* at each input size on a
few seeded random students measured whole (:class:`Calibration`) and predicts the model times the
fitted ratio. ``benchmarks/segsearch_latency.py`` reports how well each predicts measured latency.

Timing is batch 1 in inference mode after a warm-up: CUDA events around the calls on a GPU (the
clock stops when the kernels finish, not when they are queued), wall clock on a CPU.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import platform
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from proxylang.errors import ProxylangError, short_repr
from proxylang.files import atomic_write, read_json
from segsearch.network import LatencyBlock, SegNet, build_network
from segsearch.space import Arch, random_arch

TABLE_FORMAT = "segsearch-latency/3"
# /1 (parts only, calibrated when first needed) and /2 hold the same CPU times as /3; their GPU times ran
# from launch to finish, which /3 splits into kernel and launch time
READABLE_FORMATS = ("segsearch-latency/1", "segsearch-latency/2", TABLE_FORMAT)
SPIN_CYCLES = 1_000_000  # the spin kernel that is timed once to learn the GPU's cycles per millisecond
CALIBRATION_NETWORKS = 5
CALIBRATION_SEED = "segsearch-latency-calibration"  # a stream of its own: never the students evaluated


def inference_dtype(device: torch.device, fp16: bool) -> torch.dtype:
    if fp16 and device.type != "cuda":
        raise ProxylangError("--fp16 needs a CUDA device")
    return torch.float16 if fp16 else torch.float32


def default_repeats(device: torch.device) -> tuple[int, int]:
    """(warm-up calls, timed calls): many on a GPU where a call takes milliseconds, few on a CPU."""
    return (10, 50) if device.type == "cuda" else (1, 3)


def device_name(device: torch.device) -> str:
    """What the latencies were measured on (a table is only valid there)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu-{platform.machine()}-{torch.get_num_threads()}threads"


@torch.no_grad()
def time_call(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int,
              lead: Callable[[], object] | None = None) -> float:
    """Median milliseconds of one call of ``fn`` after ``warmup`` untimed calls. On a GPU, ``lead`` is
    queued before each timed call, outside the timed span."""
    if warmup < 0 or repeats < 1:
        raise ProxylangError(f"need at least one timed call and no negative warm-up, got {repeats} timed "
                             f"and {warmup} warm-up calls")
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            if lead is not None:
                lead()
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


@torch.no_grad()
def time_part(fn: Callable[[], object], device: torch.device, warmup: int,
              repeats: int) -> tuple[float, float]:
    """Median milliseconds of one call of ``fn`` as ``(kernel time, launch time)``. On a GPU: the
    kernels' own time, the GPU held busy by a spin kernel while the call is launched behind it (so the
    events bracket the kernels back to back, with no launch gap), and the host's time to launch them.
    On a CPU both are the wall-clock time of :func:`time_call`."""
    if device.type != "cuda":
        ms = time_call(fn, device, warmup, repeats)
        return ms, ms
    launch_ms = []
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize(device)
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        launch_ms.append((time.perf_counter() - t0) * 1000.0)
        torch.cuda.synchronize(device)
    spin = int(SPIN_CYCLES * (1 + 2 * max(launch_ms) / _spin_ms(device)))  # outlasts any launch
    kernel = time_call(fn, device, 0, repeats, lead=lambda: torch.cuda._sleep(spin))
    return kernel, statistics.median(launch_ms)


_SPIN_MS: dict[torch.device, float] = {}


def _spin_ms(device: torch.device) -> float:
    """Milliseconds that ``SPIN_CYCLES`` cycles of the spin kernel take on ``device``."""
    if device not in _SPIN_MS:
        spin = functools.partial(torch.cuda._sleep, SPIN_CYCLES)
        _SPIN_MS[device] = max(time_call(spin, device, warmup=1, repeats=1), 1e-3)
    return _SPIN_MS[device]


def _prepared(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    return module.to(device=device, dtype=dtype).eval()


def measure_latency_ms(model: nn.Module, size: tuple[int, int], device: torch.device, fp16: bool = False,
                       warmup: int | None = None, repeats: int | None = None) -> float:
    """Milliseconds per ``size`` image (batch 1) of ``model`` on ``device``. Moves ``model`` there."""
    dtype = inference_dtype(device, fp16)
    default_warmup, default_reps = default_repeats(device)
    model = _prepared(model, device, dtype)
    x = torch.randn(1, 3, *size, device=device, dtype=dtype)
    return time_call(lambda: model(x), device, default_warmup if warmup is None else warmup,
                     default_reps if repeats is None else repeats)


def size_key(size: tuple[int, int]) -> str:
    """``HxW``: how a calibration's size is written in the table file."""
    return "{}x{}".format(*size)


def fit_ratio(raw_ms: Sequence[float], measured_ms: Sequence[float]) -> float:
    """The factor ``r`` minimising the squared relative error ``sum((r * raw / measured - 1) ** 2)``.

    One factor, not ``a * raw + b``: fitted on 3 to 8 students, a ratio predicted held-out students
    better than an affine fit or a power law (on the 2-core CPU at 256x512, 4.2 % mean error with 5
    students against 5.3 % and 5.5 %; on the 20 H100 pairs of ``docs/results/segsearch-gpu-h100.log``,
    15 % against 19 % for an affine fit): an intercept fitted on a few noisy points chases the noise.
    ``ValueError`` where the latencies give no positive finite ratio (none, or absurd magnitudes)."""
    x = [p / m for p, m in zip(raw_ms, measured_ms, strict=True)]
    squares = sum(v * v for v in x)
    ratio = sum(x) / squares if squares > 0 else math.nan
    if not 0 < ratio < math.inf:
        raise ValueError(f"the latencies give no positive finite ratio ({ratio})")
    return ratio


def calibration_archs(count: int) -> list[Arch]:
    """The students a calibration measures: the first ``count`` of a seeded stream of their own."""
    rng = random.Random(CALIBRATION_SEED)
    return [random_arch(rng) for _ in range(count)]


@dataclass(frozen=True)
class Calibration:
    """Students measured whole next to their sums of parts, at one input size; kept in the table file
    (the data, not only the fitted ratio, so a later model can refit it)."""

    raw_ms: tuple[float, ...]
    measured_ms: tuple[float, ...]
    seconds: float  # what timing the students' parts and measuring them cost

    @property
    def networks(self) -> int:
        return len(self.raw_ms)

    @property
    def ratio(self) -> float:
        return fit_ratio(self.raw_ms, self.measured_ms)

    def to_json(self) -> dict:
        return {"raw_ms": list(self.raw_ms), "measured_ms": list(self.measured_ms), "seconds": self.seconds}


def _latencies(value: object) -> bool:
    return isinstance(value, list) and all(
        not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in value)


def _calibration_from_json(key: str, value: object) -> tuple[tuple[int, int], Calibration]:
    """One ``"HxW": {raw_ms, measured_ms, seconds}`` item of a table file; ``ValueError`` saying what is
    wrong with it."""
    match = re.fullmatch(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})", key)
    if match is None:
        raise ValueError("its key is not a size HxW")
    if not isinstance(value, dict) or not _latencies(value.get("raw_ms")) or \
            not _latencies(value.get("measured_ms")):
        raise ValueError("raw_ms and measured_ms must be lists of positive milliseconds")
    raw, measured, seconds = value["raw_ms"], value["measured_ms"], value.get("seconds")
    if not raw or len(raw) != len(measured):
        raise ValueError(f"{len(raw)} raw sums for {len(measured)} measurements")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0:
        raise ValueError(f"seconds holds {short_repr(seconds)}")
    fit_ratio(raw, measured)  # fails here rather than at the first prediction
    return (int(match[1]), int(match[2])), Calibration(tuple(map(float, raw)), tuple(map(float, measured)),
                                                       float(seconds))


class LatencyTable:
    """Latency of network parts on one device and dtype, measured on first use and kept on disk.

    A table file written on another device or dtype is refused rather than silently mixed in. With
    ``calibration_networks`` > 0, predictions are calibrated (:meth:`calibration`); with 0 they are the
    :meth:`uncalibrated_ms`, and calibrations in the file are kept but not used.
    """

    def __init__(self, device: torch.device, fp16: bool = False, path: str | Path | None = None,
                 warmup: int | None = None, repeats: int | None = None,
                 calibration_networks: int = 0) -> None:
        if calibration_networks < 0:
            raise ValueError(f"calibration_networks must be >= 0, got {calibration_networks}")
        self.device, self.fp16, self.dtype = device, fp16, inference_dtype(device, fp16)
        self.calibration_networks = calibration_networks
        default_warmup, default_reps = default_repeats(device)
        self.warmup = default_warmup if warmup is None else warmup
        self.repeats = default_reps if repeats is None else repeats
        self.path = Path(path) if path is not None else None
        self.header = {"format": TABLE_FORMAT, "device": device_name(device), "dtype": str(self.dtype)}
        self.entries: dict[str, float] = {}  # each part's kernel time (a CPU's wall-clock time)
        self.launches: dict[str, float] = {}  # on a GPU, the host's time to launch each part
        self.calibrations: dict[tuple[int, int], Calibration] = {}
        self.measured = 0  # parts timed by this object (the rest came from the file)
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        data = read_json(self.path, "latency table")
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise ProxylangError(f"{self.path}: not a latency table (no object of entries)")
        foreign = [f"{k} {short_repr(data.get(k))}" for k, v in self.header.items()
                   if data.get(k) != v and not (k == "format" and data.get(k) in READABLE_FORMATS)]
        if foreign:
            raise ProxylangError(f"{self.path}: measured with {', '.join(foreign)}, not {self.header}; "
                                 "use another file")
        if self.device.type == "cuda" and data.get("format") != TABLE_FORMAT:
            raise ProxylangError(f"{self.path}: GPU times of {data.get('format')}, from launch to finish, "
                                 f"not the kernel and launch times of {TABLE_FORMAT}; delete it or use "
                                 "another file")
        self.entries = self._times(data["entries"], "entry")
        self.launches = self._times(data.get("launches", {}), "launch time")
        if self.device.type == "cuda" and self.launches.keys() != self.entries.keys():
            raise ProxylangError(f"{self.path}: launch times do not match the entries")
        calibrations = data.get("calibrations", {})
        if not isinstance(calibrations, dict):
            raise ProxylangError(f"{self.path}: calibrations must be an object of sizes, not "
                                 f"{short_repr(calibrations)}")
        for key, value in calibrations.items():
            try:
                size, calibration = _calibration_from_json(key, value)
            except ValueError as exc:
                raise ProxylangError(f"{self.path}: calibration {short_repr(key)} is corrupt: {exc}"
                                     ) from None
            self.calibrations[size] = calibration

    def _times(self, times: object, what: str) -> dict[str, float]:
        """A file's ``{part: milliseconds}`` object, every value checked."""
        if not isinstance(times, dict):
            raise ProxylangError(f"{self.path}: {what}s must be an object of parts, not {short_repr(times)}")
        for key, ms in times.items():
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
                raise ProxylangError(f"{self.path}: {what} {short_repr(key)} holds {short_repr(ms)}, not a "
                                     "latency in milliseconds")
        return {key: float(ms) for key, ms in times.items()}

    def save(self) -> None:
        """Write atomically (no torn table if interrupted); a table without a path stays in memory."""
        if self.path is None:
            return
        calibrations = {size_key(size): c.to_json() for size, c in self.calibrations.items()}
        table = {**self.header, "entries": self.entries, "calibrations": calibrations}
        if self.device.type == "cuda":
            table["launches"] = self.launches
        atomic_write(self.path, json.dumps(table, indent=0, sort_keys=True))

    def block_ms(self, block: LatencyBlock) -> tuple[float, float]:
        """The part's kernel and launch times (:func:`time_part`), timed now (on a copy, so the caller's
        network stays put) if unknown."""
        if block.key not in self.entries:
            module = _prepared(copy.deepcopy(block.module), self.device, self.dtype)
            inputs = [torch.randn(s, device=self.device, dtype=self.dtype) for s in block.input_shapes]
            kernel, launch = time_part(lambda: module(*inputs, **block.kwargs), self.device, self.warmup,
                                       self.repeats)
            self.entries[block.key] = kernel
            if self.device.type == "cuda":
                self.launches[block.key] = launch
            self.measured += 1
        return self.entries[block.key], self.launches.get(block.key, self.entries[block.key])

    def part_sums_ms(self, net: SegNet, size: tuple[int, int]) -> tuple[float, float]:
        """The sums of the network's parts' kernel times and of their launch times at ``size``."""
        times = [self.block_ms(b) for b in net.latency_blocks(size)]
        return sum(k for k, _ in times), sum(launch for _, launch in times)

    def uncalibrated_ms(self, net: SegNet, size: tuple[int, int]) -> float:
        """The uncalibrated prediction at ``size``: the slower of the kernel and launch streams (on a
        CPU, where they are one, the sum of the parts)."""
        return max(self.part_sums_ms(net, size))

    def calibration(self, size: tuple[int, int]) -> Calibration:
        """The calibration at ``size``: from the file, else fitted now on ``calibration_networks``
        students of :func:`calibration_archs`, their parts timed and each measured whole as the table
        times (same device, dtype, warm-up and repeats). A calibration at one size says nothing of
        another, where the parts' share of the glue differs."""
        if size not in self.calibrations:
            if self.calibration_networks < 1:
                raise ValueError("this table does not calibrate (calibration_networks is 0)")
            start = time.perf_counter()
            raw, measured = [], []
            for arch in calibration_archs(self.calibration_networks):
                net = build_network(arch)
                raw.append(self.uncalibrated_ms(net, size))
                measured.append(measure_latency_ms(net, size, self.device, self.fp16, self.warmup,
                                                   self.repeats))
            self.calibrations[size] = Calibration(tuple(raw), tuple(measured), time.perf_counter() - start)
        return self.calibrations[size]

    def predict_ms(self, net: SegNet, size: tuple[int, int]) -> float:
        """Predicted milliseconds per ``size`` image: :meth:`uncalibrated_ms` of the network's parts, times
        the calibration's ratio at ``size`` where the table calibrates."""
        raw = self.uncalibrated_ms(net, size)
        return raw * self.calibration(size).ratio if self.calibration_networks else raw


def default_table_path(device: torch.device, fp16: bool, cache_dir: str | Path) -> Path:
    """One table file per device and dtype under ``cache_dir``."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name(device)).strip("-")
    return Path(cache_dir) / f"latency-{slug}-{'fp16' if fp16 else 'fp32'}.json"
