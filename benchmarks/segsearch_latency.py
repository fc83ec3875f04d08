"""How well the latency lookup table predicts measured latency, raw and calibrated, and what it saves.

On one device, the table (starting empty) is first calibrated at the size: ``--calibration`` seeded
students of the calibration stream, their parts timed and each measured whole (batch 1, warm-up,
median); its cost is printed. Then, for N seeded random legal architectures (students) of another
stream: the sums of their parts' kernel times and launch times (one wall-clock time on a CPU), the raw
prediction (the slower stream), the calibrated prediction (raw x the fitted ratio) and the measured
latency of the whole network. Printed: each row; for the kernel sum, the raw and the calibrated
prediction, the mean (and max) relative error |pred - meas| / meas and the mean pred/meas ratio;
Kendall tau between prediction and measurement (one figure: a ratio does not reorder); and the time a
lookup takes once the table holds an architecture's parts, as a ratio to measuring that architecture.

    python benchmarks/segsearch_latency.py [--archs 20] [--size 256x512] [--device cpu|cuda] [--fp16]
    python benchmarks/segsearch_latency.py --archs 20 --size 1024x2048 --device cuda      # the GPU run
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch
from scipy.stats import kendalltau

from proxylang.runtime import resolve_device
from segsearch.cli import parse_size
from segsearch.latency import (
    CALIBRATION_NETWORKS,
    LatencyTable,
    calibration_archs,
    device_name,
    measure_latency_ms,
)
from segsearch.network import build_network
from segsearch.space import random_arch


def report(name: str, predicted: list[float], measured: list[float]) -> None:
    errors = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    ratios = [p / m for p, m in zip(predicted, measured, strict=True)]
    print(f"{name}: mean relative error {statistics.mean(errors):.1%} (max {max(errors):.1%}), "
          f"mean predicted/measured {statistics.mean(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--size", default="256x512", help="HxW input (1024x2048 for Cityscapes)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration", type=int, default=CALIBRATION_NETWORKS,
                        help="students measured whole to calibrate the table")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--table", help="write the table here at the end (its parts' times, calibration)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, size = resolve_device(args.device), parse_size(args.size)
    table = LatencyTable(device, args.fp16, calibration_networks=args.calibration)
    table.path = args.table and Path(args.table)  # written at the end, never read: the table starts empty
    rng = random.Random(args.seed)
    archs = [random_arch(rng) for _ in range(args.archs)]
    shared = {a.network_key() for a in archs} & {a.network_key() for a in calibration_archs(args.calibration)}
    print(f"{args.archs} random students at {args.size} on {device_name(device)} "
          f"{'fp16' if args.fp16 else 'fp32'}")
    calibration = table.calibration(size)
    print(f"calibration: {calibration.networks} students of the calibration stream ({len(shared)} of them "
          f"among the evaluated), measured whole in {calibration.seconds:.1f} s with their "
          f"{table.measured} parts; ratio {calibration.ratio:.3f}")
    kernels, raw, predicted, measured, lookup_s, measure_s = [], [], [], [], [], []
    for i, arch in enumerate(archs):
        net = build_network(arch)
        kernel, launch = table.part_sums_ms(net, size)
        kernels.append(kernel)
        raw.append(table.uncalibrated_ms(net, size))
        t0 = time.perf_counter()
        predicted.append(table.predict_ms(net, size))  # every part is in the table now: a pure lookup
        lookup_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        measured.append(measure_latency_ms(net, size, device, args.fp16))
        measure_s.append(time.perf_counter() - t0)
        print(f"  arch {i:2d}: kernels {kernel:9.2f} ms  launches {launch:9.2f} ms  raw {raw[-1]:9.2f} ms  "
              f"calibrated {predicted[-1]:9.2f} ms  measured {measured[-1]:9.2f} ms")
    print(f"Kendall tau (predicted vs measured): {kendalltau(predicted, measured).statistic:.3f}")
    report("sum of kernel times", kernels, measured)
    report("raw (slower of kernel and launch sums)", raw, measured)
    report(f"calibrated (x {calibration.ratio:.3f}, {calibration.networks} networks)", predicted, measured)
    print(f"parts timed: {table.measured}; lookup vs measuring an arch: "
          f"{statistics.mean(measure_s) / statistics.mean(lookup_s):.0f}x faster "
          f"({statistics.mean(lookup_s) * 1e3:.2f} ms vs {statistics.mean(measure_s) * 1e3:.0f} ms)")
    table.save()


if __name__ == "__main__":
    main()
