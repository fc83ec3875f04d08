"""Ground truth of TransNAS-Bench-101 archs, from NASLib's zero-cost JSON files or from the official
benchmark file (``transnas-bench_v10141024.pth``), read without the official package.

The official file is a ``torch.save``-d dict: ``{"data": {space: {arch_str: {task: {"metrics":
{name: [one value per epoch]}, "model_info": {...}, "total_epochs": n}}}}, "metrics_dict": ...,
"info_names": ..., "task_list": ...}`` with arch strings such as ``64-41414-1_02_333`` (micro) and
``64-1234-basic`` (macro); segmentsemantic's validation metrics are ``valid_acc`` and ``valid_mIoU``.

Both readers return an :class:`ArchTable` of :class:`ArchRecord`, keyed by the JSON files' arch
keys (``"(1, 0, 0, 2, 1, 0)"``). A record *is* the NASLib JSON record (a dict), so code written
against that format (``rec["val_accuracy"]``, ``rec["jacov"]["score"]``) keeps working.
"""

from __future__ import annotations

import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from proxylang.bench.transnas.networks import KEY_LENGTH, SPACES, arch_key, parse_arch
from proxylang.errors import DataError
from proxylang.files import read_json

TASK = "segmentsemantic"
DATA_ENV = "PROXYLANG_DATA"
DEFAULT_DATA = Path("../shared/benchmarks")
NOT_PROXIES = ("flops", "params")  # scored like proxies in the JSON, but they are costs
API_VALID_METRICS = {"segmentsemantic": ("valid_acc", "valid_mIoU")}


class ArchRecord(dict):
    """One arch's ground truth in the NASLib JSON layout, with typed accessors."""

    @property
    def arch(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self["arch"].strip("()").split(","))

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy (pixel accuracy, %, for segmentsemantic)."""
        return float(self["val_accuracy"])

    @property
    def miou(self) -> float | None:
        """Validation mIoU where the source has it (the official benchmark file), else None."""
        return float(self["val_miou"]) if "val_miou" in self else None

    @property
    def params(self) -> float | None:
        """Parameters in millions, as the file records them."""
        return self.score("params")

    @property
    def flops(self) -> float | None:
        """MFLOPs at 256x256, as the file records them."""
        return self.score("flops")

    def score(self, name: str) -> float | None:
        """The stored score of proxy (or cost) ``name``, None if the record has none."""
        entry = self.get(name)
        return float(entry["score"]) if isinstance(entry, dict) and "score" in entry else None

    @property
    def proxies(self) -> list[str]:
        """Names of the reference proxy scores stored in the record."""
        return sorted(k for k, v in self.items()
                      if isinstance(v, dict) and "score" in v and k not in NOT_PROXIES)


class ArchTable(dict):
    """Records by arch key; an unknown arch is a one-line ``DataError``; a tuple key also works."""

    def __init__(self, records: dict[str, ArchRecord], space: str, source: str) -> None:
        super().__init__(records)
        self.space, self.source = space, source

    def __missing__(self, key: object) -> ArchRecord:
        if not isinstance(key, str):
            text = arch_key(parse_arch(self.space, key))
            if text in self:
                return self[text]
        raise DataError(f"{self.source}: no {self.space} arch {key!r}")


def data_dir(path: str | Path | None = None) -> Path:
    """The folder holding ``transnas/``: the argument, else ``$PROXYLANG_DATA``, else ../shared/benchmarks."""
    return Path(path if path is not None else os.environ.get(DATA_ENV, DEFAULT_DATA))


def zc_json_path(space: str, data: str | Path | None = None) -> Path:
    """The default zero-cost JSON file of ``space`` under the data folder."""
    if space not in SPACES:
        raise DataError(f"unknown TransNAS-Bench-101 space {space!r}; expected micro or macro")
    return data_dir(data) / "transnas" / f"zc_transbench101_{space}.json"


def space_of_file(path: str | Path) -> str:
    """'micro' or 'macro', from the file name (``zc_transbench101_micro.json``)."""
    found = [s for s in SPACES if s in Path(path).name.lower()]
    if len(found) != 1:
        raise DataError(f"{path}: cannot tell micro from macro by the file name; pass the space")
    return found[0]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{what} is not a finite number: {value!r}")
    return float(value)


def load_zc_json(path: str | Path, task: str = TASK, space: str | None = None) -> ArchTable:
    """Records of ``task`` in a NASLib zero-cost JSON file (``{task: {arch_key: record}}``), in
    file order; ``space`` defaults to what the file name says."""
    path = Path(path)
    space = space or space_of_file(path)
    document = read_json(path, "ground-truth")
    if not isinstance(document, dict) or not isinstance(document.get(task), dict):
        tasks = ", ".join(sorted(document)) if isinstance(document, dict) else "none"
        raise DataError(f"{path}: no task {task!r} (tasks: {tasks})")
    records, spelled = {}, {}
    for key, raw in document[task].items():
        try:
            arch = arch_key(parse_arch(space, key))
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        if not isinstance(raw, dict):
            raise DataError(f"{path}: arch {key} of {task} is not a record")
        if arch in spelled:
            raise DataError(f"{path}: arch {key} of {task} appears twice (also as {spelled[arch]!r})")
        spelled[arch] = key
        record = ArchRecord(raw)
        record["arch"] = arch
        record["val_accuracy"] = _number(raw.get("val_accuracy"), f"{path}: val_accuracy of {key}")
        records[arch] = record
    return ArchTable(records, space, str(path))


def api_arch_key(space: str, arch_str: str) -> str:
    """The JSON key of an official arch string: micro ``64-41414-1_02_333`` -> ``(1, 0, 2, 3, 3, 3)``,
    macro ``64-1234-basic`` -> ``(1, 2, 3, 4, 0, 0)``."""
    parts = arch_str.split("-")
    try:
        if space == "micro" and len(parts) == 3:
            digits = parts[2].replace("_", "")
        elif space == "macro" and len(parts) == 3 and parts[2] == "basic":
            digits = parts[1].ljust(KEY_LENGTH, "0")
        else:
            raise ValueError
        return arch_key(parse_arch(space, tuple(int(d) for d in digits)))
    except (ValueError, DataError):
        raise DataError(f"not a {space} arch string of the benchmark: {arch_str!r}") from None


def load_api_pth(path: str | Path, space: str, task: str = TASK, epoch: str = "best") -> ArchTable:
    """Records of ``task`` from the official benchmark file. ``epoch`` picks the validation metrics:
    ``"best"`` (the maximum over epochs, what NASLib's query returns and so the JSON files'
    ``val_accuracy``) or ``"final"`` (the last epoch). Params/FLOPs are copied when present
    (``model_info``), under the benchmark's own names."""
    if space not in SPACES:
        raise DataError(f"unknown TransNAS-Bench-101 space {space!r}; expected micro or macro")
    if epoch not in ("best", "final"):
        raise DataError(f"epoch must be 'best' or 'final', got {epoch!r}")
    path = Path(path)
    try:
        database = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable benchmark file ({str(exc).splitlines()[0]})") from None
    archs = database.get("data", {}).get(space) if isinstance(database, dict) else None
    if not isinstance(archs, dict):
        raise DataError(f"{path}: no {space} architectures (not a TransNAS-Bench-101 file?)")
    accuracy_name, miou_name = API_VALID_METRICS.get(task, ("valid_top1", None))
    pick = max if epoch == "best" else (lambda values: values[-1])
    records = {}
    for arch_str, results in archs.items():
        key = api_arch_key(space, arch_str)
        result = results.get(task) if isinstance(results, dict) else None
        if not isinstance(result, dict) or accuracy_name not in result.get("metrics", {}):
            raise DataError(f"{path}: no task {task!r} with {accuracy_name} for arch {arch_str}")
        metrics = result["metrics"]
        try:
            record = ArchRecord(arch=key, val_accuracy=_number(pick(metrics[accuracy_name]), accuracy_name))
            if miou_name in metrics:
                record["val_miou"] = _number(pick(metrics[miou_name]), miou_name)
        except (TypeError, ValueError, IndexError, DataError):
            raise DataError(f"{path}: bad {accuracy_name} curve for arch {arch_str}") from None
        for name, value in (result.get("model_info") or {}).items():
            record[name] = value
        records[key] = record
    return ArchTable(records, space, str(path))
