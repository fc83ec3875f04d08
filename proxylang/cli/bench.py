"""``proxylang eval`` and ``proxylang baselines``: score proxies on TransNAS-Bench-101 segmentation.

Both commands read the ground truth of each space, give every architecture the same seeded input
batch, and report the SasWOT protocol (Kd/Sp/Ps, mean ± std over seeded 50-architecture samples) next
to the full-set figures. Statistics go through the disk cache (:class:`proxylang.extract.StatsCache`,
bounded by ``$PROXYLANG_CACHE_GB``), network-baseline scores through a small JSON file beside it, so
a second run re-uses whatever fitted in the cache and every baseline score.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from tqdm import tqdm

from proxylang.errors import DataError, ProxylangError
from proxylang.scoring.baselines import (
    BASELINES,
    EXPRESSION_BASELINES,
    NETWORK_BASELINES,
    WHOLE_MODEL,
    library_expression,
    score_network,
)
from proxylang.scoring.evaluate import (
    PairedComparison,
    ProtocolResult,
    kendall,
    paired_bootstrap,
    presample,
    sampled_protocol,
    score_proxies,
)
from proxylang.stats.extract import StatsCache, default_cache_root, default_device
from proxylang.stats.netstats import NetStats
from proxylang.stats.profiles import DEFAULT_PROFILE, PROFILES, Profile, get_profile

SPACES = ("micro", "macro")
TASK = "segmentsemantic"
# norm_avt calibrates min/max on this many randomly drawn architectures (SasWOT's pre-sample); they are
# held in memory together (100-500 MB each), hence a small number
AVT_PRESAMPLE = 8
DEFAULT_REPEATS = 10


@dataclass(frozen=True)
class BenchSettings:
    """Where the benchmark lives and how every architecture's statistics are taken."""

    data_dir: Path
    bench_file: Path | None
    profile: Profile
    seed: int
    device: str
    cache: Path
    arch_file: Path | None = None

    def truth_file(self, space: str) -> Path:
        return self.bench_file or self.data_dir / "transnas" / f"zc_transbench101_{space}.json"

    def stats_cache(self, space: str) -> StatsCache:
        return StatsCache(self.cache, space=space, profile=self.profile, seed=self.seed, device=self.device)


@dataclass
class SpaceTruth:
    """One space's architectures (file order), their accuracy and the raw records (reference scores)."""

    space: str
    archs: list[str]
    accuracy: np.ndarray
    records: dict[str, dict[str, Any]]

    def reference_scores(self, name: str) -> np.ndarray | None:
        """The file's stored score of proxy ``name`` for every architecture, if it has one."""
        if not all(isinstance(self.records[a].get(name), dict) for a in self.archs):
            return None
        return np.array([self.records[a][name].get("score", math.nan) for a in self.archs], dtype=np.float64)


def load_truth(space: str, settings: BenchSettings) -> SpaceTruth:
    from proxylang.bench.transnas import load_zc_json

    records = load_zc_json(settings.truth_file(space), TASK, space)
    if not records:
        raise DataError(f"{settings.truth_file(space)}: no {TASK} architectures")
    archs = list(records)
    if settings.arch_file is not None:
        archs = listed_archs(settings.arch_file, space, archs)
    accuracy = np.array([records[a]["val_accuracy"] for a in archs], dtype=np.float64)
    return SpaceTruth(space, archs, accuracy, records)


def listed_archs(path: Path, space: str, known: list[str]) -> list[str]:
    """The architectures of ``known`` named in ``path`` (one key per line, ``#`` comments), in file order
    of ``known``; a key the ground truth lacks is an error naming its line."""
    from proxylang.bench.transnas import parse_arch

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the architecture list ({exc})") from None
    by_key = {parse_arch(space, a): a for a in known}
    wanted = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            key = parse_arch(space, text)
        except DataError as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
        if key not in by_key:
            raise DataError(f"{path}:{number}: {text} is not in the {space} ground truth")
        wanted.add(key)
    if len(wanted) < 2:
        raise DataError(f"{path}: lists {len(wanted)} architecture(s); a correlation needs at least 2")
    return [by_key[k] for k in by_key if k in wanted]


Scores = dict[str, tuple[np.ndarray, np.ndarray]]


def score_expressions(nodes: dict[str, Any], truth: SpaceTruth, settings: BenchSettings, desc: str,
                      sites: dict[str, tuple[str, ...]] | None = None) -> Scores:
    """Scores of proxy expressions on every architecture of a space, in one pass over the statistics;
    proxies with ``norm_avt`` are calibrated first on a seeded pre-sample. ``sites`` maps a proxy to the
    module types whose conv sites it reads (the classic proxies' NASLib convention); the others read all."""
    from proxylang import compile_proxy
    from proxylang.search.data import uses_avt

    cache = settings.stats_cache(truth.space)
    sites = sites or {}

    def on_sites(name: str, stats: list[NetStats]) -> list[NetStats]:
        return [s.only_sites(sites[name]) for s in stats] if name in sites else stats

    compiled = {name: compile_proxy(node) for name, node in nodes.items()}
    normalised = [name for name, node in nodes.items() if uses_avt(node)]
    if normalised:
        calibration = [cache.get(a) for a in presample(truth.archs, AVT_PRESAMPLE, settings.seed)]
        for name in normalised:
            compiled[name].calibrate(on_sites(name, calibration))
        del calibration
    proxies = {name: (lambda stats, name=name: compiled[name](on_sites(name, stats))) for name in nodes}
    stream = (cache.get(a) for a in truth.archs)
    return score_proxies(proxies, stream, total=len(truth.archs), desc=desc)


def network_baseline_scores(names: list[str], truth: SpaceTruth,
                            settings: BenchSettings) -> dict[str, np.ndarray]:
    """Network-baseline scores of every architecture, cached in one JSON file per space and setting
    (saved as it goes, so an interrupted run resumes)."""
    from proxylang.bench.transnas import build_network

    cache = settings.stats_cache(truth.space)
    path = settings.cache / "baselines" / cache.key("").setting_path() / "scores.json"
    try:
        stored: dict[str, dict[str, float]] = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        stored = {}  # unreadable: recompute
    todo = [a for a in truth.archs if not set(names) <= set(stored.get(a, {}))]
    inputs, targets = cache.input_batch()
    for i, arch in enumerate(tqdm(todo, desc=f"{truth.space} network baselines", unit="arch",
                                  file=sys.stderr, leave=False)):
        torch.manual_seed(settings.seed)
        model = build_network(truth.space, arch).to(settings.device)
        missing = [n for n in names if n not in stored.get(arch, {})]
        stored.setdefault(arch, {}).update(
            score_network(missing, model, inputs, targets, settings.profile.classic_sites))
        if (i + 1) % 25 == 0 or i + 1 == len(todo):
            _write_json(path, stored)
    return {n: np.array([stored[a][n] for a in truth.archs], dtype=np.float64) for n in names}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _fmt(x: float, std: float | None = None) -> str:
    if not math.isfinite(x):
        return "   n/a"
    return f"{x:+.3f}" if std is None else f"{x:+.3f}±{std:.3f}"


def protocol_table(space: str, result: ProtocolResult, n: int, settings: BenchSettings) -> str:
    """The ``eval`` table of one space."""
    head = f"TransNAS-Bench-101 {space} / {TASK}: {n} archs, seed {settings.seed}"
    rows = [head, settings.profile.describe(), f"{'':<18}{'Kd':>14}{'Sp':>14}{'Ps':>14}{'invalid':>9}"]
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


def _settings(data_dir: Path, bench_file: Path | None, profile: str, resolution: int | None,
              batch_size: int | None, seed: int, device: str | None, cache: Path | None, images: Path | None,
              labels: Path | None, arch_file: Path | None = None) -> BenchSettings:
    chosen = get_profile(profile).with_overrides(resolution, batch_size, images, labels)
    device = device or default_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ProxylangError(f"--device {device}: CUDA is not available here")
    return BenchSettings(data_dir, bench_file, chosen, seed, device, cache or default_cache_root(), arch_file)


def _spaces(space: str, settings: BenchSettings) -> tuple[str, ...]:
    if space == "both":
        for option, value in (("--bench-file", settings.bench_file), ("--archs", settings.arch_file)):
            if value is not None:
                raise ProxylangError(f"{option} holds one space: choose it with --space micro or macro")
    return SPACES if space == "both" else (space,)


def common_options(f: Any) -> Any:
    """Options shared by ``eval`` and ``baselines``."""
    options = [
        click.option("--bench", type=click.Choice(["transnas"]), default="transnas", show_default=True),
        click.option("--space", type=click.Choice([*SPACES, "both"]), default="both", show_default=True),
        click.option("--sample", type=int, default=50, show_default=True,
                     help="Architectures per sampled correlation."),
        click.option("--repeats", type=int, default=DEFAULT_REPEATS, show_default=True,
                     help="Seeded samples averaged (mean ± std)."),
        click.option("--bench-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="A NASLib zc_transbench101 JSON file instead of the one under --data."),
        click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
                     envvar="PROXYLANG_DATA", default="../shared/benchmarks", show_default=True,
                     help="Folder holding transnas/ (or set PROXYLANG_DATA)."),
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
        click.option("--resolution", type=int, help="Override the profile's input side."),
        click.option("--batch-size", type=int, help="Override the profile's batch size."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seeds weights, input batch and samples."),
        click.option("--device", help="cpu or cuda [default: cuda when available]."),
        click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
                     help="Statistics cache [default: $PROXYLANG_CACHE or ~/.cache/proxylang]; "
                          "it stops growing at $PROXYLANG_CACHE_GB gigabytes (default 20)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("eval")
@click.argument("expr_files", nargs=-1, required=True, type=str)
@common_options
@click.option("--scores-out", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with one arch,score,space,valid,proxy row per scored architecture and proxy.")
@click.option("--against", multiple=True, metavar="NAME",
              help="A library proxy (e.g. nwot) to compare with on the same archs: Kd difference, 95 %% "
                   "bootstrap interval, share of resamples where the proxy ranks better. Repeatable.")
def eval_command(expr_files: tuple[str, ...], bench: str, space: str, sample: int, repeats: int,
                 bench_file: Path | None, data_dir: Path, arch_file: Path | None, profile: str,
                 images: Path | None, labels: Path | None, resolution: int | None, batch_size: int | None,
                 seed: int, device: str | None, cache: Path | None, scores_out: Path | None,
                 against: tuple[str, ...]) -> None:
    """Rank correlation of the proxy in each EXPR_FILE (.px, or - for stdin) with trained accuracy; several
    files are scored in one pass over the statistics."""
    from proxylang import parse
    from proxylang.cli.main import read_proxy_text, user_errors

    with user_errors():
        settings = _settings(data_dir, bench_file, profile, resolution, batch_size, seed, device, cache,
                             images, labels, arch_file)
        spaces = _spaces(space, settings)
        sources = [read_proxy_text(path) for path in expr_files]
        nodes = {f"{i}:{source}": parse(text, source) for i, (text, source) in enumerate(sources)}
        rivals = {name: library_expression(name) for name in against}
        rows = []
        for name in spaces:
            truth = load_truth(name, settings)
            scored = score_expressions({**nodes, **rivals}, truth, settings, f"{name} statistics")
            for key, (_, source) in zip(nodes, sources, strict=True):
                scores, valid = scored[key]
                result = sampled_protocol(scores, truth.accuracy, valid, sample, repeats, seed)
                if len(nodes) > 1:
                    click.echo(f"== {source}")
                click.echo(protocol_table(name, result, len(truth.archs), settings))
                for rival in rivals:
                    click.echo(comparison_line(rival, paired_bootstrap(
                        scores, scored[rival][0], truth.accuracy, valid, scored[rival][1], seed=seed)))
                rows += [(a, s, name, bool(v), source)
                         for a, s, v in zip(truth.archs, scores, valid, strict=True)]
        if scores_out is not None:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["arch", "score", "space", "valid", "proxy", "profile"])
            key = settings.profile.key()
            writer.writerows((a, repr(float(s)), sp, int(v), src, key) for a, s, sp, v, src in rows)
            try:
                scores_out.write_text(buffer.getvalue())
            except OSError as exc:
                raise ProxylangError(f"{scores_out}: cannot write ({exc.strerror})") from None
            click.echo(f"wrote {len(rows)} scores to {scores_out}")


def baseline_scores(names: list[str], truth: SpaceTruth,
                    settings: BenchSettings) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Scores (and validity, for expression baselines) of every named baseline on every architecture."""
    scores: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    network = [n for n in names if n in NETWORK_BASELINES]
    for name, values in network_baseline_scores(network, truth, settings).items():
        scores[name] = (values, None)
    expressions = {n: library_expression(n) for n in names if n in EXPRESSION_BASELINES}
    if expressions:
        sites = {n: settings.profile.classic_sites for n in expressions if n not in WHOLE_MODEL}
        scores.update(score_expressions(expressions, truth, settings, f"{truth.space} statistics", sites))
    return scores


def baseline_results(names: list[str], truth: SpaceTruth, settings: BenchSettings, sample: int,
                     repeats: int) -> dict[str, dict[str, Any]]:
    """Protocol figures of every named baseline on one space, plus how our scores agree (Kendall) with
    the file's stored reference scores of the same proxy, and what those reference scores reach."""
    scores = baseline_scores(names, truth, settings)
    results = {}
    for name in names:
        values, valid = scores[name]
        result = sampled_protocol(values, truth.accuracy, valid, sample, repeats, settings.seed)
        entry = result.as_dict()
        reference = truth.reference_scores(name)
        if reference is not None:
            ok = np.isfinite(values) & np.isfinite(reference) & (True if valid is None else valid)
            entry["kendall_vs_reference"] = kendall(values[ok], reference[ok]) if ok.sum() > 1 else math.nan
            entry["reference_full_kendall"] = kendall(reference, truth.accuracy)
        results[name] = entry
    return results


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
                 device: str | None, cache: Path | None, only: str | None,
                      fmt: str) -> None:
    """Table 3: the classic zero-cost proxies on TransNAS-Bench-101 segmentation."""
    from proxylang.cli.main import user_errors

    with user_errors():
        settings = _settings(data_dir, bench_file, profile, resolution, batch_size, seed, device, cache,
                             images, labels, arch_file)
        names = [n.strip() for n in only.split(",")] if only else list(BASELINES)
        unknown = [n for n in names if n not in BASELINES]
        if unknown:
            raise ProxylangError(f"unknown baseline {unknown[0]!r}; expected some of {', '.join(BASELINES)}")
        results = {s: baseline_results(names, load_truth(s, settings), settings, sample, repeats)
                   for s in _spaces(space, settings)}
    profile = settings.profile
    if fmt == "json":
        header = {"name": profile.name, "key": profile.key(), "settings": profile.describe(), "seed": seed}
        click.echo(json.dumps({"profile": header, **results}, indent=2))
    elif fmt == "csv":
        click.echo(baselines_csv(results, profile.key()), nl=False)
    else:
        click.echo(f"TransNAS-Bench-101 / {TASK}, seed {seed}; {profile.describe()}")
        click.echo(baselines_text(results))
