"""``proxylang evolve``: options in, :func:`proxylang.search.run.run_evolve`, the summary table out."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from proxylang.bench import BENCHMARKS
from proxylang.cli.common import engine_options, open_executor, user_errors
from proxylang.schema import MAX_SEED
from proxylang.search.run import DEFAULTS, STRATEGY_CHOICES, read_toml, resolve_settings, run_evolve, show_kd
from proxylang.stats.profiles import PROFILES


def best_vs_table(summary: dict) -> str:
    """The holdout report: each rival's Kd (whole holdout; SasWOT's draws of 50 archs) and best.px's paired
    bootstrap against it, then whether best.px beats every rival (95 % interval above 0)."""
    holdout, n = summary["holdout"], summary["archs"]["holdout"]
    best = holdout[summary["chosen"]]
    draws = "{sample}-arch draws".format(**summary["protocol"])
    rows = [f"{f'holdout, {n} archs':<36}{'Kd':>8}{draws:>16}   best.px minus rival (95 % paired bootstrap)",
            f"{'best.px':<36}{show_kd(best['full']):>8}{_draws(best):>16}"]
    behind, unscored = [], []
    for rival, found in summary["best_vs"].items():
        rows.append(f"{rival:<36}{show_kd(holdout[rival]['full']):>8}{_draws(holdout[rival]):>16}   "
                    f"{show_kd(found['difference'])} [{show_kd(found['low'])}, {show_kd(found['high'])}]")
        if holdout[rival]["full"] is None:
            unscored.append(rival)
        elif found["low"] is None or found["low"] <= 0:
            behind.append(rival)
    verdict = ("best.px beats every rival: each interval lies above 0" if not behind else
               f"best.px does not beat {', '.join(behind)} (interval reaches 0 or below)")
    if unscored:
        verdict += f"; no usable score on the holdout: {', '.join(unscored)}"
    return "\n".join([*rows, verdict])


def _draws(entry: dict) -> str:
    mean, std = entry["sample_mean"], entry["sample_std"]
    return "n/a" if mean is None else f"{mean:+.3f}±{std or 0:.3f}"


@click.command("evolve")
@click.option("--bench", type=click.Choice(list(BENCHMARKS)), default="transnas", show_default=True)
@click.option("--space", type=click.Choice(sorted(DEFAULTS)), default="micro", show_default=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file with [data] and [search] tables (see examples/evolve_*.toml).")
@click.option("--strategy", type=click.Choice(STRATEGY_CHOICES),
              help="evolution (Algorithm 1), random (the ablation) or both at equal evaluations.")
@click.option("--population", type=click.IntRange(1, 100_000), help="Population size P.")
@click.option("--iterations", type=click.IntRange(0, 10**6),
              help="Generations T after the initial population.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED),
              help="Seed of the search (the data split has its own, in [data]).")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes evaluating candidates in parallel; the result does not depend on it.")
@engine_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory [default: runs/evolve-SPACE].")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding transnas/ [default: $PROXYLANG_DATA, else ../shared/benchmarks].")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Statistics cache, shared with proxylang eval [default: $PROXYLANG_CACHE, else "
                   "~/.cache/proxylang].")
@click.option("--profile", type=click.Choice(list(PROFILES)),
              help="Measurement profile of the statistics [default: the config's, else lite].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
def evolve(bench: str, space: str, config_path: Path | None, strategy: str | None, population: int | None,
           iterations: int | None, seed: int | None, workers: int, engine: str, address: str | None,
           out: Path | None, data_dir: Path | None, cache: Path | None, profile: str | None,
           resume: bool) -> None:
    """Search a zero-cost proxy with SasWOT's Algorithm 1 and report its Kd on held-out architectures."""
    out = out or Path("runs") / f"evolve-{space}"
    overrides = {k: v for k, v in {"strategy": strategy, "population": population, "iterations": iterations,
                                   "seed": seed}.items() if v is not None}
    with user_errors():
        file_values = read_toml(config_path) if config_path else {}
        settings = resolve_settings(space, file_values, overrides, str(config_path or "config"))
        if profile is not None:
            settings = replace(settings, data=replace(settings.data, profile=profile))
        click.echo(settings.data.measurement().describe())
        try:
            with open_executor(engine, address, workers=workers) as executor:
                summary = run_evolve(BENCHMARKS[bench], settings, out, data_dir, cache, executor, resume)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: finished generations are saved in {out}. Resume with the same "
                       f"command plus --resume.", err=True)
            sys.exit(130)
    kds = summary["kendall"]
    click.echo(f"best.px = {summary['chosen']}: {summary['best_px']}")
    columns = (("train", 8), ("val", 8), ("val_full", 9), ("holdout", 9))
    click.echo(f"{'Kd':<52}" + "".join(f"{k:>{w}}" for k, w in columns))
    for name, kd in kds.items():
        click.echo(f"{name[:52]:<52}" + "".join(f"{show_kd(kd.get(k)):>{w}}" for k, w in columns))
    click.echo(best_vs_table(summary))
    click.echo(f"wrote {out}/best.px, summary.json, search-curve.png, proxy-vs-accuracy.png, "
               "holdout-archs.txt and unseen-archs.txt")

