"""TransNAS-Bench-101 networks: arch parsing, shapes at small resolutions, and params/FLOPs that
reproduce the data files."""

from __future__ import annotations

import json
import random

import pytest
import torch
from conftest import REPO
from torch import nn

from proxylang.bench.transnas import TRANSNAS, build_network, count_params, parse_arch
from proxylang.errors import DataError
from proxylang.scoring.flops import count_flops

DATA = REPO.parent / "shared" / "benchmarks" / "transnas"


def test_parse_arch_reads_the_data_files_keys():
    assert parse_arch("micro", "(1, 0, 0, 2, 1, 0)") == (1, 0, 0, 2, 1, 0)
    assert parse_arch("macro", " (4,1,3,3,0,0) ") == (4, 1, 3, 3, 0, 0)
    assert parse_arch("macro", [1, 2, 4, 2, 0, 0]) == (1, 2, 4, 2, 0, 0)


@pytest.mark.parametrize("space, key", [
    ("micro", "(1, 0, 0, 4, 1, 0)"),   # op 4 does not exist
    ("micro", "(1, 0, 0, 2, 1)"),      # five edges
    ("macro", "(1, 0, 2, 2, 0, 0)"),   # padding in the middle
    ("macro", "(0, 0, 0, 0, 0, 0)"),   # no module
    ("macro", "(3, 3, 3, 3, 4, 0)"),   # five downsamplings: the decoder cannot undo them
    ("micro", "1-0-0-2-1-0"),
    ("micro", "(a, b)"),
])
def test_parse_arch_names_an_ill_formed_key(space, key):
    with pytest.raises(DataError, match=r"not a (micro|macro) arch: .*" + key[:2].replace("(", r"\(")):
        build_network(space, key)


def test_unknown_space_is_a_data_error():
    with pytest.raises(DataError, match="unknown TransNAS-Bench-101 space 'nano'"):
        parse_arch("nano", "(1, 1, 1, 1, 1, 1)")


@pytest.mark.parametrize("space, arch, resolution", [
    ("micro", "(3, 1, 0, 2, 0, 3)", 64),
    ("macro", "(4, 3, 4, 3, 0, 0)", 32),   # reduction 64: the output is cropped back to 32
    ("macro", "(1, 2, 1, 1, 1, 3)", 64),
])
def test_forward_and_backward_at_small_resolutions(space, arch, resolution):
    torch.manual_seed(0)
    model = build_network(space, arch)
    x = torch.randn(2, 3, resolution, resolution)
    out = model(x)
    assert out.shape == (2, 17, resolution, resolution)
    nn.functional.cross_entropy(out, torch.randint(0, 17, (2, resolution, resolution))).backward()
    assert model.encoder.stem[0].weight.grad.abs().sum() > 0  # the gradient reaches the first conv


def test_all_zero_cell_still_runs_and_its_encoder_outputs_zeros():
    model = build_network("micro", (0, 0, 0, 0, 0, 0), num_classes=5)
    x = torch.randn(1, 3, 64, 64)
    assert not model.encoder(x).any()
    assert model(x).shape == (1, 5, 64, 64)


def test_flops_scale_with_pixels_and_ignore_the_device():
    model = build_network("micro", "(2, 1, 3, 1, 2, 1)")
    with torch.device("meta"):
        meta_model = build_network("micro", "(2, 1, 3, 1, 2, 1)")
    full = count_flops(model, 256)
    assert count_flops(meta_model, 256) == full
    assert count_flops(model, 128) == pytest.approx(full / 4)
    assert model.encoder.stem[0].weight.device.type == "cpu"  # the model is left untouched
    assert model.training and model.decoder[0][1].training


def _sample(space: str, n: int = 5) -> list[tuple[str, dict]]:
    path = DATA / f"zc_transbench101_{space}.json"
    if not path.exists():
        pytest.skip(f"no data file {path}")
    records = json.loads(path.read_text())["segmentsemantic"]
    return random.Random(0).sample(sorted(records.items()), n)


@pytest.mark.parametrize("space", ["micro", "macro"])
def test_params_and_flops_match_the_data_files(space):
    for key, record in _sample(space):
        with torch.device("meta"):
            model = build_network(space, key)
        assert count_params(model) / 1e6 == pytest.approx(record["params"]["score"], rel=5e-3), key
        assert count_flops(model, 256) == pytest.approx(record["flops"]["score"], rel=2e-2), key


def test_zero_edge_keeps_the_graph_when_channels_are_kept():
    model = build_network("micro", "(3, 0, 3, 0, 0, 3)", num_classes=3)  # skip-free; 0->2, 0->3 are none
    zero = model.encoder.layers[1][0].edges[1]
    x = torch.randn(1, 128, 8, 8, requires_grad=True)
    out = zero(x)
    assert out.shape == (1, 128, 8, 8) and not out.any() and out.requires_grad


def _l2_norm(model: nn.Module) -> float:
    """NASLib's l2_norm: Σ ‖W‖₂ over Conv2d and Linear weights."""
    return sum(float(m.weight.detach().norm()) for m in model.modules() if type(m) in (nn.Conv2d, nn.Linear))


@pytest.mark.parametrize("space", ["micro", "macro"])
def test_benchmark_init_reproduces_the_reference_l2_norm(space):
    for key, record in _sample(space, 3):
        torch.manual_seed(0)
        ours = _l2_norm(build_network(space, key))
        assert ours == pytest.approx(record["l2_norm"]["score"], rel=0.01), key
    torch.manual_seed(0)
    default = build_network("micro", "(1, 0, 0, 2, 1, 0)")
    for m in default.encoder.modules():  # PyTorch's default init, what the networks had before
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
            m.reset_parameters()
    assert _l2_norm(default) < 0.6 * 341.56  # the data file's value for this arch


@pytest.mark.parametrize("space, count", [("micro", 4096), ("macro", 3256)])
def test_every_architecture_of_a_space_from_its_rules(space, count):
    archs = TRANSNAS.all_archs(space)
    assert len(archs) == len(set(archs)) == count  # the sizes TransNAS-Bench-101 states
    assert all(parse_arch(space, a) for a in archs)  # each a legal key, in the data files' spelling
    assert set(TRANSNAS.load_truth(space, DATA.parent).archs) <= set(archs)  # the data file's too
