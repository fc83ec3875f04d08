"""Algorithm 1 of SasWOT: one evolutionary search engine, generic over what a candidate is.

The engine sees candidates only through :class:`Operators`, passed in as DEAP passes a toolbox (random
generation, mutation, crossover, a canonical key for de-duplication, an optional screen that refuses a
candidate before it is evaluated, a JSON codec for checkpoints) and a ``fitness`` callable. It searches
proxy expressions (:func:`proxylang.search.data.expression_operators`) and FasterSeg architecture
matrices (:mod:`segsearch.search`); :class:`SearchConfig` holds what the two searches do differently.
One generation of the ``"evolution"`` strategy:

1. ``fresh`` new random candidates join the generation (immigrants: segsearch keeps its population
   diverse that way; 0 for the proxy search);
2. the parents are the top-k of a pool: ``pool`` members drawn at random from the population (topped up
   with random candidates when the population is short), or the whole population when ``pool`` is None;
3. ``offspring`` children from random parents: crossover with probability ``crossover_prob``, else
   mutation (``variation="or"``, DEAP's varOr), or crossover with that probability and then mutation
   (``"and"``, varAnd). A child an operator rejects, whose key was seen or that the screen refuses is
   redrawn, up to ``attempts`` draws per wanted child; a collapsed child is dropped after evaluation;
4. elitism: the next population is the best ``population`` of old and new together (of equal fitness,
   the lower ``cost`` ranks first: a cheaper proxy wins a tie). With ``clone_rho`` set it keeps only the
   best of each group of clones: candidates whose fitness ``behaviour`` vectors (a proxy's ranks of the
   training archs) correlate at ``clone_rho`` or more behave alike, whatever their keys say (``abs(x)``
   and ``x`` of a positive statistic, a monotone map of a scalar), and a population full of one
   behaviour stops searching (benchmarks/search_strength.py measures whether it helps);
5. after ``patience`` generations without a better best, the population is reset to the best plus fresh
   random candidates (the paper's escape from a stale pool); ``patience=None`` never resets.

Generation 0 evaluates the ``seeds`` given to :class:`Search` (e.g. the hand-designed proxies, so the
search starts from what is already known) and fills the population with random candidates.
``strategy="random"`` replaces steps 2-3 by fresh random candidates: the random-search ablation at the
same number of fitness evaluations. Only the engine holds a random generator (of the kind the operators
were written for, see :class:`RandomSource`), and evaluation results are consumed in order, so a run is
reproducible for a seed whatever evaluates the candidates (local processes, a Ray cluster), and a
resumed run ends exactly where an uninterrupted one would. Checkpoints are JSON, never pickle: loading a
file must not run its content.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from proxylang.errors import ProxylangError
from proxylang.executors import Executor, LocalExecutor
from proxylang.files import atomic_write, read_json
from proxylang.schema import MAX_SEED, bounded, check_ranges

C = TypeVar("C")
STRATEGIES = ("evolution", "random")
VARIATIONS = ("or", "and")
CHECKPOINT_FORMAT = "proxylang-search-checkpoint/1"


class SearchError(ProxylangError):
    """A search cannot run or resume as asked."""


class ExhaustedError(SearchError):
    """Too few new random candidates turned up where ``require_full`` needs them all."""


@dataclass(frozen=True)
class Fitness:
    """The fitness the search maximises (``train``: Kendall tau on the training archs for a proxy, the
    proxy score for an architecture) and a figure it only watches (``val``: Kendall tau on the validation
    archs). ``rejected`` names why a candidate collapsed (NaN, constant scores, ...); empty when usable.
    ``behaviour`` is what the candidate does (a proxy's ranks of the training archs), compared between
    candidates to tell clones (``SearchConfig.clone_rho``); empty when the fitness gives none. ``cost``
    (a proxy's estimated time) breaks ties of ``train``: the cheaper candidate ranks first.
    """

    train: float = float("nan")
    val: float = float("nan")
    rejected: str = ""
    behaviour: tuple[float, ...] = ()
    cost: float = 0.0

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
class RandomSource:
    """A kind of random generator: how the engine seeds it, draws its own choices from it and saves it as
    JSON. Operators get the generator itself, so each candidate type keeps the generator its operators
    were written for (and a seed keeps giving the results it gave before this engine existed)."""

    seeded: Callable[[int], Any]
    uniform: Callable[[Any], float]
    below: Callable[[Any, int], int]
    distinct: Callable[[Any, int, int], Sequence[int]]
    state: Callable[[Any], Any]
    restore: Callable[[Any], Any]


def _numpy_restore(state: Any) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def _python_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _python_restore(state: Any) -> random.Random:
    version, internal, gauss = state
    rng = random.Random()
    rng.setstate((version, tuple(internal), gauss))
    return rng


NUMPY_RANDOM = RandomSource(
    seeded=np.random.default_rng, uniform=lambda rng: rng.random(), below=lambda rng, n: int(rng.integers(n)),
    distinct=lambda rng, n, k: rng.choice(n, size=k, replace=False),
    state=lambda rng: rng.bit_generator.state, restore=_numpy_restore)
PYTHON_RANDOM = RandomSource(
    seeded=random.Random, uniform=lambda rng: rng.random(), below=lambda rng, n: rng.randrange(n),
    distinct=lambda rng, n, k: rng.sample(range(n), k),
    state=_python_state, restore=_python_restore)


@dataclass(frozen=True)
class Operators(Generic[C]):
    """How the engine makes, identifies and stores candidates; an operator returns ``None`` to reject.

    ``screen`` says why a new candidate is refused before evaluation (``""`` to keep it), e.g. too slow
    for a latency target. ``order`` breaks ties between equal fitness (default: the key). ``encode``
    turns a candidate into JSON data and ``decode`` turns it back, exactly, for checkpoints.
    """

    random: Callable[[Any], C | None]
    mutate: Callable[[C, Any], C | None]
    crossover: Callable[[C, C, Any], C | None]
    key: Callable[[C], str]
    encode: Callable[[C], Any]
    decode: Callable[[Any], C]
    text: Callable[[C], str] = str
    screen: Callable[[C], str] | None = None
    order: Callable[[C], str] | None = None
    rng: RandomSource = NUMPY_RANDOM


@dataclass(frozen=True)
class SearchConfig:
    """Hyper-parameters of one search (see the module docstring); stored in its checkpoint so that a
    resumed run uses the same ones. ``require_full`` makes a random fill that finds too few new
    candidates an error (:class:`ExhaustedError`) rather than a smaller population. ``clone_rho`` (None:
    off) is the correlation of two behaviours at or above which the population keeps only the better."""

    strategy: str = "evolution"
    population: int = bounded(40, 1, 100_000)
    iterations: int = bounded(30, 0, 10**9)  # the random ablation runs on max_evaluations alone
    offspring: int = bounded(20, 0, 100_000)
    fresh: int = bounded(0, 0, 100_000)
    pool: int | None = bounded(20, 1, 100_000)
    top_k: int = bounded(8, 1, 100_000)
    variation: str = "or"
    crossover_prob: float = bounded(0.5, 0.0, 1.0)
    patience: int | None = bounded(5, 1, 10**6)
    clone_rho: float | None = bounded(None, -1.0, 1.0)
    attempts: int = bounded(20, 1, 10**6)
    require_full: bool = False
    max_evaluations: int | None = bounded(None, 1, 10**9)
    seed: int = bounded(0, 0, MAX_SEED)

    def __post_init__(self) -> None:
        for name, allowed in (("strategy", STRATEGIES), ("variation", VARIATIONS)):
            if getattr(self, name) not in allowed:
                raise SearchError(
                    f"unknown {name} {getattr(self, name)!r}; expected one of {', '.join(allowed)}")
        check_ranges(self, "search option")
        if self.offspring + self.fresh < 1:
            raise SearchError("a generation must make at least one candidate (offspring + fresh >= 1)")


@dataclass
class SearchState(Generic[C]):
    """Everything a run needs to continue: what a checkpoint holds besides the configuration."""

    rng: Any
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


class Evaluator:
    """Evaluates a batch in order with ``executor`` (default: this process, or a fork pool of
    ``workers`` processes sharing the parent's statistics read-only)."""

    def __init__(self, fitness: Callable[[Any], Fitness], workers: int = 1,
                 executor: Executor | None = None) -> None:
        self._bound = (executor or LocalExecutor(workers)).bind(fitness)

    def __call__(self, candidates: Sequence[Any]) -> list[Fitness]:
        return self._bound.map(candidates)

    def close(self) -> None:
        self._bound.close()


def _standardised(behaviour: Sequence[float]) -> np.ndarray | None:
    """A behaviour scaled so that the dot product of two is their Pearson correlation (``None`` when
    there is none, or it is constant)."""
    if not behaviour:
        return None
    x = np.asarray(behaviour, dtype=np.float64)
    x = x - x.mean()
    norm = float(np.linalg.norm(x))
    return x / norm if norm > 0 else None


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counter.items()))


class Search(Generic[C]):
    """One run of Algorithm 1 (or its random-search ablation), checkpointed after every generation.

    With ``checkpoint`` set, the state is saved there after each generation and ``resume=True`` continues
    from it; ``context`` (JSON data) is what else decides the result and must match on resume, and
    ``may_change`` names settings a resumed run may change (segsearch lets the number of generations
    grow). ``log_file`` receives one JSON record per generation. ``before_checkpoint`` sees each
    generation's settled population before it is saved and returns extra fields for its record.
    Candidates are evaluated by ``executor`` (e.g. on a Ray cluster), else by ``workers`` local
    processes; the caller keeps ownership of an executor it passes.
    """

    def __init__(self, operators: Operators[C], fitness: Callable[[C], Fitness], config: SearchConfig,
                 checkpoint: str | Path | None = None, log_file: str | Path | None = None,
                 resume: bool = False, workers: int = 1, seeds: Sequence[C] = (),
                 context: Mapping[str, Any] | None = None, may_change: Collection[str] = (),
                 before_checkpoint: Callable[[list[Individual[C]]], dict[str, Any]] | None = None,
                 executor: Executor | None = None) -> None:
        self.ops, self.fitness, self.config, self.workers = operators, fitness, config, workers
        self.executor = executor
        self.seeds = list(seeds)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.log_file = Path(log_file) if log_file is not None else None
        self.context = json.loads(json.dumps(dict(context or {})))
        self.before_checkpoint = before_checkpoint
        if not resume:
            self.state: SearchState[C] = SearchState(rng=operators.rng.seeded(config.seed))
        elif self.checkpoint is None:
            raise SearchError("resuming needs the checkpoint of the interrupted search")
        else:
            self.state = load_checkpoint(self.checkpoint, operators, config, self.context, may_change)

    def _rank(self, ind: Individual[C]) -> tuple[float, float, str]:
        """Higher train fitness first; ties go to the lower cost, then to a text so the order never
        depends on arrival."""
        text = ind.key if self.ops.order is None else self.ops.order(ind.candidate)
        return (-ind.fitness.train, ind.fitness.cost, text)

    def _survivors(self, individuals: list[Individual[C]], rejections: Counter) -> list[Individual[C]]:
        """The best ``population`` individuals, at most one of each group of clones (``clone_rho``; the
        others are counted as ``clone``)."""
        ranked = sorted(individuals, key=self._rank)
        limit, size = self.config.clone_rho, self.config.population
        if limit is None:
            return ranked[:size]
        kept: list[Individual[C]] = []
        profiles: list[np.ndarray] = []
        for ind in ranked:
            if len(kept) == size:
                break
            profile = _standardised(ind.fitness.behaviour)
            if profile is not None and any(
                    len(p) == len(profile) and float(p @ profile) >= limit - 1e-9 for p in profiles):
                rejections["clone"] += 1
                continue
            kept.append(ind)
            if profile is not None:
                profiles.append(profile)
        return kept

    # ---- candidate production -------------------------------------------------------------------

    def _fresh(self, count: int, make: Callable[[Any], C | None], rejections: Counter) -> list[tuple[C, str]]:
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
        """The key of a never-seen candidate the screen keeps (seen from now on), else ``None``, counted."""
        key = self.ops.key(cand)
        if key in self.state.seen:
            rejections["duplicate"] += 1
            return None
        refused = self.ops.screen(cand) if self.ops.screen is not None else ""
        if refused:
            rejections[refused] += 1
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
            drawn = self._fresh(need, self.ops.random, rejections)
            if len(drawn) < need and self.config.require_full:
                raise ExhaustedError(f"only {len(drawn)} of {need} new random candidates turned up in "
                                     f"{need * self.config.attempts} draws ({_counts(rejections)})")
            found += self._evaluate(drawn, evaluator, rejections)
        return found

    def _breed(self, parents: list[Individual[C]]) -> Callable[[Any], C | None]:
        cfg, ops, draw = self.config, self.ops, self.ops.rng

        def pick(rng: Any) -> C:
            return parents[draw.below(rng, len(parents))].candidate

        def var_and(rng: Any) -> C | None:
            child: C | None = pick(rng)
            if draw.uniform(rng) < cfg.crossover_prob and len(parents) > 1:
                child = ops.crossover(child, pick(rng), rng)
            return None if child is None else ops.mutate(child, rng)

        def var_or(rng: Any) -> C | None:
            if len(parents) >= 2 and draw.uniform(rng) < cfg.crossover_prob:
                i, j = draw.distinct(rng, len(parents), 2)
                return ops.crossover(parents[i].candidate, parents[j].candidate, rng)
            return ops.mutate(pick(rng), rng)

        return var_and if cfg.variation == "and" else var_or

    def _budget_left(self) -> int:
        cap = self.config.max_evaluations
        return 1 << 62 if cap is None else cap - self.state.evaluations

    # ---- one generation -------------------------------------------------------------------------

    def _children(self, evaluator: Evaluator, rejections: Counter) -> list[Individual[C]]:
        cfg, st = self.config, self.state
        new = self._random_individuals(cfg.fresh, evaluator, rejections)
        if cfg.strategy == "random":
            count = min(cfg.offspring, self._budget_left())
            drawn = self._fresh(count, self.ops.random, rejections)
            return new + self._evaluate(drawn, evaluator, rejections)
        if cfg.pool is None:
            pool, extra = list(st.population), []
        else:
            picked = self.ops.rng.distinct(st.rng, len(st.population), min(cfg.pool, len(st.population)))
            pool = [st.population[i] for i in sorted(picked)]
            extra = self._random_individuals(cfg.pool - len(pool), evaluator, rejections)  # short population
        parents = sorted(pool + extra, key=self._rank)[: cfg.top_k]
        if not parents:
            return new + extra
        count = min(cfg.offspring, self._budget_left())
        children = self._fresh(count, self._breed(parents), rejections)
        return new + extra + self._evaluate(children, evaluator, rejections)

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
        st.population = self._survivors(st.population + new, rejections)
        # a better best: a higher train fitness, or the same at a lower cost (not merely another text)
        improved = bool(st.population) and (
            st.best is None or self._rank(st.population[0])[:2] < self._rank(st.best)[:2])
        if improved:
            st.best, st.stale = st.population[0], 0
        else:
            st.stale += 1
        reset = (cfg.strategy == "evolution" and cfg.patience is not None and st.stale >= cfg.patience
                 and st.best is not None)
        if reset:
            st.population = self._survivors(
                [st.best] + self._random_individuals(cfg.population - 1, evaluator, rejections), rejections)
            st.stale = 0
        elapsed = time.perf_counter() - start
        evals = st.evaluations - evals_before
        finite = [i.fitness.train for i in st.population if math.isfinite(i.fitness.train)]
        record = {
            "generation": st.generation,
            "evaluations": st.evaluations,
            "best_train": st.best.fitness.train if st.best else None,
            "best_val": st.best.fitness.val if st.best else None,
            "mean_train": sum(finite) / len(finite) if finite else None,
            "population": len(st.population),
            "rejections": dict(sorted(rejections.items())),
            "reset": reset,
            "best": self.ops.text(st.best.candidate) if st.best else None,
            "seconds": round(elapsed, 3),
            "evals_per_s": round(evals / elapsed, 2) if elapsed > 0 else None,
        }
        if self.before_checkpoint is not None:
            record.update(self.before_checkpoint(st.population))
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
        if self.log_file is not None:  # the log mirrors the checkpoint: later records are dropped
            atomic_write(self.log_file, "".join(json.dumps(r) + "\n" for r in self.state.history))
        evaluator = Evaluator(self.fitness, self.workers, self.executor)
        try:
            while not self._finished():
                record = self._step(evaluator)
                if self.checkpoint is not None:
                    atomic_write(self.checkpoint, json.dumps(self._checkpoint_data()))
                if self.log_file is not None:
                    with open(self.log_file, "a") as f:
                        f.write(json.dumps(record) + "\n")
                if on_generation is not None:
                    on_generation(record)
        finally:
            evaluator.close()
        st = self.state
        if st.best is None:
            raise SearchError(
                f"no valid candidate in {st.evaluations} evaluations; every candidate collapsed")
        return SearchResult(st.best, list(st.population), list(st.history), st.evaluations)

    def _checkpoint_data(self) -> dict[str, Any]:
        st, ops = self.state, self.ops

        def individual(ind: Individual[C]) -> dict[str, Any]:
            return {"candidate": ops.encode(ind.candidate), "key": ind.key,
                    "train": ind.fitness.train, "val": ind.fitness.val,
                    "behaviour": list(ind.fitness.behaviour), "cost": ind.fitness.cost}

        return {"format": CHECKPOINT_FORMAT, "config": asdict(self.config), "context": self.context,
                "rng": ops.rng.state(st.rng), "generation": st.generation, "evaluations": st.evaluations,
                "stale": st.stale, "population": [individual(i) for i in st.population],
                "best": None if st.best is None else individual(st.best), "seen": sorted(st.seen),
                "history": st.history}


def _typed(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{what} is a {type(value).__name__}")
    return value


def _count(value: Any, what: str) -> int:
    if _typed(value, int, what) < 0:
        raise ValueError(f"{what} is negative")
    return value


def _individual(data: Any, ops: Operators[C]) -> Individual[C]:
    _typed(data, dict, "an individual")
    train, val = (float(_typed(data[k], (int, float), k)) for k in ("train", "val"))
    behaviour = tuple(float(_typed(x, (int, float), "a behaviour value"))
                      for x in _typed(data.get("behaviour", []), list, "a behaviour"))
    cost = float(_typed(data.get("cost", 0.0), (int, float), "a cost"))
    return Individual(ops.decode(data["candidate"]), _typed(data["key"], str, "a key"),
                      Fitness(train, val, behaviour=behaviour, cost=cost))


def _state(data: dict[str, Any], ops: Operators[C]) -> SearchState[C]:
    history = _typed(data["history"], list, "history")
    seen = _typed(data["seen"], list, "seen")
    for record in history:
        _typed(record, dict, "a history record")
    for key in seen:
        _typed(key, str, "a seen key")
    return SearchState(
        rng=ops.rng.restore(data["rng"]), generation=_count(data["generation"], "generation"),
        evaluations=_count(data["evaluations"], "evaluations"), stale=_count(data["stale"], "stale"),
        population=[_individual(i, ops) for i in _typed(data["population"], list, "population")],
        best=None if data["best"] is None else _individual(data["best"], ops), seen=set(seen),
        history=history)


def load_checkpoint(path: str | Path, operators: Operators[C], config: SearchConfig,
                    context: Mapping[str, Any] | None = None,
                    may_change: Collection[str] = ()) -> SearchState[C]:
    """The state a run saved at ``path``, checked to come from a run of the same configuration and
    ``context`` (except the ``may_change`` settings). The file is parsed as JSON and nothing in it is
    executed; anything wrong with it is one :class:`SearchError` naming the file."""
    data = read_json(path, "search checkpoint")
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise SearchError(f"{path}: not a search checkpoint (no {CHECKPOINT_FORMAT!r} format tag)")
    current = json.loads(json.dumps({"config": asdict(config), "context": dict(context or {})}))
    saved = {part: data.get(part) for part in current}
    if not all(isinstance(v, dict) for v in saved.values()):
        raise SearchError(f"{path}: corrupt search checkpoint (no config or context)")
    changed = sorted({name for part in current for name in saved[part].keys() | current[part].keys()
                      if name not in may_change and saved[part].get(name) != current[part].get(name)})
    if changed:
        raise SearchError(f"{path}: the checkpoint was written with a different configuration: other "
                          f"settings ({', '.join(changed)})")
    try:
        return _state(data, operators)
    except (ProxylangError, KeyError, TypeError, ValueError, IndexError, OverflowError,
            RecursionError) as exc:
        raise SearchError(f"{path}: corrupt search checkpoint ({type(exc).__name__}: {exc})") from None


