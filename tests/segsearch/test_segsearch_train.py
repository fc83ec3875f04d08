import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from proxylang.errors import DataError
from segsearch.cli import main
from segsearch.data import SegmentationDataset
from segsearch.space import Arch, save_arch
from segsearch.train import TrainConfig, distillation_loss, load_checkpoint, train

SIZE = (32, 64)


pytestmark = pytest.mark.usefixtures("one_thread")


def _write_pair(image_path, label_path, label, seed):
    """An image whose colour says the class (plus noise), so a network can learn the labels."""
    rng = np.random.default_rng(seed)
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    colour = (label[..., None] * np.array([37, 91, 53]) % 256).astype(np.int64)
    image = np.clip(colour + rng.integers(-20, 21, colour.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(image_path)
    Image.fromarray(label.astype(np.uint8)).save(label_path)


def _label(values, seed):
    """Vertical stripes of the given label values, shifted by the seed."""
    columns = (np.arange(SIZE[1]) // 16 + seed) % len(values)
    return np.broadcast_to(np.asarray(values)[columns], SIZE).copy()


def make_cityscapes(root, per_split=2):
    for split in ("train", "val"):
        for i in range(per_split):
            name = f"aachen_{i:06d}_000019"
            _write_pair(root / "leftImg8bit" / split / "aachen" / f"{name}_leftImg8bit.png",
                        root / "gtFine" / split / "aachen" / f"{name}_gtFine_labelIds.png",
                        _label([0, 7, 26, 33], i), i)
    return root


def make_camvid(root, per_split=2):
    for split in ("train", "val", "test"):
        for i in range(per_split):
            _write_pair(root / split / f"0001TP_{i:04d}.png", root / f"{split}annot" / f"0001TP_{i:04d}.png",
                        _label([0, 3, 10, 11], i), i)
    return root


def tiny_arch():
    alpha = ((1, 1, 1),) * 4
    return Arch(alpha, ((0, 1, 0, 0), (0, 0, 0, 0)), ((0, 0, 0),) * 4)


def test_cityscapes_label_ids_map_to_train_ids(tmp_path):
    data = SegmentationDataset("cityscapes", make_cityscapes(tmp_path), "train", SIZE)
    image, label = data[0]
    assert image.shape == (3, *SIZE) and data.num_classes == 19
    assert set(label.unique().tolist()) == {0, 13, 18, 255}  # 7 road, 26 car, 33 bicycle, 0 unlabeled


def test_camvid_void_is_ignored(tmp_path):
    data = SegmentationDataset("camvid", make_camvid(tmp_path), "test", SIZE)
    assert len(data) == 2 and data.num_classes == 11
    assert set(data[1][1].unique().tolist()) == {0, 3, 10, 255}


def test_missing_layout_and_labels_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="leftImg8bit"):
        SegmentationDataset("cityscapes", tmp_path, "train")
    root = make_camvid(tmp_path / "cv")
    next((root / "valannot").iterdir()).unlink()
    with pytest.raises(DataError, match="missing label"):
        SegmentationDataset("camvid", root, "val")


def test_distillation_loss_is_zero_only_for_equal_predictions():
    logits = torch.randn(2, 5, 4, 4)
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    assert float(distillation_loss(logits, logits, labels, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(logits, torch.randn(2, 5, 4, 4), labels, 2.0)) > 0.01


def test_train_learns_the_tiny_set_and_checkpoints_round_trip(tmp_path):
    root = make_camvid(tmp_path / "camvid", per_split=1)
    # train and val hold the same picture, so fitting it must raise mIoU
    for name in ("val", "valannot"):
        src = root / ("train" if name == "val" else "trainannot") / "0001TP_0000.png"
        (root / name / "0001TP_0000.png").write_bytes(src.read_bytes())
    config = TrainConfig(epochs=8, batch_size=1, lr=0.05, size=SIZE)
    history = train(tiny_arch(), "camvid", root, tmp_path / "run", config, torch.device("cpu"),
                    progress=False)
    assert len(history) == 8
    assert max(h["miou"] for h in history) > history[0]["miou"] + 0.1
    assert history[-1]["loss"] < history[0]["loss"] / 2
    model, info = load_checkpoint(tmp_path / "run" / "last.pt", torch.device("cpu"))
    assert info["epoch"] == 8 and info["role"] == "student" and model.num_classes == 11
    assert json.loads((tmp_path / "run" / "history.json").read_text())["epochs"][-1]["epoch"] == 8


def test_cli_train_with_teacher_then_eval(tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    save_arch(tiny_arch(), tmp_path / "arch.json")
    runner = CliRunner()
    common = ["--dataset", "cityscapes", "--data-root", str(root), "--epochs", "1", "--batch-size", "2",
              "--size", "32x64", "--device", "cpu"]
    result = runner.invoke(main, ["train", str(tmp_path / "arch.json"), *common, "--role", "teacher",
                                  "--out", str(tmp_path / "teacher")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["train", str(tmp_path / "arch.json"), *common,
                                  "--teacher", str(tmp_path / "teacher" / "best.pt"),
                                  "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "best val mIoU" in result.output
    result = runner.invoke(main, ["eval", str(tmp_path / "s" / "last.pt"), "--dataset", "cityscapes",
                                  "--data-root", str(root), "--size", "32x64", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "cityscapes val: mIoU" in result.output


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    save_arch(tiny_arch(), tmp_path / "arch.json")
    cases = [
        ["train", str(tmp_path / "nope.json"), "--dataset", "camvid", "--data-root", str(tmp_path)],
        ["train", str(tmp_path / "arch.json"), "--dataset", "camvid", "--data-root", str(tmp_path / "none")],
        ["eval", str(tmp_path / "arch.json"), "--dataset", "camvid", "--data-root", str(tmp_path)],
        ["latency", str(tmp_path / "arch.json"), "--size", "12by4"],
        ["latency", str(tmp_path / "arch.json"), "--device", "cpu", "--fp16"],
    ]
    for args in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)
