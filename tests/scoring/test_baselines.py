"""Network baselines against hand computations on tiny networks."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import noise_batch
from torch import nn

from proxylang.scoring.baselines import (
    BASELINES,
    EXPRESSION_BASELINES,
    JACOBIAN_EPS,
    NETWORK_BASELINES,
    _image_labels,
    epe_nas,
    fisher,
    grasp,
    jacov,
    score_network,
    synflow,
    zen,
)


def linear_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3))


def conv_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.ConvTranspose2d(4, 4, 1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                         nn.Conv2d(4, 3, 1))


def class_batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 2, 2, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def test_registry_covers_table_3():
    assert set(NETWORK_BASELINES) | set(EXPRESSION_BASELINES) == set(BASELINES)
    assert not set(NETWORK_BASELINES) & set(EXPRESSION_BASELINES)


def test_synflow_of_one_linear_layer_is_its_l1_norm_and_leaves_the_model_alone():
    net = linear_net()
    before = [p.clone() for p in net.parameters()]
    assert synflow(net, *class_batch()) == pytest.approx(float(net[1].weight.detach().abs().sum()))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert net[1].weight.dtype == torch.float32


def test_synflow_ignores_batch_norm():
    net = conv_net()
    score = synflow(net, *noise_batch(2, 4, 3))
    no_bn = nn.Sequential(*(m for m in net if not isinstance(m, nn.BatchNorm2d)))
    assert score == pytest.approx(synflow(no_bn, *noise_batch(2, 4, 3)))


def test_fisher_matches_a_direct_computation():
    net = linear_net()
    x, y = class_batch()
    out = net(x)
    out.retain_grad()
    nn.functional.cross_entropy(out, y).backward()
    per_channel = 0.5 * (out.detach() * out.grad).pow(2).mean(0)
    assert fisher(net, x, y) == pytest.approx(float(per_channel.sum()) * 12, rel=1e-5)


def test_grasp_is_minus_weight_times_hessian_gradient():
    net = linear_net()
    x, y = class_batch()
    w0 = net[1].weight.detach().clone()

    def loss(w: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(nn.functional.linear(x.flatten(1), w, net[1].bias), y)

    g = torch.autograd.grad(loss(w0.requires_grad_()), w0)[0].flatten()
    h = torch.autograd.functional.hessian(loss, w0.detach()).reshape(36, 36)
    expected = float((-w0.detach().flatten() * (h @ g)).sum())
    assert grasp(net, x, y) == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_jacov_of_a_linear_net_sees_identical_jacobians():
    n = 4
    eig = torch.tensor([n] + [0.0] * (n - 1), dtype=torch.float64) + JACOBIAN_EPS
    expected = float(-(torch.log(eig) + 1 / eig).sum())
    assert jacov(linear_net(), *class_batch(n)) == pytest.approx(expected, rel=1e-6)
    assert jacov(conv_net(), *noise_batch(4, 4, 3)) > expected  # a nonlinear net decorrelates


def test_epe_nas_labels_and_scores():
    maps = torch.tensor([[[1, 1], [2, -100]], [[-100, -100], [0, 0]]])
    assert _image_labels(maps) == [1, 0]
    x, _ = class_batch(4)
    # a linear net gives every image the same Jacobian: correlations 1, so s_c = n_c^2 log(1 + k)
    k = 1e-5
    assert epe_nas(linear_net(), x, torch.zeros(4, dtype=torch.long)) == pytest.approx(16 * math.log(1 + k))
    assert epe_nas(linear_net(), x, torch.tensor([0, 0, 1, 1])) == pytest.approx(2 * 4 * math.log(1 + k))
    assert epe_nas(linear_net(), x, torch.tensor([0, 1, 2, 3])) == 0.0  # one image per class: skipped
    assert math.isfinite(epe_nas(conv_net(), *noise_batch(4, 4, 3)))


def test_zen_is_deterministic_and_does_not_touch_the_model():
    net = conv_net()
    before = [p.clone() for p in net.parameters()]
    batch = noise_batch(2, 4, 3)
    assert zen(net, *batch) == zen(net, *batch)
    assert math.isfinite(zen(net, *batch))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_score_network_turns_failures_into_nan():
    scores = score_network(["jacov", "fisher"], linear_net(), *class_batch(1))
    assert math.isnan(scores["jacov"]) and math.isfinite(scores["fisher"])


def test_a_network_whose_output_ignores_its_input_scores_nan_not_crash():
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(torch.zeros_like(x))

    scores = score_network(["jacov", "grasp", "synflow"], Constant(), *noise_batch(4, 4, 3))
    assert math.isnan(scores["jacov"]) and math.isfinite(scores["grasp"]) and math.isfinite(scores["synflow"])
