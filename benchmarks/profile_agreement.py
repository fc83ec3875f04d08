"""How faithfully a measurement profile reproduces the benchmark's reference scores, and what it costs.

For each candidate profile, the classic proxies that the data files also store are scored on the same
seeded sample of architectures per space, exactly as ``proxylang baselines`` scores them; printed is
the Kendall tau between our score and the file's (NAS-Bench-Suite-Zero's, on real Taskonomy images at
256x256, batch 32), the Kd of our score against accuracy, and the seconds per architecture. This is the
measurement behind the default profile (docs/benchmark.md). Nothing is cached (statistics of many
profiles would fill the disk), so every run measures the full cost.

``--seeds A,B`` instead prints, per proxy, the Kendall tau between our own scores under two seeds
(other weights, other input batch): how far a re-implementation can agree with a reference that was
computed on other random draws, the ceiling against which the "vs ref" figures should be read.

    python benchmarks/profile_agreement.py [--archs 40] [--spaces micro,macro] [--only nwot,snip]
    python benchmarks/profile_agreement.py --profiles lite --seeds 0,1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from proxylang.bench.transnas import TRANSNAS
from proxylang.scoring.evaluate import kendall
from proxylang.scoring.proxies import presample
from proxylang.scoring.sweep import Sweep, baseline_results, baseline_scores
from proxylang.stats.profiles import PROFILES, Profile

REFERENCED = ("params", "flops", "l2_norm", "nwot", "snip", "grad_norm", "plain", "fisher", "grasp", "jacov")
CANDIDATES = {
    "r64-white-uniform": Profile("r64-white-uniform", 64, 8, "white", "uniform"),
    "r128-white-uniform": Profile("r128-white-uniform", 128, 8, "white", "uniform"),
    "r128-pink-regions": Profile("r128-pink-regions", 128, 8, "pink", "regions"),
    "r128-photos-uniform": Profile("r128-photos-uniform", 128, 8, "photos", "uniform"),
    **PROFILES,  # lite is 128x128 photos with region labels
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=40, help="architectures per space (seeded sample)")
    parser.add_argument("--spaces", default="micro,macro")
    parser.add_argument("--profiles", default=",".join(CANDIDATES), help="comma-separated candidates")
    parser.add_argument("--only", default=",".join(REFERENCED), help="comma-separated proxies")
    parser.add_argument("--data", type=Path, help="folder holding transnas/ [default: $PROXYLANG_DATA, "
                                                  "else ../shared/benchmarks]")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seeds", help="two comma-separated seeds: print our seed-to-seed agreement instead")
    args = parser.parse_args()
    names = args.only.split(",")
    os.environ["PROXYLANG_CACHE_GB"] = "0"  # measure every extraction, store none
    print(f"{args.archs} archs per space, device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'profile':<22}{'space':<7}{'s/arch':>7}  " + "".join(f"{n[:9]:>10}" for n in names))
    for profile_name in args.profiles.split(","):
        profile = CANDIDATES[profile_name]
        for space in args.spaces.split(","):
            with tempfile.TemporaryDirectory() as cache:
                sweep = Sweep(TRANSNAS, profile, 0, args.device, Path(cache), args.data)
                truth = sweep.truth(space)
                truth = truth.only(sorted(presample(truth.archs, args.archs, seed=0)))
                start = time.perf_counter()
                if args.seeds:
                    first, second = (baseline_scores(names, truth, replace(sweep, seed=int(seed)))
                                     for seed in args.seeds.split(","))
                    seconds = (time.perf_counter() - start) / len(truth.archs) / 2
                    print(f"{profile_name:<22}{space:<7}{seconds:>7.2f}  seeds " + "".join(
                        f"{kendall(first[n][0], second[n][0]):>10.3f}" for n in names), flush=True)
                    continue
                results = baseline_results(names, truth, sweep, sample=min(50, args.archs), repeats=1)
                seconds = (time.perf_counter() - start) / len(truth.archs)
            agree = [results[n].get("kendall_vs_reference", np.nan) for n in names]
            own = [results[n]["full"]["kendall"] for n in names]
            print(f"{profile_name:<22}{space:<7}{seconds:>7.2f}  vs ref"
                  + "".join(f"{v:>10.3f}" for v in agree), flush=True)
            print(f"{'':<22}{'':<7}{'':>7}  Kd    " + "".join(f"{v:>10.3f}" for v in own), flush=True)


if __name__ == "__main__":
    main()
