import pytest
import torch

from proxylang.errors import ProxylangError
from proxylang.lang.ast import Call, walk
from proxylang.lang.compile import compile_proxy, evaluate_eager, pack
from proxylang.lang.parse import parse
from proxylang.lang.primitives import PRIMITIVES
from proxylang.stats.netstats import NetStats

ONE_OF_EACH = [
    "sum(lt(softmax(W), relu(G)))", "let c = gt(R, 0)\nslogdet(layersum(gram(c) + gram(1 - c)))",
    "sum(abs(W * G))", "frobenius(G)", "sum(pow(W, 0))", "normsum(normalize(A))", "kl(A, exp(A))",
    "cosine(W, G)", "mse(W, G) + l1loss(A, 2 * A)", "sum(matmul(gram(W), W))", "slogdet(gram(W))",
    "sum(pairwise(A, A))", "sum(hamming(R, R) == 0)", "sum(logsoftmax(A))", "slogdet(layersum(gram(A)))",
    "l1norm(sigmoid(W) / (2 + sign(G)))", "mean(abslog(W)) - sum(W > G)", "sum(invert(exp(noop(W))))",
    "sum(log(relu(W) + 1))", "mean(W)",
]


def test_every_primitive_is_covered_by_the_agreement_test():
    used = {n.op for t in ONE_OF_EACH for n in walk(parse(t)) if isinstance(n, Call)}
    assert set(PRIMITIVES) - used == {"norm_avt"}  # norm_avt has its own test


@pytest.mark.parametrize("text", ONE_OF_EACH)
def test_fused_equals_eager(real_stats, text):
    node = parse(text)
    scores, valid = compile_proxy(node)(real_stats)
    ref_scores, ref_valid = evaluate_eager(node, real_stats)
    assert valid.tolist() == ref_valid.tolist() and valid.all()
    torch.testing.assert_close(scores, ref_scores, rtol=1e-9, atol=1e-9)


def test_nwot_matches_its_definition(real_stats):
    node = parse("let c = gt(R, 0)\nslogdet(layersum(gram(c) + gram(1 - c)))")
    scores, _ = compile_proxy(node)(real_stats)
    for s, score in zip(real_stats, scores, strict=True):
        codes = [(r > 0).double() for r in s.R]
        kernel = sum(c @ c.T + (1 - c) @ (1 - c).T for c in codes)
        assert float(score) == pytest.approx(float(torch.linalg.slogdet(kernel).logabsdet))


def test_invalid_values_are_flagged_not_raised(real_stats):
    for text in ["sum(log(W))", "sum(pow(W - W, -1))", "sum(exp(exp(exp(A))))", "slogdet(gram(A - A))"]:
        scores, valid = compile_proxy(parse(text))(real_stats)
        assert not valid.any(), text


def test_packed_stats_are_reusable_and_match_lists(real_stats):
    packed = pack(real_stats)
    for text in ONE_OF_EACH[:5]:
        proxy = compile_proxy(parse(text))
        torch.testing.assert_close(proxy(packed)[0], proxy(real_stats)[0])


def test_norm_avt_needs_calibration_then_maps_presample_to_unit_range(real_stats):
    node = parse("norm_avt(sum(W)) + norm_avt(slogdet(layersum(gram(R))))")
    proxy = compile_proxy(node)
    with pytest.raises(ProxylangError, match="calibrate"):
        proxy(real_stats)
    proxy.calibrate(real_stats)
    scores, valid = proxy(real_stats)
    assert valid.all() and 0.0 <= float(scores.min()) and float(scores.max()) <= 2.0
    torch.testing.assert_close(scores, evaluate_eager(node, real_stats, proxy.bounds)[0])


def test_networks_without_relu_sites(real_stats):
    no_relu = [NetStats(s.A, s.G, s.W) for s in real_stats]
    for text, valid_expected in [("sum(gram(R))", True), ("sum(R) + 1", True),
                                 ("slogdet(layersum(gram(R > 0) + gram(1 - (R > 0))))", False)]:
        node = parse(text)
        scores, valid = compile_proxy(node)(no_relu)
        ref_scores, ref_valid = evaluate_eager(node, no_relu)
        assert valid.tolist() == ref_valid.tolist() == [valid_expected] * 3, text
        torch.testing.assert_close(scores[valid], ref_scores[valid])


def test_pack_only_what_is_read(real_stats):
    packed = pack(real_stats, names=["W", "G"])
    assert compile_proxy(parse("sum(W * G)"))(packed)[1].all()
    with pytest.raises(ProxylangError, match="without A"):
        compile_proxy(parse("sum(A)"))(packed)
