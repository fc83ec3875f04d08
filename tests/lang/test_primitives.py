"""Guarded primitives (zero where undefined) on a network with a dead layer, and exact float64 counts."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from proxylang.errors import ProxyTypeError
from proxylang.lang.ast import Call, Input, walk
from proxylang.lang.canonical import canonical_key, simplify
from proxylang.lang.check import check
from proxylang.lang.compile import compile_proxy, evaluate_eager
from proxylang.lang.parse import parse
from proxylang.lang.primitives import PRIMITIVES, OneMatrix
from proxylang.lang.printer import to_latex, to_text
from proxylang.lang.types import RuleError
from proxylang.stats.extract import extract_stats
from proxylang.stats.netstats import NetStats


class DeadBranch(nn.Module):
    """stem conv -> ReLU -> live conv + 0 * dead conv -> pooled linear head: the dead conv's weight
    gradient is exactly zero, as in a cell whose only way out is a 'none' edge."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.live = nn.Conv2d(4, 6, 3, padding=1)
        self.dead = nn.Conv2d(4, 6, 3, padding=1)
        self.head = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.live(x) + 0 * self.dead(x))
        return self.head(x.mean((2, 3)))


DEAD = 2  # the site of the dead conv (stem, live, dead, head)


def dead_layer_stats(seed: int, dtype: torch.dtype = torch.float64) -> NetStats:
    torch.manual_seed(seed)
    model = DeadBranch()
    inputs, targets = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
    return extract_stats(model, inputs, targets, nn.functional.cross_entropy).to("cpu", dtype)


@pytest.fixture(scope="module")
def dead_stats() -> list[NetStats]:
    stats = [dead_layer_stats(seed) for seed in range(3)]
    for s in stats:
        assert s.meta["sites"] == ["stem", "live", "dead", "head"]
        assert all(bool((g == 0).all()) == (i == DEAD) for i, g in enumerate(s.G))
        assert all(bool((g != 0).all()) for i, g in enumerate(s.G) if i != DEAD)  # no stray zero
    return stats


def _z(g: torch.Tensor) -> torch.Tensor:
    return (g - g.mean()) / g.std(correction=0)


BY_HAND = {  # the plain (unguarded) formula of each proxy on one site's G and W
    "sum(invert(G))": lambda g, w: (1 / g).sum(),
    "sum(abslog(G))": lambda g, w: g.abs().log().sum(),
    "sum(log(abs(G)))": lambda g, w: g.abs().log().sum(),
    "sum(G / G)": lambda g, w: (g / g).sum(),
    "sum(normalize(G))": lambda g, w: _z(g).sum(),
    "cosine(G, W)": lambda g, w: (g * w).sum() / (g.norm() * w.norm()),
}


@pytest.mark.parametrize("text", list(BY_HAND))
def test_a_dead_layer_contributes_zero_instead_of_invalidating(dead_stats, text):
    node = parse(text)
    scores, valid = compile_proxy(node)(dead_stats)
    ref_scores, ref_valid = evaluate_eager(node, dead_stats)
    assert valid.all() and ref_valid.all()
    for s, score, ref in zip(dead_stats, scores.tolist(), ref_scores.tolist(), strict=True):
        sites = [BY_HAND[text](g, w) for g, w in zip(s.G, s.W, strict=True)]
        assert not torch.isfinite(sites[DEAD])  # the plain formula: the network used to be invalid
        live = sum(float(v) for i, v in enumerate(sites) if i != DEAD)
        assert score == pytest.approx(live, rel=1e-9, abs=1e-9)
        assert ref == pytest.approx(live, rel=1e-9, abs=1e-9)


GUARDED = [
    "sum(invert(G))", "sum(abslog(G))", "sum(log(abs(G)))", "sum(G / G)", "sum(normalize(G))",
    "sum(W / G) + sum(invert(A - A))", "cosine(G, W) + cosine(A - A, A)", "mean(log(relu(A)))",
    "sum(normalize(G - G)) + sum(normalize(0.1 * pow(W, 0)))", "sum(normalize(3 + 0 * A))",
    "mean(normalize(gram(G)))", "sum(abslog(G) * invert(W))", "l1norm(invert(R > 0))",
    "sum(div(R, relu(R)))", "sum(log(abs(G) + 1) / G)", "sum(exp(log(abs(G))))",
]
INVALID = ["sum(log(G))", "sum(log(A))", "sum(pow(G, -1))", "slogdet(gram(G))"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_equals_eager_on_guarded_ops_with_zeros(dtype):
    stats = [dead_layer_stats(seed, dtype) for seed in range(3)]
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    for text in GUARDED + INVALID:
        node = parse(text)
        scores, valid = compile_proxy(node)(stats)
        ref_scores, ref_valid = evaluate_eager(node, stats)
        assert valid.tolist() == ref_valid.tolist() == [text in GUARDED] * 3, text
        torch.testing.assert_close(scores[valid], ref_scores[valid], rtol=tol, atol=tol)


def test_guarded_kernels_at_zero():
    x = torch.tensor([[0.0, -0.0, 2.0, -4.0]])
    f = {name: PRIMITIVES[name].kernel for name in ("invert", "abslog", "log", "div")}
    assert f["invert"](x).tolist() == [[0.0, 0.0, 0.5, -0.25]]
    torch.testing.assert_close(f["abslog"](x), torch.tensor([[0.0, 0.0, math.log(2), math.log(4)]]))
    log = f["log"](x)
    assert log[0, :2].tolist() == [0.0, 0.0] and log[0, 3].isnan()  # the log of a negative stays NaN
    assert f["div"](torch.ones(1, 4), x).tolist() == [[0.0, 0.0, 0.5, -0.25]]
    assert f["div"](x, torch.tensor(0.0)).tolist() == [[0.0, 0.0, 0.0, 0.0]]
    for constant in (torch.zeros(3, 4), torch.full((3, 4), 0.1), torch.full((1, 1), -7.0)):
        normalized = PRIMITIVES["normalize"].kernel(OneMatrix(constant), constant)
        assert normalized.tolist() == torch.zeros_like(constant).tolist()
    # NaN stays NaN through every guard (it must invalidate the network); 1/inf is 0
    odd = torch.tensor([float("nan"), float("inf")])
    assert f["invert"](odd)[0].isnan() and f["invert"](odd)[1] == 0.0
    assert f["log"](odd)[0].isnan() and f["log"](odd)[1] == float("inf")
    assert f["div"](odd, torch.tensor(2.0))[0].isnan() and f["div"](torch.ones(2), odd)[0].isnan()
    assert PRIMITIVES["abslog"].keeps_finite and not PRIMITIVES["invert"].keeps_finite


def test_simplify_keeps_scores_of_guarded_proxies(dead_stats):
    """Canonical rewrites that were right only where x != 0 (x/x -> 1, exp(log x) -> x) are gone: on a
    network with a dead layer, a proxy and its simplified form give the same valid scores."""
    for text in GUARDED + ["sum(W * G / G)", "sum(invert(invert(G)))", "sum(invert(2 * G) * W)"]:
        node = parse(text)
        simple = simplify(node)
        assert canonical_key(simple) == canonical_key(node)
        (a, va), (b, vb) = compile_proxy(node)(dead_stats), compile_proxy(simple)(dead_stats)
        assert va.tolist() == vb.tolist(), (text, simple)
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


# ---- exact counts ------------------------------------------------------------------------------

def test_hamming_is_float64_and_exact_past_two_to_the_24():
    n = 2**24 + 1  # the first integer float32 cannot hold
    assert float(torch.tensor(float(n), dtype=torch.float32)) != n
    ones = torch.ones(1, 1, n)  # 64 MiB
    out = PRIMITIVES["hamming"].kernel(ones, -ones)
    assert out.dtype == torch.float64 and out.tolist() == [[[float(n)]]]
    assert PRIMITIVES["hamming"].kernel(ones, ones).tolist() == [[[0.0]]]


@pytest.mark.parametrize("shape", [(1, 8, 65536), (2, 8, 5000), (1, 3, 2048), (1, 65, 4096), (1, 8, 100)])
def test_gram_in_column_chunks_is_the_plain_product(shape):
    # few long rows are multiplied in chunks of columns (plus the rest); 0/1 codes stay exact counts
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(PRIMITIVES["gram"].kernel(x), x @ x.transpose(-1, -2))
    codes = (x > 0).to(torch.float32)
    exact = codes.double() @ codes.double().transpose(-1, -2)
    assert torch.equal(PRIMITIVES["gram"].kernel(codes), exact.float())


def test_counts_summed_over_sites_stay_exact():
    """Two ReLU sites of 2**23 + 1 and 2**23 features: row 0 positive, row 1 negative. Each site's count
    fits float32; their sum over sites, 2**24 + 1, needs the float64 of hamming and layersum."""
    sites = []
    for features in (2**23 + 1, 2**23):
        r = torch.ones(2, features)
        r[1] = -1
        sites.append(r)
    stats = [NetStats([], [], [], sites)]
    n = 2**24 + 1
    for text, expected in [("sum(layersum(hamming(R, R)))", 2 * n), ("sum(layersum(gram(R > 0)))", n),
                           ("sum(hamming(R, R))", 2 * n)]:
        node = parse(text)
        (score,), (valid,) = compile_proxy(node)(stats)
        (ref,), (ref_valid,) = evaluate_eager(node, stats)
        assert valid and ref_valid and float(score) == float(ref) == expected, text


def test_float64_counts_mix_with_float32_matrices(dead_stats):
    stats = [s.to("cpu", torch.float32) for s in dead_stats]
    for text in ["sum(matmul(hamming(R, R), gram(R)))", "sum(pairwise(hamming(R, R), gram(R)))",
                 "sum(hamming(R, R) * gram(R))", "slogdet(layersum(hamming(R, R)) + layersum(gram(R)))"]:
        node = parse(text)
        scores, valid = compile_proxy(node)(stats)
        ref_scores, ref_valid = evaluate_eager(node, stats)
        assert valid.tolist() == ref_valid.tolist(), text
        torch.testing.assert_close(scores[valid], ref_scores[valid], rtol=1e-5, atol=1e-5)


# ---- one registry entry per primitive --------------------------------------------------------------

EXAMPLES = {  # a proxy using each primitive (a new primitive must add one)
    "pow": "sum(pow(W, 3))", "exp": "sum(exp(W))", "log": "sum(log(abs(W) + 1))", "abslog": "sum(abslog(W))",
    "abs": "sum(abs(W))", "relu": "sum(relu(W))", "sign": "sum(sign(W))", "invert": "sum(invert(W))",
    "sigmoid": "sum(sigmoid(W))", "noop": "sum(noop(W))", "softmax": "sum(softmax(W))",
    "logsoftmax": "sum(logsoftmax(W))", "normalize": "sum(normalize(W))", "gram": "sum(gram(W))",
    "sum": "sum(W)", "mean": "mean(W)", "normsum": "normsum(W)", "frobenius": "frobenius(W)",
    "l1norm": "l1norm(W)", "slogdet": "slogdet(gram(W))", "add": "sum(W + G)", "sub": "sum(W - G)",
    "mul": "sum(W * G)", "div": "sum(W / G)", "lt": "sum(W < G)", "gt": "sum(W > G)", "eq": "sum(W == G)",
    "matmul": "sum(matmul(gram(W), W))", "pairwise": "sum(pairwise(A, A))", "hamming": "sum(hamming(R, R))",
    "cosine": "cosine(W, G)", "kl": "kl(W, G)", "l1loss": "l1loss(W, G)", "mse": "mse(W, G)",
    "layersum": "slogdet(layersum(gram(R)))", "norm_avt": "norm_avt(sum(W))",
}


def test_every_primitive_has_an_example():
    assert set(EXAMPLES) == set(PRIMITIVES)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_stage_reads_the_primitive_from_its_one_entry(real_stats, monkeypatch, name):
    """Swap the entry for a copy with a recording kernel, a marked LaTeX template, the tightest precedence
    and then a rejecting shape rule: the fused compiler, the eager oracle, the printer and the checker
    must all see the copy (a second table anywhere would keep the original)."""
    original = PRIMITIVES[name]
    node = parse(EXAMPLES[name])
    calls: list[str] = []

    def kernel(*args):
        calls.append(type(args[0]).__name__)
        return original.kernel(*args)

    latex = r"\mathrm{{SWAPPED}}(" + ", ".join(f"{{{i}}}" for i in range(original.arity)) + ")"
    swapped = replace(original, kernel=kernel if original.kernel else None, latex=latex,
                      precedence=10 if original.infix else None)
    monkeypatch.setitem(PRIMITIVES, name, swapped)

    proxy = compile_proxy(node)
    if name == "norm_avt":
        proxy.calibrate(real_stats)
    scores, valid = proxy(real_stats)
    fused_calls = calls.copy()
    calls.clear()
    ref_scores, ref_valid = evaluate_eager(node, real_stats, proxy.bounds)
    assert valid.tolist() == ref_valid.tolist() and valid.any()
    torch.testing.assert_close(scores[valid], ref_scores[valid], rtol=1e-9, atol=1e-9)
    if original.kernel:
        assert fused_calls and calls
        if original.kind == "segment":  # one formula, over every packed site at once or over one matrix
            assert set(fused_calls) == {"PackedSegments"} and set(calls) == {"OneMatrix"}
    used = next(n for n in walk(node) if isinstance(n, Call) and n.op == name)
    assert r"\mathrm{SWAPPED}(" in to_latex(used)

    if original.infix:  # binding tighter than '*' and '/', it needs no parentheses as their right operand
        outer = "div" if name == "mul" else "mul"
        inner = Call(name, (Input("G"), Input("A")))
        before = f"W {PRIMITIVES[outer].infix} (G {original.infix} A)"
        assert to_text(Call(outer, (Input("W"), inner))) == before.replace("(", "").replace(")", "")
        monkeypatch.setitem(PRIMITIVES, name, original)
        assert to_text(Call(outer, (Input("W"), inner))) == before

    def reject(types):
        raise RuleError("rejected by the swapped entry")

    monkeypatch.setitem(PRIMITIVES, name, replace(swapped, rule=reject))
    with pytest.raises(ProxyTypeError, match="rejected by the swapped entry"):
        check(node)
