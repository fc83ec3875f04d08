"""Search splits and the collapse rule of the fitness."""

from __future__ import annotations

import numpy as np
import pytest

from proxylang.errors import ProxylangError
from proxylang.lang.compile import CompiledProxy, compile_proxy, pack
from proxylang.lang.cost import SiteDims, proxy_cost
from proxylang.lang.parse import parse
from proxylang.search.data import (
    DataConfig,
    ProxyFitness,
    Split,
    collapse_reason,
    estimated_seconds,
    split_archs,
)

ARCHS = [f"({i}, 0)" for i in range(40)]


def test_splits_are_disjoint_seeded_and_independent_of_input_order():
    cfg = DataConfig(train=10, val=5, holdout=0, presample=4)
    splits = split_archs(ARCHS, cfg)
    assert [len(splits[k]) for k in ("train", "val", "holdout")] == [10, 5, 25]
    assert sorted(splits["train"] + splits["val"] + splits["holdout"]) == sorted(ARCHS)
    assert splits["unseen"] == splits["holdout"]
    assert split_archs(list(reversed(ARCHS)), cfg) == splits
    assert split_archs(ARCHS, DataConfig(train=10, val=5, holdout=0, presample=4, seed=1)) != splits
    seven = split_archs(ARCHS, DataConfig(train=10, val=5, holdout=7, presample=4))
    assert len(seven["holdout"]) == 7 and seven["unseen"][-7:] == seven["holdout"]
    assert sorted(seven["train"] + seven["val"] + seven["unseen"]) == sorted(ARCHS)


def test_the_holdout_stays_put_when_train_or_validation_grow():
    small = split_archs(ARCHS, DataConfig(train=10, val=5, holdout=7, presample=4))
    large = split_archs(ARCHS, DataConfig(train=20, val=10, holdout=7, presample=4))
    assert large["holdout"] == small["holdout"]
    assert large["train"][:10] == small["train"]
    assert not set(large["train"] + large["val"]) & set(large["holdout"])


def test_too_few_archs_is_a_user_error():
    with pytest.raises(ProxylangError, match="cannot make"):
        split_archs(ARCHS[:15], DataConfig(train=10, val=5, holdout=0, presample=4))


@pytest.mark.parametrize("scores, valid, reason", [
    ([1.0, 2.0, 3.0], [True, True, True], ""),
    ([1.0, 2.0, 3.0], [True, False, True], "invalid"),
    ([1.0, np.inf, 3.0], [True, True, True], "nonfinite"),
    ([1.0, np.nan, 3.0], [True, True, True], "nonfinite"),
    ([1.0, 2e31, 3.0], [True, True, True], "overflow"),
    ([5.0, 5.0, 5.0], [True, True, True], "constant"),
    ([1e6, 1e6 + 1e-9, 1e6], [True, True, True], "constant"),
])
def test_collapse_reason(scores, valid, reason):
    assert collapse_reason(np.array(scores), np.array(valid)) == reason


def test_a_candidate_over_the_memory_budget_is_a_rejection_not_a_crash(real_stats, budget):
    packed = pack(real_stats)
    split = Split(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), packed)
    fitness = ProxyFitness(split, split, packed, pack(real_stats[:1]))
    assert fitness(parse("sum(abs(W))")).rejected == ""
    budget(1000)
    assert fitness(parse("sum(abs(W))")).rejected == "memory"


def test_a_proxy_behaves_as_its_ranks_of_the_train_archs(real_stats):
    """The behaviour the search compares to find clones: a monotone map of a proxy has the same one."""
    packed = pack(real_stats)
    split = Split(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), packed)
    fitness = ProxyFitness(split, split, packed, pack(real_stats[:1]))
    weights = fitness(parse("sum(abs(W))"))
    scores = [float(sum(w.abs().sum() for w in s.W)) for s in real_stats]
    assert weights.behaviour == tuple(float(r) for r in np.argsort(np.argsort(scores)) + 1)
    assert fitness(parse("sum(abs(W)) * 3")).behaviour == weights.behaviour


def test_a_candidate_is_slow_by_its_estimated_work_and_the_probe_never_runs(real_stats, monkeypatch):
    """The verdict comes from the work on one network's full statistics, not a clock: the same on any
    machine under any load."""
    packed, probe = pack(real_stats), pack(real_stats[:1])
    split = Split(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), packed)
    heavy = parse("sum(exp(W) * exp(G)) + sum(gram(W) / 3)")
    seconds = estimated_seconds(proxy_cost(compile_proxy(heavy).graph, SiteDims.of(probe)))
    scored = []
    original = CompiledProxy.__call__
    monkeypatch.setattr(CompiledProxy, "__call__",
                        lambda self, stats: scored.append(stats) or original(self, stats))
    just_under = ProxyFitness(split, split, packed, probe, max_seconds=seconds * 1.01)
    just_over = ProxyFitness(split, split, packed, probe, max_seconds=seconds * 0.99)
    assert just_under(heavy).cost == seconds  # which breaks ties of Kd in the search
    assert just_over(heavy).rejected == "slow"
    assert just_over(parse("sum(W)")).ok  # far less work
    assert scored and not any(stats is probe for stats in scored)
