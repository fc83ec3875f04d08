"""Sweeps: every architecture of a benchmark space scored by proxy expressions and classic baselines,
and the figures ``proxylang eval`` and ``proxylang baselines`` print from them.

Every architecture gets the same seeded input batch. Each network is built once and measured once:
the network baselines run on it, then its statistics are scored by every proxy while they are live
(:meth:`proxylang.lang.compile.CompiledProxy.score_network`), never copied or stored, so memory holds
one network and its activations. Scores go to the sweep's score store as they come
(:mod:`proxylang.scoring.store`), so a second or interrupted run scores only what is missing. The
networks run through the sweep's executor (:mod:`proxylang.executors`: this process, a pool of worker
processes (spawned on a GPU) or a Ray cluster), with identical results.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from proxylang.bench.benchmark import Benchmark, SpaceTruth
from proxylang.errors import ProxylangError
from proxylang.executors import Executor, LocalExecutor
from proxylang.lang.ast import Node
from proxylang.lang.canonical import canonical_key
from proxylang.lang.compile import CompiledProxy, compile_proxy
from proxylang.lang.printer import to_text
from proxylang.scoring.baselines import (
    BASELINES,
    EXPRESSION_BASELINES,
    NETWORK_BASELINES,
    WHOLE_MODEL,
    library_expression,
    score_network,
)
from proxylang.scoring.evaluate import kendall, sampled_protocol
from proxylang.scoring.proxies import AVT_PRESAMPLE, Scores, presample, uses_avt
from proxylang.scoring.store import Score, ScoreStore
from proxylang.stats.extract import Measurement, StatsKey
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
    executor: Executor = field(default_factory=LocalExecutor)

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

    def score_store(self, space: str) -> ScoreStore:
        """The stored scores of ``space`` under this sweep's profile and seed."""
        key = StatsKey(space, "", self.seed, self.profile.key())
        return ScoreStore(self.cache / "scores" / key.setting_path() / "scores.jsonl",
                          {"benchmark": self.benchmark.name, "space": space, "profile": self.profile.key(),
                           "seed": self.seed})


class ArchScorer:
    """Scores every proxy and network baseline of a sweep on one architecture, in one pass over its
    network (statistics are scored while live, never stored): what an executor's workers run."""

    def __init__(self, measurement: Measurement, expressions: dict[str, CompiledProxy],
                 sites: dict[str, tuple[str, ...]], networks: dict[str, str]) -> None:
        self.measurement, self.expressions = measurement, expressions
        self.sites, self.networks = sites, networks

    def needs(self) -> set[str]:
        """The statistics the proxies read: the others are never kept."""
        return {name for proxy in self.expressions.values() for name in proxy.inputs}

    def __call__(self, arch: str) -> dict[str, Score]:
        model = self.measurement.network(arch)
        scores: dict[str, Score] = {}
        if self.networks:
            inputs, targets = self.measurement.batch()
            values = score_network(list(self.networks.values()), model, inputs, targets,
                                   self.measurement.profile.classic_sites)
            scores.update({key: (values[name], True) for key, name in self.networks.items()})
        if self.expressions:
            live = self.measurement.stats(model, live=True, needs=self.needs())
            for key, proxy in self.expressions.items():
                stats = live.only_sites(self.sites[key]) if key in self.sites else live
                scores[key] = proxy.score_network(stats)
        return scores


class ArchObserver(ArchScorer):
    """The ``norm_avt`` terms of every proxy on one architecture (calibration, one network at a time)."""

    def __call__(self, arch: str) -> dict[str, dict[Node, float]]:  # type: ignore[override]
        live = self.measurement.stats(self.measurement.network(arch), live=True, needs=self.needs())
        return {key: proxy.observe(live.only_sites(self.sites[key]) if key in self.sites else live)
                for key, proxy in self.expressions.items()}


def score_space(sweep: Sweep, space: str, archs: Sequence[str], expressions: dict[str, Node],
                networks: Sequence[str] = (), sites: dict[str, tuple[str, ...]] | None = None,
                calibration: Sequence[str] = (), desc: str = "scoring",
                on_scores: Callable[[str, dict[str, Score]], None] | None = None) -> dict[str, Scores]:
    """Scores of proxy expressions and network baselines on ``archs`` of one space, each network built
    and measured once and scored while its statistics are live, through the sweep's executor.

    Scores are kept in the sweep's score store, keyed by what decides them (canonical key, sites, the
    ``norm_avt`` bounds), so a repeated or interrupted run scores only what is missing; ``on_scores``
    sees every architecture's scores, the stored ones first, then each as it is scored. Proxies with
    ``norm_avt`` are first calibrated on the ``calibration`` architectures. ``sites`` maps a proxy to
    the module types of its conv sites (the classic proxies' NASLib convention)."""
    sites = sites or {}
    measurement = Measurement(sweep.benchmark, space, sweep.profile, sweep.seed, sweep.device)
    compiled = {name: compile_proxy(node) for name, node in expressions.items()}
    restricted = {name: sites[name] for name in expressions if name in sites}
    keys = {name: canonical_key(node) + (f" @{','.join(restricted[name])}" if name in restricted else "")
            for name, node in expressions.items()}
    normalised = {name: proxy for name, proxy in compiled.items() if uses_avt(expressions[name])}
    if normalised:
        observer = ArchObserver(measurement, normalised, restricted, {})
        with sweep.executor.bind(observer) as bound:
            observed = bound.map(list(calibration))
        for name, proxy in normalised.items():
            proxy.calibrate_on([o[name] for o in observed])
            bounds = sorted((to_text(node), lo, hi) for node, (lo, hi) in proxy.bounds.items())
            keys[name] += f" avt{bounds}"
    keys.update({name: f"network:{name}" for name in networks})
    store = sweep.score_store(space)
    todo = store.missing(archs, list(keys.values()))
    if on_scores is not None:
        for arch in archs:
            if arch not in todo:
                on_scores(arch, {name: store.get(arch, key) for name, key in keys.items()})
    scorer = ArchScorer(measurement, {keys[n]: p for n, p in compiled.items()},
                        {keys[n]: s for n, s in restricted.items()}, {keys[n]: n for n in networks})
    with sweep.executor.bind(scorer) as bound:
        done = bound.as_completed(todo)
        for i, scores in tqdm(done, total=len(todo), desc=desc, unit="arch", file=sys.stderr, leave=False):
            store.add(todo[i], scores)
            if on_scores is not None:
                on_scores(todo[i], {name: scores[key] for name, key in keys.items()})
    return {name: Scores(np.array([store.get(a, key)[0] for a in archs], dtype=np.float64),
                         np.array([store.get(a, key)[1] for a in archs], dtype=bool))
            for name, key in keys.items()}


REFERENCE = "ref:"  # a rival named ref:NAME is the data file's stored score of NAME


@dataclass(frozen=True)
class BaselinePlan:
    """How named baselines are scored in a sweep, as ``proxylang baselines`` scores them: library
    expressions (the classic ones on NASLib's sites, see :data:`WHOLE_MODEL`) and network baselines."""

    expressions: dict[str, Node]
    sites: dict[str, tuple[str, ...]]
    networks: list[str]

    @classmethod
    def of(cls, names: Sequence[str], profile: Profile) -> BaselinePlan:
        """The plan for ``names`` (an unknown name is an error naming it, before any network runs)."""
        expressions = {n: library_expression(n) for n in names if n not in NETWORK_BASELINES}
        classic = [n for n in expressions if n in EXPRESSION_BASELINES and n not in WHOLE_MODEL]
        return cls(expressions, {n: profile.classic_sites for n in classic},
                   [n for n in names if n in NETWORK_BASELINES])


def rival_names(asked: Sequence[str], truth: SpaceTruth) -> list[str]:
    """The proxies to compare with on ``truth``'s space: library proxies, network baselines and
    ``ref:NAME`` (the file's stored scores); ``all`` is every baseline and every stored score."""
    names: list[str] = []
    for name in asked:
        expanded = ([*BASELINES, *(REFERENCE + r for r in truth.reference_names())] if name == "all"
                    else [name])
        names += [n for n in expanded if n not in names]
    for name in names:
        if name.startswith(REFERENCE) and name[len(REFERENCE):] not in truth.reference_names():
            raise ProxylangError(f"{truth.source} stores no {name[len(REFERENCE):]!r} score for every "
                                 f"{truth.space} arch; stored: {', '.join(truth.reference_names())}")
    return names


def rival_scores(name: str, truth: SpaceTruth, scored: dict[str, Scores], archs: Sequence[str]) -> Scores:
    """One rival's scores on ``archs``: from the sweep, or for ``ref:NAME`` from the data file (an
    arch without a finite stored score counts as invalid)."""
    if not name.startswith(REFERENCE):
        return scored[name]
    stored = truth.only(archs).reference_scores(name[len(REFERENCE):])
    return Scores(stored, np.isfinite(stored))


def baseline_scores(names: list[str], truth: SpaceTruth,
                    sweep: Sweep) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Scores (and validity, for expression baselines) of every named baseline on every architecture,
    in one pass over the networks."""
    plan = BaselinePlan.of(names, sweep.profile)
    scored = score_space(sweep, truth.space, truth.archs, plan.expressions, plan.networks, plan.sites,
                         presample(truth.archs, AVT_PRESAMPLE, sweep.seed), f"{truth.space} baselines")
    return {name: (scored[name].values, None if name in plan.networks else scored[name].valid)
            for name in names}


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
