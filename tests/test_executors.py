"""Executors: the same results in the same order on every engine, a fn's error as itself, and a Ray
task whose worker is killed mid-run run again."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from proxylang.errors import ProxylangError
from proxylang.executors import RAY_MISSING, LocalExecutor, RayExecutor, make_executor

ITEMS = list(range(9))


def square(x: int) -> int:
    return x * x


def fail_on_five(x: int) -> int:
    if x == 5:
        raise ProxylangError("item 5 is refused")
    return x


def sleep_once_on_three(folder: Path, x: int) -> int:
    """The task for item 3 records its pid and hangs, on its first attempt only: the test kills it."""
    marker = folder / "pid"
    if x == 3 and not marker.exists():
        partial_file = folder / "pid.part"
        partial_file.write_text(str(os.getpid()))
        partial_file.rename(marker)  # whole or absent, never half-written
        time.sleep(300)
    return x * x


@pytest.mark.parametrize(("workers", "start"), [(1, "fork"), (2, "fork"), (2, "spawn")])
def test_local_executor_maps_in_order(workers, start):
    with LocalExecutor(workers, start) as executor, executor.bind(square) as bound:
        assert bound.map(ITEMS) == [x * x for x in ITEMS]
        assert bound.map([]) == [] and bound.map([4]) == [16]
        done = list(bound.as_completed(ITEMS))
    assert sorted(index for index, _ in done) == list(range(len(ITEMS)))
    assert all(result == ITEMS[index] ** 2 for index, result in done)


@pytest.mark.parametrize(("workers", "start"), [(1, "fork"), (2, "fork"), (2, "spawn")])
def test_an_error_in_fn_surfaces_as_itself(workers, start):
    with LocalExecutor(workers, start).bind(fail_on_five) as bound, pytest.raises(ProxylangError) as caught:
        bound.map(ITEMS)
    assert type(caught.value) is ProxylangError and str(caught.value) == "item 5 is refused"


def test_engine_choices_are_checked_before_anything_starts(monkeypatch):
    with pytest.raises(ProxylangError, match="--address .* needs --engine ray"):
        make_executor("local", "auto")
    with pytest.raises(ProxylangError, match="--workers is for the local engine"):
        make_executor("ray", None, workers=2)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: import ray fails
    with pytest.raises(ProxylangError) as caught:
        make_executor("ray", None)
    assert str(caught.value) == RAY_MISSING == "--engine ray needs Ray: pip install -e '.[ray]'"
    assert make_executor("local", None, workers=2).start == "fork"
    # workers on a GPU are spawned: CUDA fails in a child forked from a process that asked CUDA anything
    assert make_executor("local", None, workers=2, gpus_per_task=1).start == "spawn"
    with pytest.raises(ProxylangError, match="unknown start method 'thread'"):
        LocalExecutor(2, "thread")


def test_an_unreachable_cluster_is_one_error_line():
    pytest.importorskip("ray")
    with pytest.raises(ProxylangError, match="no Ray cluster answers at 127.0.0.1:1 "):
        RayExecutor("127.0.0.1:1")
    with pytest.raises(ProxylangError, match="is not auto or HOST:PORT"):
        RayExecutor("somewhere")


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of 2 CPUs in this process; the executors use it as it is."""
    ray = pytest.importorskip("ray")
    # the test functions live in a test module, which Ray's workers cannot import: send them by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_results(local_ray):
    with RayExecutor() as executor, executor.bind(square) as bound:
        assert bound.map(ITEMS) == [x * x for x in ITEMS]
        done = list(bound.as_completed(ITEMS))
        assert sorted(index for index, _ in done) == list(range(len(ITEMS)))
        assert all(result == ITEMS[index] ** 2 for index, result in done)
    assert local_ray.is_initialized()  # it was running before: the executor leaves it running


def test_ray_reraises_fn_errors_as_themselves(local_ray):
    with RayExecutor().bind(fail_on_five) as bound, pytest.raises(ProxylangError) as caught:
        bound.map(ITEMS)
    assert type(caught.value) is ProxylangError and str(caught.value) == "item 5 is refused"


def test_a_task_whose_worker_is_killed_is_run_again(local_ray, tmp_path):
    killed = []

    def kill_the_sleeper() -> None:
        marker = tmp_path / "pid"
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if marker.exists():
            killed.append(int(marker.read_text()))
            os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_sleeper)
    killer.start()
    try:
        with RayExecutor().bind(partial(sleep_once_on_three, tmp_path)) as bound:
            assert bound.map(ITEMS) == [x * x for x in ITEMS]
    finally:
        killer.join()
    assert killed and killed[0] != os.getpid()
