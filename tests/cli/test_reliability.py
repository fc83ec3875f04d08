"""Hostile input at the command line: one representative of every case of the reliability issue.

Each case must end in exactly one ``error:`` line on stderr that says what is wrong, exit code 2, no
traceback, within a deadline, and nothing written that a later run would trust. Most cases run the
command in this process (click's runner, under a SIGALRM deadline); those about the process's own
standard input, or reads that block in the kernel, run as a real ``proxylang`` process with a timeout.
``benchmarks/hostile.py`` throws thousands more at the same commands.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from proxylang.cli.main import main
from segsearch.cli import main as segsearch_main
from segsearch.space import random_arch, save_arch

DEADLINE_S = 60
EXAMPLE = REPO / "examples" / "saswot.px"
MICRO = "(1, 0, 0, 2, 1, 0)"


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """A hang becomes a TimeoutError in the command, which the test reports as a failure."""
    def expire(*_: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def shown_lines(stderr: str) -> list[str]:
    """What a terminal shows: a progress bar's carriage returns and cursor moves taken into account."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", stderr)
    return [shown for line in text.split("\n") if (shown := line.split("\r")[-1].strip())]


def assert_one_error(exit_code: int, stderr: str, says: str, exception: BaseException | None = None) -> None:
    lines = shown_lines(stderr)
    assert exception is None or isinstance(exception, SystemExit), repr(exception)
    assert "Traceback" not in stderr
    assert exit_code == 2 and len(lines) >= 1, stderr
    error = lines[-1]  # a progress bar may come before it, on its own line
    assert error.startswith("error: ") and re.search(says, error), error
    assert sum(line.startswith("error: ") for line in lines) == 1


def refuses(command: Callable, args: list[str], says: str, stdin: str | bytes | None = None) -> None:
    with deadline(DEADLINE_S):
        result = CliRunner().invoke(command, args, input=stdin)
    assert_one_error(result.exit_code, result.stderr, says, result.exception)


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXYLANG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PROXYLANG_DATA", str(REPO.parent / "shared" / "benchmarks"))
    return tmp_path


def write(path: Path, content: str | bytes) -> str:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def two_archs(tmp_path: Path) -> str:
    return write(tmp_path / "archs.txt", f"{MICRO}\n(1, 1, 0, 3, 1, 2)\n")


# ------------------------------------------------------------------------ proxy files and their text

NOT_UTF8 = {
    "latin-1": "sum(W) # café".encode("latin-1"),
    "utf-16": "sum(W)".encode("utf-16"),
    "gzip": gzip.compress(b"sum(W)"),
    "png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "random": bytes((i * 131 + 7) % 256 for i in range(4096)),
}


@pytest.mark.parametrize("kind", NOT_UTF8)
def test_a_proxy_file_that_is_not_utf8(tmp_path, kind):
    path = write(tmp_path / "p.px", NOT_UTF8[kind])
    refuses(main, ["check", path], rf"{re.escape(path)}: cannot read the proxy file: not UTF-8 text")


def _chain(lines: int) -> str:
    return "\n".join(["let a1 = W + W", *(f"let a{i} = a{i - 1} + a{i - 1}" for i in range(2, lines + 1)),
                      f"sum(a{lines})"])


@pytest.mark.parametrize("text, says", [
    ("abs(" * 1000 + "W" + ")" * 1000, "nested 1002 levels deep; at most 100"),
    ("sum(" + " + ".join(["W"] * 1000) + ")", "nested 1002 levels deep; at most 100"),
    ("".join(f"let a{i} = {'W' if i == 0 else f'abs(a{i - 1})'}\n" for i in range(1000)) + "sum(a999)",
     "levels deep"),
    (_chain(60), "2305843009213693952 nodes once its let bindings are inlined; at most 2000"),
    ("sum(W) * 1e999", "the number 1e999 is too large for a float"),
    ("sum(W) * ٣", "unexpected character '٣'"),
    ("sum(W) * ７", "unexpected character '７'"),
    ("let x = A + W\nsum(W)", r"1:5: 'x' is bound but never used"),
    ("sum(A + W)", r"A \+ W: shapes N×O\*P and O×K differ"),
    ("", "unexpected end of input"),
    ("sum(W) * 1e-400", "the number 1e-400 is too small for a float"),
    ("sum(" + "W + " * 250_000, "1000004 characters; a proxy has at most 65536"),  # Lark would take 12 s
], ids=["abs-1000-deep", "sum-of-1000", "1000-nested-lets", "doubling-lets", "1e999", "arabic-digit",
        "fullwidth-digit", "unused-ill-typed-let", "ill-typed", "empty", "1e-400", "a-megabyte"])
def test_hostile_proxy_text(tmp_path, text, says):
    path = write(tmp_path / "p.px", text)
    refuses(main, ["check", path], f"{re.escape(path)}:.*{says}")


def test_a_folder_as_the_proxy(tmp_path):
    refuses(main, ["check", str(tmp_path)], "cannot read the proxy file: it is a folder")


def run_process(shell_command: str) -> subprocess.CompletedProcess:
    """``proxylang`` as a real process (its own stdin), through the shell for redirections."""
    command = f"{shlex.quote(sys.executable)} -m proxylang {shell_command}"
    return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=DEADLINE_S, cwd=REPO)


@pytest.mark.parametrize("redirect, says", [
    ("check - 0<&-", "<stdin>: no standard input to read the proxy from"),
    ("check - < /dev/zero", "<stdin>: cannot read the proxy file: larger than 64 MiB"),
    ("check /dev/zero", "/dev/zero: cannot read the proxy file: not a regular file"),
    ("check FIFO", "FIFO: cannot read the proxy file: not a regular file"),  # no writer: would block
])
def test_unbounded_or_blocking_reads(tmp_path, redirect, says):
    fifo = tmp_path / "fifo.px"
    os.mkfifo(fifo)
    done = run_process(redirect.replace("FIFO", str(fifo)))
    assert_one_error(done.returncode, done.stderr, re.escape(says).replace("FIFO", ".*fifo.px"))


# ------------------------------------------------------------------------------ options and configs

@pytest.mark.parametrize("args, says", [
    (["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295"),
    (["--seed", str(2**64)], "Invalid value for '--seed'"),
    (["--resolution", str(10**6)], "Invalid value for '--resolution'"),
    (["--batch-size", "0"], "Invalid value for '--batch-size'"),
    (["--sample", "0"], "Invalid value for '--sample'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "meta"], "unsupported device 'meta'"),
])
def test_eval_options(data_env, args, says):
    refuses(main, ["eval", str(EXAMPLE), "--space", "micro", "--archs", two_archs(data_env), *args], says)


@pytest.mark.parametrize("env, args, says", [
    ({"PROXYLANG_CACHE_GB": "inf"}, [], "PROXYLANG_CACHE_GB must be a number of gigabytes"),
    ({"PROXYLANG_CACHE_GB": "-1"}, [], "PROXYLANG_CACHE_GB must be a number of gigabytes"),
    ({"PROXYLANG_MEMORY_GB": "abc"}, [], "PROXYLANG_MEMORY_GB must be a number of gigabytes"),
    ({"PROXYLANG_MEMORY_GB": "0"}, [], "PROXYLANG_MEMORY_GB must be a positive number"),
    ({}, ["--cache", "/proc/no-cache-here"], "cannot create the statistics cache folder"),
    ({}, ["--images", "MISSING"], "not a folder of images"),
    ({}, ["--labels", "MISSING"], "a folder of labels needs a folder of images"),
])
def test_environment_and_folders_are_checked_before_any_work(data_env, monkeypatch, env, args, says):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = [str(data_env / "missing") if a == "MISSING" else a for a in args]
    refuses(main, ["eval", str(EXAMPLE), "--space", "micro", "--archs", two_archs(data_env), *args], says)
    assert not (data_env / "cache").exists() or not list((data_env / "cache").rglob("*.pt"))


@pytest.mark.parametrize("out", ["/proc/no-run-here", "FILE/run"])
def test_evolve_output_that_cannot_be_a_folder(data_env, out):
    out = out.replace("FILE", write(data_env / "a-file", "x"))
    refuses(main, ["evolve", "--config", str(REPO / "examples" / "evolve_small.toml"), "--out", out],
            "cannot create the run folder")


def test_a_toml_nested_too_deep(data_env):
    config = write(data_env / "deep.toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    refuses(main, ["evolve", "--config", config], "invalid TOML .nested too deeply")


def test_baselines_with_an_empty_selection(data_env):
    refuses(main, ["baselines", "--space", "micro", "--only", ""], "unknown baseline ''")


@pytest.mark.parametrize("toml, says", [
    ("[search]\npopulation = 2.5\n", r"\[search\]: population must be an integer, got 2.5"),
    ("start_with = 3\n", "start_with must be a list of strings, got 3"),
    ("[data]\nmax_seconds = \"x\"\n", r"\[data\]: max_seconds must be a finite number, got 'x'"),
    ("search = 3\n", r"\[search\]: expected a table of settings, got 3"),
    ("[search]\npopulation = 1000000000000\n", "population must be between 1 and 100000"),
    ("[data]\nstats_seed = -1\n", "stats_seed must be between 0 and 4294967295"),
    ("[search\n", "invalid TOML"),
    (b"\x00\xff\xfe binary", "cannot read the config file: not UTF-8 text"),
])
def test_evolve_config_values(data_env, toml, says):
    config = write(data_env / "run.toml", toml)
    refuses(main, ["evolve", "--config", config, "--out", str(data_env / "out")],
            f"{re.escape(config)}.*{says}")
    assert not (data_env / "out").exists()  # refused before the run directory is claimed


def _claimed_run(tmp_path: Path) -> Path:
    """A run directory as evolve leaves it, from a refused-later run: run.json holds the settings."""
    out = tmp_path / "out"
    small = str(REPO / "examples" / "evolve_small.toml")
    with deadline(DEADLINE_S):
        CliRunner().invoke(main, ["evolve", "--config", small, "--out", str(out), "--data", str(tmp_path)])
    assert (out / "run.json").exists()
    return out


@pytest.mark.parametrize("damage, says", [
    (lambda out: (out / "run.json").write_text("{garbage"), "run.json: not a run settings file"),
    (lambda out: ((out / "run.json").unlink(), (out / "run.json").mkdir()),
     "run.json: cannot read the run settings file: it is a folder"),
    (lambda out: (out / "run.json").write_text('{"space": "micro"}'), "needs the same settings"),
])
def test_evolve_resume_on_a_damaged_run(data_env, damage, says):
    out = _claimed_run(data_env)
    damage(out)
    small = str(REPO / "examples" / "evolve_small.toml")
    refuses(main, ["evolve", "--config", small, "--out", str(out), "--resume"], says)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_a_crafted_checkpoint_cannot_run_code(data_env):
    out = _claimed_run(data_env)
    marker = data_env / "pwned"
    (out / "evolution").mkdir()
    (out / "evolution" / "checkpoint.json").write_bytes(pickle.dumps(_Payload(marker), 0))
    small = str(REPO / "examples" / "evolve_small.toml")
    refuses(main, ["evolve", "--config", small, "--out", str(out), "--resume"],
            "checkpoint.json: not a search checkpoint file")
    assert not marker.exists()


@pytest.mark.parametrize("args, says", [
    (["search", "--proxy", "BINARY", "--num-classes", "0"], "Invalid value for '--num-classes'"),
    (["search", "--proxy", "BINARY"], "cannot read the proxy file: not UTF-8 text"),
    (["search", "--proxy", str(EXAMPLE), "--resolution", "8x8", "--batch-size", "1"],
     "leaves 1x1 features"),
    (["latency", "ARCH", "--repeats", "0"], "Invalid value for '--repeats'"),
    (["train", "ARCH", "--dataset", "camvid", "--data-root", ".", "--out", "FILE"], "--out"),
    (["train", "ARCH", "--dataset", "camvid", "--data-root", ".", "--workers", "-1"],
     "Invalid value for '--workers'"),
    (["--memory-budget", "0.5", "latency", "ARCH", "--size", "1024x2048"],
     "over the memory budget of 512 MB"),
])
def test_segsearch_options(tmp_path, args, says):
    arch = tmp_path / "arch.json"
    save_arch(random_arch(random.Random(0)), arch)
    places = {"BINARY": write(tmp_path / "b.px", NOT_UTF8["png"]), "ARCH": str(arch),
              "FILE": write(tmp_path / "taken", "keep me")}
    refuses(segsearch_main, [places.get(a, a) for a in args], says)
    assert (tmp_path / "taken").read_text() == "keep me"


# ------------------------------------------------------------------- data files and silent results

def _data_file(tmp_path: Path, edit: Callable[[dict], None]) -> str:
    source = REPO.parent / "shared" / "benchmarks" / "transnas" / "zc_transbench101_micro.json"
    document = json.loads(source.read_text())
    edit(document["segmentsemantic"])
    return write(tmp_path / "zc_transbench101_micro.json", json.dumps(document))


def _respell(records: dict) -> None:
    """The first arch again, spelled without spaces, with another accuracy."""
    first = next(iter(records))
    records[first.replace(" ", "")] = {**records[first], "val_accuracy": 99.0}


@pytest.mark.parametrize("edit, says", [
    (_respell, "appears twice"),
    (lambda records: records[next(iter(records))].update(val_accuracy=float("inf")),
     "val_accuracy of .* is not a finite number: inf"),
    (lambda records: records.update({"(9, 9, 9, 9, 9, 9)": {"val_accuracy": 1.0}}),
     r"not a micro arch: '\(9, 9, 9, 9, 9, 9\)'"),
])
def test_a_damaged_data_file_is_named(data_env, edit, says):
    path = _data_file(data_env, edit)
    refuses(main, ["eval", str(EXAMPLE), "--space", "micro", "--bench-file", path],
            f"{re.escape(path)}: .*{says}")


def test_a_data_file_nested_too_deep(data_env):
    path = write(data_env / "zc_transbench101_micro.json", "[" * 100_000 + "]" * 100_000)
    refuses(main, ["eval", str(EXAMPLE), "--space", "micro", "--bench-file", path], "unreadable JSON")


def test_an_ill_typed_proxy_in_eval_is_located_in_its_file(data_env):
    path = write(data_env / "ill.px", "sum(A + W)\n")
    refuses(main, ["eval", path, "--space", "micro", "--archs", two_archs(data_env)],
            rf"{re.escape(path)}:1:5: ")


# ---------------------------------------------------------------------------------------- memory

def test_gram_of_activations_at_512_batch_32_is_refused_before_allocation(data_env):
    path = write(data_env / "gram.px", "sum(gram(A))\n")
    refuses(main, ["--memory-budget", "8", "eval", path, "--space", "micro", "--archs", two_archs(data_env),
                   "--profile", "benchmark", "--resolution", "512"],
            r"measuring micro arch \(1, 0, 0, 2, 1, 0\) at 512x512, batch 32 needs about \d+\.\d GB .*over "
            r"the memory budget of 8\.0 GB")
    assert not list((data_env / "cache").rglob("*.pt"))
