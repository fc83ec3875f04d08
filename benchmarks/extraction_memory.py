"""How far the memory check's estimate lies from the real peak of statistics extraction.

``StatsCache.check_memory`` refuses a network before anything is allocated, estimating its measurement
with ``extraction_peak_bytes`` from the sizes of its statistics (known from the same extraction on the
meta device) and of the input batch. This script measures the real peak: each (space, arch, resolution, batch)
runs in a fresh process, which builds the network and the batch, then extracts; the growth of the
process's peak resident set during the extraction is the measured peak. Printed per network: the
statistics' size, the measured peak, the peak per byte of activations (A and R; the weights' part of
the peak included, so small networks show more than ``ACTIVATION_PEAK_FACTOR``) and the estimate over
the measured peak (at least 1: the check is never under the real peak).

    python benchmarks/extraction_memory.py [--archs 2] [--settings 128x8,256x8,256x32]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys

import torch

from proxylang.bench.transnas import TRANSNAS
from proxylang.stats.extract import ACTIVATION_PEAK_FACTOR, extract_stats, extraction_peak_bytes


def measure(space: str, arch: str, resolution: int, batch: int) -> dict[str, float]:
    """Run in a child process: the statistics' bytes and the peak growth of this process."""
    torch.manual_seed(0)
    model = TRANSNAS.build_network(space, arch)
    inputs = torch.randn(batch, 3, resolution, resolution)
    targets = torch.randint(0, TRANSNAS.num_classes, (batch, resolution, resolution))
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    stats = extract_stats(model, inputs, targets)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    activations = sum(t.numel() * t.element_size() for t in stats.A + stats.R)
    return {"stats": stats.nbytes(), "activations": activations, "peak": peak,
            "estimate": extraction_peak_bytes(stats, inputs.numel() * 4 + targets.numel() * 8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=2, help="architectures per space (the file's first)")
    parser.add_argument("--settings", default="128x8,256x8,256x32", help="RESOLUTIONxBATCH, comma-separated")
    parser.add_argument("--child", nargs=4, metavar=("SPACE", "INDEX", "RES", "BATCH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        space, index, resolution, batch = args.child
        arch = TRANSNAS.load_truth(space, None, None).archs[int(index)]
        print(json.dumps({"arch": arch, **measure(space, arch, int(resolution), int(batch))}))
        return
    print(f"{'space':6} {'arch':20} {'setting':>8} {'stats MB':>9} {'peak MB':>9} {'peak/activations':>16} "
          f"{'estimate/peak':>13}")
    ratios, margins = [], []
    for setting in args.settings.split(","):
        resolution, batch = setting.split("x")
        for space in TRANSNAS.spaces:
            for index in range(args.archs):
                child = [sys.executable, __file__, "--child", space, str(index), resolution, batch]
                out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
                row = json.loads(out)
                ratio, margin = row["peak"] / row["activations"], row["estimate"] / row["peak"]
                ratios.append(ratio)
                margins.append(margin)
                print(f"{space:6} {row['arch']:20} {setting:>8} {row['stats'] / 2**20:9.0f} "
                      f"{row['peak'] / 2**20:9.0f} {ratio:16.2f} {margin:13.2f}", flush=True)
    print(f"peak per byte of activations {min(ratios):.2f} to {max(ratios):.2f} (the check takes "
          f"{ACTIVATION_PEAK_FACTOR}); estimate/peak {min(margins):.2f} to {max(margins):.2f}")


if __name__ == "__main__":
    main()
