"""Training-free search (SasWOT): evolve architecture matrices scored at initialisation by a proxy.

Every candidate's *student* network is built with the same seed, given one fixed synthetic minibatch
(``proxylang.stats.extract``: statistics of one forward + backward pass) and scored by a compiled proxylang
proxy. A proxy with ``norm_avt`` terms is first calibrated on a random pre-sample of architectures
(min/max of each term), as in SasWOT. Then, per generation: the top-K architectures are parents;
children come from row-wise crossover of two parents' matrices and mutation of random rows of
alpha, beta or ratio; an illegal, duplicate or too slow child is redrawn, and where drawing fails
the population is filled with fresh random architectures. Parents and children compete for the next
population (the best survive). With a target FPS, the latency lookup table rejects candidates
predicted to be too slow before anything is scored.

The state after every generation (population, scores, random generator) is checkpointed, and a run
resumes from it exactly (the pre-sample and the statistics batch depend only on the seed); with a
target FPS, exactly only where the latency table file is kept, since re-timed parts vary.

With a target FPS, the table's predictions filter candidates, and at the end the top candidates are
*measured* on the device (:meth:`Search.verified_best`), so the reported FPS is a measurement.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from proxylang.errors import ProxylangError
from proxylang.stats.extract import extract_stats
from proxylang.stats.netstats import NetStats
from segsearch.latency import LatencyTable, measure_latency_ms
from segsearch.network import build_network
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

CHECKPOINT_FORMAT = "segsearch-search/1"
VERIFIED_CANDIDATES = 5
MAX_CHILD_TRIES = 50
MAX_FEASIBLE_TRIES = 500


class SearchError(ProxylangError):
    """The search cannot run or resume as asked."""


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
            raise SearchError("resolutions must be at least 8x8")


@dataclass
class Candidate:
    arch: Arch
    score: float
    fps: float | None = None


@dataclass
class SearchState:
    generation: int = 0
    population: list[Candidate] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    history: list[dict] = field(default_factory=list)


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


def _rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng_state(rng: random.Random, state: list) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


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
    """One search run; ``run()`` goes from the current state to the last generation."""

    def __init__(self, proxy: Proxy, config: SearchConfig, device: torch.device,
                 checkpoint: str | Path | None = None, latency_table: LatencyTable | None = None,
                 log: Callable[[str], None] = print) -> None:
        if config.target_fps is not None and latency_table is None:
            raise SearchError("a target FPS needs a latency table")
        self.config, self.device, self.log = config, device, log
        self.scorer = ArchScorer(proxy, config, device)
        self.table = latency_table
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.rng = random.Random(config.seed)
        self.state = SearchState()
        self._fps: dict[str, float] = {}
        self.too_slow = 0  # candidates rejected by the latency constraint in this process

    # ---------------------------------------------------------------- candidates
    def predicted_fps(self, arch: Arch) -> float | None:
        """FPS of the student at the latency size predicted by the lookup table (None without one)."""
        if self.table is None:
            return None
        key = arch.network_key()
        if key not in self._fps:
            net = build_network(arch, self.config.num_classes, "student")
            self._fps[key] = 1000.0 / self.table.predict_ms(net, self.config.latency_size)
        return self._fps[key]

    def feasible(self, arch: Arch) -> bool:
        target = self.config.target_fps
        if target is None or self.predicted_fps(arch) >= target:
            return True
        self.too_slow += 1
        return False

    def _new(self, arch: Arch) -> bool:
        return is_legal(arch) and arch.network_key() not in self.state.seen and self.feasible(arch)

    def random_candidate(self) -> Arch:
        """A fresh legal, unseen architecture that meets the target FPS."""
        for _ in range(MAX_FEASIBLE_TRIES):
            arch = random_arch(self.rng, self.config.layers, self.config.branches)
            if self._new(arch):
                return arch
        best = max((v for v in self._fps.values()), default=float("nan"))
        raise SearchError(f"no new random architecture in {MAX_FEASIBLE_TRIES} draws meets "
                          f"--target-fps {self.config.target_fps} (fastest predicted {best:.1f} FPS)")

    def child(self, parents: list[Candidate]) -> Arch:
        """Crossover (with probability ``crossover_prob``) then mutation of top-K parents; a random
        architecture when no legal, new, fast enough child turns up."""
        for _ in range(MAX_CHILD_TRIES):
            a = self.rng.choice(parents).arch
            if self.rng.random() < self.config.crossover_prob and len(parents) > 1:
                a = crossover(a, self.rng.choice(parents).arch, self.rng)
            arch = mutate(a, self.rng, self.config.mutated_rows)
            if self._new(arch):
                return arch
        return self.random_candidate()

    def evaluate(self, arch: Arch) -> Candidate:
        self.state.seen.add(arch.network_key())
        return Candidate(arch, self.scorer.score(arch), self.predicted_fps(arch))

    # ---------------------------------------------------------------- the run
    def calibrate(self) -> None:
        """AVT min/max from a pre-sample drawn from its own seeded generator (so resume redraws it)."""
        rng = random.Random(f"calibration-{self.config.seed}")
        archs = [random_arch(rng, self.config.layers, self.config.branches)
                 for _ in range(self.config.calibration_size)]
        self.scorer.calibrate(archs)

    def run(self) -> Candidate:
        """Calibrate, then evolve from the current state (fresh or resumed); the best candidate."""
        start = time.perf_counter()
        self.calibrate()
        state = self.state
        if not state.population:
            state.population = self._sorted(self.evaluate(self.random_candidate())
                                             for _ in range(self.config.population))
            self._finish_generation(start)
        while state.generation <= self.config.generations:
            start = time.perf_counter()
            parents = state.population[: self.config.parents]
            children = [self.evaluate(self.random_candidate())
                        for _ in range(min(self.config.fresh_per_generation, self.config.population))]
            while len(children) < self.config.population - self.config.parents:
                children.append(self.evaluate(self.child(parents)))
            state.population = self._sorted(state.population + children)[: self.config.population]
            self._finish_generation(start)
        return state.population[0]

    def verified_best(self, limit: int = VERIFIED_CANDIDATES) -> tuple[Candidate, float | None]:
        """The best candidate whose *measured* FPS meets the target, with that FPS. The table only
        predicts (it leaves out the glue between parts), so the top ``limit`` candidates are measured
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

    @staticmethod
    def _sorted(candidates) -> list[Candidate]:
        return sorted(candidates, key=lambda c: (-c.score, c.arch.key()))

    def _finish_generation(self, start: float) -> None:
        state = self.state
        scores = [c.score for c in state.population if math.isfinite(c.score)]
        best = state.population[0]
        record = {"generation": state.generation, "best": best.score,
                  "mean": sum(scores) / len(scores) if scores else -math.inf,
                  "best_fps": best.fps, "evaluated": len(state.seen),
                  "seconds": round(time.perf_counter() - start, 2)}
        state.history.append(record)
        fps = f"  fps {best.fps:.1f} ({self.too_slow} too slow so far)" if best.fps is not None else ""
        self.log(f"generation {state.generation}/{self.config.generations}: best {best.score:.6g}  "
                 f"mean {record['mean']:.6g}{fps}  evaluated {record['evaluated']}  "
                 f"{record['seconds']:.1f}s")
        state.generation += 1
        self.save()

    # ---------------------------------------------------------------- checkpoints
    def save(self) -> None:
        if self.table is not None:
            self.table.save()
        if self.checkpoint is None:
            return
        data = {"format": CHECKPOINT_FORMAT, "config": asdict(self.config),
                "generation": self.state.generation, "rng": _rng_state(self.rng),
                "population": [{"arch": c.arch.to_dict(), "score": c.score, "fps": c.fps}
                               for c in self.state.population],
                "seen": sorted(self.state.seen), "history": self.state.history}
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_suffix(self.checkpoint.suffix + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.checkpoint)

    def resume(self) -> None:
        """Continue from the checkpoint file; it must come from a run with the same configuration
        (only the number of generations may grow)."""
        if self.checkpoint is None or not self.checkpoint.exists():
            raise SearchError(f"nothing to resume: {self.checkpoint} does not exist")
        try:
            data = json.loads(self.checkpoint.read_text())
            config = json.loads(json.dumps(asdict(self.config)))
            if data.get("format") != CHECKPOINT_FORMAT:
                raise SearchError(f"{self.checkpoint}: not a segsearch search checkpoint")
            changed = sorted(k for k in config if k != "generations" and data["config"].get(k) != config[k])
            if changed:
                raise SearchError(f"{self.checkpoint}: written with other settings ({', '.join(changed)})")
            _set_rng_state(self.rng, data["rng"])
            population = [Candidate(arch_from_dict(c["arch"]), float(c["score"]), c["fps"])
                          for c in data["population"]]
            self.state = SearchState(int(data["generation"]), population, set(data["seen"]), data["history"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SearchError(f"{self.checkpoint}: corrupt search checkpoint ({exc})") from None
        self._fps.update({c.arch.network_key(): c.fps for c in population if c.fps is not None})


def random_baseline(scorer: ArchScorer, count: int, seed: int, layers: int = NUM_LAYERS,
                    branches: int = NUM_BRANCHES) -> list[float]:
    """Scores of ``count`` random legal architectures (their own seeded draw): what a search must beat."""
    rng = random.Random(f"baseline-{seed}")
    return [scorer.score(random_arch(rng, layers, branches)) for _ in range(count)]
