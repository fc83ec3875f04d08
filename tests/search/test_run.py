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
    ({"search": {"populaton": 3}}, "unknown search option"),
    ({"data": {"trian": 3}}, r"bad \[data\] table"),
    ({"colour": "red"}, "unknown config key"),
    ({"space": "macro"}, "another space"),
    ({"strategy": "annealing"}, "unknown strategy"),
    ({"data": {"presample": 50, "train": 10}}, "presample"),
    ({"start_with": ["nwot", "synflw"]}, "no proxy named 'synflw' in the library"),
    ({"ensemble_with": ["nowt"]}, "no proxy named 'nowt' in the library"),
])
def test_bad_settings_are_one_line_user_errors(values, message):
    with pytest.raises(ProxylangError, match=message):
        resolve_settings("micro", values, {})


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
