"""How well a proxy ranks architectures: rank correlations, the sampled protocol, paired comparisons.

Correlations are computed against ground-truth accuracy with scipy. A score that is flagged invalid
or is not finite ranks *last* (it is replaced by a value below every valid score, so all invalid
networks tie at the bottom) and is counted; it never drops an architecture, since a proxy that fails
on a network must pay for it.

The SasWOT protocol: draw ``sample`` (50) architectures at random, correlate, repeat ``repeats``
times with seeded draws, report mean ± std; the full set is reported alongside. Whether one proxy
really ranks better than another on the same architectures is a paired question: :func:`paired_bootstrap`
resamples the architectures and recomputes both Kd on each resample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from proxylang.errors import ProxylangError

METRICS = ("kendall", "spearman", "pearson")


def _pair(scores: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ProxylangError(f"scores {x.shape} and accuracies {y.shape} must be matching vectors")
    return x, y


def _statistic(fn: Callable, scores: Any, truth: Any) -> float:
    x, y = _pair(scores, truth)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan  # a constant ranks nothing
    return float(fn(x, y)[0])


def kendall(scores: Any, truth: Any) -> float:
    """Kendall tau-b (NaN when either side is constant)."""
    return _statistic(sps.kendalltau, scores, truth)


def spearman(scores: Any, truth: Any) -> float:
    """Spearman rho (NaN when either side is constant)."""
    return _statistic(sps.spearmanr, scores, truth)


def pearson(scores: Any, truth: Any) -> float:
    """Pearson r on the raw scores (NaN when either side is constant)."""
    return _statistic(sps.pearsonr, scores, truth)


def invalid_last(scores: Any, valid: Any = None) -> tuple[np.ndarray, int]:
    """Scores with every invalid or non-finite entry replaced by one value below all valid scores,
    and how many were replaced."""
    x = np.asarray(scores, dtype=np.float64).copy()
    ok = np.isfinite(x) if valid is None else np.isfinite(x) & np.asarray(valid, dtype=bool)
    bad = int((~ok).sum())
    if bad:
        floor = x[ok].min() - max(1.0, float(np.ptp(x[ok]))) if ok.any() else 0.0
        x[~ok] = floor
    return x, bad


@dataclass(frozen=True)
class Correlations:
    """Kendall, Spearman and Pearson of one set of scores; ``invalid`` of the ``n`` scores ranked last."""

    kendall: float
    spearman: float
    pearson: float
    n: int
    invalid: int


def correlations(scores: Any, truth: Any, valid: Any = None) -> Correlations:
    """All three correlations, invalid scores ranked last."""
    x, bad = invalid_last(scores, valid)
    if bad == len(x):
        return Correlations(math.nan, math.nan, math.nan, len(x), bad)
    return Correlations(kendall(x, truth), spearman(x, truth), pearson(x, truth), len(x), bad)


@dataclass(frozen=True)
class ProtocolResult:
    """Mean and std over the sampled repeats, and the full-set figures."""

    mean: dict[str, float]
    std: dict[str, float]
    full: Correlations
    sample: int
    repeats: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "full": asdict(self.full),
                "sample": self.sample, "repeats": self.repeats}


def sampled_protocol(scores: Any, truth: Any, valid: Any = None, sample: int = 50, repeats: int = 10,
                     seed: int = 0) -> ProtocolResult:
    """Correlations on ``repeats`` seeded random draws of ``sample`` architectures (all of them when
    fewer exist), mean ± std (population std; NaN draws are left out of both), plus the full set."""
    if sample < 2 or repeats < 1:
        raise ProxylangError("the protocol needs a sample of at least 2 architectures and 1 repeat")
    x, bad = invalid_last(scores, valid)
    y = _pair(x, truth)[1]
    size = min(sample, len(x))
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(repeats):
        idx = rng.choice(len(x), size=size, replace=False)
        rows.append([kendall(x[idx], y[idx]), spearman(x[idx], y[idx]), pearson(x[idx], y[idx])])
    table = np.array(rows)
    mean, std = {}, {}
    for j, name in enumerate(METRICS):
        column = table[:, j][np.isfinite(table[:, j])]
        mean[name] = float(column.mean()) if len(column) else math.nan
        std[name] = float(column.std()) if len(column) else math.nan
    full = correlations(scores, truth, valid)
    return ProtocolResult(mean, std, full, size, repeats)


@dataclass(frozen=True)
class PairedComparison:
    """Kd of proxy a minus Kd of proxy b on the same architectures, with its bootstrap uncertainty."""

    difference: float  # on all architectures
    low: float  # 2.5th and 97.5th percentiles of the resampled differences
    high: float
    ahead: float  # fraction of resamples where a's Kd exceeds b's
    resamples: int


def paired_bootstrap(scores_a: Any, scores_b: Any, truth: Any, valid_a: Any = None, valid_b: Any = None,
                     resamples: int = 1000, seed: int = 0) -> PairedComparison:
    """Resample the architectures with replacement and compare both proxies' Kd on each resample (the
    same draw for both, so what they share cancels). Invalid scores rank last, as everywhere."""
    if resamples < 1:
        raise ProxylangError("the bootstrap needs at least 1 resample")
    a, _ = invalid_last(scores_a, valid_a)
    b, _ = invalid_last(scores_b, valid_b)
    y = _pair(a, truth)[1]
    _pair(b, y)  # b must match too
    difference = kendall(a, y) - kendall(b, y)
    rng = np.random.default_rng(seed)
    draws = np.array([kendall(a[idx], y[idx]) - kendall(b[idx], y[idx])
                      for idx in (rng.integers(len(y), size=len(y)) for _ in range(resamples))])
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return PairedComparison(difference, math.nan, math.nan, math.nan, 0)
    low, high = np.percentile(draws, [2.5, 97.5])
    return PairedComparison(difference, float(low), float(high), float((draws > 0).mean()), len(draws))
