"""Does a search variant find better proxies than random search at the same number of evaluations?

One search seed decides a lot: one seed's evolution can beat random search and another's lose. This
script runs each variant of ``proxylang evolve``'s search (the default config with a few settings
changed) and random search for several search seeds, on the default data split and statistics (the
cache ``proxylang evolve`` fills), every run capped at the same number of fitness evaluations, and
prints each run's best train Kd (the fitness) at a few budgets, their mean over seeds, and the best
proxies' validation Kd. Runs go to ``--workers`` processes of one torch thread each; the fitness is
the one evolve uses (slow candidates rejected by their estimated time), so the results do not depend on
the machine's load.

    python benchmarks/search_strength.py --space micro [--seeds 0,1,2] [--evaluations 320]
        [--variants evolution,clones,random] [--workers 2] [--json out.json] [--plot curves.png]
    python benchmarks/search_strength.py --report out.json [--plot curves.png]   # again, from saved runs
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from proxylang.bench.transnas import TRANSNAS
from proxylang.lang.printer import to_text
from proxylang.scoring.baselines import library_expression
from proxylang.search.data import ProxyFitness, expression_operators, load_search_data
from proxylang.search.engine import Search
from proxylang.search.plots import best_so_far, plot_strategy_spread
from proxylang.search.run import DEFAULTS

# what each variant changes in the default search of the space
VARIANTS: dict[str, dict[str, Any]] = {
    "evolution": {},
    "clones": {"clone_rho": 0.98},
    "exact-clones": {"clone_rho": 1.0},
    "immigrants": {"fresh": 3, "offspring": 7},
    "random": {"strategy": "random"},
}

_FITNESS: ProxyFitness | None = None  # loaded once in the parent, shared by the forked workers


def one_run(job: tuple[str, str, int, int]) -> dict[str, Any]:
    """The best-so-far curve of one (variant, seed) search."""
    space, variant, seed, evaluations = job
    torch.set_num_threads(1)
    settings = DEFAULTS[space]
    config = replace(settings.search, **VARIANTS[variant], seed=seed, iterations=10**9,
                     max_evaluations=evaluations)
    seeds = [library_expression(name) for name in settings.start_with]
    result = Search(expression_operators(), _FITNESS, config, seeds=seeds).run()
    curve = [(h["evaluations"], h["best_train"]) for h in result.history]
    return {"variant": variant, "seed": seed, "curve": curve, "best": to_text(result.best.candidate),
            "train": result.best.fitness.train, "val": result.best.fitness.val}


def search_runs(space: str, variants: list[str], seeds: list[int], evaluations: int, data: Path,
                workers: int) -> list[dict[str, Any]]:
    """Every (variant, seed) run, on ``workers`` processes forked after the statistics are loaded."""
    global _FITNESS
    _FITNESS = load_search_data(TRANSNAS, space, data, DEFAULTS[space].data, None).fitness()
    jobs = [(space, v, s, evaluations) for s in seeds for v in variants]
    runs = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for run in pool.imap(one_run, jobs, chunksize=1):
            runs.append(run)
            print(f"done {len(runs)}/{len(jobs)}: {run['variant']} seed {run['seed']} "
                  f"train {run['train']:+.3f}", file=sys.stderr, flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", choices=("micro", "macro"), default="micro")
    parser.add_argument("--seeds", default="0,1,2", help="search seeds, comma-separated")
    parser.add_argument("--evaluations", type=int, default=320, help="fitness evaluations per run")
    parser.add_argument("--variants", default="evolution,clones,random",
                        help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path("../shared/benchmarks"))
    parser.add_argument("--json", type=Path, help="write every run's curve here")
    parser.add_argument("--plot", type=Path, help="draw each variant's mean and range over seeds here")
    parser.add_argument("--report", type=Path, help="report the runs a --json file saved, running nothing")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        args.space, args.evaluations, runs = saved["space"], saved["evaluations"], saved["runs"]
        variants = list(dict.fromkeys(r["variant"] for r in runs))
        seeds = sorted({r["seed"] for r in runs})
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
        variants = args.variants.split(",")
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            parser.error(f"unknown variants {', '.join(unknown)}")
        runs = search_runs(args.space, variants, seeds, args.evaluations, args.data, args.workers)

    curves = {v: [r["curve"] for r in runs if r["variant"] == v] for v in variants}
    budgets = sorted({args.evaluations // 4, args.evaluations // 2, args.evaluations})
    print(f"{args.space}: default search of proxylang evolve, {args.evaluations} evaluations per run, "
          f"search seeds {','.join(map(str, seeds))}; best train Kd within each budget of evaluations")
    print(f"{'variant':<13} {'seed':>4}  " + "  ".join(f"@{b:<5}" for b in budgets) + "   val   best proxy")
    for run in runs:
        cells = "  ".join(f"{x:+.3f}" for x in best_so_far(run["curve"], np.array(budgets)))
        print(f"{run['variant']:<13} {run['seed']:>4}  {cells}  {run['val']:+.3f}  {run['best']}")
    print("mean over seeds (sd)")
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        means = np.mean([best_so_far(curve, np.array(budgets)) for curve in curves[variant]], axis=0)
        cells = "  ".join(f"{x:+.3f}" for x in means)
        spread, val = np.std([r["train"] for r in mine]), np.mean([r["val"] for r in mine])
        print(f"{variant:<13} {'all':>4}  {cells}  (sd {spread:.3f})  val {val:+.3f}")
    if args.plot:
        plot_strategy_spread(curves, args.plot, f"TransNAS-Bench-101 {args.space}: {len(seeds)} search seeds")
    if args.json:
        args.json.write_text(json.dumps({"space": args.space, "evaluations": args.evaluations, "runs": runs},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
