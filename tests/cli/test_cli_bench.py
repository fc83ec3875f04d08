"""``proxylang eval`` / ``baselines`` end to end on a tiny stand-in benchmark (six small conv nets)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from proxylang.bench import BENCHMARKS
from proxylang.bench.transnas import TRANSNAS
from proxylang.cli.bench import baselines_command, eval_command
from proxylang.scoring.baselines import BASELINES
from proxylang.stats.profiles import get_profile

ARCHS = ["(1, 2)", "(2, 2)", "(3, 1)", "(1, 1)", "(3, 3)", "(2, 3)"]
EXTRA = ["(4, 1)", "(1, 3)"]  # in the stand-in space's rules but without ground truth


def tiny_network(space: str, arch: str) -> nn.Module:
    width, depth = (int(c) for c in arch.strip("()").split(","))
    layers: list[nn.Module] = [nn.Conv2d(3, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU()]
    layers.append(nn.Conv2d(2 * width, 17, 1))
    return nn.Sequential(*layers)


@pytest.fixture
def built() -> list[str]:
    """The architectures whose networks the stand-in benchmark built, in order."""
    return []


@pytest.fixture
def bench(tmp_path, monkeypatch, built):
    """A stand-in for TransNAS-Bench-101 with tiny networks, and a JSON file in the NASLib format."""

    def build(space: str, arch: str) -> nn.Module:
        if torch.empty(0).device.type != "meta":  # not the memory check's shapes-only pass
            built.append(arch)
        return tiny_network(space, arch)

    tiny = replace(TRANSNAS, build_network=build, all_archs=lambda space: [*ARCHS, *EXTRA],
                   parse_arch=lambda space, key: tuple(int(c) for c in str(key).strip("() ").split(",")),
                   read_truth=lambda path, task, space: json.loads(path.read_text())[task])
    monkeypatch.setitem(BENCHMARKS, "transnas", tiny)
    records = {a: {"val_accuracy": float(i), "params": {"score": float(i)}, "jacov": {"score": float(i % 3)}}
               for i, a in enumerate(ARCHS)}
    path = tmp_path / "zc.json"
    path.write_text(json.dumps({"segmentsemantic": records}))
    return path


def common(bench, tmp_path) -> list[str]:
    return ["--space", "micro", "--bench-file", str(bench), "--resolution", "8", "--batch-size", "2",
            "--sample", "4", "--repeats", "3", "--cache", str(tmp_path / "cache"), "--device", "cpu"]


def test_eval_prints_the_protocol_and_writes_scores(bench, built, tmp_path):
    expr = tmp_path / "l1.px"
    expr.write_text("sum(abs(W))\n")
    out = tmp_path / "scores.csv"
    args = [str(expr), *common(bench, tmp_path), "--scores-out", str(out)]
    first = CliRunner().invoke(eval_command, args)
    assert first.exit_code == 0, first.output
    assert "sample 4x3" in first.stdout and "full 6" in first.stdout
    rows = list(csv.DictReader(out.open()))
    assert [r["arch"] for r in rows] == ARCHS
    assert {r["profile"] for r in rows} == {get_profile("lite").with_overrides(8, 2).key()}
    assert "profile lite (with batch_size, resolution changed): 8x8, batch 2" in first.stdout

    def l1(arch: str) -> float:  # the network the command builds: seeded with --seed (0)
        torch.manual_seed(0)
        convs = [m for m in tiny_network("micro", arch).modules() if isinstance(m, nn.Conv2d)]
        return float(sum(m.weight.detach().abs().sum() for m in convs))

    assert [float(r["score"]) for r in rows] == pytest.approx([l1(a) for a in ARCHS], rel=1e-5)
    assert not list((tmp_path / "cache").rglob("*.pt"))  # statistics are scored live, never stored
    (store,) = (tmp_path / "cache" / "scores").rglob("scores.jsonl")
    assert len(store.read_text().splitlines()) == 1 + len(ARCHS)  # a header, then one line per network
    built.clear()
    again = CliRunner().invoke(eval_command, args)  # from the score store, same figures and rows
    assert again.stdout == first.stdout and not built
    assert list(csv.DictReader(out.open())) == rows


def test_eval_errors_are_one_line(bench, tmp_path):
    result = CliRunner().invoke(eval_command, [str(tmp_path / "missing.px"), *common(bench, tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output and "cannot read" in result.output
    ill_typed = tmp_path / "bad.px"
    ill_typed.write_text("sum(matmul(W, A))\n")
    result = CliRunner().invoke(eval_command, [str(ill_typed), *common(bench, tmp_path)])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "Traceback" not in result.output
    both = CliRunner().invoke(eval_command, [str(tmp_path / "x.px"), "--bench-file", str(bench)])
    assert both.exit_code == 2 and "--space micro or macro" in both.output


def test_eval_on_a_listed_subset_of_archs(bench, tmp_path):
    expr = tmp_path / "l1.px"
    expr.write_text("sum(abs(W))\n")
    listed = tmp_path / "unseen.txt"
    listed.write_text("# a comment\n(3,3)\n(1, 2)\n\n(2, 2)  # trailing comment\n(1, 1)\n")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(eval_command, [str(expr), *common(bench, tmp_path), "--archs", str(listed),
                                               "--scores-out", str(out)])
    assert result.exit_code == 0, result.output
    assert "full 4" in result.stdout
    assert [r["arch"] for r in csv.DictReader(out.open())] == ["(1, 2)", "(2, 2)", "(1, 1)", "(3, 3)"]
    listed.write_text("(1, 2)\n(9, 9)\n")
    unknown = CliRunner().invoke(eval_command, [str(expr), *common(bench, tmp_path), "--archs", str(listed)])
    assert unknown.exit_code == 2 and f"{listed}:2: (9, 9) is not in the micro ground truth" in unknown.output
    both = CliRunner().invoke(eval_command, [str(expr), "--archs", str(listed)])
    assert both.exit_code == 2 and "--archs holds one space" in both.output


def test_eval_against_a_library_proxy(bench, tmp_path):
    expr = tmp_path / "l2.px"
    expr.write_text("frobenius(W)\n")
    args = [str(expr), *common(bench, tmp_path)]
    result = CliRunner().invoke(eval_command, [*args, "--against", "l2_norm", "--against", "params"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("vs ")]
    assert [line.split(":")[0] for line in lines] == ["vs l2_norm", "vs params"]
    # the file is the library's l2_norm: no difference on any resample
    assert "Kd +0.000 (95 % bootstrap interval +0.000 to +0.000; ranks better in 0 %" in lines[0]
    unknown = CliRunner().invoke(eval_command, [*args, "--against", "nowt"])
    assert unknown.exit_code == 2 and "no proxy named 'nowt' in the library" in unknown.output


def test_eval_against_network_baselines_and_the_files_stored_scores(bench, tmp_path):
    expr = tmp_path / "p.px"
    expr.write_text("frobenius(W)\n")
    args = [str(expr), *common(bench, tmp_path)]
    result = CliRunner().invoke(eval_command, [*args, "--against", "flops", "--against", "ref:params",
                                               "--against", "ref:jacov"])
    assert result.exit_code == 0, result.output
    lines = {line.split(": Kd")[0]: line for line in result.stdout.splitlines() if line.startswith("vs ")}
    assert list(lines) == ["vs flops", "vs ref:params", "vs ref:jacov"]
    # the stored params score is the accuracy itself (Kd 1): the proxy ranks worse on every resample
    assert "ranks better in 0 %" in lines["vs ref:params"]
    assert "interval" in lines["vs flops"]
    everything = CliRunner().invoke(eval_command, [*args, "--against", "all"])
    assert everything.exit_code == 0, everything.output
    rivals = [line.split(": Kd")[0][3:] for line in everything.stdout.splitlines() if line.startswith("vs ")]
    assert rivals == [*BASELINES, "ref:jacov", "ref:params"]
    missing = CliRunner().invoke(eval_command, [*args, "--against", "ref:nwot"])
    assert missing.exit_code == 2 and "stores no 'nwot' score for every micro arch; stored: jacov, params" \
        in missing.output


def test_baselines_table_json_and_reference_agreement(bench, tmp_path):
    args = [*common(bench, tmp_path), "--only", "synflow,jacov,flops"]
    text = CliRunner().invoke(baselines_command, args)
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("TransNAS-Bench-101 / segmentsemantic, seed 0; profile lite (with ")
    assert [line.split()[0] for line in text.stdout.splitlines()[3:]] == ["synflow", "jacov", "flops"]
    data = json.loads(CliRunner().invoke(baselines_command, [*args, "--format", "json"]).stdout)
    assert data["profile"]["key"].startswith("r8-b2-photos-regions")
    micro = data["micro"]
    assert set(micro) == {"synflow", "jacov", "flops"}
    assert -1 <= micro["jacov"]["kendall_vs_reference"] <= 1 and "kendall_vs_reference" not in micro["flops"]
    assert micro["flops"]["full"]["n"] == len(ARCHS)
    assert len(list((tmp_path / "cache" / "scores").rglob("scores.jsonl"))) == 1
    bad = CliRunner().invoke(baselines_command, [*common(bench, tmp_path), "--only", "magic"])
    assert bad.exit_code != 0 and "unknown baseline 'magic'" in bad.output


@pytest.mark.parametrize("corrupt", [
    lambda lines: lines[1:],  # no header (an older or foreign file)
    lambda lines: [lines[0].replace('"seed": 0', '"seed": 7'), *lines[1:]],  # written for another setting
    lambda lines: [lines[0], *(line.replace("[", '["x", ') for line in lines[1:])],  # not numbers
    lambda lines: [lines[0], lines[1][:-9], *lines[2:]],  # a line torn by a kill
])
def test_a_foreign_or_corrupt_score_store_is_recomputed(bench, built, tmp_path, corrupt):
    args = [*common(bench, tmp_path), "--only", "synflow,snip", "--format", "json"]
    first = CliRunner().invoke(baselines_command, args)
    path = next((tmp_path / "cache" / "scores").rglob("scores.jsonl"))
    path.write_text("\n".join(corrupt(path.read_text().splitlines())) + "\n")
    built.clear()
    again = CliRunner().invoke(baselines_command, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert built  # what could not be read was measured again
    assert json.loads(path.read_text().splitlines()[0])["format"] == "proxylang-scores-1"


def test_eval_all_archs_scores_the_whole_space_and_resumes(bench, built, tmp_path):
    expr = tmp_path / "l1.px"
    expr.write_text("sum(abs(W))\n")
    out = tmp_path / "scores.csv"
    args = [str(expr), *common(bench, tmp_path), "--all-archs", "--scores-out", str(out)]
    first = CliRunner().invoke(eval_command, args)
    assert first.exit_code == 0, first.output
    assert f"scored {len(ARCHS) + len(EXTRA)} archs, {len(ARCHS)} of them with ground truth" in first.stdout
    assert "full 6" in first.stdout  # the protocol reads the archs with ground truth
    assert sorted(r["arch"] for r in csv.DictReader(out.open())) == sorted(ARCHS + EXTRA)
    store = next((tmp_path / "cache" / "scores").rglob("scores.jsonl"))
    lines = store.read_text().splitlines()
    store.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])  # killed while writing the fourth network
    built.clear()
    again = CliRunner().invoke(eval_command, args)
    assert again.exit_code == 0, again.output
    assert sorted(built) == sorted(json.loads(line)["arch"] for line in lines[4:])  # only what was lost
    assert again.stdout == first.stdout
    assert sorted(r["arch"] for r in csv.DictReader(out.open())) == sorted(ARCHS + EXTRA)
    clash = CliRunner().invoke(eval_command, [*args, "--archs", str(tmp_path / "list.txt")])
    assert clash.exit_code == 2 and "--all-archs and --archs" in clash.output


def test_eval_scores_several_files_in_one_pass(bench, tmp_path):
    l1, l2 = tmp_path / "l1.px", tmp_path / "l2.px"
    l1.write_text("sum(abs(W))\n")
    l2.write_text("frobenius(W)\n")
    out = tmp_path / "scores.csv"
    args = [str(l1), str(l2), *common(bench, tmp_path), "--scores-out", str(out)]
    both = CliRunner().invoke(eval_command, args)
    assert both.exit_code == 0, both.output
    assert both.stdout.count("== ") == 2 and f"== {l2}" in both.stdout
    rows = list(csv.DictReader(out.open()))
    assert [r["proxy"] for r in rows] == [str(l1), str(l2)] * len(ARCHS)  # each network's rows at once
    alone = CliRunner().invoke(eval_command, [str(l2), *common(bench, tmp_path)])
    assert alone.stdout in both.stdout  # the same table as a run of that file alone


def test_eval_with_two_workers_gives_the_same_scores(bench, tmp_path, one_thread):
    expr = tmp_path / "s.px"
    expr.write_text("sum(lt(softmax(W), relu(G))) + frobenius(A)\n")
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"scores-{workers}.csv"
        args = [str(expr), *common(bench, tmp_path), "--cache", str(tmp_path / workers), "--workers", workers,
                "--scores-out", str(out)]
        result = CliRunner().invoke(eval_command, args)
        assert result.exit_code == 0, result.output
        outputs.append(sorted(tuple(r.values()) for r in csv.DictReader(out.open())))
    assert outputs[0] == outputs[1]
