"""Correlations, invalid-score handling, the sampled protocol and chunked scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from proxylang.errors import ProxylangError
from proxylang.scoring.evaluate import (
    correlations,
    invalid_last,
    kendall,
    paired_bootstrap,
    pearson,
    sampled_protocol,
    spearman,
)


def test_perfect_and_reversed_rankings():
    truth = np.arange(10.0)
    assert kendall(truth ** 3, truth) == pytest.approx(1.0)
    assert spearman(-truth, truth) == pytest.approx(-1.0)
    assert pearson(2 * truth + 1, truth) == pytest.approx(1.0)
    assert kendall(truth ** 3, truth) != pytest.approx(pearson(truth ** 3, truth))


def test_constant_scores_have_no_correlation():
    assert math.isnan(kendall(np.ones(5), np.arange(5)))


def test_invalid_scores_rank_last_and_are_counted():
    x, bad = invalid_last([3.0, np.nan, 1.0, np.inf, 2.0], [True, True, True, True, False])
    assert bad == 3
    assert x[1] == x[3] == x[4] < 1.0
    c = correlations([4.0, np.nan, 2.0, 3.0], [4.0, 1.0, 2.0, 3.0])
    assert c.invalid == 1 and c.n == 4 and c.kendall == pytest.approx(1.0)
    assert math.isnan(correlations([np.nan, np.nan], [1.0, 2.0]).kendall)


def test_mismatched_lengths_are_a_user_error():
    with pytest.raises(ProxylangError):
        kendall([1.0, 2.0], [1.0, 2.0, 3.0])


def test_sampled_protocol_is_seeded_and_reports_spread():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    scores = truth + rng.normal(scale=1.0, size=200)
    a = sampled_protocol(scores, truth, sample=50, repeats=8, seed=1)
    b = sampled_protocol(scores, truth, sample=50, repeats=8, seed=1)
    assert a == b and a.sample == 50 and a.repeats == 8
    assert 0.2 < a.mean["kendall"] < 0.7 and a.std["kendall"] > 0
    assert a.full.kendall == pytest.approx(kendall(scores, truth))
    assert sampled_protocol(scores[:20], truth[:20], sample=50, repeats=3).std["kendall"] == 0.0


def test_paired_bootstrap_separates_a_real_gap_from_noise():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    good = truth + rng.normal(scale=0.3, size=200)
    poor = truth + rng.normal(scale=3.0, size=200)
    found = paired_bootstrap(good, poor, truth, resamples=300)
    assert found.difference == pytest.approx(kendall(good, truth) - kendall(poor, truth))
    assert found.ahead == 1.0 and 0 < found.low < found.difference < found.high
    twin = good + 1e-9 * rng.normal(size=200)  # the same ranking up to a few swaps
    close = paired_bootstrap(twin, good, truth, resamples=300)
    assert close.low <= 0 <= close.high and abs(close.difference) < 0.01
    assert paired_bootstrap(good, poor, truth, resamples=300) == found  # seeded


def test_paired_bootstrap_ranks_invalid_scores_last():
    truth = np.arange(10.0)
    broken = paired_bootstrap(truth, truth, truth, valid_a=[True] * 9 + [False], resamples=50)
    assert broken.difference < 0 and broken.ahead == 0.0
    with pytest.raises(ProxylangError, match="matching vectors"):
        paired_bootstrap(truth, truth[:5], truth)
