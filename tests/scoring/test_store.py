import json
import math

from proxylang.scoring.store import SCORES_FORMAT, ScoreStore

SETTING = {"benchmark": "transnas", "space": "micro", "profile": "r8-b2", "seed": 0}


def test_scores_survive_a_reopen_with_nan_and_infinity(tmp_path):
    path = tmp_path / "s" / "scores.jsonl"
    store = ScoreStore(path, SETTING)
    store.add("(1, 2)", {"k": (1.5, True), "n": (math.nan, False)})
    store.add("(2, 2)", {"k": (-math.inf, False)})
    again = ScoreStore(path, SETTING)
    assert again.get("(1, 2)", "k") == (1.5, True)
    value, valid = again.get("(1, 2)", "n")
    assert math.isnan(value) and not valid
    assert again.get("(2, 2)", "k") == (-math.inf, False)
    assert again.missing(["(1, 2)", "(2, 2)", "(3, 3)"], ["k", "n"]) == ["(2, 2)", "(3, 3)"]
    assert json.loads(path.read_text().splitlines()[0]) == {"format": SCORES_FORMAT, **SETTING}


def test_a_torn_line_is_skipped_and_the_next_line_starts_fresh(tmp_path):
    path = tmp_path / "scores.jsonl"
    store = ScoreStore(path, SETTING)
    store.add("a", {"k": (1.0, True)})
    store.add("b", {"k": (2.0, True)})
    path.write_text(path.read_text()[:-7])  # killed while writing b's line
    torn = ScoreStore(path, SETTING)
    assert torn.missing(["a", "b"], ["k"]) == ["b"]
    torn.add("b", {"k": (2.0, True)})
    assert ScoreStore(path, SETTING).missing(["a", "b"], ["k"]) == []


def test_a_store_of_another_setting_or_garbage_is_started_afresh(tmp_path):
    path = tmp_path / "scores.jsonl"
    ScoreStore(path, SETTING).add("a", {"k": (1.0, True)})
    other = ScoreStore(path, {**SETTING, "seed": 1})
    assert other.missing(["a"], ["k"]) == ["a"]
    other.add("b", {"k": (2.0, True)})
    assert ScoreStore(path, SETTING).missing(["a"], ["k"]) == ["a"]  # overwritten for seed 1
    path.write_bytes(b"\xff\xfe not text")
    assert ScoreStore(path, SETTING).missing(["a"], ["k"]) == ["a"]
