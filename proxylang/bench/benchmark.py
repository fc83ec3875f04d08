"""A benchmark as a value: everything the statistics, scoring and search stages need of one, passed to
them instead of imported, so each stage runs on any benchmark given to it (and a test can hand in a
small fake one).

Ground truth is read one way, into :class:`SpaceTruth`: a space's architectures in file order, their
trained accuracy and the file's records (NASLib's zero-cost JSON layout, whose reference proxy scores
``eval`` and ``baselines`` compare with).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from proxylang.errors import DataError
from proxylang.files import read_text


@dataclass(frozen=True)
class SpaceTruth:
    """One space's architectures (file order), their accuracy, and the file's records by arch."""

    space: str
    source: str
    archs: list[str]
    accuracy: np.ndarray
    records: Mapping[str, Mapping[str, Any]]

    def reference_scores(self, name: str) -> np.ndarray | None:
        """The file's stored score of proxy ``name`` for every architecture, if it has one for all."""
        if not all(isinstance(self.records[a].get(name), dict) for a in self.archs):
            return None
        return np.array([self.records[a][name].get("score", math.nan) for a in self.archs], dtype=np.float64)

    def reference_names(self) -> list[str]:
        """The proxies (and costs) whose reference score the file stores for every architecture."""
        first = self.records[self.archs[0]] if self.archs else {}
        return sorted(n for n, v in first.items()
                      if isinstance(v, dict) and "score" in v and self.reference_scores(n) is not None)

    def only(self, archs: Sequence[str]) -> SpaceTruth:
        """The same ground truth restricted to ``archs`` (in that order)."""
        index = {a: i for i, a in enumerate(self.archs)}
        return SpaceTruth(self.space, self.source, list(archs), self.accuracy[[index[a] for a in archs]],
                          self.records)


@dataclass(frozen=True)
class Benchmark:
    """A NAS benchmark: its spaces and task, how to build an architecture's freshly initialised
    network, and where and how its ground truth is read."""

    name: str
    title: str
    task: str
    spaces: tuple[str, ...]
    num_classes: int
    build_network: Callable[[str, str], nn.Module]  # (space, arch key) -> initialised network
    parse_arch: Callable[[str, str], Hashable]  # (space, any spelling of a key) -> canonical form
    truth_file: Callable[[str, Path | None], Path]  # (space, data folder) -> default ground-truth file
    read_truth: Callable[[Path, str, str], Mapping[str, Mapping[str, Any]]]  # (file, task, space)
    all_archs: Callable[[str], list[str]]  # space -> every arch key of the space, from its rules

    def load_truth(self, space: str, data_dir: Path | None = None, file: Path | None = None) -> SpaceTruth:
        """Ground truth of ``space`` from ``file``, else from the benchmark's file under ``data_dir``."""
        path = file or self.truth_file(space, data_dir)
        records = self.read_truth(path, self.task, space)
        if not records:
            raise DataError(f"{path}: no {self.task} architectures")
        archs = list(records)
        accuracy = np.array([records[a]["val_accuracy"] for a in archs], dtype=np.float64)
        return SpaceTruth(space, str(path), archs, accuracy, records)

    def listed(self, truth: SpaceTruth, path: Path) -> SpaceTruth:
        """``truth`` restricted to the architectures named in ``path`` (one key per line, any spelling,
        ``#`` comments), in ``truth``'s order; a key the ground truth lacks is an error naming its line."""
        by_key = {self.parse_arch(truth.space, a): a for a in truth.archs}
        wanted = set()
        for number, line in enumerate(read_text(path, "architecture list").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                key = self.parse_arch(truth.space, text)
            except DataError as exc:
                raise DataError(f"{path}:{number}: {exc}") from None
            if key not in by_key:
                raise DataError(f"{path}:{number}: {text} is not in the {truth.space} ground truth")
            wanted.add(key)
        if len(wanted) < 2:
            raise DataError(f"{path}: lists {len(wanted)} architecture(s); a correlation needs at least 2")
        return truth.only([by_key[k] for k in by_key if k in wanted])
