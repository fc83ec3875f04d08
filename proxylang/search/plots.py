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
