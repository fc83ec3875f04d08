"""``--engine ray`` end to end: a local Ray cluster of 2 CPUs, ``proxylang eval`` and ``proxylang evolve``
through it with one worker killed mid-run, and the local engine's results for the same seed."""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from proxylang.bench.transnas import TRANSNAS
from proxylang.cli.evolve import evolve

EVOLVE = [sys.executable, "-m", "proxylang", "--threads", "1", "evolve", "--space", "micro",
          "--strategy", "evolution", "--iterations", "3"]
SMALL = REPO / "examples" / "evolve_small.toml"
DATA = REPO.parent / "shared" / "benchmarks"
TASK_TITLE = "ray::_ray_call"  # what Ray names a worker process while it runs one of the executor's tasks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[str, int, dict[str, str]]]:
    """A Ray head of 2 CPUs in its own temp dir: ``(address, pid of its ray start, environment of its
    clients)``. ``ray start --block`` stops the processes it started when terminated, where ``ray stop``
    would stop every Ray on the machine, other users' included. The cluster asks for a token of its
    own: whether Ray enables token authentication otherwise depends on a file in the home folder, and a
    client joining by address only sends a token when RAY_AUTH_MODE says so."""
    pytest.importorskip("ray")
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    port, temp = _free_port(), tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths live under it
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus", "2",
         "--port", str(port), "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        ready = Path(temp) / "ray_current_cluster"  # written once the node is up
        deadline = time.monotonic() + 180
        while not ready.exists() and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the Ray head did not start"
        yield f"127.0.0.1:{port}", head.pid, env
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _parents() -> dict[int, int]:
    """Every process's parent, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _task_worker(root: int) -> int | None:
    """A worker of the cluster started by ``root`` that is running one of the executor's tasks."""
    parents = _parents()
    for pid in parents:
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, root):
            ancestor = parents.get(ancestor)
        if ancestor != root:
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith(TASK_TITLE):
            return pid
    return None


def _run_killing_one_worker(command: list[str], head: int, env: dict[str, str]) -> int:
    """Run ``command`` while SIGKILLing the first worker of the cluster seen running a task; the number
    of workers killed (the caller asserts one was)."""
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed: list[int] = []

    def kill_one_task_worker() -> None:
        while run.poll() is None and not killed:
            pid = _task_worker(head)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_task_worker)
    killer.start()
    try:
        _, err = run.communicate(timeout=600)
    finally:
        killer.join()
    assert run.returncode == 0, err
    return len(killed)


def test_eval_through_ray_with_a_killed_worker_equals_the_local_engine(ray_cluster, tmp_path):
    address, head, env = ray_cluster
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(TRANSNAS.load_truth("micro", DATA).archs[:9]))
    saswot = str(REPO / "examples" / "saswot.px")
    eval_ = [sys.executable, "-m", "proxylang", "--threads", "1", "eval", saswot, "--space", "micro",
             "--archs", str(archs), "--resolution", "32", "--batch-size", "2", "--sample", "4",
             "--repeats", "2"]

    def scores(run: str) -> list[dict[str, str]]:
        rows = list(csv.DictReader((tmp_path / f"{run}.csv").open()))
        return sorted(rows, key=lambda r: r["arch"])

    local = subprocess.run([*eval_, "--cache", str(tmp_path / "local"), "--scores-out",
                            str(tmp_path / "local.csv")], capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr
    killed = _run_killing_one_worker([*eval_, "--cache", str(tmp_path / "ray"), "--scores-out",
                                      str(tmp_path / "ray.csv"), "--engine", "ray", "--address", address],
                                     head, env)
    assert killed == 1
    assert len(scores("ray")) == 9 and scores("ray") == scores("local")


def _comparable(run: Path) -> tuple:
    summary = json.loads((run / "summary.json").read_text())
    history = [json.loads(line) for line in (run / "evolution" / "log.jsonl").read_text().splitlines()]
    fields = ("generation", "evaluations", "best_train", "best_val", "mean_train", "rejections", "best")
    return ((run / "best.px").read_text(), summary["strategies"], summary["kendall"],
            [{k: record[k] for k in fields} for record in history])


def test_evolve_through_ray_with_a_killed_worker_equals_the_local_engine(ray_cluster, tmp_path):
    address, head, env = ray_cluster
    cache = ["--config", str(SMALL), "--cache", str(tmp_path / "cache")]
    local = subprocess.run([*EVOLVE, *cache, "--out", str(tmp_path / "local")], capture_output=True,
                           text=True, timeout=600)
    assert local.returncode == 0, local.stderr

    killed = _run_killing_one_worker([*EVOLVE, *cache, "--out", str(tmp_path / "ray"), "--engine", "ray",
                                      "--address", address], head, env)
    assert killed == 1, "no task worker was seen running"
    assert _comparable(tmp_path / "ray") == _comparable(tmp_path / "local")


def test_address_without_the_ray_engine_is_one_error_line(tmp_path):
    result = CliRunner().invoke(evolve, ["--config", str(SMALL),
                                         "--address", "auto", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: --address names a Ray cluster: it needs --engine ray")
