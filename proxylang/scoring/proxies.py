"""Scoring proxies: the public API (:func:`score`: any proxy on any ``nn.Module`` s) and the loop that
scores stored statistics (:func:`score_stats`, over a stream of them, e.g. a search's thinned ones).

:func:`score` scores each network while its statistics are live (the benchmark sweeps do the same,
``proxylang.scoring.sweep``). :func:`score_stats` takes networks in chunks, so memory holds one chunk's
statistics, not a whole search space. A proxy that uses ``norm_avt`` is first calibrated (min/max of
each normalised term) on a pre-sample of networks, as SasWOT does; :func:`score` calibrates on the
networks it is given.

Example, on your own networks::

    import torch, proxylang
    from torch import nn

    def net(width):
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 10, 1))

    batch = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4, 16, 16))
    result = proxylang.score("sum(abs(W * G))", [net(8), net(16)], batch)
    result.values, result.valid  # one score and one validity flag per network
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from proxylang.errors import MemoryBudgetError
from proxylang.lang.ast import Call, Node, walk
from proxylang.lang.compile import compile_proxy
from proxylang.lang.pack import PackedStats, pack
from proxylang.lang.parse import parse
from proxylang.runtime import resolve_device
from proxylang.stats.extract import LossFn, extract_stats
from proxylang.stats.netstats import NetStats

# norm_avt calibrates min/max on this many randomly drawn architectures (SasWOT's pre-sample); their
# statistics are held in memory together (100-500 MB each), hence a small number
AVT_PRESAMPLE = 8


@dataclass(frozen=True)
class Scores:
    """One proxy's score of each network, and whether it is valid (finite, no undefined step)."""

    values: np.ndarray
    valid: np.ndarray


def uses_avt(node: Node) -> bool:
    """Whether a proxy needs calibrating on a pre-sample (``norm_avt``) before it can score."""
    return any(isinstance(n, Call) and n.op == "norm_avt" for n in walk(node))


def presample(archs: Sequence[str], size: int, seed: int) -> list[str]:
    """A seeded random subset of architectures, e.g. for norm_avt's min/max calibration."""
    order = np.random.default_rng(seed).permutation(len(archs))
    return [archs[i] for i in order[: min(size, len(archs))]]


def score_proxies(proxies: Mapping[str, Any], stats: Iterable[NetStats], total: int | None = None,
                  chunk: int = 16, chunk_bytes: int = 2**29, desc: str | None = "scoring",
                  prepare: Callable[[list[NetStats]], Any] = list,
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scores and validity of several compiled proxies over one pass of a stream of statistics (each
    network's statistics are extracted or read once, whatever the number of proxies). Networks go
    through at most ``chunk`` at a time or ``chunk_bytes`` of statistics, so memory holds one chunk,
    not the whole benchmark. ``prepare`` turns a chunk into what every proxy is called with (e.g.
    ``pack``, so compiled proxies share one packing). A proxy that normalises (``norm_avt``) must have
    been calibrated first. ``desc`` labels the progress bar; None shows none."""
    scores: dict[str, list[np.ndarray]] = {name: [] for name in proxies}
    valid: dict[str, list[np.ndarray]] = {name: [] for name in proxies}

    def flush(batch: list[NetStats]) -> None:
        """Score a chunk; one whose intermediates would not fit the memory budget is scored in halves
        (a single network that does not fit is the error)."""
        try:
            ready = prepare(batch)
            results = {name: proxy(ready) for name, proxy in proxies.items()}
        except MemoryBudgetError:
            if len(batch) == 1:
                raise
            flush(batch[:len(batch) // 2])
            flush(batch[len(batch) // 2:])
            return
        for name, (s, v) in results.items():
            scores[name].append(s.detach().cpu().numpy().astype(np.float64))
            valid[name].append(v.detach().cpu().numpy().astype(bool))

    batch: list[NetStats] = []
    held = 0
    for item in tqdm(stats, total=total, desc=desc, unit="arch", file=sys.stderr, leave=False,
                     disable=desc is None):
        batch.append(item)
        held += item.nbytes()
        if len(batch) == chunk or held >= chunk_bytes:
            flush(batch)
            batch, held = [], 0
    if batch:
        flush(batch)
    return {name: (np.concatenate(scores[name]) if scores[name] else np.zeros(0),
                   np.concatenate(valid[name]) if valid[name] else np.zeros(0, dtype=bool))
            for name in proxies}


def score_stats(proxies: Mapping[str, Node], stats: Iterable[NetStats], total: int | None = None,
                calibration: Sequence[NetStats] = (), sites: Mapping[str, tuple[str, ...]] | None = None,
                chunk: int = 16, desc: str | None = "scoring") -> dict[str, Scores]:
    """Scores of proxy expressions over one pass of a stream of statistics, ``chunk`` networks at a time
    (packed once per chunk for all of them). Proxies with ``norm_avt`` are calibrated on ``calibration``
    first. ``sites`` maps a proxy to the module types whose conv sites it reads (the classic proxies'
    NASLib convention); the others read every site."""
    sites = sites or {}

    def on_sites(name: str, batch: Sequence[NetStats]) -> Sequence[NetStats]:
        return [s.only_sites(sites[name]) for s in batch] if name in sites else batch

    compiled = {name: compile_proxy(node) for name, node in proxies.items()}
    for name, node in proxies.items():
        if uses_avt(node):
            compiled[name].calibrate(on_sites(name, calibration))

    def prepare(batch: list[NetStats]) -> tuple[list[NetStats], PackedStats | None]:
        return batch, (pack(batch) if len(sites) < len(proxies) else None)

    def scorer(name: str) -> Callable[[tuple[list[NetStats], PackedStats | None]], Any]:
        if name in sites:
            return lambda ready: compiled[name](on_sites(name, ready[0]))
        return lambda ready: compiled[name](ready[1])

    scored = score_proxies({name: scorer(name) for name in proxies}, stats, total=total, chunk=chunk,
                           desc=desc, prepare=prepare)
    return {name: Scores(values, valid) for name, (values, valid) in scored.items()}


def score(proxy: str | Node, models: Iterable[nn.Module | Callable[[], nn.Module]],
          batch: tuple[torch.Tensor, torch.Tensor], loss: LossFn | None = None,
          device: str | None = None, progress: bool = False) -> Scores:
    """Score each network in ``models`` (modules, or functions that build one, so that only one
    network need exist at a time) with ``proxy`` (proxylang text or a parsed expression), at its
    current weights, on one minibatch ``(inputs, targets)``; ``loss(output, targets)`` defaults to
    cross-entropy (pixel-wise for segmentation logits). A proxy with ``norm_avt`` is calibrated on
    the same networks (their statistics are then held together). ``progress`` shows a progress bar."""
    node = parse(proxy, "<proxy>") if isinstance(proxy, str) else proxy
    where = resolve_device(device)
    inputs, targets = batch
    desc = "networks" if progress else None

    def model_of(item: nn.Module | Callable[[], nn.Module]) -> nn.Module:
        return (item if isinstance(item, nn.Module) else item()).to(where)

    if uses_avt(node):  # calibrated on the same networks: their statistics are held together
        held = [extract_stats(model_of(m), inputs, targets, loss, keep_on_device=True) for m in models]
        return score_stats({"proxy": node}, held, calibration=held, desc=desc)["proxy"]
    compiled = compile_proxy(node)
    scored = []
    for item in tqdm(models, desc=desc, unit="net", file=sys.stderr, leave=False, disable=desc is None):
        live = extract_stats(model_of(item), inputs, targets, loss, keep_on_device=True, copy=False,
                             needs=compiled.inputs)
        scored.append(compiled.score_network(live))  # while live: nothing is copied or kept
    return Scores(np.array([s for s, _ in scored], dtype=np.float64),
                  np.array([v for _, v in scored], dtype=bool))
