"""Hostile input to the ``segsearch`` commands: each ends in one ``error:`` line naming the option or
file, exit code 2 and no traceback, before any search, training or timing starts."""

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import segsearch.cli as cli
import segsearch.network as network
import segsearch.train as train_module
from segsearch.latency import LatencyTable
from segsearch.search import Search
from segsearch.space import random_arch, save_arch

PROXY = Path(__file__).resolve().parents[2] / "examples" / "saswot.px"

pytestmark = pytest.mark.usefixtures("one_thread")


def _no_work(*args, **kwargs):
    raise AssertionError("real work started before the input was checked")


@pytest.fixture(autouse=True)
def no_real_work(monkeypatch):
    """Every case must fail before a search, a training run, a timing or a network build starts."""
    for name in ("train", "measure_latency_ms", "build_network", "evaluate", "random_baseline"):
        monkeypatch.setattr(cli, name, _no_work)
    monkeypatch.setattr(train_module, "build_network", _no_work)
    monkeypatch.setattr(Search, "run", _no_work)
    monkeypatch.setattr(Search, "calibrate", _no_work)


@pytest.fixture
def arch(tmp_path):
    path = tmp_path / "arch.json"
    save_arch(random_arch(random.Random(0), layers=6), path)
    return path


def invoke(args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def assert_user_error(result, *names):
    """Exit code 2, exactly one ``error:`` line on stderr naming every one of ``names``, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for name in names:
        assert str(name) in lines[0], lines[0]


def search_args(tmp_path, *extra):
    return ["search", "--proxy", PROXY, "--out", tmp_path / "out.json", "--device", "cpu", *extra]


NO_CUDA = [] if torch.cuda.is_available() else [(["--device", "cuda"], "'cuda'")]


@pytest.mark.parametrize("extra, name", [
    (["--num-classes", "0"], "--num-classes"),
    (["--num-classes", "-3"], "--num-classes"),
    (["--num-classes", "1001"], "--num-classes"),
    (["--resolution", "8x8", "--batch-size", "1"], "--resolution"),
    (["--resolution", "64x64", "--batch-size", "1"], "--batch-size"),
    (["--resolution", "0x64"], "--resolution"),
    (["--resolution", "-5x64"], "--resolution"),
    (["--resolution", "100000x100000"], "--resolution"),
    (["--resolution", "9" * 5000 + "x8"], "--resolution"),
    (["--resolution", "abc"], "--resolution"),
    (["--resolution", "4x4"], "--resolution"),
    (["--resolution", "8192x8192", "--batch-size", "1024"], "--batch-size and --resolution"),
    (["--latency-size", "0x5"], "--latency-size"),
    (["--latency-size", "8192x8192", "--target-fps", "30"], "--latency-size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-5"], "--batch-size"),
    (["--batch-size", "100000"], "--batch-size"),
    (["--batch-size", "abc"], "--batch-size"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"),
    (["--population", "0"], "--population"),
    (["--generations", "-1"], "--generations"),
    (["--parents", "0"], "--parents"),
    (["--calibration", "0"], "--calibration"),
    (["--compare-random", "-1"], "--compare-random"),
    (["--target-fps", "0"], "--target-fps"),
    (["--target-fps", "-30"], "--target-fps"),
    (["--target-fps", "nan"], "--target-fps"),
    (["--target-fps", "inf"], "--target-fps"),
    (["--device", "tpu"], "'tpu'"),
    (["--device", "meta"], "'meta'"),
    *NO_CUDA,
])
def test_search_refuses_bad_options_before_searching(tmp_path, extra, name):
    assert_user_error(invoke(search_args(tmp_path, *extra)), name)
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.search.json").exists()


def _binary(path):
    path.write_bytes(b"\xff\xfe\x00proxy")


def _folder(path):
    path.mkdir()


def _fifo(path):
    os.mkfifo(path)


@pytest.mark.parametrize("make", [_binary, _folder, _fifo, None])
def test_search_refuses_an_unreadable_proxy_file(tmp_path, make):
    proxy = tmp_path / "bad.px"
    if make is not None:
        make(proxy)
    result = invoke(["search", "--proxy", proxy, "--out", tmp_path / "out.json", "--device", "cpu"])
    assert_user_error(result, proxy, "proxy")


def test_search_refuses_output_paths_it_could_not_write(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_user_error(invoke(["search", "--proxy", PROXY, "--out", folder]), "--out", folder)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke(["search", "--proxy", PROXY, "--out", blocker / "arch.json", "--device", "cpu"])
    assert_user_error(result, "--out", blocker)
    result = invoke(search_args(tmp_path, "--checkpoint", blocker / "ck.json"))
    assert_user_error(result, "--checkpoint", blocker)
    result = invoke(search_args(tmp_path, "--target-fps", "30", "--latency-table", blocker / "t.json"))
    assert_user_error(result, "--latency-table", blocker)


@pytest.mark.parametrize("content", [b"\x80\x81 torn", b'{"format": ', b"[1, 2]", b"[" * 100_000])
def test_search_refuses_a_corrupt_checkpoint_on_resume(tmp_path, content):
    checkpoint = tmp_path / "ck.json"
    checkpoint.write_bytes(content)
    assert_user_error(invoke(search_args(tmp_path, "--checkpoint", checkpoint, "--resume")), checkpoint)


def _table(tmp_path, entries):
    path = tmp_path / "table.json"
    path.write_text(json.dumps({**LatencyTable(torch.device("cpu")).header, "entries": entries}))
    return path


def test_search_refuses_a_latency_table_whose_entries_are_not_numbers(tmp_path):
    table = _table(tmp_path, {"x": "abc"})
    result = invoke(search_args(tmp_path, "--target-fps", "30", "--latency-table", table))
    assert_user_error(result, table, "'x'")


@pytest.mark.parametrize("extra, name", [
    (["--num-classes", "0"], "--num-classes"),
    (["--num-classes", "-1"], "--num-classes"),
    (["--repeats", "0"], "--repeats"),
    (["--warmup", "-1"], "--warmup"),
    (["--size", "abc"], "--size"),
    (["--size", "0x0"], "--size"),
    (["--size", "8192x8192", "--num-classes", "1000"], "--size"),
    (["--device", "meta"], "'meta'"),
])
def test_latency_refuses_bad_options_before_timing(arch, extra, name):
    assert_user_error(invoke(["latency", arch, "--device", "cpu", *extra]), name)


def test_latency_refuses_a_table_whose_entries_are_not_numbers(tmp_path, arch):
    table = _table(tmp_path, {"stem": "abc"})
    result = invoke(["latency", arch, "--device", "cpu", "--predict", "--latency-table", table])
    assert_user_error(result, table, "'stem'")


def _arch_edit(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("write", [
    lambda p: p.write_text("[[0, 1, 2]]"),
    lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
    lambda p: p.write_text("{not json"),
    lambda p: p.write_bytes(b"\xff\xfe{}"),
    lambda p: _arch_edit(p, lambda d: d.__setitem__("alpha", "conv")),
    lambda p: _arch_edit(p, lambda d: d["beta"].__setitem__(0, {"a": 1})),
    lambda p: _arch_edit(p, lambda d: d["ratio"][0].__setitem__(0, 99)),
    lambda p: _arch_edit(p, lambda d: d["alpha"][0].__setitem__(0, -1)),
    lambda p: _arch_edit(p, lambda d: d["alpha"][0].__setitem__(0, 1.5)),
    lambda p: _arch_edit(p, lambda d: d["alpha"][0].__setitem__(0, [[[1]]])),
    lambda p: p.unlink(),
    lambda p: (p.unlink(), p.mkdir()),
])
def test_a_bad_arch_file_is_one_error_naming_it(arch, write):
    write(arch)
    assert_user_error(invoke(["latency", arch, "--device", "cpu"]), arch)


def train_args(arch, tmp_path, *extra):
    return ["train", arch, "--dataset", "camvid", "--data-root", tmp_path / "camvid", "--out",
            tmp_path / "run", "--device", "cpu", *extra]


@pytest.mark.parametrize("extra, name", [
    (["--workers", "-1"], "--workers"),
    (["--workers", "100000"], "--workers"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"),
    (["--epochs", "0"], "--epochs"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--lr-decay", "nan"], "--lr-decay"),
    (["--kd-weight", "-1"], "--kd-weight"),
    (["--kd-weight", "nan"], "--kd-weight"),
    (["--batch-size", "0"], "--batch-size"),
    (["--size", "0x0"], "--size"),
    (["--size", "8192x8192", "--batch-size", "1024"], "--batch-size and --size"),
    (["--device", "tpu"], "'tpu'"),
])
def test_train_refuses_bad_options_before_training(arch, tmp_path, extra, name):
    assert_user_error(invoke(train_args(arch, tmp_path, *extra)), name)


def test_train_refuses_an_out_path_that_is_a_file(arch, tmp_path):
    out = tmp_path / "run"
    out.write_text("keep me")
    assert_user_error(invoke(train_args(arch, tmp_path)), "--out", out)
    assert out.read_text() == "keep me"


def _camvid(root, images=1, fifo=False):
    """A CamVid layout with ``images`` 8x8 pairs per split (the train split's first one a pipe if asked)."""
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(images):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / split / f"{i}.png")
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / f"{split}annot" / f"{i}.png")
    if fifo:
        (root / "train" / "0.png").unlink()
        os.mkfifo(root / "train" / "0.png")


def test_train_refuses_a_last_batch_too_small_for_batch_norm(arch, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "train", train_module.train)  # the real one: it must stop before building
    _camvid(tmp_path / "camvid", images=3)
    result = invoke(train_args(arch, tmp_path, "--size", "8x8", "--batch-size", "2"))
    assert_user_error(result, "last training batch", "--batch-size")


def test_train_refuses_an_image_that_is_a_pipe(arch, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "train", train_module.train)
    _camvid(tmp_path / "camvid", fifo=True)
    assert_user_error(invoke(train_args(arch, tmp_path)), "0.png", "not a regular file")


@pytest.mark.parametrize("make", [lambda p: p.write_bytes(b"garbage"), _fifo, _folder, None])
def test_eval_refuses_an_unreadable_checkpoint(tmp_path, make):
    checkpoint = tmp_path / "model.pt"
    if make is not None:
        make(checkpoint)
    result = invoke(["eval", checkpoint, "--dataset", "camvid", "--data-root", tmp_path, "--device", "cpu"])
    assert_user_error(result, checkpoint)


@pytest.mark.parametrize("edit", [
    lambda c: c.__setitem__("num_classes", 10**9),
    lambda c: c.__setitem__("num_classes", "19"),
    lambda c: c.__setitem__("role", "judge"),
    lambda c: c.__setitem__("arch", [1, 2]),
    lambda c: c.__setitem__("state_dict", {"stem.0.0.weight": torch.zeros(1)}),
    lambda c: c.__setitem__("state_dict", {1: 2}),
    lambda c: c.__setitem__("state_dict", None),
])
def test_eval_refuses_a_checkpoint_whose_contents_do_not_fit(tmp_path, monkeypatch, edit):
    monkeypatch.setattr(train_module, "build_network", network.build_network)  # to load the weights into
    arch = random_arch(random.Random(0), layers=4)
    contents = {"format": train_module.CHECKPOINT_FORMAT, "arch": arch.to_dict(), "role": "student",
                "num_classes": 11, "state_dict": {}}
    edit(contents)
    checkpoint = tmp_path / "model.pt"
    torch.save(contents, checkpoint)
    result = invoke(["eval", checkpoint, "--dataset", "camvid", "--data-root", tmp_path, "--device", "cpu"])
    assert_user_error(result, checkpoint)


@pytest.mark.parametrize("extra, name", [
    (["--batch-size", "0"], "--batch-size"),
    (["--size", "x"], "--size"),
])
def test_eval_refuses_bad_options(tmp_path, extra, name):
    result = invoke(["eval", tmp_path / "model.pt", "--dataset", "camvid", "--data-root", tmp_path, *extra])
    assert_user_error(result, name)
