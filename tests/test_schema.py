"""Settings checked against their dataclass: types from the annotations, ranges from the fields."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from proxylang.errors import ConfigError
from proxylang.schema import MAX_SEED, bounded, check_ranges, from_mapping
from proxylang.search.engine import SearchConfig
from proxylang.stats.profiles import get_profile


@dataclass(frozen=True)
class Example:
    count: int = bounded(3, 1, 10)
    rate: float = bounded(0.5, 0.0, 1.0)
    name: str = "a"
    limit: int | None = bounded(None, 0)
    tags: tuple[str, ...] = ()
    flag: bool = False

    def __post_init__(self) -> None:
        check_ranges(self, "example option")


def test_values_are_converted_to_the_field_types():
    got = from_mapping(Example, {"count": 4, "rate": 1, "tags": ["x", "y"], "flag": True}, "t.toml")
    assert got == Example(count=4, rate=1.0, tags=("x", "y"), flag=True)
    assert isinstance(got.rate, float) and isinstance(got.tags, tuple)
    assert from_mapping(Example, {"name": "b"}, "t", base=got) == Example(4, 1.0, "b", None, ("x", "y"), True)


@pytest.mark.parametrize("values, message", [
    ({"count": 2.0}, r"t.toml: count must be an integer, got 2.0"),
    ({"count": False}, r"t.toml: count must be an integer, got False"),
    ({"rate": float("nan")}, r"t.toml: rate must be a finite number, got nan"),
    ({"rate": "0.3"}, r"t.toml: rate must be a finite number, got '0.3'"),
    ({"flag": 1}, r"t.toml: flag must be true or false, got 1"),
    ({"tags": "x"}, r"t.toml: tags must be a list of strings, got 'x'"),
    ({"limit": "none"}, r"t.toml: limit must be an integer, got 'none'"),
    ({"count": 11}, r"t.toml: example option count must be between 1 and 10, got 11"),
    ({"limit": -1}, r"t.toml: example option limit must be at least 0, got -1"),
    ({"cuont": 2}, r"t.toml: unknown key\(s\) cuont; known: count, rate, name, limit, tags, flag"),
    (["count", 2], r"t.toml: expected a table of settings, got \['count', 2\]"),
    ({"name": "x" * 100}, None),  # accepted: strings have no range
])
def test_bad_values_name_the_key_and_what_it_expects(values, message):
    if message is None:
        assert from_mapping(Example, values, "t.toml").name == "x" * 100
        return
    with pytest.raises(ConfigError, match=message):
        from_mapping(Example, values, "t.toml")


def test_ranges_hold_for_settings_built_in_code_too():
    with pytest.raises(ConfigError, match=f"seed must be between 0 and {MAX_SEED}, got {2**64}"):
        SearchConfig(seed=2**64)
    with pytest.raises(ConfigError, match=r"changed\): resolution must be between 4 and 4096"):
        get_profile("lite").with_overrides(resolution=100_000)
    with pytest.raises(ConfigError, match=r"changed\): batch_size must be between 2 and 1024"):
        get_profile("lite").with_overrides(batch_size=1)
