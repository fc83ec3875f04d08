import random

import numpy as np

from proxylang.lang.ast import depth, size
from proxylang.lang.check import check
from proxylang.lang.parse import parse
from proxylang.search.genetic import MAX_DEPTH, MAX_SIZE, crossover, mutate, random_expr, replace_at, subtrees


def test_random_exprs_are_well_typed_varied_and_seeded():
    nodes = [random_expr(random.Random(i)) for i in range(300)]
    for node in nodes:
        check(node)
        assert depth(node) <= 5 and size(node) <= MAX_SIZE
    assert len(set(nodes)) > 200
    assert random_expr(random.Random(7)) == random_expr(random.Random(7))
    assert random_expr(np.random.default_rng(7)) == random_expr(np.random.default_rng(7))


def test_mutation_and_crossover_return_checked_children_or_none():
    rng = np.random.default_rng(0)
    parents = [random_expr(rng) for _ in range(200)]
    mutants = [mutate(p, rng) for p in parents]
    children = mutants + [crossover(a, b, rng) for a, b in zip(parents, parents[1:], strict=False)]
    kept = [c for c in children if c is not None]
    assert len(kept) > 150
    assert sum(c is not None for c in mutants) > 80
    changed = sum(c != p for c, p in zip(mutants, parents, strict=True) if c is not None)
    assert changed > 60
    for child in kept:
        check(child)
        assert depth(child) <= MAX_DEPTH and size(child) <= MAX_SIZE


def test_subtrees_and_replace_at():
    node = parse("sum(W * G)")
    paths = [p for p, _ in subtrees(node)]
    assert paths == [(), (0,), (0, 0), (0, 1)]
    assert replace_at(node, (0, 1), parse("A")) == parse("sum(W * A)")


def test_ill_typed_crossover_is_rejected():
    # the only sub-tree swaps available all put a relu-site value into a conv-site proxy or vice versa
    a, b = parse("sum(W) + sum(G)"), parse("sum(R)")
    results = {crossover(a, b, random.Random(i)) for i in range(30)}
    assert None in results and parse("sum(R)") in results
