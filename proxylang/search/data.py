"""What a proxy search runs on: seeded train/validation/holdout splits of a benchmark's architectures,
their statistics, and the Kendall-tau fitness of a proxy expression on them.

The shared ground-truth files are already a 60 % search split; this module splits them again, so that
fitness (train), model selection (validation) and the final report (holdout) never see the same
architecture. Train and validation statistics are thinned (see :func:`thin`) and packed once, then
reused by every candidate; holdout statistics are full, as ``proxylang eval`` sees them, and streamed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from tqdm import tqdm

from proxylang.bench.benchmark import Benchmark, SpaceTruth
from proxylang.errors import MemoryBudgetError, ProxylangError
from proxylang.executors import Executor, LocalExecutor
from proxylang.lang.ast import Node
from proxylang.lang.canonical import canonical_key
from proxylang.lang.compile import CompiledProxy, compile_proxy
from proxylang.lang.cost import Cost
from proxylang.lang.pack import PackedStats, pack
from proxylang.lang.printer import to_text
from proxylang.schema import MAX_SEED, bounded, check_ranges
from proxylang.scoring.evaluate import kendall
from proxylang.scoring.proxies import AVT_PRESAMPLE, Scores, uses_avt
from proxylang.scoring.sweep import Sweep, score_space
from proxylang.search.engine import Fitness, Operators
from proxylang.search.evolve import node_from_json, node_to_json
from proxylang.search.genetic import crossover, mutate, random_expr
from proxylang.stats.extract import StatsCache
from proxylang.stats.netstats import NetStats
from proxylang.stats.profiles import DEFAULT_PROFILE, MAX_BATCH, MAX_RESOLUTION, Profile, get_profile

# a score beyond this magnitude has overflowed in spirit even when it is still finite
OVERFLOW = 1e30
# how fast the compiled proxies of a search run on the 2-core CPU: elements streamed and multiply-adds
# (proxylang.lang.cost) per second, fitted to the times of random candidates (benchmarks/work_rate.py)
ELEMENTS_PER_SECOND = 4e8
MULTIPLY_ADDS_PER_SECOND = 4e10


def estimated_seconds(cost: Cost) -> float:
    """How long a proxy of this cost runs on the 2-core CPU, from its work alone."""
    return cost.streamed / ELEMENTS_PER_SECOND + cost.multiply_adds / MULTIPLY_ADDS_PER_SECOND


@dataclass(frozen=True)
class DataConfig:
    """Which architectures and statistics a search uses (the ``[data]`` table of a config file).

    ``holdout = 0`` takes every architecture left after train and validation. ``profile`` (with optional
    ``resolution`` and ``batch`` overrides) and ``stats_seed`` match ``proxylang eval``'s defaults so
    both share the statistics cache.
    ``max_seconds`` rejects a candidate that would take longer on the *full* statistics of one network:
    thinning hides the cost of e.g. ``hamming(G, G)`` (O x O x K), which would stall the holdout report.
    The time is estimated from the candidate's work (:func:`estimated_seconds`), not measured, so the same
    seed rejects the same candidates on any machine under any load.
    """

    train: int = bounded(300, 1, 100_000)  # Kd on n archs has sd ~0.59/sqrt(n): 0.094 at 40, 0.033 at 300
    val: int = bounded(25, 1, 100_000)
    holdout: int = bounded(100, 0, 100_000)
    presample: int = bounded(AVT_PRESAMPLE, 1, 100_000)
    profile: str = DEFAULT_PROFILE
    resolution: int | None = bounded(None, 1, MAX_RESOLUTION)
    batch: int | None = bounded(None, 1, MAX_BATCH)
    stats_seed: int = bounded(0, 0, MAX_SEED)
    thin: int = bounded(16, 1, 1 << 20)
    max_seconds: float = bounded(2.0, 0.001, 3600.0)
    seed: int = bounded(0, 0, MAX_SEED)

    def __post_init__(self) -> None:
        get_profile(self.profile)  # an unknown name fails here, before any work
        check_ranges(self, "data option")
        if self.presample > self.train:
            raise ProxylangError(f"presample ({self.presample}) cannot exceed train ({self.train})")

    def measurement(self) -> Profile:
        """The measurement profile with this table's overrides."""
        return get_profile(self.profile).with_overrides(self.resolution, self.batch)


def split_archs(archs: Sequence[str], config: DataConfig) -> dict[str, list[str]]:
    """Disjoint ``train``/``val``/``holdout`` lists drawn with ``config.seed``, independent of input order,
    and ``unseen``: every architecture outside train and val (the holdout is its last part).

    Train and validation come from the front of one seeded permutation and the holdout from its back, so
    the holdout does not move when a config changes the train or validation size: runs with different
    settings are reported on the same architectures, and so are the baselines run on them."""
    pool = sorted(archs)
    wanted = config.train + config.val + (config.holdout or 1)
    if len(pool) < wanted:
        raise ProxylangError(
            f"{len(pool)} architectures cannot make train={config.train}, val={config.val} and a holdout")
    order = [pool[i] for i in np.random.default_rng(config.seed).permutation(len(pool))]
    end_val = config.train + config.val
    start_holdout = len(order) - config.holdout if config.holdout else end_val
    return {"train": order[: config.train], "val": order[config.train:end_val],
            "holdout": order[start_holdout:], "unseen": order[end_val:]}


@dataclass
class Split:
    """Architectures of one split with their ground-truth accuracy and packed (thinned) statistics."""

    archs: list[str]
    accuracy: np.ndarray
    stats: PackedStats


def collapse_reason(scores: np.ndarray, valid: np.ndarray) -> str:
    """Why scores cannot rank architectures (``""`` when they can): the rejection rule of the search."""
    if not valid.all():
        return "invalid"
    if not np.isfinite(scores).all():
        return "nonfinite"
    if np.abs(scores).max() > OVERFLOW:
        return "overflow"
    if np.ptp(scores) <= 1e-12 * max(1.0, float(np.abs(scores).max())):
        return "constant"
    return ""


def _numpy(scores: torch.Tensor, valid: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return scores.detach().cpu().numpy().astype(np.float64), valid.detach().cpu().numpy().astype(bool)


def split_kendall(scores: np.ndarray, valid: np.ndarray, accuracy: np.ndarray) -> tuple[float, str]:
    """Kd of scores against accuracy, or NaN and the reason the scores collapsed."""
    reason = collapse_reason(scores, valid)
    if reason:
        return math.nan, reason
    tau = float(kendall(scores, accuracy))
    return (tau, "") if math.isfinite(tau) else (math.nan, "constant")


class ProxyFitness:
    """Kendall tau of a proxy expression on the train split (fitness) and the validation split (watched);
    the behaviour of a proxy is its ranks of the train archs, so a monotone map of a proxy is its clone,
    and its cost is its estimated time on one network, so of two proxies with the same Kd the cheaper ranks
    first.

    Read-only after construction, so forked search workers share it.
    """

    def __init__(self, train: Split, val: Split, presample: PackedStats, probe: PackedStats,
                 max_seconds: float = math.inf) -> None:
        self.train, self.val, self.presample = train, val, presample
        self.probe, self.max_seconds = probe, max_seconds  # probe: full statistics of one network

    def compile(self, node: Node, presample: PackedStats | None = None) -> CompiledProxy:
        """The compiled proxy, calibrated on a pre-sample when it normalises (``norm_avt``)."""
        proxy = compile_proxy(node)
        if uses_avt(node):
            proxy.calibrate(self.presample if presample is None else presample)
        return proxy

    def kendalls(self, node: Node) -> dict[str, float]:
        """Kd on train and validation (NaN where the scores collapse); a compile error propagates."""
        proxy = self.compile(node)
        return {name: split_kendall(*_numpy(*proxy(split.stats)), split.accuracy)[0]
                for name, split in (("train", self.train), ("val", self.val))}

    def __call__(self, node: Node) -> Fitness:
        try:
            proxy = self.compile(node)
            seconds = estimated_seconds(proxy.check_memory(self.probe))
            if seconds > self.max_seconds:
                return Fitness(rejected="slow")
            scores, valid = _numpy(*proxy(self.train.stats))
            train, reason = split_kendall(scores, valid, self.train.accuracy)
            if reason:
                return Fitness(rejected=reason)
            val, _ = split_kendall(*_numpy(*proxy(self.val.stats)), self.val.accuracy)
        except MemoryBudgetError:  # on one network's full statistics (the probe), or the packed splits
            return Fitness(rejected="memory")
        except (ProxylangError, RuntimeError):  # RuntimeError: a kernel refused the shapes it met
            return Fitness(rejected="error")
        return Fitness(train=train, val=val, behaviour=tuple(rankdata(scores).tolist()), cost=seconds)


def expression_operators() -> Operators[Node]:
    """The language's own genetic operators, random generator and canonical key, for :mod:`engine`."""
    return Operators(random=random_expr, mutate=mutate, crossover=crossover, key=canonical_key, text=to_text,
                     encode=node_to_json, decode=node_from_json)


@dataclass
class SearchData:
    """Everything a search and its final report need, loaded once."""

    space: str
    config: DataConfig
    train: Split
    val: Split
    holdout: SpaceTruth  # the archs of the final report, their accuracy and the file's reference scores
    unseen_archs: list[str]  # every arch outside train and val, for proxylang eval/baselines --archs
    presample_archs: list[str]
    cache: StatsCache

    def fitness(self) -> ProxyFitness:
        presample = pack([self.train_stats(a) for a in self.presample_archs])
        probe = pack([self.cache.compute(self.train.archs[0])])  # full statistics: the holdout's real cost
        return ProxyFitness(self.train, self.val, presample, probe, self.config.max_seconds)

    def train_stats(self, arch: str) -> NetStats:
        return thinned_stats(self.cache, arch, self.config.thin)

    def sweep(self, executor: Executor | None = None) -> Sweep:
        """How ``proxylang eval`` and ``baselines`` measure this space (sharing their score store)."""
        cache = self.cache
        return Sweep(cache.benchmark, cache.profile, cache.seed, cache.device, cache.root,
                     executor=executor or LocalExecutor())

    def full_scores(self, nodes: Mapping[str, Node], archs: Sequence[str],
                    executor: Executor | None = None) -> dict[str, Scores]:
        """Scores of each proxy on the full statistics of ``archs``, as ``proxylang eval`` takes them;
        norm_avt is calibrated on the train pre-sample."""
        return score_space(self.sweep(executor), self.space, archs, dict(nodes),
                           calibration=self.presample_archs, desc="full statistics")


def thinned_stats(cache: StatsCache, arch: str, stride: int) -> NetStats:
    """Thinned statistics of one architecture, cached under their own key (the full statistics they are
    taken from are not stored: 100-450 MB per network)."""
    return cache.get_or_compute(cache.key(arch, f"thin{stride}"), lambda: thin(cache.compute(arch), stride))


def _thinned_split(cache: StatsCache, archs: list[str], accuracy: np.ndarray, stride: int,
                   name: str) -> Split:
    stats = [thinned_stats(cache, a, stride) for a in tqdm(archs, desc=f"statistics ({name})", unit="arch",
                                                             file=sys.stderr, leave=False)]
    return Split(archs, accuracy, pack(stats))


def load_search_data(benchmark: Benchmark, space: str, data_dir: str | Path | None, config: DataConfig,
                     cache_dir: str | Path | None) -> SearchData:
    """Ground truth, splits and statistics of one space of ``benchmark`` (extracting what the cache
    lacks: the slow part of a first run)."""
    truth = benchmark.load_truth(space, None if data_dir is None else Path(data_dir))
    names = split_archs(truth.archs, config)
    cache = StatsCache(cache_dir, benchmark=benchmark, space=space, profile=config.measurement(),
                       seed=config.stats_seed, device="cpu")
    train, val, holdout = (truth.only(names[split]) for split in ("train", "val", "holdout"))
    return SearchData(
        space=space, config=config,
        train=_thinned_split(cache, train.archs, train.accuracy, config.thin, "train"),
        val=_thinned_split(cache, val.archs, val.accuracy, config.thin, "val"),
        holdout=holdout, unseen_archs=names["unseen"], presample_archs=names["train"][: config.presample],
        cache=cache)


def thin(stats: NetStats, stride: int) -> NetStats:
    """A strided view for fitness: every ``stride``-th row and column of W and G (still paired), every
    ``stride**2``-th column of A and R. TransNAS-Bench-101 statistics are 100-300 MB per network, mostly
    W and G, which makes a candidate cost seconds per network; thinning keeps every site and the batch,
    divides the data by ~``stride**2`` and keeps sums proportional, so rankings mostly survive. The
    final report uses the full statistics."""
    if stride == 1:
        return stats
    cols = stride * stride
    return NetStats([a[:, ::cols].contiguous() for a in stats.A],
                    [g[::stride, ::stride].contiguous() for g in stats.G],
                    [w[::stride, ::stride].contiguous() for w in stats.W],
                    [r[:, ::cols].contiguous() for r in stats.R], dict(stats.meta, thin=stride))
