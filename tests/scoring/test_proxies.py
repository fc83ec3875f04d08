"""Scoring proxies: the public ``proxylang.score`` API on the user's own networks, and the chunked
scoring loop every command goes through."""

from __future__ import annotations

import os
import re

import pytest
import torch
from conftest import REPO
from torch import nn

import proxylang
from proxylang.scoring.proxies import presample, score_proxies
from proxylang.stats.netstats import NetStats


def test_presample_is_a_seeded_subset():
    archs = [f"a{i}" for i in range(30)]
    chosen = presample(archs, 5, seed=3)
    assert len(set(chosen)) == 5 and set(chosen) <= set(archs) and chosen == presample(archs, 5, seed=3)


def test_score_proxies_streams_in_chunks_bounded_by_count_and_bytes():
    seen = []

    def proxy(batch):
        seen.append(len(batch))
        s = torch.tensor([float(st.W[0].sum()) for st in batch], dtype=torch.float64)
        return s, torch.isfinite(s)

    def net(i: int) -> NetStats:
        return NetStats(A=[torch.ones(1, 2)], G=[torch.ones(1, 1)], W=[torch.full((1, 1), float(i))])

    scores, valid = score_proxies({"p": proxy}, (net(i) for i in range(5)), chunk=2)["p"]
    assert seen == [2, 2, 1]
    assert scores.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and valid.all()
    seen.clear()
    score_proxies({"p": proxy}, (net(i) for i in range(5)), chunk=4, chunk_bytes=2 * net(0).nbytes())
    assert seen == [2, 2, 1]


def _net(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 10, 1))


def test_score_on_the_users_own_networks_matches_a_hand_computed_proxy():
    """``sum(abs(W))`` is the L1 norm of every conv weight: checkable by hand on the same modules."""
    torch.manual_seed(0)
    nets = [_net(4), _net(8), _net(2)]
    batch = torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2, 8, 8))
    result = proxylang.score("sum(abs(W))", nets, batch)
    expected = [sum(float(m.weight.detach().abs().sum()) for m in n if isinstance(m, nn.Conv2d))
                for n in nets]
    assert result.values.tolist() == pytest.approx(expected, rel=1e-5)
    assert result.valid.all()


def test_score_takes_builders_and_calibrates_norm_avt_on_the_given_networks():
    batch = torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2, 8, 8))
    builders = [lambda w=w: _net(w) for w in (2, 4, 8)]
    torch.manual_seed(0)
    result = proxylang.score("norm_avt(sum(abs(W)))", builders, batch)
    assert result.values.min() == 0.0 and result.values.max() == 1.0  # min-max over these networks
    assert result.values.argmax() == 2  # the widest network has the largest L1 norm


def test_score_reports_an_ill_typed_proxy_as_a_proxylang_error():
    batch = torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2, 8, 8))
    with pytest.raises(proxylang.errors.ProxylangError):
        proxylang.score("sum(matmul(W, A))", [_net(2)], batch)


def test_the_readme_example_runs_and_scores_every_network():
    """README's "Scoring your own networks" block, run as a user would paste it (from the repo root)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Scoring your own networks.*?```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    result = namespace["result"]
    assert result.values.shape == (3,) and result.valid.all()
    assert list(result.values) == sorted(result.values)  # NWOT grows with width: more ReLU codes
