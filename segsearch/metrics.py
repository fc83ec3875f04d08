"""Segmentation metrics from a confusion matrix accumulated over a whole split.

mIoU is the mean over classes of TP / (TP + FP + FN) with the counts summed over *all* images first
(the Cityscapes/CamVid convention, not a mean of per-image IoUs); a class that appears neither in the
labels nor in the predictions has no IoU and is left out of the mean.
"""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE_INDEX = 255


class ConfusionMatrix:
    """Counts ``matrix[label, prediction]`` over pixels whose label is a real class."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: Tensor, label: Tensor) -> None:
        """Add a batch: ``prediction`` and ``label`` are integer maps of the same shape; labels
        outside ``[0, num_classes)`` (e.g. :data:`IGNORE_INDEX`) are skipped."""
        if prediction.shape != label.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and label {tuple(label.shape)} differ")
        keep = (label >= 0) & (label < self.num_classes)
        index = label[keep].long().cpu() * self.num_classes + prediction[keep].long().cpu()
        self.matrix += torch.bincount(index, minlength=self.num_classes**2).view(self.num_classes, -1)

    def iou(self) -> Tensor:
        """Per-class IoU (float64), NaN for a class absent from both labels and predictions."""
        m = self.matrix.double()
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))

    def mean_iou(self) -> float:
        return float(self.iou().nanmean())

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(self.matrix.diag().sum() / total) if total > 0 else float("nan")
