"""Proxy expressions in the JSON form a search checkpoint keeps them in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from proxylang import canonical_key, to_text
from proxylang.errors import ProxylangError
from proxylang.lang.ast import Call, Input, Num
from proxylang.scoring.baselines import EXPRESSION_BASELINES, library_expression
from proxylang.search.evolve import node_from_json, node_to_json
from proxylang.search.genetic import random_expr


def test_expressions_survive_their_json_form_exactly():
    """A resumed search mutates the trees it saved: the same tree, text and key, 2 still apart from 2.0."""
    rng = np.random.default_rng(0)
    trees = [library_expression(name) for name in EXPRESSION_BASELINES]
    trees += [t for t in (random_expr(rng) for _ in range(40)) if t is not None]
    trees.append(Call("pow", (Input("W"), Num(2))))
    for tree in trees:
        back = node_from_json(json.loads(json.dumps(node_to_json(tree))))
        assert back == tree and to_text(back) == to_text(tree) and canonical_key(back) == canonical_key(tree)
    assert type(node_from_json(node_to_json(Num(2))).value) is int
    assert type(node_from_json(node_to_json(Num(2.0))).value) is float
    for bad in ([], [3, "W"], {"op": "sum"}, True, None):
        with pytest.raises(ProxylangError, match="not an expression"):
            node_from_json(bad)
