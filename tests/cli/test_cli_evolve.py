"""``proxylang evolve`` end to end on real (tiny) TransNAS-Bench-101 statistics."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from click.testing import CliRunner
from conftest import REPO

from proxylang.bench.transnas import TRANSNAS
from proxylang.cli.evolve import evolve
from proxylang.search import run

EXAMPLES = REPO / "examples"


def test_small_run_writes_its_outputs_and_resumes_after_ctrl_c(tmp_path, monkeypatch):
    """End to end on real (tiny) TransNAS statistics: Ctrl-C after generation 2, then --resume, gives the
    same best.px and search as an uninterrupted run."""


    args = ["--space", "micro", "--config", str(EXAMPLES / "evolve_small.toml"),
            "--cache", str(tmp_path / "cache")]
    runner = CliRunner()
    whole = runner.invoke(evolve, [*args, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    assert "profile lite (with batch_size, resolution changed): 16x16, batch 4" in whole.output
    outputs = ("best.px", "summary.json", "search-curve.png", "proxy-vs-accuracy.png", "evolution/log.jsonl")
    for name in outputs:
        assert (tmp_path / "whole" / name).exists(), name
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["strategies"]["random"]["evaluations"] == summary["strategies"]["evolution"]["evaluations"]
    assert summary["best_px"] == (tmp_path / "whole" / "best.px").read_text().strip()
    # the holdout report: best.px against each compare_with baseline and each score the data file stores
    stored = [f"ref:{name}" for name in TRANSNAS.load_truth("micro").reference_names()]
    assert list(summary["best_vs"]) == [*run.COMPARED, *stored]
    assert set(summary["holdout"]) >= {summary["chosen"], *run.COMPARED, *stored}
    assert "best.px minus rival (95 % paired bootstrap)" in whole.output and "ref:jacov" in whole.output
    everything = TRANSNAS.load_truth("micro")
    unseen = TRANSNAS.listed(everything, tmp_path / "whole" / "unseen-archs.txt").archs
    assert len(unseen) == len(everything.archs) - summary["archs"]["train"] - summary["archs"]["val"]
    holdout = TRANSNAS.listed(everything, tmp_path / "whole" / "holdout-archs.txt").archs
    assert len(holdout) == summary["archs"]["holdout"] and set(holdout) <= set(unseen)

    show = run._progress_line

    def interrupting(bar):
        def callback(record):
            show(bar)(record)
            if record["generation"] == 2:
                raise KeyboardInterrupt
        return callback

    monkeypatch.setattr(run, "_progress_line", interrupting)
    cut = runner.invoke(evolve, [*args, "--out", str(tmp_path / "cut")])
    assert cut.exit_code == 130 and "--resume" in cut.output
    overwrite = runner.invoke(evolve, [*args, "--out", str(tmp_path / "cut")])
    assert overwrite.exit_code == 2 and "already holds a run" in overwrite.output
    monkeypatch.setattr(run, "_progress_line", show)
    resumed = runner.invoke(evolve, [*args, "--out", str(tmp_path / "cut"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "cut" / "best.px").read_text() == (tmp_path / "whole" / "best.px").read_text()
    again = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert again["strategies"] == summary["strategies"] and again["kendall"] == summary["kendall"]


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """A real kill (SIGKILL: no handler runs, nothing is flushed) once a generation is checkpointed, then
    ``--resume``: the same best.px and search as an uninterrupted run."""
    command = [sys.executable, "-m", "proxylang", "evolve", "--space", "micro",
               "--config", str(EXAMPLES / "evolve_small.toml"), "--cache", str(tmp_path / "cache")]
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr

    cut = tmp_path / "cut"
    process = subprocess.Popen([*command, "--out", str(cut)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    saved = cut / "evolution" / "checkpoint.json"  # replaced atomically: never read half-written
    while process.poll() is None and not (saved.exists() and json.loads(saved.read_text())["generation"]):
        time.sleep(0.02)
    process.kill()
    assert process.wait() == -9, "the run ended before it could be killed"
    assert not (cut / "best.px").exists()

    resumed = subprocess.run([*command, "--out", str(cut), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (cut / "best.px").read_text() == (tmp_path / "whole" / "best.px").read_text()
    first, again = (json.loads((d / "summary.json").read_text()) for d in (tmp_path / "whole", cut))
    assert again["strategies"] == first["strategies"] and again["kendall"] == first["kendall"]
