"""Shared fixtures: statistics of a few small real conv nets (conv + BN + ReLU + linear), one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from proxylang.runtime import set_memory_budget
from proxylang.stats.extract import extract_stats
from proxylang.stats.netstats import NetStats
from proxylang.stats.profiles import Profile, input_batch

REPO = Path(__file__).resolve().parents[1]


def noise_batch(batch: int, resolution: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A seeded batch of white-noise images with uniformly random per-pixel labels."""
    return input_batch(Profile("test", resolution, batch, "white", "uniform"), seed, classes)


def small_net(widths: tuple[int, ...], classes: int = 5) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)


def net_stats(widths: tuple[int, ...], seed: int, batch: int = 6, resolution: int = 8) -> NetStats:
    torch.manual_seed(seed)
    model = small_net(widths)
    inputs = torch.randn(batch, 3, resolution, resolution)
    targets = torch.randint(0, 5, (batch,))
    return extract_stats(model, inputs, targets, nn.functional.cross_entropy)


@pytest.fixture(scope="session")
def real_stats() -> list[NetStats]:
    """Three networks of different depth and width, in float64 so fused and eager agree closely."""
    return [net_stats(w, seed).to("cpu", torch.float64)
            for seed, w in enumerate([(4,), (6, 8), (4, 4, 6)])]


@pytest.fixture
def one_thread():
    """Small networks gain nothing from threads, and on a shared CI machine extra threads spin-wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def budget():
    """Set the memory budget for one test (in bytes), and clear it afterwards."""
    yield lambda count: set_memory_budget(count / 2**30)
    set_memory_budget(None)
