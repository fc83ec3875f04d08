"""Training-free search (SasWOT): evolve architecture matrices scored at initialisation by a proxy.

Every candidate's *student* network is built with the same seed, given one fixed synthetic minibatch
(``proxylang.stats.extract``: statistics of one forward + backward pass) and scored by a compiled proxylang
proxy. A proxy with ``norm_avt`` terms is first calibrated on a random pre-sample of architectures
(min/max of each term), as in SasWOT. The search itself is proxylang's engine
(:mod:`proxylang.search.engine`) configured as SasWOT's: per generation, a few fresh random
architectures join, the top-K architectures are parents, and children come from row-wise crossover of
two parents' matrices followed by mutation of random rows of alpha, beta or ratio; an illegal, duplicate
or too slow child is redrawn (a generation whose draws all fail has fewer children). Parents and
children compete for the next population (the best survive). With a target FPS, the latency lookup
table rejects candidates predicted to be too slow before anything is scored.

The state after every generation (population, scores, random generator) is checkpointed as JSON, and a
run resumes from it exactly (the pre-sample and the statistics batch depend only on the seed); with a
target FPS, exactly only where the latency table file is kept, since re-timed parts and a re-fitted
calibration vary.

With a target FPS, the table's predictions filter candidates, and at the end the top candidates are
*measured* on the device (:meth:`Search.verified_best`), so the reported FPS is a measurement.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from proxylang.executors import Executor, LocalExecutor
from proxylang.search import engine
from proxylang.search.engine import ExhaustedError, Fitness, Individual, SearchError
from proxylang.stats.extract import extract_stats
from proxylang.stats.netstats import NetStats
from segsearch.latency import LatencyTable, measure_latency_ms
from segsearch.network import SMALLEST_SCALE, build_network, fits_batch_norm
from segsearch.space import (
    NUM_BRANCHES,
    NUM_LAYERS,
    OPS,
    SCALES,
    WIDTH_RATIOS,
    Arch,
    arch_from_dict,
    is_legal,
    random_arch,
)

VERIFIED_CANDIDATES = 5
MAX_FEASIBLE_TRIES = 500  # draws per wanted architecture before the engine gives up


class Proxy(Protocol):
    """What the search needs of a compiled proxylang proxy."""

    def __call__(self, stats: Sequence[NetStats]) -> tuple[Tensor, Tensor]: ...

    def calibrate(self, stats: Sequence[NetStats]) -> None: ...


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides a search's result (a checkpoint only resumes under the same config)."""

    population: int = 16
    generations: int = 8
    parents: int = 4
    fresh_per_generation: int = 2
    crossover_prob: float = 0.5
    mutated_rows: int = 2
    calibration_size: int = 12
    resolution: tuple[int, int] = (64, 128)
    batch_size: int = 4
    num_classes: int = 19
    layers: int = NUM_LAYERS
    branches: int = NUM_BRANCHES
    seed: int = 0
    target_fps: float | None = None
    latency_size: tuple[int, int] = (1024, 2048)
    proxy: str = ""

    def __post_init__(self) -> None:
        if self.population < 2 or not 1 <= self.parents <= self.population:
            raise SearchError("population must be at least 2 and parents between 1 and the population")
        if self.generations < 0 or self.calibration_size < 2 or self.batch_size < 1:
            raise SearchError("generations must be >= 0, calibration size >= 2, batch size >= 1")
        if self.target_fps is not None and self.target_fps <= 0:
            raise SearchError("--target-fps must be positive")
        if min(self.resolution) < 8 or min(self.latency_size) < 8:
            raise SearchError("--resolution and --latency-size must be at least 8x8")
        if not fits_batch_norm(self.batch_size, self.resolution):
            height, width = self.resolution
            raise SearchError(f"a scoring batch of {self.batch_size} at {height}x{width} leaves 1x1 features "
                              f"at 1/{SMALLEST_SCALE} scale, and batch norm needs more than one value per "
                              f"channel: raise --batch-size to 2, or one side of --resolution above "
                              f"{SMALLEST_SCALE}")


@dataclass
class Candidate:
    arch: Arch
    score: float
    fps: float | None = None


@dataclass
class SearchState:
    """A view of the engine's state in segsearch's terms (population best first)."""

    generation: int
    population: list[Candidate]
    history: list[dict]


class ArchScorer:
    """Proxy scores of architectures' student networks at initialisation, on one fixed batch."""

    def __init__(self, proxy: Proxy, config: SearchConfig, device: torch.device) -> None:
        self.proxy, self.config, self.device = proxy, config, device
        gen = torch.Generator().manual_seed(config.seed)
        self.images = torch.randn(config.batch_size, 3, *config.resolution, generator=gen)
        self.labels = torch.randint(0, config.num_classes, (config.batch_size, *config.resolution),
                                    generator=gen)

    def stats(self, arch: Arch) -> NetStats:
        torch.manual_seed(self.config.seed)  # same initialisation scheme for every candidate
        net = build_network(arch, self.config.num_classes, "student").to(self.device)
        return extract_stats(net, self.images, self.labels, keep_on_device=self.device.type == "cuda")

    def calibrate(self, archs: Sequence[Arch]) -> None:
        self.proxy.calibrate([self.stats(a) for a in archs])

    def score(self, arch: Arch) -> float:
        """The proxy's score, ``-inf`` where the proxy flags it invalid (so it never wins)."""
        scores, valid = self.proxy([self.stats(arch)])
        return float(scores[0]) if bool(valid[0]) and math.isfinite(float(scores[0])) else -math.inf


def crossover(a: Arch, b: Arch, rng: random.Random) -> Arch:
    """Each row of each matrix from one parent or the other (a layer's operators and widths travel
    together within a matrix; a branch's path is a whole beta row)."""
    def mix(x: tuple, y: tuple) -> tuple:
        return tuple(rx if rng.random() < 0.5 else ry for rx, ry in zip(x, y, strict=True))

    return Arch(mix(a.alpha, b.alpha), mix(a.beta, b.beta), mix(a.ratio, b.ratio))


def mutate(arch: Arch, rng: random.Random, rows: int) -> Arch:
    """Redraw ``rows`` random rows, each of alpha (operators), beta (a branch path: move one
    downsampling to another layer, or add/remove one) or ratio (widths)."""
    alpha, beta, ratio = list(arch.alpha), list(arch.beta), list(arch.ratio)
    for _ in range(rows):
        which = rng.choice(("alpha", "beta", "ratio"))
        if which == "alpha":
            alpha[rng.randrange(len(alpha))] = tuple(rng.randrange(len(OPS)) for _ in SCALES)
        elif which == "ratio":
            ratio[rng.randrange(len(ratio))] = tuple(rng.randrange(len(WIDTH_RATIOS)) for _ in SCALES)
        else:
            b = rng.randrange(len(beta))
            downs = list(beta[b])
            downs[rng.randrange(len(downs) - 1)] ^= 1
            beta[b] = tuple(downs)
    return Arch(tuple(alpha), tuple(beta), tuple(ratio))


class Search:
    """One search run; ``run()`` goes from the current state to the last generation. Candidates are
    scored by ``executor`` (default: in this process)."""

    def __init__(self, proxy: Proxy, config: SearchConfig, device: torch.device,
                 checkpoint: str | Path | None = None, latency_table: LatencyTable | None = None,
                 log: Callable[[str], None] = print, executor: Executor | None = None) -> None:
        if config.target_fps is not None and latency_table is None:
            raise SearchError("a target FPS needs a latency table")
        self.config, self.device, self.log = config, device, log
        self.scorer = ArchScorer(proxy, config, device)
        self.table = latency_table
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._fps: dict[str, float] = {}
        self._candidates: dict[Individual[Arch], Candidate] = {}
        self.too_slow = 0  # candidates rejected by the latency constraint in this process
        self.executor = executor
        self.engine = self._engine(resume=False)

    def _engine(self, resume: bool) -> engine.Search[Arch]:
        cfg = self.config
        fresh = min(cfg.fresh_per_generation, cfg.population)
        operators = engine.Operators(
            random=lambda rng: random_arch(rng, cfg.layers, cfg.branches),
            mutate=lambda arch, rng: _legal(mutate(arch, rng, cfg.mutated_rows)),
            crossover=crossover, key=Arch.network_key, encode=Arch.to_dict, decode=arch_from_dict,
            text=Arch.key, screen=self._screen, order=Arch.key, rng=engine.PYTHON_RANDOM)
        # SasWOT's generation: fresh random architectures, then children of the top-K bred by crossover
        # and mutation (only the mutant, the child kept, must be legal), P - K new ones in all; no pool
        # draw and no stagnation reset
        search = engine.SearchConfig(
            population=cfg.population, iterations=cfg.generations, fresh=fresh,
            offspring=max(cfg.population - cfg.parents - fresh, 0), pool=None, top_k=cfg.parents,
            variation="and", crossover_prob=cfg.crossover_prob, patience=None, attempts=MAX_FEASIBLE_TRIES,
            require_full=True, seed=cfg.seed)
        return engine.Search(operators, partial(_fitness, self.scorer), search,
                             checkpoint=self.checkpoint, resume=resume, context=asdict(cfg),
                             may_change=("iterations", "generations"), before_checkpoint=self._settled,
                             executor=self.executor)

    # ---------------------------------------------------------------- candidates
    def predicted_fps(self, arch: Arch) -> float | None:
        """FPS of the student at the latency size predicted by the lookup table, calibrated where the
        table calibrates (None without one)."""
        if self.table is None:
            return None
        key = arch.network_key()
        if key not in self._fps:
            net = build_network(arch, self.config.num_classes, "student")
            self._fps[key] = 1000.0 / self.table.predict_ms(net, self.config.latency_size)
        return self._fps[key]

    def _screen(self, arch: Arch) -> str:
        """Why a new architecture is refused before it is scored ("" when it is not)."""
        target = self.config.target_fps
        if target is None or self.predicted_fps(arch) >= target:
            return ""
        self.too_slow += 1
        return "too slow"

    def _candidate(self, ind: Individual[Arch]) -> Candidate:
        """The candidate view of an individual, one object per individual (so views keep their identity)."""
        if ind not in self._candidates:
            arch = ind.candidate
            self._candidates[ind] = Candidate(arch, ind.fitness.train, self.predicted_fps(arch))
        return self._candidates[ind]

    @property
    def state(self) -> SearchState:
        st = self.engine.state
        return SearchState(st.generation, [self._candidate(i) for i in st.population],
                           [_history_entry(r) for r in st.history])

    # ---------------------------------------------------------------- the run
    def calibrate(self) -> None:
        """AVT min/max from a pre-sample drawn from its own seeded generator (so resume redraws it)."""
        rng = random.Random(f"calibration-{self.config.seed}")
        archs = [random_arch(rng, self.config.layers, self.config.branches)
                 for _ in range(self.config.calibration_size)]
        self.scorer.calibrate(archs)

    def run(self) -> Candidate:
        """Calibrate, then evolve from the current state (fresh or resumed); the best candidate."""
        self.calibrate()
        try:
            self.engine.run(on_generation=self._report)
        except ExhaustedError as exc:
            fastest = max(self._fps.values(), default=float("nan"))
            raise SearchError(f"{exc}: too few architectures meet --target-fps {self.config.target_fps} "
                              f"(fastest predicted {fastest:.1f} FPS)") from None
        return self.state.population[0]

    def resume(self) -> None:
        """Continue from the checkpoint file; it must come from a run with the same configuration
        (only the number of generations may grow)."""
        self.engine = self._engine(resume=True)

    def verified_best(self, limit: int = VERIFIED_CANDIDATES) -> tuple[Candidate, float | None]:
        """The best candidate whose *measured* FPS meets the target, with that FPS. The table only
        predicts (from parts timed alone, calibrated), so the top ``limit`` candidates are measured
        in score order; if none meets the target, the fastest of them is returned. Without a target:
        the best candidate, unmeasured."""
        population = self.state.population
        if self.config.target_fps is None:
            return population[0], None
        measured = []
        for candidate in population[:limit]:
            net = build_network(candidate.arch, self.config.num_classes, "student")
            fps = 1000.0 / measure_latency_ms(net, self.config.latency_size, self.device)
            self.log(f"candidate with score {candidate.score:.6g}: measured {fps:.2f} FPS "
                     f"(predicted {candidate.fps:.2f})")
            if fps >= self.config.target_fps:
                return candidate, fps
            measured.append((fps, candidate))
        fps, candidate = max(measured, key=lambda m: m[0])
        return candidate, fps

    def _settled(self, population: list[Individual[Arch]]) -> dict:
        """The leader's predicted FPS for the generation's record. The latency table is saved here, before
        the engine writes its checkpoint, so a checkpoint never counts on timings that are not on disk."""
        if self.table is not None:
            self.table.save()
        return {"best_fps": self.predicted_fps(population[0].candidate)}

    def _report(self, record: dict) -> None:
        entry = _history_entry(record)
        fps = (f"  fps {entry['best_fps']:.1f} ({self.too_slow} too slow so far)"
               if entry["best_fps"] is not None else "")
        self.log(f"generation {entry['generation']}/{self.config.generations}: best {entry['best']:.6g}  "
                 f"mean {entry['mean']:.6g}{fps}  evaluated {entry['evaluated']}  {entry['seconds']:.1f}s")


def _legal(arch: Arch) -> Arch | None:
    return arch if is_legal(arch) else None


def _fitness(scorer: ArchScorer, arch: Arch) -> Fitness:
    """The engine's fitness: the proxy score. It needs the scorer alone, so an executor can ship it to
    other processes (the search itself holds the latency table and callbacks)."""
    return Fitness(train=scorer.score(arch))


def _history_entry(record: dict) -> dict:
    """segsearch's summary of one generation of the engine (what arch.json keeps as its history)."""
    return {"generation": record["generation"], "best": record["best_train"],
            "mean": -math.inf if record["mean_train"] is None else record["mean_train"],
            "best_fps": record["best_fps"], "evaluated": record["evaluations"],
            "seconds": round(record["seconds"], 2)}


def random_baseline(scorer: ArchScorer, count: int, seed: int, layers: int = NUM_LAYERS,
                    branches: int = NUM_BRANCHES, executor: Executor | None = None) -> list[float]:
    """Scores of ``count`` random legal architectures (their own seeded draw): what a search must beat.
    They are scored by ``executor`` (default: in this process)."""
    rng = random.Random(f"baseline-{seed}")
    archs = [random_arch(rng, layers, branches) for _ in range(count)]
    with (executor or LocalExecutor()).bind(scorer.score) as scoring:
        return scoring.map(archs)
