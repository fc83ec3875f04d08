"""A proxy search run as a library: settings from defaults, TOML and options; the run directory."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import REPO

from proxylang.errors import ProxylangError
from proxylang.search.run import DEFAULTS, claim_run_dir, read_toml, resolve_settings

EXAMPLES = REPO / "examples"


@pytest.mark.parametrize("space", ["micro", "macro"])
def test_example_configs_spell_out_the_builtin_defaults(space):
    assert resolve_settings(space, read_toml(EXAMPLES / f"evolve_{space}.toml"), {}) == DEFAULTS[space]


def test_small_config_and_command_line_overrides():
    small = read_toml(EXAMPLES / "evolve_small.toml")
    settings = resolve_settings("micro", small, {"population": 5, "seed": 9})
    assert settings.strategies() == ("evolution", "random")
    assert (settings.search.population, settings.search.seed, settings.search.iterations) == (5, 9, 4)
    assert settings.data.train == 8 and settings.data.resolution == 16
    assert resolve_settings("micro", {}, {"strategy": "random"}).strategies() == ("random",)


@pytest.mark.parametrize("values, message", [
    ({"search": {"populaton": 3}}, r"cfg.toml \[search\]: unknown key\(s\) populaton; known: strategy, "),
    ({"data": {"trian": 3}}, r"cfg.toml \[data\]: unknown key\(s\) trian"),
    ({"colour": "red"}, r"cfg.toml: unknown key\(s\) colour"),
    ({"space": "macro"}, "cfg.toml is for space 'macro', not --space micro"),
    ({"strategy": "annealing"}, "unknown strategy 'annealing'"),
    ({"data": {"presample": 50, "train": 10}}, r"cfg.toml \[data\]: presample \(50\) cannot exceed train"),
    ({"start_with": ["nwot", "synflw"]}, "no proxy named 'synflw' in the library"),
    ({"ensemble_with": ["nowt"]}, "no proxy named 'nowt' in the library"),
    # values of the wrong type or out of range name the key and what it expects
    ({"search": {"population": 2.5}}, r"\[search\]: population must be an integer, got 2.5"),
    ({"search": {"population": True}}, r"\[search\]: population must be an integer, got True"),
    ({"search": {"population": 10**12}}, r"\[search\]: search option population must be between 1 and "
                                          r"100000, got 1000000000000"),
    ({"search": {"seed": -1}}, r"\[search\]: search option seed must be between 0 and 4294967295"),
    ({"search": {"crossover_prob": "high"}}, r"crossover_prob must be a finite number, got 'high'"),
    ({"search": {"pool": [3]}}, r"pool must be an integer, got \[3\]"),
    ({"search": 3}, r"cfg.toml \[search\]: expected a table of settings, got 3"),
    ({"data": "all"}, r"cfg.toml \[data\]: expected a table of settings, got 'all'"),
    ({"data": {"max_seconds": "x"}}, r"\[data\]: max_seconds must be a finite number, got 'x'"),
    ({"data": {"stats_seed": -3}}, r"\[data\]: data option stats_seed must be between 0 and"),
    ({"data": {"resolution": 10**6}}, r"\[data\]: data option resolution must be between 1 and 4096"),
    ({"data": {"profile": 7}}, r"\[data\]: profile must be a string, got 7"),
    ({"start_with": 3}, r"cfg.toml: start_with must be a list of strings, got 3"),
    ({"start_with": ["nwot", 3]}, r"cfg.toml: start_with must be a list of strings"),
    ({"strategy": ["evolution"]}, r"cfg.toml: strategy must be a string"),
])
def test_bad_settings_are_one_line_user_errors(values, message):
    with pytest.raises(ProxylangError, match=message) as info:
        resolve_settings("micro", values, {}, "cfg.toml")
    assert "\n" not in str(info.value)


def test_command_line_values_are_checked_like_the_file_values():
    with pytest.raises(ProxylangError, match=r"options: search option population must be between 1"):
        resolve_settings("micro", {}, {"population": 0})
    settings = resolve_settings("micro", {"search": {"crossover_prob": 1}, "start_with": ["nwot"]}, {})
    assert settings.search.crossover_prob == 1.0 and isinstance(settings.search.crossover_prob, float)
    assert settings.start_with == ("nwot",)


def test_invalid_toml_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\npopulation = 3\n")
    with pytest.raises(ProxylangError, match="invalid TOML"):
        read_toml(bad)
    with pytest.raises(ProxylangError, match="cannot read"):
        read_toml(tmp_path / "missing.toml")


def test_run_directory_is_never_overwritten_and_resume_checks_settings(tmp_path):
    settings = DEFAULTS["micro"]
    with pytest.raises(ProxylangError, match="nothing to resume"):
        claim_run_dir(tmp_path / "run", settings, resume=True)
    claim_run_dir(tmp_path / "run", settings, resume=False)
    with pytest.raises(ProxylangError, match="already holds a run"):
        claim_run_dir(tmp_path / "run", settings, resume=False)
    claim_run_dir(tmp_path / "run", settings, resume=True)
    changed = replace(settings, search=replace(settings.search, seed=1))
    with pytest.raises(ProxylangError, match="same settings"):
        claim_run_dir(tmp_path / "run", changed, resume=True)
