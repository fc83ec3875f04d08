"""Speed and memory of measuring and scoring TransNAS-Bench-101 networks.

For each space and device, the same seeded networks run (1) a plain forward + backward with the default
loss and no hooks — the baseline; (2) ``extract_stats`` with copies, as a statistics cache stores them;
(3) the same copies then scored by SasWOT on the packed statistics (``CompiledProxy`` on a list: how
``eval`` scored before it scored while extracting); (4) *extract and score*: live statistics of only
what SasWOT reads, scored while live (``score_network``, what ``eval`` and ``baselines`` run now: in
row blocks on a CPU, packed on a GPU). SasWOT is calibrated on the same networks first (untimed).
Printed: archs/s of each, the rate of each as a ratio to the plain pass, the size of the statistics,
and peak memory (CPU: the process's peak resident set, which only grows, so it is the peak so far; GPU:
``torch.cuda.max_memory_allocated`` per phase). Network building is timed separately. Each network runs
``--repeats`` times per phase, the phases taking turns, and the fastest run counts, since the machine
is shared.

    python benchmarks/stats_speed.py [--archs 6] [--repeats 5] [--profile lite] [--devices cpu,cuda]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch

from proxylang.bench.transnas import TRANSNAS, build_network, load_zc_json, zc_json_path
from proxylang.lang.compile import CompiledProxy, compile_proxy
from proxylang.lang.parse import parse
from proxylang.scoring.proxies import presample
from proxylang.stats.extract import default_loss, extract_stats
from proxylang.stats.netstats import NetStats
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


def timed(device: str, step: Callable[[], object]) -> float:
    """Seconds of one run of ``step``, the device's queue drained before and after."""
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def peak_mb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_rss_mb()


def measure(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: str, repeats: int,
            saswot: CompiledProxy) -> dict[str, float]:
    """Seconds of each phase (the fastest of ``repeats``), peak memory (MB) and statistics size. The
    phases take turns within each repeat, so a slow spell of a shared machine hits them alike."""
    plain_pass(model, x, y)  # warm-up (allocator, kernels)
    row: dict[str, float] = {}
    steps = {"plain": lambda: plain_pass(model, x, y),
             "extract": lambda: row.__setitem__("bytes", extract_stats(model, x, y).nbytes()),
             "copy+score": lambda: saswot([extract_stats(model, x, y, keep_on_device=True)]),
             "live": lambda: saswot.score_network(live_stats(model, x, y, saswot))}
    times: dict[str, list[float]] = {phase: [] for phase in steps}
    for _ in range(repeats):
        for phase, step in steps.items():
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            times[phase].append(timed(device, step))
            row[f"{phase} peak"] = max(row.get(f"{phase} peak", 0.0), peak_mb(device))
    row.update({phase: min(seconds) for phase, seconds in times.items()})
    return row


def live_stats(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, proxy: CompiledProxy) -> NetStats:
    return extract_stats(model, x, y, keep_on_device=True, copy=False, needs=proxy.inputs)


def run(space: str, device: str, args: argparse.Namespace) -> None:
    records = load_zc_json(zc_json_path(space, args.data), "segmentsemantic")
    archs = presample(sorted(records), args.archs, seed=0)
    x, y = input_batch(PROFILES[args.profile], 0, TRANSNAS.num_classes)
    x, y = x.to(device), y.to(device)
    build_s = 0.0
    models = []
    for arch in archs:
        start = time.perf_counter()
        torch.manual_seed(0)
        models.append(build_network(space, arch).to(device))
        build_s += time.perf_counter() - start
    saswot = compile_proxy(parse(SASWOT.read_text(), str(SASWOT)))
    saswot.calibrate_on([saswot.observe(live_stats(m, x, y, saswot)) for m in models])
    rows = [measure(m, x, y, device, args.repeats, saswot) for m in models]
    if args.trace:
        trace_live(models[0], x, y, saswot, device)
    n = len(archs)
    total = {phase: sum(r[phase] for r in rows) for phase in PHASES}
    peak = {phase: max(r[f"{phase} peak"] for r in rows) for phase in PHASES}
    stats_mb = sum(r["bytes"] for r in rows) / n / 2**20
    kind = "GPU" if device.startswith("cuda") else "RSS"
    print(f"{space} on {device}: {n} archs, build {n / build_s:.2f}/s, statistics {stats_mb:.1f} MB/arch")
    for phase in PHASES:
        print(f"  {LABELS[phase]:<44}{n / total[phase]:7.2f} archs/s   rate vs plain "
              f"x{total['plain'] / total[phase]:.2f}   peak {kind} {peak[phase]:7.0f} MB")


def trace_live(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, proxy: CompiledProxy,
               device: str) -> None:
    """Where extract-and-score spends its time on one network: torch.profiler's top operators by self
    time on the host and, on a GPU, on the device (what to make faster next)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        proxy.score_network(live_stats(model, x, y, proxy))
        sync(device)
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40))
    if device.startswith("cuda"):
        print(averages.table(sort_by="self_cuda_time_total", row_limit=10, max_name_column_width=40))


PHASES = ("plain", "extract", "copy+score", "live")
LABELS = {"plain": "plain forward+backward (baseline)", "extract": "extract statistics (copies)",
          "copy+score": "extract copies, then score SasWOT (packed)",
          "live": "extract and score SasWOT (live)"}
SASWOT = Path(__file__).resolve().parents[1] / "examples" / "saswot.px"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=6, help="networks per space")
    parser.add_argument("--profile", choices=list(PROFILES), default=DEFAULT_PROFILE)
    parser.add_argument("--data", type=Path, help="folder holding transnas/ [default: $PROXYLANG_DATA, "
                                                  "else ../shared/benchmarks]")
    parser.add_argument("--spaces", default="micro,macro")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per network (the fastest counts)")
    parser.add_argument("--trace", action="store_true",
                        help="profile extract-and-score on each space's first network")
    parser.add_argument("--devices", help="comma-separated, e.g. cuda [default: cpu, and cuda when present]")
    args = parser.parse_args()
    devices = (args.devices.split(",") if args.devices
               else ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(f"{PROFILES[args.profile].describe()}; torch threads {torch.get_num_threads()}")
    for device in devices:
        for space in args.spaces.split(","):
            run(space, device, args)


if __name__ == "__main__":
    main()
