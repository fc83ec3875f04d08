"""``proxylang evolve``: settings resolution, run-directory safety, and a small end-to-end run."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from conftest import REPO

from proxylang.cli.evolve import DEFAULTS, _claim_run_dir, read_toml, resolve_settings
from proxylang.errors import ProxylangError

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
        _claim_run_dir(tmp_path / "run", settings, resume=True)
    _claim_run_dir(tmp_path / "run", settings, resume=False)
    with pytest.raises(ProxylangError, match="already holds a run"):
        _claim_run_dir(tmp_path / "run", settings, resume=False)
    _claim_run_dir(tmp_path / "run", settings, resume=True)
    changed = replace(settings, search=replace(settings.search, seed=1))
    with pytest.raises(ProxylangError, match="same settings"):
        _claim_run_dir(tmp_path / "run", changed, resume=True)


def test_small_run_writes_its_outputs_and_resumes_after_ctrl_c(tmp_path, monkeypatch):
    """End to end on real (tiny) TransNAS statistics: Ctrl-C after generation 2, then --resume, gives the
    same best.px and search as an uninterrupted run."""
    from click.testing import CliRunner

    import proxylang.cli.evolve as cli_evolve

    args = ["--space", "micro", "--config", str(EXAMPLES / "evolve_small.toml"),
            "--cache", str(tmp_path / "cache")]
    runner = CliRunner()
    whole = runner.invoke(cli_evolve.evolve, [*args, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    assert "profile lite (with batch_size, resolution changed): 16x16, batch 4" in whole.output
    outputs = ("best.px", "summary.json", "search-curve.png", "proxy-vs-accuracy.png", "evolution/log.jsonl")
    for name in outputs:
        assert (tmp_path / "whole" / name).exists(), name
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["strategies"]["random"]["evaluations"] == summary["strategies"]["evolution"]["evaluations"]
    assert summary["best_px"] == (tmp_path / "whole" / "best.px").read_text().strip()
    from proxylang.bench.transnas import load_zc_json, zc_json_path
    from proxylang.cli.bench import listed_archs

    everything = list(load_zc_json(zc_json_path("micro", None), space="micro"))
    unseen = listed_archs(tmp_path / "whole" / "unseen-archs.txt", "micro", everything)
    assert len(unseen) == len(everything) - summary["archs"]["train"] - summary["archs"]["val"]
    holdout = listed_archs(tmp_path / "whole" / "holdout-archs.txt", "micro", everything)
    assert len(holdout) == summary["archs"]["holdout"] and set(holdout) <= set(unseen)

    show = cli_evolve._progress_line

    def interrupting(bar):
        def callback(record):
            show(bar)(record)
            if record["generation"] == 2:
                raise KeyboardInterrupt
        return callback

    monkeypatch.setattr(cli_evolve, "_progress_line", interrupting)
    cut = runner.invoke(cli_evolve.evolve, [*args, "--out", str(tmp_path / "cut")])
    assert cut.exit_code == 130 and "--resume" in cut.output
    overwrite = runner.invoke(cli_evolve.evolve, [*args, "--out", str(tmp_path / "cut")])
    assert overwrite.exit_code == 2 and "already holds a run" in overwrite.output
    monkeypatch.setattr(cli_evolve, "_progress_line", show)
    resumed = runner.invoke(cli_evolve.evolve, [*args, "--out", str(tmp_path / "cut"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "cut" / "best.px").read_text() == (tmp_path / "whole" / "best.px").read_text()
    again = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert again["strategies"] == summary["strategies"] and again["kendall"] == summary["kendall"]


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """A real kill (SIGKILL: no handler runs, nothing is flushed) once a generation is checkpointed, then
    ``--resume``: the same best.px and search as an uninterrupted run."""
    import subprocess
    import sys
    import time

    from proxylang.search.evolve import load_checkpoint

    command = [sys.executable, "-m", "proxylang", "evolve", "--space", "micro",
               "--config", str(EXAMPLES / "evolve_small.toml"), "--cache", str(tmp_path / "cache")]
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr

    cut = tmp_path / "cut"
    process = subprocess.Popen([*command, "--out", str(cut)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    run_dir = cut / "evolution"
    while process.poll() is None and not ((run_dir / "checkpoint.pkl").exists()
                                          and load_checkpoint(run_dir).generation):
        time.sleep(0.02)
    process.kill()
    assert process.wait() == -9, "the run ended before it could be killed"
    assert not (cut / "best.px").exists()

    resumed = subprocess.run([*command, "--out", str(cut), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (cut / "best.px").read_text() == (tmp_path / "whole" / "best.px").read_text()
    first, again = (json.loads((d / "summary.json").read_text()) for d in (tmp_path / "whole", cut))
    assert again["strategies"] == first["strategies"] and again["kendall"] == first["kendall"]
