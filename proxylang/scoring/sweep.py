"""Sweeps: every architecture of a benchmark space scored by proxy expressions and classic baselines,
and the figures ``proxylang eval`` and ``proxylang baselines`` print from them.

Every architecture gets the same seeded input batch. Statistics go through the disk cache
(:class:`proxylang.stats.extract.StatsCache`, bounded by ``$PROXYLANG_CACHE_GB``), network-baseline
scores through a small JSON file beside it (saved as it goes), so a second or interrupted run re-uses
whatever fitted in the cache and every baseline score.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from proxylang.bench.benchmark import Benchmark, SpaceTruth
from proxylang.errors import DataError, ProxylangError
from proxylang.files import atomic_write, read_json
from proxylang.lang.ast import Node
from proxylang.scoring.baselines import (
    EXPRESSION_BASELINES,
    NETWORK_BASELINES,
    WHOLE_MODEL,
    library_expression,
    score_network,
)
from proxylang.scoring.evaluate import kendall, sampled_protocol
from proxylang.scoring.proxies import AVT_PRESAMPLE, Scores, presample, score_stats, uses_avt
from proxylang.stats.extract import StatsCache
from proxylang.stats.profiles import Profile


@dataclass(frozen=True)
class Sweep:
    """Which benchmark, ground truth and architectures, and how every architecture's statistics are
    taken (profile, seed, device, cache)."""

    benchmark: Benchmark
    profile: Profile
    seed: int
    device: str
    cache: Path
    data_dir: Path | None = None
    bench_file: Path | None = None
    arch_file: Path | None = None

    def spaces(self, space: str | None) -> tuple[str, ...]:
        """``space``, or every space of the benchmark when None; a file of one space needs it named."""
        if space is None:
            for option, value in (("--bench-file", self.bench_file), ("--archs", self.arch_file)):
                if value is not None:
                    raise ProxylangError(f"{option} holds one space: choose it with --space "
                                         f"{' or '.join(self.benchmark.spaces)}")
            return self.benchmark.spaces
        if space not in self.benchmark.spaces:
            raise ProxylangError(f"{self.benchmark.title} has no space {space!r}; it has "
                                 f"{', '.join(self.benchmark.spaces)}")
        return (space,)

    def truth(self, space: str) -> SpaceTruth:
        """The ground truth of ``space``, restricted to ``arch_file``'s architectures when given."""
        truth = self.benchmark.load_truth(space, self.data_dir, self.bench_file)
        return self.benchmark.listed(truth, self.arch_file) if self.arch_file else truth

    def stats_cache(self, space: str) -> StatsCache:
        return StatsCache(self.cache, benchmark=self.benchmark, space=space, profile=self.profile,
                          seed=self.seed, device=self.device)


def score_expressions(nodes: dict[str, Node], truth: SpaceTruth, sweep: Sweep, desc: str,
                      sites: dict[str, tuple[str, ...]] | None = None) -> dict[str, Scores]:
    """Scores of proxy expressions on every architecture of a space, in one pass over the statistics;
    proxies with ``norm_avt`` are calibrated first on a seeded pre-sample (see :func:`score_stats`)."""
    cache = sweep.stats_cache(truth.space)
    calibration = []
    if any(map(uses_avt, nodes.values())):
        calibration = [cache.get(a) for a in presample(truth.archs, AVT_PRESAMPLE, sweep.seed)]
    stream = (cache.get(a) for a in truth.archs)
    return score_stats(nodes, stream, len(truth.archs), calibration, sites, desc)


BASELINE_SCORES_FORMAT = "proxylang-baseline-scores-1"


def _stored_scores(path: Path, header: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The scores a file holds, when it was written for ``header`` (format and setting) and holds only
    numbers; anything else (missing, torn, foreign, older) is recomputed."""
    try:
        document = read_json(path, "baseline scores")
    except DataError:
        return {}
    if not isinstance(document, dict) or any(document.get(k) != v for k, v in header.items()):
        return {}
    scores = document.get("scores")
    valid = isinstance(scores, dict) and all(
        isinstance(row, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                      for v in row.values())
        for row in scores.values())
    return scores if valid else {}


def network_baseline_scores(names: list[str], truth: SpaceTruth, sweep: Sweep) -> dict[str, np.ndarray]:
    """Network-baseline scores of every architecture, cached in one JSON file per space and setting
    (saved every 25 networks, so an interrupted run resumes)."""
    cache = sweep.stats_cache(truth.space)
    setting = cache.key("")
    path = sweep.cache / "baselines" / setting.setting_path() / "scores.json"
    header = {"format": BASELINE_SCORES_FORMAT, "space": setting.space, "seed": setting.seed,
              "profile": setting.profile}
    stored = _stored_scores(path, header)
    todo = [a for a in truth.archs if not set(names) <= set(stored.get(a, {}))]
    inputs, targets = cache.input_batch()
    for i, arch in enumerate(tqdm(todo, desc=f"{truth.space} network baselines", unit="arch",
                                  file=sys.stderr, leave=False)):
        cache.check_memory(arch)
        torch.manual_seed(sweep.seed)
        model = sweep.benchmark.build_network(truth.space, arch).to(sweep.device)
        missing = [n for n in names if n not in stored.get(arch, {})]
        stored.setdefault(arch, {}).update(
            score_network(missing, model, inputs, targets, sweep.profile.classic_sites))
        if (i + 1) % 25 == 0 or i + 1 == len(todo):
            atomic_write(path, json.dumps({**header, "scores": stored}))
    return {n: np.array([stored[a][n] for a in truth.archs], dtype=np.float64) for n in names}


def baseline_scores(names: list[str], truth: SpaceTruth,
                    sweep: Sweep) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Scores (and validity, for expression baselines) of every named baseline on every architecture."""
    scores: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    network = [n for n in names if n in NETWORK_BASELINES]
    for name, values in network_baseline_scores(network, truth, sweep).items():
        scores[name] = (values, None)
    expressions = {n: library_expression(n) for n in names if n in EXPRESSION_BASELINES}
    if expressions:
        sites = {n: sweep.profile.classic_sites for n in expressions if n not in WHOLE_MODEL}
        scored = score_expressions(expressions, truth, sweep, f"{truth.space} statistics", sites)
        scores.update({name: (s.values, s.valid) for name, s in scored.items()})
    return scores


def baseline_results(names: list[str], truth: SpaceTruth, sweep: Sweep, sample: int,
                     repeats: int) -> dict[str, dict[str, Any]]:
    """Protocol figures of every named baseline on one space, plus how our scores agree (Kendall) with
    the file's stored reference scores of the same proxy, and what those reference scores reach."""
    scores = baseline_scores(names, truth, sweep)
    results = {}
    for name in names:
        values, valid = scores[name]
        result = sampled_protocol(values, truth.accuracy, valid, sample, repeats, sweep.seed)
        entry = result.as_dict()
        reference = truth.reference_scores(name)
        if reference is not None:
            ok = np.isfinite(values) & np.isfinite(reference) & (True if valid is None else valid)
            entry["kendall_vs_reference"] = kendall(values[ok], reference[ok]) if ok.sum() > 1 else math.nan
            entry["reference_full_kendall"] = kendall(reference, truth.accuracy)
        results[name] = entry
    return results
