"""A whole proxy search run (what ``proxylang evolve`` does): search a proxy for a TransNAS-Bench-101
space and report it honestly.

A run directory (``--out``) holds ``run.json`` (the resolved settings), one sub-directory per strategy
with its checkpoint and JSONL log, and the results: ``best.px``, ``summary.json``, ``search-curve.png``,
``proxy-vs-accuracy.png``, ``holdout-archs.txt`` and ``unseen-archs.txt`` (the holdout, and every
architecture outside train and validation, for ``proxylang eval/baselines --archs``). Fitness
uses the train split only; the validation split picks between the searched proxy and its ensembles; the
holdout split is touched once, for the final figures.
"""

from __future__ import annotations

import json
import math
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from proxylang.bench.benchmark import Benchmark
from proxylang.errors import ProxylangError
from proxylang.executors import Executor
from proxylang.files import atomic_write, read_json, read_text, writable_folder
from proxylang.lang.ast import Call, Node
from proxylang.lang.printer import to_text
from proxylang.schema import from_mapping
from proxylang.scoring.baselines import BASELINES, EXPRESSION_BASELINES, library_expression
from proxylang.scoring.evaluate import paired_bootstrap, sampled_protocol
from proxylang.scoring.sweep import REFERENCE, BaselinePlan, rival_scores, score_space
from proxylang.search.data import (
    DataConfig,
    ProxyFitness,
    SearchData,
    expression_operators,
    load_search_data,
    split_kendall,
)
from proxylang.search.engine import STRATEGIES, Search, SearchConfig, SearchResult, load_checkpoint
from proxylang.search.plots import plot_proxy_vs_accuracy, plot_search_curves

STRATEGY_CHOICES = (*STRATEGIES, "both")
# The holdout report's rivals by default: the baselines a CPU scores in about a second per network. The
# other network baselines (jacov, synflow, ...) take 10-20 s each there; their stored reference scores
# are always compared, and compare_with = [...] or `proxylang eval best.px --against all` adds our own.
COMPARED = (*EXPRESSION_BASELINES, "flops")
REPORT_SAMPLE, REPORT_REPEATS = 50, 10  # SasWOT's protocol: Kd on 10 draws of 50 archs


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a run's result; saved as ``run.json`` and checked again on ``--resume``."""

    space: str
    strategy: str = "evolution"
    start_with: tuple[str, ...] = EXPRESSION_BASELINES
    ensemble_with: tuple[str, ...] = ("nwot",)
    compare_with: tuple[str, ...] = COMPARED  # baselines the holdout report compares best.px with
    data: DataConfig = field(default_factory=DataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_CHOICES:
            raise ProxylangError(f"unknown strategy {self.strategy!r}; expected one of "
                                 f"{', '.join(STRATEGY_CHOICES)}")
        for name in (*self.start_with, *self.ensemble_with):
            library_expression(name)  # an unknown name fails here, before any statistic is extracted
        for name in self.compare_with:
            if name not in BASELINES:
                raise ProxylangError(f"unknown baseline {name!r} in compare_with; expected some of "
                                     f"{', '.join(BASELINES)}")

    def strategies(self) -> tuple[str, ...]:
        return STRATEGIES if self.strategy == "both" else (self.strategy,)


# Sized to finish on 2 CPU cores within 30 minutes, statistics extraction included. The train split is
# 300 archs because Kd on n archs has a standard deviation of about 0.59/sqrt(n) (0.094 at 40, 0.033 at
# 300; benchmarks/fitness_noise.py), which at 40 archs orders candidates 0.02-0.04 Kd apart the wrong way
# a third of the time. Thinning by 16 instead of 8 pays for it: candidates run 3.2x faster and their Kd
# agrees with thin-8 Kd at Pearson 0.996 (mean |difference| 0.013; benchmarks/thin_agreement.py).
DEFAULT_SEARCH = SearchConfig(population=20, iterations=30, offspring=10, pool=10, top_k=5)
DEFAULTS = {space: RunSettings(space=space, strategy="both", search=DEFAULT_SEARCH)
            for space in ("micro", "macro")}


def read_toml(path: Path) -> dict[str, Any]:
    """The tables of a TOML config file."""
    try:
        return tomllib.loads(read_text(path, "config"))
    except tomllib.TOMLDecodeError as exc:
        raise ProxylangError(f"{path}: invalid TOML ({exc})") from None
    except RecursionError:
        raise ProxylangError(f"{path}: invalid TOML (nested too deeply)") from None


def resolve_settings(space: str, file_values: dict[str, Any], overrides: dict[str, Any],
                     source: str = "config") -> RunSettings:
    """Built-in defaults for the space, then the TOML file (``source`` names it in errors), then
    command-line options; every value is checked (type, range, known name) before any work."""
    values = dict(file_values)
    data_values, search_values = values.pop("data", {}), values.pop("search", {})
    overrides = dict(overrides)
    strategy = overrides.pop("strategy", None)
    base = DEFAULTS[space]
    top = from_mapping(RunSettings, values, source, base)
    if top.space != space:
        raise ProxylangError(f"{source} is for space {top.space!r}, not --space {space}")
    top = replace(top, strategy=strategy or top.strategy,
                  data=from_mapping(DataConfig, data_values, f"{source} [data]", base.data))
    search = from_mapping(SearchConfig, search_values, f"{source} [search]", base.search)
    return replace(top, search=from_mapping(SearchConfig, overrides, "options", search))


def settings_json(settings: RunSettings) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(settings)))


def claim_run_dir(out: Path, settings: RunSettings, resume: bool) -> None:
    """A fresh run refuses to overwrite one; a resumed run must have the same settings."""
    saved = out / "run.json"
    if resume:
        if not saved.exists():
            raise ProxylangError(f"{out}: nothing to resume (no run.json)")
        previous = read_json(saved, "run settings")
        if previous != settings_json(settings):
            raise ProxylangError(f"{out}: --resume needs the same settings as the interrupted run")
        return
    if saved.exists():
        raise ProxylangError(f"{out} already holds a run; pass --resume to continue it, or another --out")
    writable_folder(out, "run")
    atomic_write(saved, json.dumps(settings_json(settings), indent=2) + "\n")


def _progress_line(bar: tqdm) -> Callable[[dict[str, Any]], None]:
    def show(record: dict[str, Any]) -> None:
        bar.update(1)
        bar.set_postfix_str(
            f"best {show_kd(record['best_train'])} mean {show_kd(record['mean_train'])} "
            f"val {show_kd(record['best_val'])} {record['evals_per_s']} ev/s "
            f"rej {sum(record['rejections'].values())}", refresh=True)

    return show


def show_kd(x: float | None) -> str:
    """A Kendall tau for a table: signed, three decimals, n/a when undefined."""
    return "n/a" if x is None or math.isnan(x) else f"{x:+.3f}"


def _strategy_config(settings: RunSettings, strategy: str, budget: int | None) -> SearchConfig:
    config = replace(settings.search, strategy=strategy)
    if budget is not None:  # the random ablation gets exactly the evaluations evolution used
        config = replace(config, iterations=10**9, max_evaluations=budget)
    return config


def _check_checkpoints(settings: RunSettings, out: Path) -> None:
    """On ``--resume``, read every saved checkpoint before the statistics are taken, so a damaged one
    is an error at once, not after minutes of work (the random ablation's budget is only known once
    evolution ends, so its checkpoint is read without it)."""
    for strategy in settings.strategies():
        checkpoint = out / strategy / "checkpoint.json"
        if checkpoint.exists():
            load_checkpoint(checkpoint, expression_operators(), _strategy_config(settings, strategy, None),
                            may_change=("iterations", "max_evaluations"))


def _run_strategy(strategy: str, settings: RunSettings, fitness: ProxyFitness, out: Path, resume: bool,
                  executor: Executor | None, budget: int | None) -> SearchResult[Node]:
    config = _strategy_config(settings, strategy, budget)
    run_dir = out / strategy
    checkpoint = run_dir / "checkpoint.json"
    resume = resume and checkpoint.exists()
    seeds = [library_expression(name) for name in settings.start_with]
    search = Search(expression_operators(), fitness, config, checkpoint=checkpoint,
                    log_file=run_dir / "log.jsonl", resume=resume, seeds=seeds, executor=executor)
    total = None if budget is not None else config.iterations + 1
    with tqdm(total=total, initial=search.state.generation, desc=strategy, unit="gen",
              file=sys.stderr) as bar:
        return search.run(on_generation=_progress_line(bar))


def _round(figures: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) else round(v, 4)) for k, v in figures.items()}


def _final_candidates(results: dict[str, SearchResult[Node]], partners: tuple[str, ...]) -> dict[str, Node]:
    """Each strategy's best, and the evolved best combined with each library partner through AVT."""
    candidates = {f"{s} best": r.best.candidate for s, r in results.items()}
    searched = results.get("evolution", next(iter(results.values()))).best.candidate
    for partner in partners:
        candidates[f"norm_avt(evolved) + norm_avt({partner})"] = Call(
            "add", (Call("norm_avt", (searched,)), Call("norm_avt", (library_expression(partner),))))
    return candidates


def _write_archs(path: Path, archs: list[str], what: str) -> None:
    """An architecture list for ``proxylang eval/baselines --archs``, so they report on the same archs."""
    header = f"# {what}; the search never read them (proxylang eval/baselines --archs this file)\n"
    atomic_write(path, header + "".join(f"{a}\n" for a in archs))


def holdout_report(data: SearchData, candidates: dict[str, Node], chosen: str, settings: RunSettings,
                   executor: Executor | None) -> dict[str, Any]:
    """The final figures, on the holdout's full statistics: each candidate's and each rival's Kd on the
    whole holdout (invalid scores ranked last, as ``proxylang eval`` does) and on SasWOT's sampled
    protocol, and best.px against every rival in a paired bootstrap. Rivals are the ``compare_with``
    baselines, scored as ``proxylang baselines`` scores them (sharing its score store), and every score
    the data file stores (``ref:NAME``)."""
    holdout, sweep = data.holdout, data.sweep(executor)
    rivals = [*settings.compare_with, *(REFERENCE + name for name in holdout.reference_names())]
    plan = BaselinePlan.of([r for r in rivals if not r.startswith(REFERENCE)], sweep.profile)
    scored = score_space(sweep, data.space, holdout.archs, {**candidates, **plan.expressions}, plan.networks,
                         plan.sites, calibration=data.presample_archs, desc="holdout")
    every = {**{n: scored[n] for n in candidates}, **{r: rival_scores(r, holdout, scored, holdout.archs)
                                                     for r in rivals}}
    proxies, seed = {}, settings.data.seed
    for name, found in every.items():
        protocol = sampled_protocol(found.values, holdout.accuracy, found.valid, REPORT_SAMPLE,
                                    REPORT_REPEATS, seed)
        proxies[name] = {"full": protocol.full.kendall, "invalid": protocol.full.invalid,
                         "sample_mean": protocol.mean["kendall"], "sample_std": protocol.std["kendall"]}
    best = every[chosen]
    best_vs = {}
    for rival in rivals:
        theirs = every[rival]
        found = paired_bootstrap(best.values, theirs.values, holdout.accuracy, best.valid, theirs.valid,
                                 seed=seed)
        best_vs[rival] = {"difference": found.difference, "low": found.low, "high": found.high,
                          "ahead": found.ahead}
    return {"proxies": proxies, "best_vs": best_vs, "scores": {n: found.values for n, found in every.items()},
            "protocol": {"sample": protocol.sample, "repeats": protocol.repeats}}


def run_evolve(benchmark: Benchmark, settings: RunSettings, out: Path, data_dir: Path | None,
               cache: Path | None, executor: Executor | None = None, resume: bool = False) -> dict[str, Any]:
    """The whole command: statistics, searches, ensembles, holdout report and figures; returns the summary.
    Candidates are evaluated by ``executor`` (default: in this process)."""
    claim_run_dir(out, settings, resume)
    if resume:
        _check_checkpoints(settings, out)
    start = time.perf_counter()
    data = load_search_data(benchmark, settings.space, data_dir, settings.data, cache)
    fitness = data.fitness()
    stats_seconds = time.perf_counter() - start

    results: dict[str, SearchResult[Node]] = {}
    for strategy in settings.strategies():
        budget = results["evolution"].evaluations if strategy == "random" and results else None
        results[strategy] = _run_strategy(strategy, settings, fitness, out, resume, executor, budget)
    search_seconds = time.perf_counter() - start - stats_seconds

    candidates = _final_candidates(results, settings.ensemble_with)
    kendalls = {name: fitness.kendalls(node) for name, node in candidates.items()}
    # best.px: the evolved proxy or one of its ensembles, whichever ranks the validation archs best on
    # their *full* statistics (thinning can hide a collapse, e.g. log of an exact zero); the random-search
    # ablation is reported, never chosen
    finalists = {n: node for n, node in candidates.items() if n != "random best"}
    for name, scored in data.full_scores(finalists, data.val.archs, executor).items():
        kendalls[name]["val_full"] = split_kendall(scored.values, scored.valid, data.val.accuracy)[0]
    usable = [n for n in finalists if not math.isnan(kendalls[n]["val_full"])] or list(finalists)
    chosen = max(usable, key=lambda n: kendalls[n]["val_full"])
    text = to_text(candidates[chosen])
    atomic_write(out / "best.px", text + "\n")
    _write_archs(out / "holdout-archs.txt", data.holdout.archs,
                 f"the {settings.space} holdout in summary.json")
    _write_archs(out / "unseen-archs.txt", data.unseen_archs,
                 f"every {settings.space} architecture outside the train and validation splits")

    report = holdout_report(data, candidates, chosen, settings, executor)
    for name, entry in report["proxies"].items():
        if name in kendalls:
            kendalls[name]["holdout"] = entry["full"]
    plot_proxy_vs_accuracy(report["scores"][chosen], data.holdout.accuracy, out / "proxy-vs-accuracy.png",
                           f"{settings.space} holdout ({len(data.holdout.archs)} archs), "
                           f"Kd {show_kd(kendalls[chosen]['holdout'])}", proxy=text)
    plot_search_curves({s: r.history for s, r in results.items()}, out / "search-curve.png",
                       f"{benchmark.title} {settings.space} / {benchmark.task}")

    summary = {
        "space": settings.space,
        "settings": settings_json(settings),
        "archs": {"train": len(data.train.archs), "val": len(data.val.archs),
                  "holdout": len(data.holdout.archs)},
        "seconds": {"statistics": round(stats_seconds, 1), "search": round(search_seconds, 1),
                    "total": round(time.perf_counter() - start, 1)},
        "strategies": {s: {"best": to_text(r.best.candidate), "evaluations": r.evaluations,
                           "generations": len(r.history),
                           "curve": [[h["evaluations"], h["best_train"]] for h in r.history]}
                       for s, r in results.items()},
        "kendall": {name: _round(kds) for name, kds in kendalls.items()},
        "texts": {name: to_text(node) for name, node in candidates.items()},
        "chosen": chosen,
        "best_px": text,
        "holdout": {name: _round(entry) for name, entry in report["proxies"].items()},
        "best_vs": {name: _round(found) for name, found in report["best_vs"].items()},
        "protocol": report["protocol"],
        "profile": {"key": data.cache.profile.key(), "settings": data.cache.profile.describe()},
    }
    atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
