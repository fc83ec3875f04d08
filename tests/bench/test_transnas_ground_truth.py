"""Ground-truth readers: NASLib zero-cost JSON and the official benchmark .pth layout (a small file
written here in that layout), and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from proxylang.bench.transnas import (
    load_api_pth,
    load_zc_json,
    space_of_file,
    zc_json_path,
)
from proxylang.errors import DataError

RECORDS = {
    "(1, 0, 0, 2, 1, 0)": {"idx": "534", "arch": "(1, 0, 0, 2, 1, 0)", "val_accuracy": 93.1,
                           "params": {"score": 11.9, "time": 0.9}, "flops": {"score": 1198.8, "time": 0.8},
                           "jacov": {"score": -32.07, "time": 5.3}, "nwot": {"score": 477.4, "time": 3.7}},
    "(3, 3, 3, 3, 3, 3)": {"idx": "7", "arch": "(3, 3, 3, 3, 3, 3)", "val_accuracy": 94.5,
                           "params": {"score": 30.1, "time": 0.9}, "flops": {"score": 4700.0, "time": 0.8},
                           "jacov": {"score": -31.0, "time": 5.3}, "nwot": {"score": 480.0, "time": 3.7}},
}


def write_json(folder: Path, space: str, document: object) -> Path:
    path = folder / "transnas" / f"zc_transbench101_{space}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_zc_json_records_keep_the_naslib_layout_and_typed_accessors(tmp_path):
    path = write_json(tmp_path, "micro", {"segmentsemantic": RECORDS, "jigsaw": {}})
    table = load_zc_json(path)
    assert list(table) == list(RECORDS)
    record = table["(1, 0, 0, 2, 1, 0)"]
    assert record["jacov"]["score"] == -32.07  # the raw NASLib record
    assert (record.val_accuracy, record.params, record.flops) == (93.1, 11.9, 1198.8)
    assert record.arch == (1, 0, 0, 2, 1, 0)
    assert record.proxies == ["jacov", "nwot"] and record.score("snip") is None
    assert record.miou is None
    assert table[(3, 3, 3, 3, 3, 3)].val_accuracy == 94.5  # a tuple works as a key


def test_data_folder_from_argument_or_environment(tmp_path, monkeypatch):
    write_json(tmp_path, "macro", {"segmentsemantic": {}})
    monkeypatch.setenv("PROXYLANG_DATA", str(tmp_path))
    assert zc_json_path("macro") == tmp_path / "transnas" / "zc_transbench101_macro.json"
    assert zc_json_path("micro", tmp_path / "other").parent == tmp_path / "other" / "transnas"
    assert space_of_file(zc_json_path("macro")) == "macro"


@pytest.mark.parametrize("document, message", [
    ({"jigsaw": {}}, r"no task 'segmentsemantic' \(tasks: jigsaw\)"),
    ({"segmentsemantic": {"(1, 2)": {"val_accuracy": 1.0}}}, r"not a micro arch: '\(1, 2\)'"),
    ({"segmentsemantic": {"(1, 1, 1, 1, 1, 1)": {"val_accuracy": "high"}}},
     "val_accuracy of .* not a finite number"),
    ({"segmentsemantic": {"(1, 1, 1, 1, 1, 1)": {"val_accuracy": float("inf")}}},
     "val_accuracy of .* not a finite number"),
    ({"segmentsemantic": {"(1, 1, 1, 1, 1, 1)": {"val_accuracy": 1.0},
                          "(1,1,1,1,1,1)": {"val_accuracy": 9.0}}},
     r"arch \(1,1,1,1,1,1\) of segmentsemantic appears twice \(also as '\(1, 1, 1, 1, 1, 1\)'\)"),
])
def test_zc_json_content_errors_are_one_line(tmp_path, document, message):
    path = write_json(tmp_path, "micro", document)
    with pytest.raises(DataError, match=message) as caught:
        load_zc_json(path)
    assert "\n" not in str(caught.value)


def test_zc_json_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_zc_json(tmp_path / "zc_transbench101_micro.json")
    broken = tmp_path / "zc_transbench101_micro.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match="not a ground-truth file .invalid JSON at line 1, column 2"):
        load_zc_json(broken)
    broken.write_text("[" * 100_000 + "]" * 100_000)  # deeper than the JSON parser's recursion
    with pytest.raises(DataError, match="not a ground-truth file .unreadable JSON"):
        load_zc_json(broken)
    with pytest.raises(DataError, match="cannot tell micro from macro"):
        load_zc_json(tmp_path / "truth.json")
    table = load_zc_json(write_json(tmp_path, "micro", {"segmentsemantic": RECORDS}))
    with pytest.raises(DataError, match=r"no micro arch '\(2, 2, 2, 2, 2, 2\)'"):
        table["(2, 2, 2, 2, 2, 2)"]


def segment_result(acc: list[float], miou: list[float]) -> dict:
    metrics = {"train_acc": acc, "valid_acc": acc, "valid_mIoU": miou, "valid_loss": [1.0] * len(acc)}
    return {"total_epochs": len(acc), "model_info": {"model_params": 12.0}, "metrics": metrics}


@pytest.fixture
def api_file(tmp_path) -> Path:
    """A tiny file in the layout of ``transnas-bench_v10141024.pth``."""
    database = {
        "metrics_dict": {"segmentsemantic": ["train_acc", "valid_acc", "valid_mIoU", "valid_loss"]},
        "info_names": ["model_params"],
        "task_list": ["segmentsemantic", "jigsaw"],
        "data": {
            "micro": {"64-41414-1_00_210": {
                "segmentsemantic": segment_result([80.0, 92.0, 91.5], [20.0, 25.0, 24.0]), "jigsaw": {}}},
            "macro": {"64-1244-basic": {"segmentsemantic": segment_result([85.0, 93.0], [22.0, 27.0])},
                      "64-41414-basic": {"jigsaw": {}}},
        },
    }
    path = tmp_path / "transnas-bench_v10141024.pth"
    torch.save(database, path)
    return path


def test_api_pth_best_and_final_epochs(api_file):
    best = load_api_pth(api_file, "micro")["(1, 0, 0, 2, 1, 0)"]
    assert (best.val_accuracy, best.miou, best["model_params"]) == (92.0, 25.0, 12.0)
    final = load_api_pth(api_file, "micro", epoch="final")[(1, 0, 0, 2, 1, 0)]
    assert (final.val_accuracy, final.miou) == (91.5, 24.0)


def test_api_pth_missing_task_is_named(api_file):
    with pytest.raises(DataError, match="no task 'segmentsemantic' with valid_acc for arch 64-41414-basic"):
        load_api_pth(api_file, "macro")


def test_api_pth_file_errors(tmp_path, api_file):
    with pytest.raises(DataError, match="no such file"):
        load_api_pth(tmp_path / "missing.pth", "micro")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a readable benchmark file"):
        load_api_pth(corrupt, "micro")
    other = tmp_path / "other.pth"
    torch.save({"data": {"micro": {"64-41414-9_99_999": {}}}}, other)
    with pytest.raises(DataError, match="not a micro arch string of the benchmark: '64-41414-9_99_999'"):
        load_api_pth(other, "micro")
    torch.save([1, 2], other)
    with pytest.raises(DataError, match="no micro architectures"):
        load_api_pth(other, "micro")
