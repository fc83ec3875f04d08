"""How much a coarser thinning of the search's statistics changes fitness, and how much faster it is.

Fitness reads thinned statistics (``proxylang.search.data.thin``): every k-th row and column of W and G,
every k²-th column of A and R. Thinning by 2k is thinning by k, then by 2, so both come from the same
cached statistics. On ``--archs`` seeded archs of a space, for the library baselines plus random
well-typed proxies from the search's own generator, this prints the Kd of each proxy at both strides
(how closely they agree) and the time per proxy over all the archs at each stride.

    python benchmarks/thin_agreement.py [--space micro] [--archs 60] [--proxies 40] [--stride 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import kendalltau, pearsonr

from proxylang.bench.transnas import TRANSNAS
from proxylang.errors import ProxylangError
from proxylang.lang.compile import compile_proxy
from proxylang.lang.pack import pack
from proxylang.scoring.baselines import EXPRESSION_BASELINES, library_expression
from proxylang.scoring.proxies import presample
from proxylang.search.data import DataConfig, split_kendall, thin, thinned_stats
from proxylang.search.genetic import random_expr
from proxylang.stats.extract import StatsCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="micro", choices=TRANSNAS.spaces)
    parser.add_argument("--archs", type=int, default=60)
    parser.add_argument("--proxies", type=int, default=40, help="baselines plus random proxies")
    parser.add_argument("--stride", type=int, default=8, help="compared with twice this stride")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    truth = TRANSNAS.load_truth(args.space)
    truth = truth.only(presample(truth.archs, args.archs, args.seed))
    config = DataConfig()
    cache = StatsCache(None, benchmark=TRANSNAS, space=args.space, profile=config.measurement(),
                       seed=config.stats_seed, device="cpu")
    fine = [thinned_stats(cache, a, args.stride) for a in truth.archs]
    packs = {args.stride: pack(fine), 2 * args.stride: pack([thin(s, 2) for s in fine])}
    rng = np.random.default_rng(args.seed)
    proxies = [library_expression(n) for n in EXPRESSION_BASELINES if n != "plain"]
    while len(proxies) < args.proxies:
        proxies += [e for e in [random_expr(rng)] if e is not None]
    kd: dict[int, list[float]] = {k: [] for k in packs}
    seconds: dict[int, list[float]] = {k: [] for k in packs}
    for node in proxies:
        proxy = compile_proxy(node)
        found = {}
        try:
            for stride, packed in packs.items():
                start = time.perf_counter()
                scores, valid = proxy(packed)
                found[stride] = (time.perf_counter() - start, split_kendall(
                    scores.numpy().astype(np.float64), valid.numpy(), truth.accuracy)[0])
        except (ProxylangError, RuntimeError):  # rejected, as the search rejects it
            continue
        for stride, (took, tau) in found.items():
            seconds[stride].append(took)
            kd[stride].append(tau)
    a, b = (np.array(kd[k]) for k in packs)
    ok = np.isfinite(a) & np.isfinite(b)
    coarse = 2 * args.stride
    print(f"{args.space}: {len(a)} proxies ({ok.sum()} usable at both strides) on {args.archs} archs")
    gap = np.abs(a[ok] - b[ok])
    print(f"  Kd at thin {args.stride} vs thin {coarse}: mean |difference| {gap.mean():.3f}, "
          f"max {gap.max():.3f}, Pearson {pearsonr(a[ok], b[ok])[0]:.3f}, "
          f"Kendall {kendalltau(a[ok], b[ok])[0]:.3f}")
    for stride in packs:
        print(f"  thin {stride}: {np.mean(seconds[stride]):.3f} s per proxy on {args.archs} archs "
              f"(median {np.median(seconds[stride]):.3f})")
    print(f"  speed-up of thin {coarse}: x{np.mean(seconds[args.stride]) / np.mean(seconds[coarse]):.1f}")


if __name__ == "__main__":
    main()
