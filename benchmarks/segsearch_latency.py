"""How well the latency lookup table predicts measured latency, and what it saves.

For N seeded random legal architectures (students), on one device: the table's prediction (sum of
the timed parts; the table starts empty and fills as it goes) and the measured latency of the whole
network (batch 1, warm-up, median). Printed: each pair, Kendall tau between predicted and measured,
mean relative error |pred - meas| / meas, mean pred/meas ratio, and the time a lookup takes once
the table holds an architecture's parts, as a ratio to measuring that architecture (the baseline).

    python benchmarks/segsearch_latency.py [--archs 20] [--size 256x512] [--device cpu|cuda] [--fp16]
    python benchmarks/segsearch_latency.py --archs 30 --size 1024x2048 --device cuda      # the GPU run
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from scipy.stats import kendalltau

from proxylang.runtime import resolve_device
from segsearch.cli import parse_size
from segsearch.latency import LatencyTable, device_name, measure_latency_ms
from segsearch.network import build_network
from segsearch.space import random_arch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--size", default="256x512", help="HxW input (1024x2048 for Cityscapes)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, size = resolve_device(args.device), parse_size(args.size)
    table = LatencyTable(device, args.fp16)
    rng = random.Random(args.seed)
    predicted, measured, lookup_s, measure_s = [], [], [], []
    print(f"{args.archs} random students at {args.size} on {device_name(device)} "
          f"{'fp16' if args.fp16 else 'fp32'}")
    for i in range(args.archs):
        net = build_network(random_arch(rng))
        predicted.append(table.predict_ms(net, size))
        t0 = time.perf_counter()
        table.predict_ms(net, size)  # every part is in the table now: a pure lookup
        lookup_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        measured.append(measure_latency_ms(net, size, device, args.fp16))
        measure_s.append(time.perf_counter() - t0)
        print(f"  arch {i:2d}: predicted {predicted[-1]:9.2f} ms  measured {measured[-1]:9.2f} ms")
    tau = kendalltau(predicted, measured).statistic
    errors = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    ratios = [p / m for p, m in zip(predicted, measured, strict=True)]
    print(f"Kendall tau (predicted vs measured): {tau:.3f}")
    print(f"mean relative error: {statistics.mean(errors):.1%}  (max {max(errors):.1%})")
    print(f"mean predicted/measured: {statistics.mean(ratios):.3f}")
    print(f"parts timed: {table.measured}; lookup vs measuring an arch: "
          f"{statistics.mean(measure_s) / statistics.mean(lookup_s):.0f}x faster "
          f"({statistics.mean(lookup_s) * 1e3:.2f} ms vs {statistics.mean(measure_s) * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
