import pytest

from proxylang.canonical import canonical_key
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
