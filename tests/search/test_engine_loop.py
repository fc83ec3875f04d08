"""The search engine in the proxy search's configuration, on a toy problem: bit strings whose fitness is
the fraction of ones.

The toy fitness has a known optimum and a known collapse (the all-zero string), so the tests can check
what Algorithm 1 promises without the compiler or any statistics.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from proxylang.errors import ProxylangError
from proxylang.search.engine import (
    Fitness,
    Operators,
    Search,
    SearchConfig,
    load_checkpoint,
)

BITS = 24


def _random(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(b) for b in rng.random(BITS) < 0.2)


def _mutate(bits: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
    i = int(rng.integers(BITS))
    return bits[:i] + (1 - bits[i],) + bits[i + 1:]


def _crossover(a: tuple[int, ...], b: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
    cut = int(rng.integers(1, BITS))
    return a[:cut] + b[cut:]


TOY = Operators(random=_random, mutate=_mutate, crossover=_crossover, key=lambda b: "".join(map(str, b)),
                encode=list, decode=tuple)


def toy_fitness(bits: tuple[int, ...]) -> Fitness:
    if not any(bits):
        return Fitness(rejected="constant")
    return Fitness(train=sum(bits) / BITS, val=sum(bits[: BITS // 2]) / (BITS // 2))


SMALL = SearchConfig(population=10, iterations=12, offspring=6, pool=6, top_k=3, seed=3)


def _files(run_dir):
    """Where the proxy search keeps a strategy's checkpoint and log."""
    return {"checkpoint": run_dir / "checkpoint.json", "log_file": run_dir / "log.jsonl"}


def _comparable(history: list[dict]) -> list[dict]:
    """Records without wall-clock fields, which legitimately differ between runs."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "evals_per_s")} for r in history]


def test_evolution_improves_on_the_initial_population():
    result = Search(TOY, toy_fitness, SMALL).run()
    assert result.history[0]["generation"] == 0 and len(result.history) == SMALL.iterations + 1
    assert result.best.fitness.train > result.history[0]["best_train"]
    curve = [r["best_train"] for r in result.history]
    assert curve == sorted(curve), "greedy elitism never loses the best"


def test_evolution_beats_random_search_at_equal_evaluations():
    evo = Search(TOY, toy_fitness, SMALL).run()
    rnd = Search(TOY, toy_fitness, SearchConfig(strategy="random", iterations=10_000,
                                                max_evaluations=evo.evaluations, seed=3)).run()
    assert rnd.evaluations == evo.evaluations
    assert evo.best.fitness.train > rnd.best.fitness.train


def test_same_seed_same_result_and_other_seed_differs():
    a, b = Search(TOY, toy_fitness, SMALL).run(), Search(TOY, toy_fitness, SMALL).run()
    assert _comparable(a.history) == _comparable(b.history)
    c = Search(TOY, toy_fitness, SearchConfig(**{**SMALL.__dict__, "seed": 4})).run()
    assert _comparable(c.history) != _comparable(a.history)


def test_candidates_are_never_evaluated_twice():
    evaluated: list[tuple[int, ...]] = []

    def counting(bits):
        evaluated.append(bits)
        return toy_fitness(bits)

    result = Search(TOY, counting, SMALL).run()
    assert len(evaluated) == len(set(evaluated)) == result.evaluations
    assert sum(r["rejections"].get("duplicate", 0) for r in result.history) > 0


def test_collapsed_candidates_are_rejected_and_counted():
    def fragile(bits):
        return Fitness(rejected="nan") if bits[0] else toy_fitness(bits)

    result = Search(TOY, fragile, SMALL).run()
    assert all(i.candidate[0] == 0 for i in result.population)
    assert sum(r["rejections"].get("nan", 0) for r in result.history) > 0


def test_stagnation_resets_the_population_but_keeps_the_best():
    flat = Search(TOY, lambda b: Fitness(train=0.5, val=0.5) if any(b) else Fitness(rejected="constant"),
                  SearchConfig(population=6, iterations=7, offspring=3, pool=3, top_k=2, patience=2)).run()
    resets = [r["generation"] for r in flat.history if r["reset"]]
    assert resets == [2, 4, 6]
    assert all(r["best"] == flat.history[0]["best"] for r in flat.history)


def test_short_population_is_filled_from_random_candidates():
    # only strings of weight <= 2 survive, so the initial population of 10 is rarely full
    def picky(bits):
        return toy_fitness(bits) if sum(bits) <= 2 else Fitness(rejected="overflow")

    cfg = SearchConfig(population=10, iterations=3, offspring=4, pool=10, top_k=2, attempts=2, seed=1)
    result = Search(TOY, picky, cfg).run()
    assert result.history[0]["population"] < 10
    first = result.history[0]["evaluations"]
    assert result.history[1]["evaluations"] - first > cfg.offspring, "the pool was topped up"


def test_seeds_join_the_initial_population_once_and_count_as_evaluations():
    strong = (1,) * (BITS - 2) + (0, 0)
    evaluated: list[tuple[int, ...]] = []

    def counting(bits):
        evaluated.append(bits)
        return toy_fitness(bits)

    seeded = Search(TOY, counting, SMALL, seeds=[strong, strong]).run()
    assert evaluated[0] == strong and evaluated.count(strong) == 1
    assert seeded.history[0]["best_train"] == toy_fitness(strong).train
    assert seeded.history[0]["evaluations"] == SMALL.population  # the seed plus random fill
    assert seeded.history[0]["rejections"] == {"duplicate": 1}
    unseeded = Search(TOY, toy_fitness, SMALL).run()
    assert seeded.best.fitness.train > unseeded.best.fitness.train


def test_seeds_respect_the_evaluation_budget():
    cfg = SearchConfig(strategy="random", iterations=10, max_evaluations=2, seed=0)
    seeds = [(1,) * BITS, (0, 1) * (BITS // 2), (1, 0) * (BITS // 2)]
    result = Search(TOY, toy_fitness, cfg, seeds=seeds).run()
    assert result.evaluations == 2 and result.best.fitness.train == 1.0


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    whole = Search(TOY, toy_fitness, SMALL, **_files(tmp_path / "whole")).run()

    def stop_after_5(record):
        if record["generation"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Search(TOY, toy_fitness, SMALL, **_files(tmp_path / "cut")).run(on_generation=stop_after_5)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.json", TOY, SMALL).generation == 6
    resumed = Search(TOY, toy_fitness, SMALL, **_files(tmp_path / "cut"), resume=True).run()
    assert resumed.best == whole.best and resumed.evaluations == whole.evaluations
    assert _comparable(resumed.history) == _comparable(whole.history)
    log = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in log] == list(range(SMALL.iterations + 1))


def test_resume_drops_log_records_written_after_the_checkpoint(tmp_path):
    Search(TOY, toy_fitness, SearchConfig(iterations=2, seed=0), **_files(tmp_path)).run()
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write(json.dumps({"generation": 99}) + "\n")
    Search(TOY, toy_fitness, SearchConfig(iterations=2, seed=0), **_files(tmp_path), resume=True).run()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["generation"] for x in lines] == [0, 1, 2]


def test_resume_refuses_another_configuration_or_a_missing_checkpoint(tmp_path):
    Search(TOY, toy_fitness, SearchConfig(iterations=1), **_files(tmp_path)).run()
    with pytest.raises(ProxylangError, match="different configuration"):
        Search(TOY, toy_fitness, SearchConfig(iterations=2), **_files(tmp_path), resume=True)
    with pytest.raises(ProxylangError, match="cannot read the search checkpoint file: no such file"):
        Search(TOY, toy_fitness, SMALL, **_files(tmp_path / "none"), resume=True)


def test_parallel_workers_give_the_serial_result():
    serial = Search(TOY, toy_fitness, SMALL).run()
    parallel = Search(TOY, toy_fitness, SMALL, workers=2).run()
    assert _comparable(parallel.history) == _comparable(serial.history)


def test_every_candidate_collapsing_is_a_clear_error():
    with pytest.raises(ProxylangError, match="collapsed"):
        Search(TOY, lambda b: Fitness(rejected="nan"), SearchConfig(population=4, iterations=1)).run()


def test_config_rejects_bad_values():
    with pytest.raises(ProxylangError, match="strategy"):
        SearchConfig(strategy="annealing")
    with pytest.raises(ProxylangError, match="top_k"):
        SearchConfig(top_k=0)


def test_workers_run_torch_after_the_parent_used_threads():
    """Forked workers used to hang in their first multi-threaded torch op once the parent had run one
    (the inherited OpenMP pool); a subprocess with a timeout turns a hang into a failure."""
    import subprocess
    import sys

    script = """
import torch
from proxylang.search.engine import Evaluator, Fitness
torch.set_num_threads(2)
print(float(torch.ones(4_000_000).sum()))
def fitness(n):
    return Fitness(train=float(torch.ones(4_000_000).sum()) + n)
evaluator = Evaluator(fitness, 2)
print([f.train for f in evaluator([1, 2, 3, 4])])
evaluator.close()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str([4_000_001.0, 4_000_002.0, 4_000_003.0, 4_000_004.0])
