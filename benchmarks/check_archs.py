"""Check every TransNAS-Bench-101 arch of the data files against our builders: parameter count
(tolerance 0.5 %) and FLOPs at 256x256 (tolerance 2 %). Networks are built on the meta device, so
nothing is allocated or computed. Exits 1 if any arch is over tolerance.

    python benchmarks/check_archs.py [--data DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from proxylang.bench.transnas import SPACES, build_network, count_params
from proxylang.bench.transnas.ground_truth import load_zc_json, zc_json_path
from proxylang.errors import ProxylangError
from proxylang.scoring.flops import count_flops

PARAMS_TOLERANCE = 0.005
FLOPS_TOLERANCE = 0.02


def deviation(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / abs(theirs)


def check_space(space: str, data_dir: Path, limit: int | None) -> bool:
    records = load_zc_json(zc_json_path(space, data_dir), space=space)
    archs = list(records)[:limit]
    worst = {"params": (-1.0, ""), "flops": (-1.0, "")}
    start = time.perf_counter()
    for arch in archs:
        with torch.device("meta"):
            model = build_network(space, arch)
        ours = {"params": count_params(model) / 1e6, "flops": count_flops(model, 256)}
        for what in worst:
            dev = deviation(ours[what], getattr(records[arch], what))
            if dev > worst[what][0]:
                worst[what] = (dev, arch)
    elapsed = time.perf_counter() - start
    print(f"{space}: {len(archs)} archs checked in {elapsed:.1f} s; "
          f"worst params deviation {worst['params'][0]:.3e} at {worst['params'][1]}; "
          f"worst FLOPs deviation {worst['flops'][0]:.3e} at {worst['flops'][1]}")
    return worst["params"][0] <= PARAMS_TOLERANCE and worst["flops"][0] <= FLOPS_TOLERANCE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        help="folder holding transnas/ (default: $PROXYLANG_DATA or ../shared/benchmarks)")
    parser.add_argument("--limit", type=int, default=None, help="check only the first N archs per space")
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        ok = all([check_space(space, args.data, args.limit) for space in SPACES])
    except ProxylangError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"total {time.perf_counter() - start:.1f} s: {'OK' if ok else 'OVER TOLERANCE'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
