"""``proxylang eval`` and ``proxylang baselines``: score proxies over a benchmark's spaces.

The commands parse options into a :class:`proxylang.scoring.sweep.Sweep`, let the library score every
architecture, and print the SasWOT protocol (Kd/Sp/Ps, mean ± std over seeded 50-architecture samples)
next to the full-set figures.
"""

from __future__ import annotations

import csv
import io
import json
import math
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import click
import numpy as np

from proxylang.bench import BENCHMARKS
from proxylang.cli.common import engine_options, open_executor, read_proxy_text, user_errors
from proxylang.errors import ProxylangError
from proxylang.files import writable_folder
from proxylang.lang.check import check
from proxylang.lang.parse import parse
from proxylang.runtime import resolve_device
from proxylang.schema import MAX_SEED
from proxylang.scoring.baselines import BASELINES
from proxylang.scoring.evaluate import PairedComparison, ProtocolResult, paired_bootstrap, sampled_protocol
from proxylang.scoring.proxies import AVT_PRESAMPLE, presample
from proxylang.scoring.sweep import (
    REFERENCE,
    BaselinePlan,
    Sweep,
    baseline_results,
    rival_names,
    rival_scores,
    score_space,
)
from proxylang.stats.extract import default_cache_budget, default_cache_root
from proxylang.stats.profiles import DEFAULT_PROFILE, MAX_BATCH, MAX_RESOLUTION, PROFILES, get_profile

DEFAULT_REPEATS = 10
SPACE_NAMES = sorted({s for b in BENCHMARKS.values() for s in b.spaces})


def _fmt(x: float, std: float | None = None) -> str:
    if not math.isfinite(x):
        return "   n/a"
    return f"{x:+.3f}" if std is None else f"{x:+.3f}±{std:.3f}"


def protocol_table(space: str, result: ProtocolResult, n: int, sweep: Sweep) -> str:
    """The ``eval`` table of one space."""
    head = f"{sweep.benchmark.title} {space} / {sweep.benchmark.task}: {n} archs, seed {sweep.seed}"
    rows = [head, sweep.profile.describe(), f"{'':<18}{'Kd':>14}{'Sp':>14}{'Ps':>14}{'invalid':>9}"]
    label = f"sample {result.sample}x{result.repeats}"
    rows.append(f"{label:<18}" + "".join(f"{_fmt(result.mean[m], result.std[m]):>14}"
                                         for m in ("kendall", "spearman", "pearson")))
    full = result.full
    rows.append(f"{'full ' + str(n):<18}" + "".join(f"{_fmt(v):>14}" for v in
                                                   (full.kendall, full.spearman, full.pearson))
                + f"{full.invalid:>9}")
    return "\n".join(rows)


def comparison_line(rival: str, found: PairedComparison) -> str:
    """One ``eval --against`` line."""
    return (f"vs {rival}: Kd {found.difference:+.3f} (95 % bootstrap interval {found.low:+.3f} to "
            f"{found.high:+.3f}; ranks better in {100 * found.ahead:.0f} % of {found.resamples} paired "
            f"resamples)")


def _sweep(bench: str, data_dir: Path, bench_file: Path | None, profile: str, resolution: int | None,
           batch_size: int | None, seed: int, device: str | None, cache: Path | None, images: Path | None,
           labels: Path | None, arch_file: Path | None) -> Sweep:
    chosen = get_profile(profile).with_overrides(resolution, batch_size, images, labels)
    default_cache_budget()  # a bad $PROXYLANG_CACHE_GB fails here, before any work
    cache = writable_folder(cache or default_cache_root(), "statistics cache")
    return Sweep(BENCHMARKS[bench], chosen, seed, str(resolve_device(device)), cache, data_dir, bench_file,
                 arch_file)


def common_options(f: Any) -> Any:
    """Options shared by ``eval`` and ``baselines``."""
    options = [
        click.option("--bench", type=click.Choice(list(BENCHMARKS)), default="transnas", show_default=True),
        click.option("--space", type=click.Choice([*SPACE_NAMES, "both"]), default="both", show_default=True,
                     help="One space of the benchmark, or all of them."),
        click.option("--sample", type=click.IntRange(2, 100_000), default=50, show_default=True,
                     help="Architectures per sampled correlation."),
        click.option("--repeats", type=click.IntRange(1, 10_000), default=DEFAULT_REPEATS, show_default=True,
                     help="Seeded samples averaged (mean ± std)."),
        click.option("--bench-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="A NASLib zc_transbench101 JSON file instead of the one under --data."),
        click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
                     envvar="PROXYLANG_DATA",
                     help="Folder holding transnas/ [default: $PROXYLANG_DATA, else ../shared/benchmarks]."),
        click.option("--archs", "arch_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Only the architectures listed in this file, one key per line (e.g. the "
                          "unseen-archs.txt of proxylang evolve); needs --space micro or macro."),
        click.option("--profile", type=click.Choice(list(PROFILES)), default=DEFAULT_PROFILE,
                     show_default=True,
                     help="Measurement profile: resolution, batch, inputs, labels, normalisation, classic "
                          "proxies' sites, dtype (docs/benchmark.md)."),
        click.option("--images", type=click.Path(file_okay=False, path_type=Path),
                     help="Folder of real images for the input batch instead of the profile's inputs."),
        click.option("--labels", type=click.Path(file_okay=False, path_type=Path),
                     help="Folder of Taskonomy segmentsemantic label maps, one per --images file "
                          "(same stem)."),
        click.option("--resolution", type=click.IntRange(4, MAX_RESOLUTION),
                     help="Override the profile's input side."),
        click.option("--batch-size", type=click.IntRange(2, MAX_BATCH),
                     help="Override the profile's batch size."),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                     help="Seeds weights, input batch and samples."),
        click.option("--device", help="cpu or cuda [default: cuda when available]."),
        click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
                     help="Networks measured at once by the local engine, each in a process of its own on "
                          "one torch thread (2 on a 2-core CPU, where building a network is single-threaded; "
                          "on a GPU, enough to keep it busy while the others build theirs)."),
        click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
                     help="Statistics cache [default: $PROXYLANG_CACHE or ~/.cache/proxylang]; "
                          "it stops growing at $PROXYLANG_CACHE_GB gigabytes (default 20)."),
    ]
    for option in reversed(options):
        f = option(f)
    return engine_options(f)


SCORES_HEADER = ["arch", "score", "space", "valid", "proxy", "profile"]


@click.command("eval")
@click.argument("expr_files", nargs=-1, required=True, type=str)
@common_options
@click.option("--all-archs", is_flag=True,
              help="Score every architecture of the space, enumerated from its rules (micro 4096, macro "
                   "3256), not only those with ground truth; the protocol uses those with ground truth.")
@click.option("--scores-out", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with one arch,score,space,valid,proxy,profile row per scored architecture and "
                   "proxy, written as each network is scored.")
@click.option("--against", multiple=True, metavar="NAME",
              help="A proxy to compare with on the same archs: any baseline of proxylang baselines (e.g. "
                   "nwot, jacov; scored as it scores them), any library proxy, ref:NAME for the data "
                   "file's stored score (e.g. ref:jacov), or all (every baseline and stored score). Kd "
                   "difference, 95 %% paired bootstrap interval, share of resamples where the proxy ranks "
                   "better. Repeatable.")
def eval_command(expr_files: tuple[str, ...], bench: str, space: str, sample: int, repeats: int,
                 bench_file: Path | None, data_dir: Path, arch_file: Path | None, profile: str,
                 images: Path | None, labels: Path | None, resolution: int | None, batch_size: int | None,
                 seed: int, device: str | None, workers: int, cache: Path | None, engine: str,
                 address: str | None, all_archs: bool, scores_out: Path | None,
                 against: tuple[str, ...]) -> None:
    """Rank correlation of the proxy in each EXPR_FILE (.px, or - for stdin) with trained accuracy; several
    files are scored in one pass over the networks. Scores are stored as they come: an interrupted or
    repeated run scores only what is missing."""
    with user_errors(), ExitStack() as stack:
        if all_archs and arch_file is not None:
            raise ProxylangError("--all-archs and --archs choose the architectures in two ways: give one")
        sweep = _sweep(bench, data_dir, bench_file, profile, resolution, batch_size, seed, device, cache,
                       images, labels, arch_file)
        spaces = sweep.spaces(None if space == "both" else space)
        sources = [read_proxy_text(path) for path in expr_files]
        nodes = {f"{i}:{source}": parse(text, source) for i, (text, source) in enumerate(sources)}
        for key, (_, source) in zip(nodes, sources, strict=True):
            check(nodes[key], source)  # before any network is built, located in its own file
        rivals = {name: rival_names(against, sweep.truth(name)) for name in spaces}  # checked before work
        executor = open_executor(engine, address, sweep.device, workers)
        sweep = replace(sweep, executor=stack.enter_context(executor))
        labels_of = {key: source for key, (_, source) in zip(nodes, sources, strict=True)}
        write_row = _scores_writer(stack, scores_out, labels_of, sweep.profile.key())
        for name in spaces:
            truth = sweep.truth(name)
            archs = sweep.benchmark.all_archs(name) if all_archs else truth.archs
            plan = BaselinePlan.of([r for r in rivals[name] if not r.startswith(REFERENCE)], sweep.profile)
            scored = score_space(sweep, name, archs, {**nodes, **plan.expressions}, plan.networks, plan.sites,
                                 calibration=presample(truth.archs, AVT_PRESAMPLE, seed),
                                 desc=f"{name} networks", on_scores=lambda a, s, sp=name: write_row(sp, a, s))
            known = _positions(archs, truth.archs)
            if all_archs:
                click.echo(f"{name}: scored {len(archs)} archs, {len(truth.archs)} of them with ground truth")
            for key, (_, source) in zip(nodes, sources, strict=True):
                scores, valid = scored[key].values[known], scored[key].valid[known]
                result = sampled_protocol(scores, truth.accuracy, valid, sample, repeats, seed)
                if len(nodes) > 1:
                    click.echo(f"== {source}")
                click.echo(protocol_table(name, result, len(truth.archs), sweep))
                for rival in rivals[name]:
                    theirs = rival_scores(rival, truth, scored, archs)
                    click.echo(comparison_line(rival, paired_bootstrap(
                        scores, theirs.values[known], truth.accuracy, valid, theirs.valid[known], seed=seed)))
        if scores_out is not None:
            click.echo(f"wrote {write_row.count} scores to {scores_out}")


def _positions(archs: list[str], wanted: list[str]) -> np.ndarray:
    index = {a: i for i, a in enumerate(archs)}
    return np.array([index[a] for a in wanted], dtype=np.int64)


class _RowWriter:
    """Appends the ``--scores-out`` rows of each network as it is scored (the file is written as the
    run goes, so an interrupted run leaves every finished network's rows)."""

    def __init__(self, stream: TextIO | None, sources: dict[str, str], profile_key: str) -> None:
        self.stream, self.sources, self.profile_key = stream, sources, profile_key
        self.writer = csv.writer(stream, lineterminator="\n") if stream is not None else None
        self.count = 0
        if self.writer is not None:
            self.writer.writerow(SCORES_HEADER)

    def __call__(self, space: str, arch: str, scores: dict[str, tuple[float, bool]]) -> None:
        if self.writer is None:
            return
        for key, source in self.sources.items():
            value, valid = scores[key]
            self.writer.writerow([arch, repr(float(value)), space, int(valid), source, self.profile_key])
            self.count += 1
        self.stream.flush()


def _scores_writer(stack: ExitStack, path: Path | None, sources: dict[str, str],
                   profile_key: str) -> _RowWriter:
    stream = None
    if path is not None:
        try:
            stream = stack.enter_context(open(path, "w", encoding="utf-8", newline=""))
        except OSError as exc:
            raise ProxylangError(f"{path}: cannot write the scores ({exc.strerror})") from None
    return _RowWriter(stream, sources, profile_key)


def baselines_text(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Table 3: per space sampled Kd/Sp/Ps means, full-set Kd, and the agreement with the reference."""
    spaces = list(results)
    columns = f"{'Kd':>7}{'Sp':>7}{'Ps':>7}{'Kd full':>8}{'vs ref':>8}{'ref Kd':>8} "
    head = f"{'proxy':<10}" + "".join(f"| {s:<6}{columns}" for s in spaces)
    lines = [head, "-" * len(head)]
    for name in next(iter(results.values())):
        cells = []
        for s in spaces:
            e = results[s][name]
            vals = [e["mean"]["kendall"], e["mean"]["spearman"], e["mean"]["pearson"], e["full"]["kendall"],
                    e.get("kendall_vs_reference", math.nan), e.get("reference_full_kendall", math.nan)]
            cells.append(f"| {'':<6}" + "".join(f"{_fmt(v):>7}" for v in vals[:3])
                         + "".join(f"{_fmt(v):>8}" for v in vals[3:]) + " ")
        lines.append(f"{name:<10}" + "".join(cells))
    return "\n".join(lines)


def baselines_csv(results: dict[str, dict[str, dict[str, Any]]], profile_key: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["proxy", "space", "kendall_mean", "kendall_std", "spearman_mean", "spearman_std",
                     "pearson_mean", "pearson_std", "kendall_full", "invalid", "kendall_vs_reference",
                     "reference_full_kendall", "profile"])
    for space, per in results.items():
        for name, e in per.items():
            writer.writerow([name, space, e["mean"]["kendall"], e["std"]["kendall"], e["mean"]["spearman"],
                             e["std"]["spearman"], e["mean"]["pearson"], e["std"]["pearson"],
                             e["full"]["kendall"], e["full"]["invalid"], e.get("kendall_vs_reference", ""),
                             e.get("reference_full_kendall", ""), profile_key])
    return buffer.getvalue()


@click.command("baselines")
@common_options
@click.option("--only", help="Comma-separated subset of the baselines [default: all of Table 3].")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True)
def baselines_command(bench: str, space: str, sample: int, repeats: int, bench_file: Path | None,
                      data_dir: Path, arch_file: Path | None, profile: str, images: Path | None,
                      labels: Path | None, resolution: int | None, batch_size: int | None, seed: int,
                      device: str | None, workers: int, cache: Path | None, engine: str,
                      address: str | None, only: str | None, fmt: str) -> None:
    """Table 3: the classic zero-cost proxies on TransNAS-Bench-101 segmentation."""
    with user_errors(), ExitStack() as stack:
        sweep = _sweep(bench, data_dir, bench_file, profile, resolution, batch_size, seed, device, cache,
                       images, labels, arch_file)
        names = list(BASELINES) if only is None else [n.strip() for n in only.split(",")]
        unknown = [n for n in names if n not in BASELINES]
        if unknown:
            raise ProxylangError(f"unknown baseline {unknown[0]!r}; expected some of {', '.join(BASELINES)}")
        executor = open_executor(engine, address, sweep.device, workers)
        sweep = replace(sweep, executor=stack.enter_context(executor))
        results = {s: baseline_results(names, sweep.truth(s), sweep, sample, repeats)
                   for s in sweep.spaces(None if space == "both" else space)}
    profile = sweep.profile
    if fmt == "json":
        header = {"name": profile.name, "key": profile.key(), "settings": profile.describe(), "seed": seed}
        click.echo(json.dumps({"profile": header, **results}, indent=2))
    elif fmt == "csv":
        click.echo(baselines_csv(results, profile.key()), nl=False)
    else:
        click.echo(f"{sweep.benchmark.title} / {sweep.benchmark.task}, seed {seed}; {profile.describe()}")
        click.echo(baselines_text(results))
