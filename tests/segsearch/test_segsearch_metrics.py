import math

import pytest
import torch

from segsearch.metrics import IGNORE_INDEX, ConfusionMatrix


def test_miou_on_hand_made_maps():
    label = torch.tensor([[0, 0, 1, 1],
                          [0, 2, 2, IGNORE_INDEX]])
    pred = torch.tensor([[0, 1, 1, 1],
                         [0, 2, 0, 2]])
    cm = ConfusionMatrix(4)
    cm.update(pred, label)
    # class 0: TP 2, FP 1 (label 2 predicted 0), FN 1 -> 2/4; class 1: TP 2, FP 1 -> 2/3;
    # class 2: TP 1, FN 1 -> 1/2; the ignored pixel counts nowhere; class 3 is absent -> NaN
    iou = cm.iou()
    assert iou[:3].tolist() == pytest.approx([0.5, 2 / 3, 0.5])
    assert math.isnan(iou[3])
    assert cm.mean_iou() == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)


def test_counts_accumulate_over_images_before_dividing():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([0, 0]), torch.tensor([0, 0]))  # image 1: class 0 perfect
    cm.update(torch.tensor([1, 1]), torch.tensor([0, 1]))  # image 2: one class-0 pixel missed
    assert cm.iou().tolist() == pytest.approx([2 / 3, 1 / 2])


def test_perfect_prediction_and_shape_mismatch():
    label = torch.randint(0, 5, (2, 8, 8))
    cm = ConfusionMatrix(5)
    cm.update(label.clone(), label)
    assert cm.mean_iou() == 1.0
    with pytest.raises(ValueError):
        cm.update(label[0], label)
