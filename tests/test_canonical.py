import random

import pytest
import torch

from proxylang.canonical import canonical_key, simplify
from proxylang.compile import compile_proxy, pack
from proxylang.genetic import random_expr
from proxylang.parse import parse


@pytest.mark.parametrize("a, b", [
    ("sum(W + G)", "sum(G + W)"), ("sum(abs(abs(W)))", "sum(abs(W))"), ("mean(W)", "normsum(W)"),
    ("l1norm(W)", "mean(abs(W))"), ("sum(relu(relu(G)))", "sum(relu(G))"), ("sum(W > G)", "sum(G < W)"),
    ("sum(W * W)", "sum(pow(W, 2))"), ("cosine(W, G)", "cosine(G, W)"), ("sum(noop(W))", "sum(W)"),
    ("sum(W)", "layersum(sum(W))"), ("sum(normalize(normalize(A)))", "sum(normalize(A))"),
    ("sum(W * G) + mean(A)", "mean(A) + sum(G * W)"),
])
def test_equivalent_forms_share_a_key(a, b):
    assert canonical_key(parse(a)) == canonical_key(parse(b))


@pytest.mark.parametrize("a, b", [
    ("sum(W - G)", "sum(G - W)"), ("sum(pow(W, 0))", "sum(pow(A, 0))"), ("sum(W < G)", "sum(G < W)"),
    ("sum(matmul(gram(W), G))", "sum(matmul(gram(G), W))"), ("sum(softmax(W))", "sum(softmax(G))"),
])
def test_different_proxies_differ(a, b):
    assert canonical_key(parse(a)) != canonical_key(parse(b))


@pytest.mark.parametrize("text, simple", [
    ("sum(noop(W) + G - W)", "sum(G)"), ("sum(relu(relu(G)))", "sum(relu(G))"), ("l1norm(W)", "mean(abs(W))"),
    ("mean(W * W / G)", "mean(pow(W, 2) / G)"), ("sum(W > G)", "sum(G < W)"),
    ("sum(pow(W, 0))", "sum(pow(W, 0))"),  # a constant matrix has no shorter spelling
])
def test_simplify_spells_the_canonical_form(text, simple):
    assert simplify(parse(text)) == parse(simple)


def test_simplify_keeps_key_and_scores(real_stats):
    rng = random.Random(0)
    packed = pack(real_stats)
    for _ in range(100):
        node = random_expr(rng)
        simple = simplify(node)
        assert canonical_key(simple) == canonical_key(node)
        (a, va), (b, vb) = compile_proxy(node)(packed), compile_proxy(simple)(packed)
        both = va & vb
        torch.testing.assert_close(a[both], b[both], rtol=1e-6, atol=1e-6)
