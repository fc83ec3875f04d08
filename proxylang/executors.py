"""One home for "run a function over many items, here or on a cluster": the search's candidate
evaluation, segsearch's scoring and the scoring sweeps of ``eval`` and ``baselines`` all use it.

An :class:`Executor` is *bound* to one callable (typically large and read-only, e.g. a fitness holding
packed statistics) and then maps it over items. :class:`LocalExecutor` runs in this process or in a
fork pool; :class:`RayExecutor` runs on a Ray cluster (``pip install -e '.[ray]'``), where a task whose
worker process dies is run again. Results come back in input order (``map``) or as they finish
(``as_completed``, for callers that write each result at once); either way they are the values the
callable returns, so a caller that consumes them in input order gets the same result on any engine.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType, TracebackType
from typing import Any, Self

from proxylang.errors import ProxylangError
from proxylang.runtime import memory_budget_setting

ENGINES = ("local", "ray")
START_METHODS = ("fork", "spawn")
RAY_MISSING = "--engine ray needs Ray: pip install -e '.[ray]'"
TASKS_PER_SLOT = 4  # Ray tasks in flight per task slot of the cluster: enough to keep it busy, bounded
CONNECT_TIMEOUT_S = 10.0
# Ray sends a token to a cluster joined by address only when told to, and retries for a minute without
AUTH_HINT = "; a cluster with token authentication needs RAY_AUTH_MODE=token here too"


class _Closing(ABC):
    """Something to :meth:`close` when done, also as a context manager."""

    @abstractmethod
    def close(self) -> None:
        """Release what it holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class Bound(_Closing):
    """An executor bound to one callable ``fn``; close it (or use it as a context manager) when done."""

    @abstractmethod
    def as_completed(self, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """``(index, fn(items[index]))`` for every item, each once, in the order they finish."""

    def map(self, items: Sequence[Any]) -> list[Any]:
        """``fn`` of every item, in input order."""
        results: list[Any] = [None] * len(items)
        for index, result in self.as_completed(items):
            results[index] = result
        return results

    @abstractmethod
    def close(self) -> None:
        """Release what the binding holds (worker processes, the callable's copy on a cluster)."""


class Executor(_Closing):
    """Where ``fn(item)`` runs; :meth:`bind` once per callable, then map it over any number of batches."""

    @abstractmethod
    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        """A binding of ``fn``, which must not change while bound (workers may hold copies of it)."""

    @abstractmethod
    def close(self) -> None:
        """Release the executor itself (a Ray instance it started)."""


def _torch_threads(count: int) -> None:
    torch = sys.modules.get("torch")  # set only where the callable uses torch; this module does not
    if torch is not None:
        torch.set_num_threads(count)


# ---- local: this process, or a fork pool ---------------------------------------------------------

_WORKER_FN: Callable[[Any], Any] | None = None


def _init_worker(fn: Callable[[Any], Any]) -> None:
    """Workers keep ``fn`` (inherited through a fork, pickled once per worker when spawned) and leave
    Ctrl-C to the parent, which stops the pool and tells the user how to resume. They run torch on one
    thread: a forked child that inherits the parent's OpenMP thread pool hangs in its first parallel
    torch op (measured: ``--workers 2`` never returned on TransNAS statistics), which is why torch's
    own DataLoader workers do the same."""
    global _WORKER_FN
    _WORKER_FN = fn
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _torch_threads(1)


def _worker_call(job: tuple[int, Any]) -> tuple[int, Any]:
    assert _WORKER_FN is not None
    index, item = job
    return index, _WORKER_FN(item)


class _LocalBound(Bound):
    """``fn`` in this process, or in a pool of worker processes started by ``start``: forked ones share
    the parent's data read-only (the callable reaches them through the fork, never pickled)."""

    def __init__(self, fn: Callable[[Any], Any], workers: int, start: str) -> None:
        self._fn = fn
        self._pool = None
        if workers > 1:
            context = multiprocessing.get_context(start)
            self._pool = context.Pool(workers, initializer=_init_worker, initargs=(fn,))

    def as_completed(self, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self._pool is None or len(items) < 2:  # one item is not worth a round trip
            for index, item in enumerate(items):
                yield index, self._fn(item)
            return
        yield from self._pool.imap_unordered(_worker_call, enumerate(items), chunksize=1)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


class LocalExecutor(Executor):
    """``fn`` in this process (``workers == 1``) or in a pool of ``workers`` processes, forked by
    default. Workers that use a GPU must be spawned (``start="spawn"``, ``fn`` then picklable): CUDA
    cannot run in a child forked from a process that has asked CUDA anything, even only whether a
    device is present."""

    def __init__(self, workers: int = 1, start: str = "fork") -> None:
        if workers < 1:
            raise ProxylangError(f"the number of workers must be at least 1, got {workers}")
        if start not in START_METHODS:
            raise ProxylangError(f"unknown start method {start!r}; expected one of "
                                 f"{', '.join(START_METHODS)}")
        self.workers, self.start = workers, start

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        return _LocalBound(fn, self.workers, self.start)

    def close(self) -> None:
        """Nothing to release: each binding stops its own pool."""


# ---- Ray -----------------------------------------------------------------------------------------


def _ray() -> ModuleType:
    """The ray module. Imported here, on first use, and nowhere else: Ray is an optional extra, and
    importing proxylang (or running the local engine) must work without it."""
    try:
        import ray
    except ImportError:
        raise ProxylangError(RAY_MISSING) from None
    return ray


_REMOTE: Any = None  # the Ray remote function, made on first use so importing this module needs no Ray
_WORKER_CACHE: tuple[str, Callable[[Any], Any]] | None = None  # in a Ray worker: the last callable


def _ray_call(box: list[Any], item: Any, threads: int) -> Any:
    """One task in a Ray worker. The callable's object ref comes boxed in a list so that Ray does not
    fetch and unpickle it for every task: a worker does that once per binding (the search's fitness is
    hundreds of MB of statistics) and keeps the result for the next tasks."""
    global _WORKER_CACHE
    ref = box[0]
    if _WORKER_CACHE is None or _WORKER_CACHE[0] != ref.hex():
        _WORKER_CACHE = None  # let the previous callable go before the next one arrives
        _WORKER_CACHE = (ref.hex(), _ray().get(ref))
    _torch_threads(threads)
    return _WORKER_CACHE[1](item)


def _remote() -> Any:
    global _REMOTE
    if _REMOTE is None:
        _REMOTE = _ray().remote(_ray_call)
    return _REMOTE


class _RayBound(Bound):
    """``fn`` stored once in the cluster's object store, and a bounded window of tasks in flight."""

    def __init__(self, executor: RayExecutor, fn: Callable[[Any], Any]) -> None:
        self._executor = executor
        self._fn_ref: Any = _ray().put(fn)
        self._pending: dict[Any, int] = {}

    def as_completed(self, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ray, ex = _ray(), self._executor
        budget = memory_budget_setting()  # --memory-budget reaches the workers through their environment
        task = _remote().options(num_cpus=ex.cpus_per_task, num_gpus=ex.gpus_per_task,
                                 max_retries=ex.max_retries,
                                 **({"runtime_env": {"env_vars": budget}} if budget else {}))
        threads = max(1, int(ex.cpus_per_task))
        queue = iter(enumerate(items))

        def submit() -> bool:
            job = next(queue, None)
            if job is not None:
                self._pending[task.remote([self._fn_ref], job[1], threads)] = job[0]
            return job is not None

        window = ex.window()
        try:
            while len(self._pending) < window and submit():
                pass
            while self._pending:
                [done], _ = ray.wait(list(self._pending), num_returns=1)
                index = self._pending.pop(done)
                try:
                    result = ray.get(done)
                except ray.exceptions.RayTaskError as exc:
                    # fn's own exception, as itself (a ProxylangError stays one line); Ray's error, with
                    # the remote traceback, is its cause
                    if not isinstance(exc.cause, BaseException):
                        raise
                    raise exc.cause from exc
                submit()  # refill the window before handing the result over
                yield index, result
        finally:
            self._cancel()

    def _cancel(self) -> None:
        """Stop the tasks still in flight (an error, Ctrl-C, or a caller that stopped reading)."""
        ray = _ray()
        for ref in self._pending:
            ray.cancel(ref)
        self._pending.clear()

    def close(self) -> None:
        self._cancel()
        self._fn_ref = None  # the cluster frees its copy of fn once no reference is left


def _check_reachable(address: str) -> None:
    """Fail at once, in one line, where no cluster answers at HOST:PORT: Ray itself retries for
    minutes before it gives up."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ProxylangError(f"--address {address!r} is not auto or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ProxylangError(f"no Ray cluster answers at {address} ({exc.strerror or exc})") from None


class RayExecutor(Executor):
    """Tasks on a Ray cluster: ``address`` None or ``"local"`` starts a Ray instance on this machine (shut
    down again by :meth:`close`), ``"auto"`` or ``HOST:PORT`` joins a running cluster; an already
    initialised Ray is used as it is. Each task asks for ``cpus_per_task`` CPUs (and torch threads) and
    ``gpus_per_task`` GPUs, and is run again up to ``max_retries`` times when its worker process dies;
    an exception ``fn`` raises is not retried and reaches the caller as itself."""

    def __init__(self, address: str | None = None, cpus_per_task: float = 1, gpus_per_task: float = 0,
                 max_retries: int = 3) -> None:
        ray = _ray()
        self.cpus_per_task, self.gpus_per_task, self.max_retries = cpus_per_task, gpus_per_task, max_retries
        self._owns = not ray.is_initialized()
        if not self._owns:
            return
        local = address in (None, "local")
        if not local and address != "auto":
            _check_reachable(address)
        options: dict[str, Any] = {"include_dashboard": False} if local else {"address": address}
        try:
            ray.init(logging_level=logging.WARNING, **options)
        except ConnectionError as exc:
            hint = "" if os.environ.get("RAY_AUTH_MODE") else AUTH_HINT
            raise ProxylangError(f"cannot join the Ray cluster at {address} ({exc}{hint})") from None

    def window(self) -> int:
        """Tasks kept in flight: a few per task slot of the cluster, so that results stream back without
        queueing every item's task at once."""
        cpus = _ray().cluster_resources().get("CPU", 1)
        slots = cpus / self.cpus_per_task if self.cpus_per_task > 0 else cpus
        return TASKS_PER_SLOT * max(1, int(slots))

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        return _RayBound(self, fn)

    def close(self) -> None:
        if self._owns:
            _ray().shutdown()
            self._owns = False


def make_executor(engine: str, address: str | None = None, workers: int = 1,
                  gpus_per_task: float = 0) -> Executor:
    """The executor for ``--engine``/``--address``/``--workers``, every combination checked first."""
    if engine not in ENGINES:
        raise ProxylangError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "local":
        if address is not None:
            raise ProxylangError("--address names a Ray cluster: it needs --engine ray")
        return LocalExecutor(workers, start="spawn" if gpus_per_task > 0 else "fork")
    if workers > 1:
        raise ProxylangError("--workers is for the local engine; --engine ray uses every CPU of the cluster")
    return RayExecutor(address, gpus_per_task=gpus_per_task)
