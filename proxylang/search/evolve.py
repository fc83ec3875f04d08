"""Algorithm 1 of SasWOT: an evolutionary search over candidates, generic over what a candidate is.

The engine only sees candidates through :class:`Operators` (random generation, mutation, crossover, a
canonical key for de-duplication) and a ``fitness`` callable, so it can be tested with a toy problem and
run on proxy expressions with :func:`proxylang.search.data.expression_operators`. One generation:

1. the sample pool is cleared and refilled with a random subset of the population (fresh random
   candidates top it up when the population is short, e.g. after many collapsed candidates);
2. the top-k of the pool are the parents; children come from crossover (probability
   ``crossover_prob``) or mutation of random parents;
3. children whose canonical key was already seen are dropped before evaluation, collapsed ones after;
4. greedy elitism: the next population is the best ``population`` of old and new together;
5. after ``patience`` generations without a better best, the population is reset to the best plus fresh
   random candidates (the paper's escape from a stale pool).

Generation 0 evaluates the ``seeds`` given to :class:`Search` (e.g. the hand-designed proxies, so the
search starts from what is already known) and fills the population with random candidates.
``strategy="random"`` replaces steps 1-2 by fresh random candidates: the random-search ablation at the
same number of fitness evaluations. Only the engine draws random numbers (one ``numpy`` generator whose
state is checkpointed), and evaluation results are consumed in order, so a run is reproducible for a
seed whatever the number of worker processes, and a resumed run ends exactly where an uninterrupted one
would.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from proxylang.errors import ProxylangError

C = TypeVar("C")
STRATEGIES = ("evolution", "random")
CHECKPOINT_NAME = "checkpoint.pkl"
LOG_NAME = "log.jsonl"


@dataclass(frozen=True)
class Fitness:
    """Kendall tau on the training archs (maximised) and on the validation archs (only watched).

    ``rejected`` names why a candidate collapsed (NaN, constant scores, ...); empty when it is usable.
    """

    train: float = float("nan")
    val: float = float("nan")
    rejected: str = ""

    @property
    def ok(self) -> bool:
        return not self.rejected


@dataclass(frozen=True)
class Individual(Generic[C]):
    """An evaluated candidate."""

    candidate: C
    key: str
    fitness: Fitness


@dataclass(frozen=True)
class Operators(Generic[C]):
    """How the engine makes and identifies candidates; an operator returns ``None`` to reject."""

    random: Callable[[np.random.Generator], C | None]
    mutate: Callable[[C, np.random.Generator], C | None]
    crossover: Callable[[C, C, np.random.Generator], C | None]
    key: Callable[[C], str]
    text: Callable[[C], str] = str


@dataclass(frozen=True)
class SearchConfig:
    """Hyper-parameters of one search; stored in its checkpoint so a resumed run uses the same ones."""

    strategy: str = "evolution"
    population: int = 40
    iterations: int = 30
    offspring: int = 20
    pool: int = 20
    top_k: int = 8
    crossover_prob: float = 0.5
    patience: int = 5
    attempts: int = 20
    max_evaluations: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ProxylangError(
                f"unknown strategy {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")
        for name in ("population", "iterations", "offspring", "pool", "top_k", "patience", "attempts"):
            if getattr(self, name) < 1:
                raise ProxylangError(f"search option {name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.crossover_prob <= 1.0:
            raise ProxylangError(f"crossover_prob must lie in [0, 1], got {self.crossover_prob}")
        if self.max_evaluations is not None and self.max_evaluations < 1:
            raise ProxylangError(f"max_evaluations must be at least 1, got {self.max_evaluations}")


@dataclass
class SearchState(Generic[C]):
    """Everything a run needs to continue: what a checkpoint holds."""

    config: SearchConfig
    rng: np.random.Generator
    generation: int = 0
    evaluations: int = 0
    stale: int = 0
    population: list[Individual[C]] = field(default_factory=list)
    best: Individual[C] | None = None
    seen: set[str] = field(default_factory=set)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SearchResult(Generic[C]):
    """The best individual by training fitness, the final population and one record per generation."""

    best: Individual[C]
    population: list[Individual[C]]
    history: list[dict[str, Any]]
    evaluations: int


_WORKER_FITNESS: Callable[[Any], Fitness] | None = None


def _init_worker() -> None:
    """Workers leave Ctrl-C to the parent, which stops the pool and tells the user how to resume. They
    run torch on one thread: a forked child that inherits the parent's OpenMP thread pool hangs in its
    first parallel torch op (measured: ``--workers 2`` never returned on TransNAS statistics), which is
    why torch's own DataLoader workers do the same."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch = sys.modules.get("torch")  # the engine itself does not need torch
    if torch is not None:
        torch.set_num_threads(1)


def _worker_fitness(candidate: Any) -> Fitness:
    assert _WORKER_FITNESS is not None
    return _WORKER_FITNESS(candidate)


class Evaluator:
    """Evaluates a batch in order, in forked processes that share the parent's statistics read-only."""

    def __init__(self, fitness: Callable[[Any], Fitness], workers: int) -> None:
        global _WORKER_FITNESS
        self._fitness = fitness
        self._pool = None
        if workers > 1:
            _WORKER_FITNESS = fitness
            self._pool = multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker)

    def __call__(self, candidates: Sequence[Any]) -> list[Fitness]:
        if self._pool is None or len(candidates) < 2:
            return [self._fitness(c) for c in candidates]
        return self._pool.map(_worker_fitness, candidates, chunksize=1)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()


def _rank_key(ind: Individual) -> tuple[float, str]:
    """Higher train fitness first; the key breaks ties so the order never depends on arrival."""
    return (-ind.fitness.train, ind.key)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class Search(Generic[C]):
    """One run of Algorithm 1 (or its random-search ablation), checkpointed after every generation.

    With ``run_dir`` set, ``checkpoint.pkl`` and ``log.jsonl`` (one JSON record per generation) live there,
    and ``resume=True`` continues from the checkpoint; otherwise the run keeps everything in memory.
    """

    def __init__(self, operators: Operators[C], fitness: Callable[[C], Fitness], config: SearchConfig,
                 run_dir: str | Path | None = None, resume: bool = False, workers: int = 1,
                 seeds: Sequence[C] = ()) -> None:
        self.ops, self.fitness, self.workers = operators, fitness, workers
        self.seeds = list(seeds)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if resume:
            self.state = load_checkpoint(self._require_dir())
            if self.state.config != config:
                raise ProxylangError(
                    f"{self.run_dir}: the checkpoint was written with a different configuration")
        else:
            self.state = SearchState(config=config, rng=np.random.default_rng(config.seed))
        self.config = self.state.config

    def _require_dir(self) -> Path:
        if self.run_dir is None:
            raise ProxylangError("resuming needs the run directory of the interrupted search")
        return self.run_dir

    # ---- candidate production -------------------------------------------------------------------

    def _fresh(self, count: int, make: Callable[[np.random.Generator], C | None],
               rejections: Counter) -> list[tuple[C, str]]:
        """Up to ``count`` new, never-seen candidates from ``make``, giving up after enough failed tries."""
        out: list[tuple[C, str]] = []
        for _ in range(count * self.config.attempts):
            if len(out) == count:
                break
            cand = make(self.state.rng)
            if cand is None:
                rejections["operator"] += 1
                continue
            key = self._claim(cand, rejections)
            if key is not None:
                out.append((cand, key))
        return out

    def _claim(self, cand: C, rejections: Counter) -> str | None:
        """The candidate's key if it was never seen (it is seen from now on), else ``None``, counted."""
        key = self.ops.key(cand)
        if key in self.state.seen:
            rejections["duplicate"] += 1
            return None
        self.state.seen.add(key)
        return key

    def _evaluate(self, batch: list[tuple[C, str]], evaluator: Evaluator,
                  rejections: Counter) -> list[Individual[C]]:
        """Fitness of a batch, in order; collapsed candidates are counted and dropped."""
        fits = evaluator([c for c, _ in batch])
        self.state.evaluations += len(batch)
        kept = []
        for (cand, key), fit in zip(batch, fits, strict=True):
            if fit.ok:
                kept.append(Individual(cand, key, fit))
            else:
                rejections[fit.rejected] += 1
        return kept

    def _seed_batch(self, rejections: Counter) -> list[tuple[C, str]]:
        """The seed candidates for generation 0, each once and within the evaluation budget."""
        affordable = self.seeds[: max(self._budget_left(), 0)]
        claimed = [(cand, self._claim(cand, rejections)) for cand in affordable]
        return [(cand, key) for cand, key in claimed if key is not None]

    def _random_individuals(self, count: int, evaluator: Evaluator,
                            rejections: Counter) -> list[Individual[C]]:
        """``count`` valid random individuals if the attempt budget allows, fewer otherwise."""
        found: list[Individual[C]] = []
        for _ in range(self.config.attempts):
            need = min(count - len(found), self._budget_left())
            if need <= 0:
                break
            found += self._evaluate(self._fresh(need, self.ops.random, rejections), evaluator, rejections)
        return found

    def _breed(self, parents: list[Individual[C]]) -> Callable[[np.random.Generator], C | None]:
        def make(rng: np.random.Generator) -> C | None:
            if len(parents) >= 2 and rng.random() < self.config.crossover_prob:
                i, j = rng.choice(len(parents), size=2, replace=False)
                return self.ops.crossover(parents[i].candidate, parents[j].candidate, rng)
            return self.ops.mutate(parents[rng.integers(len(parents))].candidate, rng)

        return make

    def _budget_left(self) -> int:
        cap = self.config.max_evaluations
        return 1 << 62 if cap is None else cap - self.state.evaluations

    # ---- one generation -------------------------------------------------------------------------

    def _children(self, evaluator: Evaluator, rejections: Counter) -> list[Individual[C]]:
        cfg, st = self.config, self.state
        count = min(cfg.offspring, self._budget_left())
        if cfg.strategy == "random":
            return self._evaluate(self._fresh(count, self.ops.random, rejections), evaluator, rejections)
        picked = st.rng.choice(len(st.population), size=min(cfg.pool, len(st.population)), replace=False)
        pool = [st.population[i] for i in sorted(picked)]
        extra = self._random_individuals(cfg.pool - len(pool), evaluator, rejections)  # short population
        parents = sorted(pool + extra, key=_rank_key)[: cfg.top_k]
        if not parents:
            return extra
        count = min(cfg.offspring, self._budget_left())
        children = self._fresh(count, self._breed(parents), rejections)
        return extra + self._evaluate(children, evaluator, rejections)

    def _step(self, evaluator: Evaluator) -> dict[str, Any]:
        cfg, st = self.config, self.state
        start, evals_before = time.perf_counter(), st.evaluations
        rejections: Counter = Counter()
        if st.generation == 0:
            new = self._evaluate(self._seed_batch(rejections), evaluator, rejections)
            new += self._random_individuals(cfg.population - len(new), evaluator, rejections)
        elif not st.population:
            new = self._random_individuals(cfg.population, evaluator, rejections)
        else:
            new = self._children(evaluator, rejections)
        st.population = sorted(st.population + new, key=_rank_key)[: cfg.population]
        improved = bool(st.population) and (
            st.best is None or st.population[0].fitness.train > st.best.fitness.train)
        if improved:
            st.best, st.stale = st.population[0], 0
        else:
            st.stale += 1
        reset = cfg.strategy == "evolution" and st.stale >= cfg.patience and st.best is not None
        if reset:
            st.population = [st.best] + self._random_individuals(cfg.population - 1, evaluator, rejections)
            st.population.sort(key=_rank_key)
            st.stale = 0
        elapsed = time.perf_counter() - start
        evals = st.evaluations - evals_before
        record = {
            "generation": st.generation,
            "evaluations": st.evaluations,
            "best_train": st.best.fitness.train if st.best else None,
            "best_val": st.best.fitness.val if st.best else None,
            "mean_train": float(np.mean([i.fitness.train for i in st.population])) if st.population else None,
            "population": len(st.population),
            "rejections": dict(sorted(rejections.items())),
            "reset": reset,
            "best": self.ops.text(st.best.candidate) if st.best else None,
            "seconds": round(elapsed, 3),
            "evals_per_s": round(evals / elapsed, 2) if elapsed > 0 else None,
        }
        st.history.append(record)
        st.generation += 1
        return record

    def _finished(self) -> bool:
        # generation 0 is the initial population (seeds, random fill); then ``iterations`` rounds
        return self.state.generation > self.config.iterations or self._budget_left() <= 0

    # ---- the run --------------------------------------------------------------------------------

    def run(self, on_generation: Callable[[dict[str, Any]], None] | None = None) -> SearchResult[C]:
        """Run to the end, checkpointing after each generation; ``on_generation`` sees each record.

        An interruption (``KeyboardInterrupt``, a kill) loses at most the generation in progress.
        """
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._rewrite_log()
        evaluator = Evaluator(self.fitness, self.workers)
        try:
            while not self._finished():
                record = self._step(evaluator)
                if self.run_dir is not None:
                    save_checkpoint(self.state, self.run_dir)
                    with open(self.run_dir / LOG_NAME, "a") as f:
                        f.write(json.dumps(record) + "\n")
                if on_generation is not None:
                    on_generation(record)
        finally:
            evaluator.close()
        if self.state.best is None:
            raise ProxylangError(
                f"no valid candidate in {self.state.evaluations} evaluations; every candidate collapsed")
        st = self.state
        return SearchResult(st.best, list(st.population), list(st.history), st.evaluations)

    def _rewrite_log(self) -> None:
        """The log mirrors the checkpoint: a record written after the last checkpoint is dropped."""
        lines = "".join(json.dumps(r) + "\n" for r in self.state.history)
        _atomic_write(self._require_dir() / LOG_NAME, lines.encode())


def save_checkpoint(state: SearchState, run_dir: str | Path) -> None:
    """Atomically replace ``run_dir/checkpoint.pkl`` (temporary file, fsync, rename)."""
    _atomic_write(Path(run_dir) / CHECKPOINT_NAME, pickle.dumps(state))


def load_checkpoint(run_dir: str | Path) -> SearchState:
    """The state saved by :func:`save_checkpoint`; a missing or torn file is a user error."""
    path = Path(run_dir) / CHECKPOINT_NAME
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except FileNotFoundError:
        raise ProxylangError(f"{path}: no checkpoint to resume from") from None
    except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise ProxylangError(f"{path}: unreadable checkpoint ({exc})") from None
    if not isinstance(state, SearchState):
        raise ProxylangError(f"{path}: not a search checkpoint")
    return state


def config_from_mapping(values: dict[str, Any], base: SearchConfig | None = None) -> SearchConfig:
    """A config from TOML/CLI values over ``base``; an unknown key is a user error, not silently ignored."""
    base = base or SearchConfig()
    known = set(asdict(base))
    unknown = sorted(set(values) - known)
    if unknown:
        raise ProxylangError(f"unknown search option(s): {', '.join(unknown)}")
    return replace(base, **values)
