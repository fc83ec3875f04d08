"""How fast compiled proxies run for their work, to turn a search's time limit into work.

``proxylang evolve`` rejects a candidate that would take longer than ``max_seconds`` on the full
statistics of one network. It estimates that time from the candidate's work (``proxylang.lang.cost``:
elements streamed by most primitives, multiply-adds of matrix ones) at the two rates of
``proxylang.search.data``, so that a seed rejects the same candidates on any machine. This script
measures those rates: it draws random candidates as the search does, runs each on the full statistics of
the search's first train network (the fastest of ``--repeats`` runs), fits
``seconds = streamed / elements_rate + multiply_adds / products_rate + overhead`` (non-negative least
squares, weighted towards the slow candidates that the limit is about), and prints the fit, the Spearman
correlation of the estimate with the time, and how often the estimate and the clock disagree about the
limit, with the rates of the package and with the fitted ones.

    python benchmarks/work_rate.py [--space micro] [--candidates 300] [--seed 0] [--limit 2.0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls
from scipy.stats import spearmanr

from proxylang.bench.transnas import TRANSNAS
from proxylang.errors import ProxylangError
from proxylang.lang.compile import compile_proxy
from proxylang.lang.pack import pack
from proxylang.lang.printer import to_text
from proxylang.search.data import DataConfig, estimated_seconds, split_archs
from proxylang.search.genetic import random_expr
from proxylang.stats.extract import StatsCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", choices=("micro", "macro"), default="micro")
    parser.add_argument("--candidates", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=float, default=DataConfig().max_seconds, help="seconds")
    parser.add_argument("--data", type=Path, default=Path("../shared/benchmarks"))
    args = parser.parse_args()

    config = DataConfig()
    truth = TRANSNAS.load_truth(args.space, args.data)
    arch = split_archs(truth.archs, config)["train"][0]
    cache = StatsCache(benchmark=TRANSNAS, space=args.space, profile=config.measurement(),
                       seed=config.stats_seed, device="cpu")
    probe = pack([cache.compute(arch)])
    rng = np.random.default_rng(args.seed)
    work, seconds, texts = [], [], []
    while len(work) < args.candidates:
        node = random_expr(rng)
        if node is None:
            continue
        try:
            proxy = compile_proxy(node)
            cost = proxy.check_memory(probe)
            runs = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                proxy(probe)
                runs.append(time.perf_counter() - start)
        except (ProxylangError, RuntimeError):
            continue
        work.append((cost.streamed, cost.multiply_adds, estimated_seconds(cost)))
        seconds.append(min(runs))
        texts.append(to_text(node))
    streamed, products, estimate = (np.array(column) for column in zip(*work, strict=True))
    seconds_a = np.array(seconds)
    # relative errors matter: weight each candidate by 1 / (its time + 0.05 s)
    weight = 1 / (seconds_a + 0.05)
    design = np.stack([streamed, products, np.ones_like(streamed)], axis=1) * weight[:, None]
    (per_element, per_product, overhead), _ = nnls(design, seconds_a * weight)
    fitted = streamed * per_element + products * per_product + overhead
    print(f"{args.space}: {len(work)} random candidates on the full statistics of {arch} "
          f"({config.profile}), {torch.get_num_threads()} torch threads, fastest of {args.repeats}")
    rates = [1 / x if x else float("inf") for x in (per_element, per_product)]
    print(f"fit: {rates[0]:.3g} elements/s, {rates[1]:.3g} multiply-adds/s, {overhead * 1e3:.1f} ms each")
    for name, guess in (("package rates", estimate), ("fitted rates", fitted)):
        over, measured = guess > args.limit, seconds_a > args.limit
        ratio = guess / seconds_a
        print(f"{name:<14} Spearman {spearmanr(guess, seconds_a)[0]:.3f}; estimate / time "
              + ", ".join(f"q{int(q * 100)} {np.quantile(ratio, q):.2f}" for q in (0.1, 0.5, 0.9))
              + f"; limit {args.limit} s: {measured.sum()} measured over it, {over.sum()} estimated over, "
              f"{(measured & ~over).sum()} slow but passed, {(over & ~measured).sum()} fast but refused")
    print("slowest measured (seconds, package estimate):")
    for i in np.argsort(-seconds_a)[:8]:
        print(f"  {seconds_a[i]:7.3f} s  {estimate[i]:7.3f} s  {texts[i][:90]}")


if __name__ == "__main__":
    main()
