"""Candidate evaluations per second of the proxy search, on cached TransNAS-Bench-101 statistics.

Every variant scores the same random candidates (those the search would accept) on the same networks,
in one process, and prints its rate and its ratio to the baseline: compiling each candidate and
handing it the full statistics as a list, repacked for every candidate (what a search without a
pack-once step does). Statistics come from the cache that ``proxylang evolve``/``eval`` fill, so run
one of them first or expect an extraction pass.

    python benchmarks/evolve_speed.py --space micro --archs 8 --candidates 10
"""

from __future__ import annotations

import time

import click
import numpy as np
import torch

from proxylang import compile_proxy, pack, random_expr, to_text
from proxylang.bench.transnas import TRANSNAS
from proxylang.scoring.evaluate import kendall
from proxylang.search.data import DataConfig, ProxyFitness, Split, split_archs, thinned_stats
from proxylang.search.engine import Evaluator
from proxylang.stats.extract import StatsCache


def _rate(label: str, count: int, seconds: float, baseline: float | None) -> float:
    rate = count / seconds
    ratio = "" if baseline is None else f"   x{rate / baseline:.2f} vs baseline"
    click.echo(f"{label:<44}{rate:8.2f} candidates/s{ratio}")
    return rate


@click.command()
@click.option("--space", type=click.Choice(["micro", "macro"]), default="micro", show_default=True)
@click.option("--archs", type=int, default=8, show_default=True, help="Networks each candidate is scored on.")
@click.option("--candidates", type=int, default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def main(space: str, archs: int, candidates: int, seed: int) -> None:
    cfg = DataConfig()
    truth = TRANSNAS.load_truth(space)
    chosen = split_archs(truth.archs, cfg)["train"][:archs]  # the search's own (cached) networks
    accuracy = truth.only(chosen).accuracy
    cache = StatsCache(benchmark=TRANSNAS, space=space, profile=cfg.measurement(), seed=cfg.stats_seed,
                       device="cpu")
    full = [cache.compute(a) for a in chosen]
    thinned = pack([thinned_stats(cache, a, cfg.thin) for a in chosen])
    fitness = ProxyFitness(Split(chosen, accuracy, thinned), Split(chosen, accuracy, thinned), thinned,
                           pack([thinned_stats(cache, chosen[0], cfg.thin)]), cfg.max_seconds)
    rng = np.random.default_rng(seed)
    nodes = []
    while len(nodes) < candidates:  # candidates the search would keep (not rejected as slow or collapsed)
        node = random_expr(rng)
        if node is not None and fitness(node).ok:
            nodes.append(node)
    click.echo(f"{space}: {archs} networks, {candidates} candidates, {torch.get_num_threads()} threads; "
               f"e.g. {to_text(nodes[0])}")

    start = time.perf_counter()
    for node in nodes:
        scores, _ = compile_proxy(node)(full)
        kendall(scores.numpy(), accuracy)
    elapsed = time.perf_counter() - start
    base = _rate("baseline: full stats, repacked per candidate", candidates, elapsed, None)

    packed = pack(full)
    start = time.perf_counter()
    for node in nodes:
        scores, _ = compile_proxy(node)(packed)
        kendall(scores.numpy(), accuracy)
    _rate("full stats packed once", candidates, time.perf_counter() - start, base)

    for workers in (1, 2):
        evaluator = Evaluator(fitness, workers)
        start = time.perf_counter()
        evaluator(nodes)
        elapsed = time.perf_counter() - start
        evaluator.close()
        _rate(f"search fitness (thinned x{cfg.thin}), {workers} worker(s)", candidates, elapsed, base)


if __name__ == "__main__":
    main()
