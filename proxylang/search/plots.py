"""The two figures of a search report: the search curve (SasWOT Fig. 4) and proxy vs accuracy (Fig. 3).

Files only (matplotlib's Agg backend), so plotting works on a headless machine and in CI.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def plot_search_curves(histories: Mapping[str, Sequence[Mapping]], path: str | Path,
                       title: str = "proxy search") -> Path:
    """Best training Kd (solid) and its validation Kd (dashed) against fitness evaluations, per strategy.

    ``histories`` maps a strategy name to its per-generation records (``evaluations``, ``best_train``,
    ``best_val``), as written by :class:`proxylang.search.engine.Search`.
    """
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for (name, records), color in zip(histories.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"],
                                       strict=False):
        done = [r for r in records if r["best_train"] is not None]
        evals = [r["evaluations"] for r in done]
        ax.step(evals, [r["best_train"] for r in done], where="post", color=color, label=f"{name} (train)")
        ax.step(evals, [r["best_val"] for r in done], where="post", color=color, linestyle="--",
                label=f"{name} (validation)")
    ax.set_xlabel("fitness evaluations")
    ax.set_ylabel("Kendall tau of the best proxy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def best_so_far(curve: Sequence[tuple[int, float]], grid: np.ndarray) -> np.ndarray:
    """A run's best fitness within each budget of ``grid`` evaluations (NaN before its first record),
    from ``(evaluations, best)`` records in order."""
    evals = np.array([e for e, _ in curve], dtype=np.float64)
    best = np.maximum.accumulate(np.array([b for _, b in curve], dtype=np.float64))
    index = np.searchsorted(evals, grid, side="right") - 1
    return np.where(index >= 0, best[np.maximum(index, 0)], np.nan)


def spread(runs: Sequence[Sequence[tuple[int, float]]],
           grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where on ``grid`` every run has a record (a mask), and there the lowest, mean and highest best."""
    values = np.array([best_so_far(run, grid) for run in runs])
    seen = ~np.isnan(values).any(axis=0)
    low, mean, high = (f(values[:, seen], axis=0) for f in (np.min, np.mean, np.max))
    return seen, low, mean, high


def plot_strategy_spread(curves: Mapping[str, Sequence[Sequence[tuple[int, float]]]], path: str | Path,
                         title: str) -> Path:
    """Best training Kd against fitness evaluations for several runs (seeds) of each strategy: the mean
    over the runs as a line, the lowest and highest as a band, so one lucky seed cannot decide."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    end = max(e for runs in curves.values() for run in runs for e, _ in run)
    grid = np.arange(1, end + 1)
    for (name, runs), color in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"],
                                   strict=False):
        seen, low, mean, high = spread(runs, grid)
        ax.plot(grid[seen], mean, color=color, label=f"{name} (mean of {len(runs)})")
        ax.fill_between(grid[seen], low, high, color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("fitness evaluations")
    ax.set_ylabel("best Kendall tau (train)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


CAPTION_WIDTH = 80  # characters per caption line: 7.5-point monospace across a 6-inch figure
CAPTION_LINE = 0.15  # inches per caption line


def proxy_caption(text: str, width: int = CAPTION_WIDTH) -> list[str]:
    """The proxy's text in lines of at most ``width`` characters, whole: its own lines (``let``
    bindings) kept and each long one broken at spaces, so nothing is cut off."""
    return [piece for line in text.splitlines()
            for piece in textwrap.wrap(line, width, subsequent_indent="    ") or [""]]


def plot_proxy_vs_accuracy(scores: Sequence[float], accuracy: Sequence[float], path: str | Path,
                           title: str, proxy: str = "") -> Path:
    """One point per architecture, proxy score against trained accuracy; the title carries the Kd and
    the proxy's whole text goes under the plot, wrapped, however long it is."""
    caption = proxy_caption(proxy) if proxy else []
    below = 0.55 + CAPTION_LINE * len(caption)  # inches under the axes: tick labels, x label, caption
    height = 3.6 + below
    fig, ax = plt.subplots(figsize=(6, height), dpi=120)
    fig.subplots_adjust(left=0.13, right=0.97, top=1 - 0.4 / height, bottom=below / height)
    ax.scatter(np.asarray(scores), np.asarray(accuracy), s=10, alpha=0.7)
    ax.set_xlabel("proxy score")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if caption:
        fig.text(0.02, 0.1 / height, "\n".join(caption), family="monospace", fontsize=7.5, va="bottom")
    return _save(fig, path, tight=False)


def _save(fig: plt.Figure, path: str | Path, tight: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
