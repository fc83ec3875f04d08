"""How noisy a Kendall-tau fitness on n architectures is, to choose how many train archs a search uses.

A search keeps the candidate with the best Kd on its train split, so what matters is how well Kd on n
archs orders two candidates whose Kd on many archs differs a little. This script measures that on the
reference proxy scores the data files store (real proxies, no network built): for each space it takes
every architecture outside the default holdout (``DataConfig().seed``'s split), draws ``--draws`` random
subsets of n archs for each n, and prints

- the standard deviation of each reference proxy's Kd over the subsets (the fitness noise), and
- for pairs of proxies whose Kd on the whole pool differs by less than ``--close`` (the choices a search
  really faces), the standard deviation of their Kd difference on n archs and how often the subset
  orders the pair the wrong way round (a lower bound: subsets of a finite pool overlap).

    python benchmarks/fitness_noise.py [--draws 400] [--sizes 20,40,80,120,200,300] [--close 0.06]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from proxylang.bench.transnas import TRANSNAS
from proxylang.scoring.evaluate import kendall
from proxylang.search.data import DataConfig, split_archs


def pool_scores(space: str, data: Path | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Accuracy and every reference proxy's scores (finite for all) on the archs outside the holdout."""
    truth = TRANSNAS.load_truth(space, data)
    names = split_archs(truth.archs, DataConfig())
    holdout = set(names["holdout"])
    pool = truth.only([a for a in truth.archs if a not in holdout])
    scores = {name: pool.reference_scores(name) for name in pool.reference_names()}
    return pool.accuracy, {n: s for n, s in scores.items() if np.isfinite(s).all() and np.ptp(s) > 0}


def run(space: str, args: argparse.Namespace) -> None:
    accuracy, scores = pool_scores(space, args.data)
    full = {n: kendall(s, accuracy) for n, s in scores.items()}
    sizes = [n for n in args.sizes if n <= len(accuracy)]
    rng = np.random.default_rng(args.seed)
    subsets = {n: [rng.choice(len(accuracy), n, replace=False) for _ in range(args.draws)] for n in sizes}
    kd = {(name, n): np.array([kendall(s[i], accuracy[i]) for i in subsets[n]])
          for name, s in scores.items() for n in sizes}
    # subsets of a finite pool overlap, which hides noise: scaled by the finite-population correction,
    # a subset's sd is that of n archs drawn from the whole space (thousands), as a train split is
    fpc = {n: 1 / np.sqrt(1 - n / len(accuracy)) for n in sizes}
    print(f"\n{space}: {len(accuracy)} archs outside the holdout, {args.draws} subsets per size; sd scaled "
          f"by the finite-population correction (x{fpc[sizes[-1]]:.2f} at n={sizes[-1]})")
    print(f"  {'proxy':<10} {'Kd pool':>8}  " + "  ".join(f"sd@{n:<4}" for n in sizes))
    for name in sorted(scores, key=lambda x: -full[x]):
        cells = "  ".join(f"{kd[name, n].std() * fpc[n]:7.3f}" for n in sizes)
        print(f"  {name:<10} {full[name]:+8.3f}  {cells}")
    pairs = [(a, b) if full[a] > full[b] else (b, a) for a, b in itertools.combinations(scores, 2)
             if abs(full[a] - full[b]) < args.close]
    if not pairs:
        return
    print(f"  pairs within {args.close} Kd on the pool: sd of the difference / share ordered wrongly")
    for better, worse in sorted(pairs, key=lambda p: full[p[0]] - full[p[1]]):
        cells = "  ".join(f"{(kd[better, n] - kd[worse, n]).std() * fpc[n]:.3f}/"
                          f"{np.mean(kd[better, n] < kd[worse, n]):4.0%}" for n in sizes)
        print(f"  {better} > {worse} by {full[better] - full[worse]:.3f}: {cells}")
    mean_sd = {n: np.mean([kd[name, n].std() * fpc[n] for name in scores]) for n in sizes}
    print("  mean sd over proxies: " + "  ".join(f"n={n}: {sd:.3f}" for n, sd in mean_sd.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[20, 40, 80, 120, 200, 300])
    parser.add_argument("--close", type=float, default=0.06, help="Kd gap of the pairs compared")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="folder holding transnas/ [default: $PROXYLANG_DATA, "
                                                  "else ../shared/benchmarks]")
    args = parser.parse_args()
    for space in TRANSNAS.spaces:
        run(space, args)


if __name__ == "__main__":
    main()
