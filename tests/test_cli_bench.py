"""``proxylang eval`` / ``baselines`` end to end on a tiny stand-in benchmark (six small conv nets)."""

from __future__ import annotations

import csv
import json
import sys
import types

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import proxylang
from proxylang.ast import Input
from proxylang.cli_bench import baselines_command, eval_command

ARCHS = ["(1, 2)", "(2, 2)", "(3, 1)", "(1, 1)", "(3, 3)", "(2, 3)"]


def tiny_network(space: str, arch: str) -> nn.Module:
    width, depth = (int(c) for c in arch.strip("()").split(","))
    layers: list[nn.Module] = [nn.Conv2d(3, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU()]
    layers.append(nn.Conv2d(2 * width, 17, 1))
    return nn.Sequential(*layers)


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """A fake ``proxylang.bench.transnas`` and a JSON file in the NASLib format."""
    fake = types.ModuleType("proxylang.bench.transnas")
    fake.build_network = tiny_network
    fake.load_zc_json = lambda path, task: json.loads(path.read_text())[task]
    fake.count_flops = lambda model, resolution: sum(p.numel() for p in model.parameters()) * resolution ** 2
    monkeypatch.setitem(sys.modules, "proxylang.bench", types.ModuleType("proxylang.bench"))
    monkeypatch.setitem(sys.modules, "proxylang.bench.transnas", fake)
    records = {a: {"val_accuracy": float(i), "params": {"score": float(i)}, "jacov": {"score": float(i % 3)}}
               for i, a in enumerate(ARCHS)}
    path = tmp_path / "zc.json"
    path.write_text(json.dumps({"segmentsemantic": records}))
    return path


@pytest.fixture
def l1_language(monkeypatch):
    """Stand-in for the language: every expression scores Σ|W| over conv sites."""

    def compile_proxy(node):
        def proxy(stats):
            s = torch.tensor([float(sum(w.abs().sum() for w in st.W)) for st in stats], dtype=torch.float64)
            return s, torch.isfinite(s)
        return proxy

    monkeypatch.setattr(proxylang, "parse", lambda text, source="<expr>": Input("W"), raising=False)
    monkeypatch.setattr(proxylang, "compile_proxy", compile_proxy, raising=False)


def common(bench, tmp_path) -> list[str]:
    return ["--space", "micro", "--bench-file", str(bench), "--resolution", "8", "--batch-size", "2",
            "--sample", "4", "--repeats", "3", "--cache", str(tmp_path / "cache"), "--device", "cpu"]


def test_eval_prints_the_protocol_and_writes_scores(bench, l1_language, tmp_path):
    expr = tmp_path / "l1.px"
    expr.write_text("sum(abs(W))\n")
    out = tmp_path / "scores.csv"
    args = [str(expr), *common(bench, tmp_path), "--scores-out", str(out)]
    first = CliRunner().invoke(eval_command, args)
    assert first.exit_code == 0, first.output
    assert "sample 4x3" in first.stdout and "full 6" in first.stdout
    rows = list(csv.DictReader(out.open()))
    assert [r["arch"] for r in rows] == ARCHS and all(float(r["score"]) > 0 for r in rows)
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == len(ARCHS)
    again = CliRunner().invoke(eval_command, args)  # from the cache, same figures
    assert again.stdout == first.stdout


def test_eval_errors_are_one_line(bench, l1_language, tmp_path):
    result = CliRunner().invoke(eval_command, [str(tmp_path / "missing.px"), *common(bench, tmp_path)])
    assert result.exit_code != 0 and "cannot read" in result.output and "Traceback" not in result.output
    both = CliRunner().invoke(eval_command, [str(tmp_path / "x.px"), "--bench-file", str(bench)])
    assert both.exit_code != 0 and "--space micro or macro" in both.output


def test_baselines_table_json_and_reference_agreement(bench, tmp_path):
    args = [*common(bench, tmp_path), "--only", "synflow,jacov,flops"]
    text = CliRunner().invoke(baselines_command, args)
    assert text.exit_code == 0, text.output
    assert [line.split()[0] for line in text.stdout.splitlines()[2:]] == ["synflow", "jacov", "flops"]
    data = json.loads(CliRunner().invoke(baselines_command, [*args, "--format", "json"]).stdout)
    micro = data["micro"]
    assert set(micro) == {"synflow", "jacov", "flops"}
    assert -1 <= micro["jacov"]["kendall_vs_reference"] <= 1 and "kendall_vs_reference" not in micro["flops"]
    assert micro["flops"]["full"]["n"] == len(ARCHS)
    assert len(list((tmp_path / "cache" / "baselines").rglob("scores.json"))) == 1
    bad = CliRunner().invoke(baselines_command, [*common(bench, tmp_path), "--only", "magic"])
    assert bad.exit_code != 0 and "unknown baseline 'magic'" in bad.output
