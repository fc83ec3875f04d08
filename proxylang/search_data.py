"""What a proxy search runs on: seeded train/validation/holdout splits of a benchmark's architectures,
their cached statistics, and the Kendall-tau fitness of a proxy expression on them.

The shared ground-truth files are already a 60 % search split; this module splits them again, so that
fitness (train), model selection (validation) and the final report (holdout) never see the same
architecture. Statistics are packed once per split and reused by every candidate.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from proxylang.ast import Call, Node, walk
from proxylang.errors import ProxylangError
from proxylang.evolve import Fitness, Operators

# a score beyond this magnitude has overflowed in spirit even when it is still finite
OVERFLOW = 1e30


@dataclass(frozen=True)
class DataConfig:
    """Which architectures and statistics a search uses (the ``[data]`` table of a config file).

    ``holdout = 0`` takes every architecture left after train and validation.
    """

    task: str = "segmentsemantic"
    train: int = 100
    val: int = 50
    holdout: int = 0
    presample: int = 16
    resolution: int = 64
    batch: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("train", "val", "presample", "resolution", "batch"):
            if getattr(self, name) < 1:
                raise ProxylangError(f"data option {name} must be at least 1, got {getattr(self, name)}")
        if self.holdout < 0:
            raise ProxylangError(f"data option holdout must be at least 0, got {self.holdout}")
        if self.presample > self.train:
            raise ProxylangError(f"presample ({self.presample}) cannot exceed train ({self.train})")


def split_archs(archs: Sequence[str], config: DataConfig) -> dict[str, list[str]]:
    """Disjoint ``train``/``val``/``holdout`` lists drawn with ``config.seed``, independent of input order."""
    pool = sorted(archs)
    wanted = config.train + config.val + (config.holdout or 1)
    if len(pool) < wanted:
        raise ProxylangError(
            f"{len(pool)} architectures cannot make train={config.train}, val={config.val} and a holdout")
    order = [pool[i] for i in np.random.default_rng(config.seed).permutation(len(pool))]
    end_val = config.train + config.val
    end_holdout = end_val + config.holdout if config.holdout else len(order)
    return {"train": order[: config.train], "val": order[config.train:end_val],
            "holdout": order[end_val:end_holdout]}


@dataclass
class Split:
    """Architectures of one split with their ground-truth accuracy and packed statistics."""

    archs: list[str]
    accuracy: np.ndarray
    stats: Any


def uses_avt(node: Node) -> bool:
    """Whether a proxy needs calibrating on a pre-sample before it can score."""
    return any(isinstance(n, Call) and n.op == "norm_avt" for n in walk(node))


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


class ProxyFitness:
    """Kendall tau of a proxy expression on the train split (fitness) and the validation split (watched).

    Picklable and read-only after construction, so forked search workers share it.
    """

    def __init__(self, train: Split, val: Split, presample: Any) -> None:
        self.train, self.val, self.presample = train, val, presample

    def compile(self, node: Node) -> Any:
        """The compiled proxy, calibrated on the train pre-sample when it normalises (``norm_avt``)."""
        from proxylang import compile_proxy

        proxy = compile_proxy(node)
        if uses_avt(node):
            proxy.calibrate(self.presample)
        return proxy

    def scores(self, proxy: Any, split: Split) -> tuple[np.ndarray, np.ndarray]:
        scores, valid = proxy(split.stats)
        return scores.detach().cpu().numpy().astype(np.float64), valid.detach().cpu().numpy().astype(bool)

    def kendall(self, proxy: Any, split: Split) -> tuple[float, str]:
        """Kd on a split, or NaN and the reason the scores collapsed there."""
        from proxylang.evaluate import kendall

        scores, valid = self.scores(proxy, split)
        reason = collapse_reason(scores, valid)
        if reason:
            return math.nan, reason
        tau = float(kendall(scores, split.accuracy))
        return (tau, "") if math.isfinite(tau) else (math.nan, "constant")

    def __call__(self, node: Node) -> Fitness:
        try:
            proxy = self.compile(node)
            train, reason = self.kendall(proxy, self.train)
            if reason:
                return Fitness(rejected=reason)
            val, _ = self.kendall(proxy, self.val)
        except ProxylangError:
            return Fitness(rejected="error")
        return Fitness(train=train, val=val)


def expression_operators() -> Operators[Node]:
    """The language's own genetic operators, random generator and canonical key, for :mod:`evolve`."""
    from proxylang import canonical_key, to_text
    from proxylang.genetic import crossover, mutate, random_expr

    return Operators(random=random_expr, mutate=mutate, crossover=crossover, key=canonical_key, text=to_text)


def load_search_splits(space: str, data_dir: str | Path, config: DataConfig,
                       cache_dir: str | Path) -> tuple[dict[str, Split], Any, dict[str, float]]:
    """Train/val/holdout splits with packed statistics, the norm_avt pre-sample (train archs), and the
    holdout Kd of every reference proxy score stored in the ground-truth file (NASLib's values)."""
    from proxylang import pack
    from proxylang.bench.transnas import load_zc_json
    from proxylang.evaluate import kendall
    from proxylang.extract import StatsCache

    truth = load_zc_json(Path(data_dir) / "transnas" / f"zc_transbench101_{space}.json", config.task)
    names = split_archs(list(truth), config)
    cache = StatsCache(Path(cache_dir), space=space, resolution=config.resolution, batch=config.batch)
    splits = {}
    for name, archs in names.items():
        stats = [cache.get(arch) for arch in tqdm(archs, desc=f"statistics ({name})", unit="arch",
                                                  file=sys.stderr)]
        accuracy = np.array([truth[a]["val_accuracy"] for a in archs], dtype=np.float64)
        splits[name] = Split(archs, accuracy, pack(stats))
        if name == "train":
            presample = pack(stats[: config.presample])
    holdout = names["holdout"]
    reference = {}
    for proxy in sorted(k for k, v in truth[holdout[0]].items() if isinstance(v, dict) and "score" in v):
        scores = np.array([truth[a][proxy]["score"] for a in holdout], dtype=np.float64)
        reference[proxy] = float(kendall(scores, splits["holdout"].accuracy))
    return splits, presample, reference
