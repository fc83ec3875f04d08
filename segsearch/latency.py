"""Latency: measured frames per second of a network, and FasterSeg's per-operator lookup table.

Measuring a whole network at 1024x2048 takes seconds on a CPU, too slow for every candidate of a
search. The lookup table times each *part* of a network (stem, every cell, every branch decoder, the
fusion head) once at the input shape it sees, keyed by its configuration and shape, and predicts a
network's latency as the sum of its parts; parts recur across architectures, so after a few
candidates most lookups are free. ``benchmarks/segsearch_latency.py`` reports how well the sum
predicts the measured latency.

Timing is batch 1 in inference mode after a warm-up: CUDA events around the calls on a GPU (the
clock stops when the kernels finish, not when they are queued), wall clock on a CPU.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from proxylang.errors import ProxylangError, short_repr
from proxylang.files import atomic_write, read_json
from segsearch.network import LatencyBlock, SegNet

TABLE_FORMAT = "segsearch-latency/1"


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
def time_call(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median milliseconds of one call of ``fn`` after ``warmup`` untimed calls."""
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


class LatencyTable:
    """Latency of network parts on one device and dtype, measured on first use and kept on disk.

    A table file written on another device or dtype is refused rather than silently mixed in.
    """

    def __init__(self, device: torch.device, fp16: bool = False, path: str | Path | None = None,
                 warmup: int | None = None, repeats: int | None = None) -> None:
        self.device, self.dtype = device, inference_dtype(device, fp16)
        default_warmup, default_reps = default_repeats(device)
        self.warmup = default_warmup if warmup is None else warmup
        self.repeats = default_reps if repeats is None else repeats
        self.path = Path(path) if path is not None else None
        self.header = {"format": TABLE_FORMAT, "device": device_name(device), "dtype": str(self.dtype)}
        self.entries: dict[str, float] = {}
        self.measured = 0  # parts timed by this object (the rest came from the file)
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        data = read_json(self.path, "latency table")
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise ProxylangError(f"{self.path}: not a latency table (no object of entries)")
        foreign = [f"{k} {short_repr(data.get(k))}" for k, v in self.header.items() if data.get(k) != v]
        if foreign:
            raise ProxylangError(f"{self.path}: measured with {', '.join(foreign)}, not {self.header}; "
                                 "use another file")
        for key, ms in data["entries"].items():
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
                raise ProxylangError(f"{self.path}: entry {short_repr(key)} holds {short_repr(ms)}, not a "
                                     "latency in milliseconds")
        self.entries = {key: float(ms) for key, ms in data["entries"].items()}

    def save(self) -> None:
        """Write atomically (no torn table if interrupted); a table without a path stays in memory."""
        if self.path is None:
            return
        atomic_write(self.path,
                     json.dumps({**self.header, "entries": self.entries}, indent=0, sort_keys=True))

    def block_ms(self, block: LatencyBlock) -> float:
        """The part's latency, timed now (on a copy, so the caller's network stays put) if unknown."""
        if block.key not in self.entries:
            module = _prepared(copy.deepcopy(block.module), self.device, self.dtype)
            inputs = [torch.randn(s, device=self.device, dtype=self.dtype) for s in block.input_shapes]
            self.entries[block.key] = time_call(lambda: module(*inputs, **block.kwargs), self.device,
                                                self.warmup, self.repeats)
            self.measured += 1
        return self.entries[block.key]

    def predict_ms(self, net: SegNet, size: tuple[int, int]) -> float:
        """Predicted milliseconds per ``size`` image: the sum of the network's parts."""
        return sum(self.block_ms(b) for b in net.latency_blocks(size))


def default_table_path(device: torch.device, fp16: bool, cache_dir: str | Path) -> Path:
    """One table file per device and dtype under ``cache_dir``."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name(device)).strip("-")
    return Path(cache_dir) / f"latency-{slug}-{'fp16' if fp16 else 'fp32'}.json"
