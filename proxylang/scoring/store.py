"""Scores on disk, written as they come: what makes a sweep resumable and its results reusable.

One JSON-lines file per benchmark space and measurement setting: a header line naming the format and
the setting, then one line per scored architecture with the scores of each proxy that was asked for,
keyed by what decides the score (a proxy's canonical key, its sites and calibration; a network
baseline's name). A line is appended and flushed as soon as its network is scored, so a killed run
loses at most the networks in flight; a line torn by the kill is skipped when the file is read back,
and a file written for another setting or format is started afresh.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from proxylang.errors import DataError
from proxylang.files import read_text

SCORES_FORMAT = "proxylang-scores-1"
Score = tuple[float, bool]  # a proxy's value on one network, and whether it is valid


def _number(value: float) -> float | str:
    """JSON has no NaN or infinity: those are written as text."""
    return value if math.isfinite(value) else repr(value)


class ScoreStore:
    """The scores of one setting (see the module docstring), read once and appended to as they come."""

    def __init__(self, path: Path, setting: dict[str, Any]) -> None:
        self.path = path
        self.header = {"format": SCORES_FORMAT, **setting}
        self.scores: dict[str, dict[str, Score]] = {}
        self._fresh = True  # the file must be (re)started with the header before the first line
        self._read()

    def _read(self) -> None:
        if not self.path.exists():
            return
        try:
            lines = read_text(self.path, "score store").splitlines()
        except DataError:
            return  # unreadable (not UTF-8, a folder, ...): recomputed and rewritten
        try:
            header = json.loads(lines[0]) if lines else None
        except ValueError:
            header = None
        if header != self.header:
            return
        self._fresh = False
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                arch, scores = entry["arch"], entry["scores"]
                parsed = {key: (float(value), bool(valid)) for key, (value, valid) in scores.items()}
            except (ValueError, TypeError, KeyError, AttributeError):
                continue  # torn by an interrupted write, or not ours: that network is scored again
            if isinstance(arch, str):
                self.scores.setdefault(arch, {}).update(parsed)

    def missing(self, archs: Iterable[str], keys: Sequence[str]) -> list[str]:
        """The architectures that lack a score for any of ``keys``, in the given order."""
        return [a for a in archs if not all(k in self.scores.get(a, {}) for k in keys)]

    def add(self, arch: str, scores: dict[str, Score]) -> None:
        """Record and append one network's scores; written and flushed before returning."""
        self.scores.setdefault(arch, {}).update(scores)
        line = json.dumps({"arch": arch, "scores": {k: [_number(v), ok] for k, (v, ok) in scores.items()}})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._fresh:
            self.path.write_text(json.dumps(self.header) + "\n", encoding="utf-8")
            self._fresh = False
        with open(self.path, "a+", encoding="utf-8") as f:
            f.seek(0, 2)
            if f.tell() and not self._ends_with_newline():
                line = "\n" + line  # after a line torn by a kill
            f.write(line + "\n")
            f.flush()

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, 2)
            return f.read(1) == b"\n"

    def get(self, arch: str, key: str) -> Score:
        return self.scores[arch][key]
