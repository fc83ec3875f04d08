"""Speed and memory of statistics extraction on TransNAS-Bench-101 networks.

For each space and device, the same seeded networks run (1) a plain forward + backward with the
default loss and no hooks — the baseline — and (2) ``extract_stats``. Printed: archs/s of each, their
ratio (the cost of the hooks and copies), the size of the statistics, and peak memory (CPU: the
process's peak resident set, which only grows, so it is the peak so far; GPU:
``torch.cuda.max_memory_allocated`` per phase). Network building is timed separately. Each network
runs ``--repeats`` times per phase and the fastest run counts, since the machine is shared.

    python benchmarks/stats_speed.py [--archs 6] [--repeats 3] [--profile lite]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch

from proxylang.bench.transnas import TRANSNAS, build_network, load_zc_json, zc_json_path
from proxylang.scoring.proxies import presample
from proxylang.stats.extract import default_loss, extract_stats
from proxylang.stats.profiles import DEFAULT_PROFILE, PROFILES, input_batch


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_pass(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    default_loss(model(x), y).backward()
    model.zero_grad(set_to_none=True)


def best_of(device: str, repeats: int, step: Callable[[], object]) -> float:
    """Fastest of ``repeats`` runs: on a shared machine the minimum is the least disturbed figure."""
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def peak_mb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_rss_mb()


def measure(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: str,
            repeats: int) -> tuple[float, float, float, float, int]:
    """Plain and hooked seconds, their peak memory (MB), and the statistics' size, for one network."""
    plain_pass(model, x, y)  # warm-up (allocator, kernels)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    plain_s = best_of(device, repeats, lambda: plain_pass(model, x, y))
    plain_peak = peak_mb(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sizes: list[int] = []
    extract_s = best_of(device, repeats, lambda: sizes.append(extract_stats(model, x, y).nbytes()))
    return plain_s, extract_s, plain_peak, peak_mb(device), sizes[-1]


def run(space: str, device: str, args: argparse.Namespace) -> None:
    records = load_zc_json(zc_json_path(space, args.data), "segmentsemantic")
    archs = presample(sorted(records), args.archs, seed=0)
    x, y = input_batch(PROFILES[args.profile], 0, TRANSNAS.num_classes)
    x, y = x.to(device), y.to(device)
    build_s = 0.0
    rows = []
    for arch in archs:  # plain and hooked passes interleaved per network, so load changes hit both
        start = time.perf_counter()
        torch.manual_seed(0)
        model = build_network(space, arch).to(device)
        build_s += time.perf_counter() - start
        rows.append(measure(model, x, y, device, args.repeats))
        del model
    n = len(archs)
    plain_s, extract_s = sum(r[0] for r in rows), sum(r[1] for r in rows)
    plain_peak, extract_peak = max(r[2] for r in rows), max(r[3] for r in rows)
    stats_mb = sum(r[4] for r in rows) / n / 2**20
    kind = "GPU" if device.startswith("cuda") else "RSS"
    print(f"{space:<6}{device:<5}{n:>3} archs  build {n / build_s:6.2f}/s"
          f"  plain fwd+bwd {n / plain_s:6.2f} archs/s  extract {n / extract_s:6.2f} archs/s"
          f"  extract/plain time x{extract_s / plain_s:.2f}  stats {stats_mb:6.1f} MB/arch"
          f"  peak {kind} plain {plain_peak:7.0f} MB  extract {extract_peak:7.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=6, help="networks per space")
    parser.add_argument("--profile", choices=list(PROFILES), default=DEFAULT_PROFILE)
    parser.add_argument("--data", type=Path, help="folder holding transnas/ [default: $PROXYLANG_DATA, "
                                                  "else ../shared/benchmarks]")
    parser.add_argument("--spaces", default="micro,macro")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per network (the fastest counts)")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{PROFILES[args.profile].describe()}; torch threads {torch.get_num_threads()}")
    for device in devices:
        for space in args.spaces.split(","):
            run(space, device, args)


if __name__ == "__main__":
    main()
