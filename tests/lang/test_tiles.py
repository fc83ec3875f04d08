import math

import pytest
import torch

import proxylang.lang.compile as compile_module
from proxylang.lang.ast import Call
from proxylang.lang.check import check
from proxylang.lang.compile import compile_proxy, evaluate_eager
from proxylang.lang.graph import ProxyGraph
from proxylang.lang.parse import parse
from proxylang.lang.tiles import Tiled, tile_plan
from tests.lang.test_compile import ONE_OF_EACH

TILED = [
    "sum(lt(softmax(W), relu(G)))",
    "let s = softmax(W)\nsum(s * G) + mean(s) + frobenius(s - G)",  # one region, shared intermediate
    "sum(W - mean(W * G))",  # a region's scalar result read by a later region
    "let d = abs(W - G)\nsum(d) + slogdet(gram(d))",  # d is read outside regions: computed whole
    "kl(A, 2 * A) + l1norm(A + 1) + mse(exp(A), A)",
    "let c = gt(R, 0)\nlayersum(sum(c)) + slogdet(layersum(gram(c) + gram(1 - c)))",  # columns of R
    "slogdet(layersum(gram(softmax(A)) + gram(A * 2)))",  # softmax is rows only: computed whole
    "norm_avt(sum(relu(W * G))) + norm_avt(mean(logsoftmax(A)))",
]


def tiled_scores(text, stats, block, bounds=None):
    graph = ProxyGraph(check(parse(text)))
    out = []
    for s in stats:
        interpreter = Tiled(graph, tile_plan(graph), s, bounds or {}, torch.float64, block_elements=block)
        with torch.no_grad():
            value = float(interpreter.run())
        out.append((value, interpreter.valid and math.isfinite(value)))
    return out


@pytest.mark.parametrize("text", ONE_OF_EACH + TILED)
@pytest.mark.parametrize("block", [1, 7, 1 << 16])
def test_tiled_equals_eager(real_stats, text, block):
    node = parse(text)
    proxy = compile_proxy(node)
    if any(isinstance(n, Call) and n.op == "norm_avt" for n in proxy.graph.order):
        proxy.calibrate(real_stats)
    expected, expected_valid = evaluate_eager(node, real_stats, proxy.bounds)
    got = tiled_scores(text, real_stats, block, proxy.bounds)
    assert [v for _, v in got] == expected_valid.tolist()
    torch.testing.assert_close(torch.tensor([s for s, _ in got], dtype=torch.float64), expected,
                               rtol=1e-9, atol=1e-9)


def test_plan_fuses_row_local_chains_and_keeps_shared_values_whole():
    plan = tile_plan(ProxyGraph(check(parse(TILED[1]))))
    (region,) = plan.regions.values()
    assert len(region.roots) == 3  # sum, mean and frobenius of one softmax, in one pass
    assert {type(s).__name__ for s in region.sources} == {"Input"}
    # |W - G| is read by gram too, so it is computed whole, and sum(|W - G|) is one pass over it
    assert not tile_plan(ProxyGraph(check(parse(TILED[3])))).regions
    assert not tile_plan(ProxyGraph(check(parse("sum(W) + slogdet(gram(G))")))).regions
    nwot = tile_plan(ProxyGraph(check(parse("let c = gt(R, 0)\nslogdet(layersum(gram(c) + gram(1 - c)))"))))
    (region,) = nwot.regions.values()
    assert region.axis == 1 and [n.op for n in region.roots] == ["gram", "gram"]  # over columns of R
    assert [n.name for n in nwot.checked_in_blocks] == ["R"]  # no pass over R of its own


def test_score_network_is_the_compiled_score(real_stats):
    proxy = compile_proxy(parse(TILED[0]))
    scores, valid = proxy(real_stats)
    for s, expected, ok in zip(real_stats, scores.tolist(), valid.tolist(), strict=True):
        assert proxy.score_network(s) == pytest.approx((expected, ok), rel=1e-9)


def test_on_a_packed_device_score_network_scores_packed(real_stats, monkeypatch):
    """On a GPU (here: the CPU standing in for one) a network is scored as a packed batch of one, never
    in row blocks, whose many small kernels a GPU would be launch-bound on."""
    proxy = compile_proxy(parse(TILED[5]))
    expected = [proxy.score_network(s) for s in real_stats]  # row blocks, on the CPU
    monkeypatch.setattr(compile_module, "PACKED_DEVICES", ("cpu",))
    monkeypatch.setattr(compile_module, "Tiled", None)  # would fail if called
    got = [proxy.score_network(s) for s in real_stats]
    assert [ok for _, ok in got] == [ok for _, ok in expected]
    assert [v for v, _ in got] == pytest.approx([v for v, _ in expected], rel=1e-9)


def test_calibration_one_network_at_a_time_equals_the_batch(real_stats):
    node = parse(TILED[-1])
    batch = compile_proxy(node).calibrate(real_stats)
    streamed = compile_proxy(node)
    streamed.calibrate_on([streamed.observe(s) for s in real_stats])
    assert streamed.bounds.keys() == batch.bounds.keys()
    for key, (lo, hi) in batch.bounds.items():
        assert streamed.bounds[key] == pytest.approx((lo, hi), rel=1e-9)
    assert [streamed.score_network(s)[0] for s in real_stats] == pytest.approx(
        batch(real_stats)[0].tolist(), rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: checked once per region
def test_tiled_flags_an_intermediate_nan_that_a_comparison_hides(real_stats, dtype):
    # log of a negative weight is NaN, and lt turns it into 0: the network is still invalid, as in eager
    stats = [s.to("cpu", dtype) for s in real_stats]
    text = "sum(lt(log(W), 1))"
    expected = evaluate_eager(parse(text), stats)[1].tolist()
    assert expected == [False] * len(stats)
    assert [v for _, v in tiled_scores(text, stats, 5)] == expected
    stats[0].G[-1] = stats[0].G[-1].clone()  # the fixture's own tensor when the dtype is unchanged
    stats[0].G[-1][0, 0] = float("inf")  # an input that only a region reads, checked in its blocks
    assert [v for _, v in tiled_scores("sum(lt(G, 1))", stats, 5)] == [False, True, True]


def test_tiled_keeps_a_network_whose_finite_block_sums_overflow(real_stats):
    # two float32 weights near the largest float overflow their block's sum, which is not a NaN: the
    # region runs again with each block tested exactly, and the network stays valid, as in eager
    stats = [s.to("cpu", torch.float32) for s in real_stats]
    stats[0].W[0] = stats[0].W[0].clone()
    stats[0].W[0].view(-1)[:2] = 3e38
    text = "sum(lt(W, 1))"
    expected = evaluate_eager(parse(text), stats)
    got = tiled_scores(text, stats, 1 << 16)
    assert [v for _, v in got] == expected[1].tolist() == [True] * len(stats)
    assert [s for s, _ in got] == expected[0].tolist()
    stats[0].W[0].view(-1)[2] = float("nan")  # and a NaN among them is still caught
    assert [v for _, v in tiled_scores(text, stats, 1 << 16)] == [False, True, True]
