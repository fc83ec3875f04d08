"""The one search engine in both of its configurations, on integers read as 16-bit strings (fitness: the
fraction of ones; zero collapses): the proxy search's (numpy generator, random pool, crossover *or*
mutation, stagnation resets) and segsearch's (Python generator, fresh immigrants, the whole population as
pool, crossover *and* mutation, a screen before evaluation, no resets); exact resumes; and checkpoints
that are JSON, checked on load, and never unpickled.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import re
import shlex

import numpy as np
import pytest

from proxylang.errors import ProxylangError
from proxylang.search.engine import (
    NUMPY_RANDOM,
    PYTHON_RANDOM,
    ExhaustedError,
    Fitness,
    Operators,
    RandomSource,
    Search,
    SearchConfig,
    load_checkpoint,
)

BITS = 16


def _decode(data):
    if isinstance(data, bool) or not isinstance(data, int):
        raise ProxylangError(f"not a toy candidate: {data!r}")
    return data


def toy_operators(source: RandomSource, calls: list | None = None, **extra) -> Operators[int]:
    """Operators drawing through ``source`` (so they run on either generator); ``calls`` records them."""
    calls = [] if calls is None else calls

    def random_int(rng):
        return sum(1 << i for i in range(BITS) if source.uniform(rng) < 0.25)

    def mutate(x, rng):
        calls.append(("mutate", x))
        return x ^ (1 << source.below(rng, BITS))

    def crossover(a, b, rng):
        calls.append(("crossover", a, b))
        mask = (1 << (1 + source.below(rng, BITS - 1))) - 1
        return (a & mask) | (b & ~mask)

    return Operators(random=random_int, mutate=mutate, crossover=crossover, key=str, encode=int,
                     decode=_decode, rng=source, **extra)


def high_bits(x: int) -> tuple[float, ...]:
    return tuple(float(x >> i & 1) for i in range(BITS // 2, BITS))


def toy_fitness(x: int) -> Fitness:
    """Behaviour: the high byte's bits, so integers that share their high byte are clones."""
    if x == 0:
        return Fitness(rejected="constant")
    return Fitness(train=bin(x).count("1") / BITS, val=bin(x & 0xFF).count("1") / 8, behaviour=high_bits(x))


EVOLVE = SearchConfig(population=10, iterations=8, offspring=6, pool=6, top_k=3, seed=3)
SEGSEARCH = SearchConfig(population=8, iterations=8, fresh=2, offspring=3, pool=None, top_k=3,
                         variation="and", patience=None, attempts=50, require_full=True, seed=3)
CONFIGS = {"evolve": (NUMPY_RANDOM, EVOLVE), "segsearch": (PYTHON_RANDOM, SEGSEARCH),
           "evolve without clones": (NUMPY_RANDOM, SearchConfig(**{**EVOLVE.__dict__, "clone_rho": 1.0}))}


def _comparable(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "evals_per_s")} for r in history]


def _run(name: str, **kwargs):
    source, config = CONFIGS[name]
    return Search(toy_operators(source), toy_fitness, kwargs.pop("config", config), **kwargs).run()


@pytest.mark.parametrize("name", CONFIGS)
def test_each_configuration_improves_and_repeats_for_a_seed(name):
    a, b = _run(name), _run(name)
    assert a.best.fitness.train > a.history[0]["best_train"]
    assert _comparable(a.history) == _comparable(b.history) and a.population == b.population
    other = _run(name, config=SearchConfig(**{**CONFIGS[name][1].__dict__, "seed": 4}))
    assert _comparable(other.history) != _comparable(a.history)


@pytest.mark.parametrize("name", CONFIGS)
def test_interrupted_run_resumes_to_the_same_result(tmp_path, name):
    source, config = CONFIGS[name]
    whole = _run(name)

    def stop_after_3(record):
        if record["generation"] == 3:
            raise KeyboardInterrupt

    path = tmp_path / "checkpoint.json"
    with pytest.raises(KeyboardInterrupt):
        Search(toy_operators(source), toy_fitness, config, checkpoint=path).run(on_generation=stop_after_3)
    assert load_checkpoint(path, toy_operators(source), config).generation == 4
    resumed = Search(toy_operators(source), toy_fitness, config, checkpoint=path, resume=True).run()
    assert resumed.best == whole.best and resumed.population == whole.population
    assert _comparable(resumed.history) == _comparable(whole.history)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"], "no temporary file is left behind"


def _clone_groups(population) -> int:
    """How many individuals share a (non-constant) high byte with a better one."""
    bytes_seen = [high_bits(i.candidate) for i in population if 0 < sum(high_bits(i.candidate)) < BITS // 2]
    return len(bytes_seen) - len(set(bytes_seen))


def _varied(population) -> list[np.ndarray]:
    return [np.array(high_bits(i.candidate)) for i in population if np.ptp(high_bits(i.candidate))]


def _max_correlation(population) -> float:
    return max(np.corrcoef(a, b)[0, 1] for a, b in itertools.combinations(_varied(population), 2))


def test_clone_rho_keeps_one_individual_per_behaviour():
    """Without ``clone_rho`` the population fills with integers of one high byte; with it, never twice
    the same (non-constant) byte, and the dropped clones are counted."""
    plain = _run("evolve", config=SearchConfig(**{**EVOLVE.__dict__, "iterations": 20}))
    assert _clone_groups(plain.population) > 0
    distinct = _run("evolve", config=SearchConfig(**{**EVOLVE.__dict__, "iterations": 20, "clone_rho": 1.0}))
    assert _clone_groups(distinct.population) == 0
    assert sum(r["rejections"].get("clone", 0) for r in distinct.history) > 0
    assert not any("clone" in r["rejections"] for r in plain.history)
    # a looser threshold: no two survivors' behaviours correlate at 0.5 or more
    loose = _run("evolve", config=SearchConfig(**{**EVOLVE.__dict__, "iterations": 20, "clone_rho": 0.5}))
    assert len(_varied(loose.population)) >= 2 and _max_correlation(loose.population) < 0.5
    assert _max_correlation(distinct.population) >= 0.5  # which the exact threshold lets through


def test_a_resumed_run_may_grow_only_the_settings_it_allows(tmp_path):
    """segsearch lets a finished search run more generations; the result is that of the longer run."""
    ops, path = toy_operators(PYTHON_RANDOM), tmp_path / "checkpoint.json"
    short = SearchConfig(**{**SEGSEARCH.__dict__, "iterations": 3})
    Search(ops, toy_fitness, short, checkpoint=path).run()
    with pytest.raises(ProxylangError, match=r"different configuration: other settings \(iterations\)"):
        Search(ops, toy_fitness, SEGSEARCH, checkpoint=path, resume=True)
    grown = Search(ops, toy_fitness, SEGSEARCH, checkpoint=path, resume=True,
                   may_change=("iterations",)).run()
    assert _comparable(grown.history) == _comparable(_run("segsearch").history)


def test_segsearch_generation_breeds_the_top_k_and_mutates_every_child():
    calls: list = []
    tops: list[set[int]] = []
    config = SearchConfig(**{**SEGSEARCH.__dict__, "crossover_prob": 1.0})
    search = Search(toy_operators(PYTHON_RANDOM, calls), toy_fitness, config)

    def mark(record):
        calls.append(("generation", record["generation"]))
        tops.append({i.candidate for i in search.state.population[: config.top_k]})

    result = search.run(on_generation=mark)
    gen = 0
    for call in calls:
        if call[0] == "generation":
            gen = call[1] + 1
        elif call[0] == "crossover":
            assert {call[1], call[2]} <= tops[gen - 1], "parents are the previous population's top-k"
    crossovers = sum(c[0] == "crossover" for c in calls)
    assert crossovers and crossovers == sum(c[0] == "mutate" for c in calls), "crossover, then mutation"
    evaluations = [r["evaluations"] for r in result.history]
    new = [b - a for a, b in zip(evaluations, evaluations[1:], strict=False)]
    assert new == [config.fresh + config.offspring] * config.iterations
    assert not any(r["reset"] for r in result.history)


def test_evolve_generation_breeds_by_crossover_or_mutation():
    calls: list = []
    Search(toy_operators(NUMPY_RANDOM, calls), toy_fitness,
           SearchConfig(**{**EVOLVE.__dict__, "crossover_prob": 1.0})).run()
    assert any(c[0] == "crossover" for c in calls) and not any(c[0] == "mutate" for c in calls)


def test_the_screen_refuses_before_evaluation_and_order_breaks_ties():
    evaluated: list[int] = []

    def counting(x):
        evaluated.append(x)
        return Fitness(train=0.5, val=0.5)  # all tied: only the order decides

    ops = toy_operators(PYTHON_RANDOM, screen=lambda x: "odd" if x % 2 else "", order=lambda x: f"{x:05d}")
    result = Search(ops, counting, SEGSEARCH).run()
    assert evaluated and all(x % 2 == 0 for x in evaluated)
    assert sum(r["rejections"].get("odd", 0) for r in result.history) > 0
    assert [i.candidate for i in result.population] == sorted(i.candidate for i in result.population)


def test_of_equal_fitness_the_cheaper_candidate_ranks_first():
    """Cost (a proxy's work) breaks ties before the key: ``cost = -x`` puts the largest integers first,
    where the key alone would put them in text order."""
    result = Search(toy_operators(NUMPY_RANDOM), lambda x: Fitness(train=0.5, val=0.5, cost=-x), EVOLVE).run()
    assert [i.candidate for i in result.population] == sorted((i.candidate for i in result.population),
                                                              reverse=True)
    assert result.best.candidate == max(i.candidate for i in result.population)


def test_a_required_fill_that_cannot_be_met_is_an_error():
    draws = []
    ops = toy_operators(PYTHON_RANDOM, screen=lambda x: draws.append(x) or "too slow")
    with pytest.raises(ExhaustedError, match=r"only 0 of 8 new random candidates .*too slow: "):
        Search(ops, toy_fitness, SEGSEARCH).run()
    assert len(draws) <= SEGSEARCH.population * SEGSEARCH.attempts


def test_records_carry_fields_from_before_the_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.json"
    saved_generations = []

    def leader(population):
        saved_generations.append(json.loads(path.read_text())["generation"] if path.exists() else 0)
        return {"leader": population[0].candidate}

    result = Search(toy_operators(NUMPY_RANDOM), toy_fitness, EVOLVE, checkpoint=path,
                    before_checkpoint=leader).run()
    assert [r["leader"] for r in result.history][-1] == result.population[0].candidate
    assert saved_generations == list(range(EVOLVE.iterations + 1)), "it runs before the generation is saved"
    assert json.loads(path.read_text())["history"] == result.history


@pytest.mark.parametrize("source", [NUMPY_RANDOM, PYTHON_RANDOM])
def test_generator_state_survives_json(source):
    rng = source.seeded(5)
    source.uniform(rng)
    copy = source.restore(json.loads(json.dumps(source.state(rng))))
    assert [source.below(rng, 1000) for _ in range(20)] == [source.below(copy, 1000) for _ in range(20)]


class _Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])  # 0 is printable ASCII, the rest binary
def test_a_pickle_payload_is_refused_and_never_runs(tmp_path, protocol):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(probe), protocol))
    assert probe.exists(), "the payload runs code when unpickled"
    marker, path = tmp_path / "pwned", tmp_path / "checkpoint.json"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol))
    refused = "not a search checkpoint file .invalid JSON|cannot read the search checkpoint file: not UTF-8"
    with pytest.raises(ProxylangError, match=f"{re.escape(str(path))}: ({refused})"):
        Search(toy_operators(NUMPY_RANDOM), toy_fitness, EVOLVE, checkpoint=path, resume=True)
    assert not marker.exists()


def _valid_checkpoint(path):
    Search(toy_operators(NUMPY_RANDOM), toy_fitness, SearchConfig(**{**EVOLVE.__dict__, "iterations": 2}),
           checkpoint=path).run()
    return json.loads(path.read_text())


def _set(data, key, value):
    data[key] = value
    return data


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: b"\x00\xffnot json", "cannot read the search checkpoint file: not UTF-8"),
    (lambda d: b"{not json", "not a search checkpoint file .invalid JSON at line 1, column 2"),
    (lambda d: b"[" * 100_000, "not a search checkpoint file"),
    (lambda d: b"[1, 2]", "not a search checkpoint"),
    (lambda d: _set(d, "format", "something-else/1"), "not a search checkpoint"),
    (lambda d: _set(d, "config", {**d["config"], "population": 11}), r"other settings \(population\)"),
    (lambda d: _set(d, "context", {"proxy": "other.px"}), r"other settings \(proxy\)"),
    (lambda d: _set(d, "config", None), "corrupt search checkpoint"),
    (lambda d: _set(d, "generation", "3"), "corrupt search checkpoint"),
    (lambda d: _set(d, "evaluations", -1), "corrupt search checkpoint"),
    (lambda d: _set(d, "population", {"0": 1}), "corrupt search checkpoint"),
    (lambda d: _set(d, "population", [{**d["population"][0], "candidate": "7"}]), "not a toy candidate"),
    (lambda d: _set(d, "population", [{**d["population"][0], "train": None}]), "corrupt search checkpoint"),
    (lambda d: _set(d, "seen", [1, 2]), "corrupt search checkpoint"),
    (lambda d: _set(d, "rng", {"bit_generator": "PCG64"}), "corrupt search checkpoint"),
    (lambda d: _set(d, "rng", [3, [1, 2], None]), "corrupt search checkpoint"),
    (lambda d: {k: v for k, v in d.items() if k != "history"}, "corrupt search checkpoint"),
])
def test_anything_wrong_in_a_checkpoint_is_one_clean_error_naming_it(tmp_path, corrupt, message):
    path = tmp_path / "checkpoint.json"
    bad = corrupt(_valid_checkpoint(path))
    path.write_bytes(bad if isinstance(bad, bytes) else json.dumps(bad).encode())
    with pytest.raises(ProxylangError, match=f"{re.escape(str(path))}: .*{message}"):
        Search(toy_operators(NUMPY_RANDOM), toy_fitness, SearchConfig(**{**EVOLVE.__dict__, "iterations": 2}),
               checkpoint=path, resume=True)


def test_a_directory_or_a_missing_file_is_a_clean_error(tmp_path):
    for path, message in ((tmp_path, "cannot read the search checkpoint file: it is a folder"),
                          (tmp_path / "none", "cannot read the search checkpoint file: no such file")):
        with pytest.raises(ProxylangError, match=f"{re.escape(str(path))}: {message}"):
            Search(toy_operators(NUMPY_RANDOM), toy_fitness, EVOLVE, checkpoint=path, resume=True)


def test_configuration_options_are_checked():
    with pytest.raises(ProxylangError, match="variation"):
        SearchConfig(variation="both")
    with pytest.raises(ProxylangError, match="offspring \\+ fresh"):
        SearchConfig(offspring=0)
    assert SearchConfig(offspring=0, fresh=1, pool=None, patience=None).pool is None
