"""The memory estimate of a proxy, from its symbolic shapes, against what the interpreter really holds."""

from __future__ import annotations

import pytest
import torch
from test_compile import ONE_OF_EACH

from proxylang.errors import MemoryBudgetError
from proxylang.lang.compile import compile_proxy, pack
from proxylang.lang.cost import SiteDims, proxy_cost
from proxylang.lang.interpret import Fused
from proxylang.lang.parse import parse
from proxylang.lang.primitives import PRIMITIVES
from proxylang.scoring.proxies import score_proxies
from proxylang.stats.netstats import NetStats


def held_peak(text: str, stats: list[NetStats]) -> int:
    """The most bytes the fused interpreter's values take at once: the packed inputs, plus every value
    it keeps between steps, measured on the tensors themselves."""
    proxy = compile_proxy(parse(text))
    packed = pack(stats, None, proxy.inputs)
    inputs = sum(v.data.numel() * v.data.element_size() for v in packed.inputs.values())
    interpreter = Fused(proxy.graph, packed, {}, calibrating=False)
    env, peak = {}, inputs
    for step in proxy.graph.steps:
        env[step.typed.node] = interpreter.run_node(step.typed, [env[a] for a in step.args])
        held = {id(v.data): v.data.numel() * v.data.element_size() for v in env.values()
                if v.data.dim() > 0 and not any(v.data is p.data for p in packed.inputs.values())}
        peak = max(peak, inputs + sum(held.values()))
        for node in step.frees:
            del env[node]
    return peak


def test_a_simple_chain_costs_what_it_holds(real_stats):
    w = sum(t.numel() for s in real_stats for t in s.W) * 8  # float64 statistics
    sites = sum(len(s.W) for s in real_stats)
    proxy = compile_proxy(parse("sum(abs(W))"))
    cost = proxy_cost(proxy.graph, SiteDims.of(real_stats))
    # W packed, abs(W) beside it, then one sum per site
    assert cost.peak_bytes == 2 * w + sites * 8
    assert cost.largest == parse("abs(W)") and cost.largest_bytes == w


@pytest.mark.parametrize("text", ONE_OF_EACH)
def test_the_estimate_covers_what_the_interpreter_holds(real_stats, text):
    cost = proxy_cost(compile_proxy(parse(text)).graph, SiteDims.of(real_stats))
    held = held_peak(text, real_stats)
    assert held <= cost.peak_bytes <= 4 * held  # working copies of matrix primitives come on top


def test_packed_and_unpacked_statistics_give_the_same_estimate(real_stats):
    for text in ONE_OF_EACH:
        graph = compile_proxy(parse(text)).graph
        assert proxy_cost(graph, SiteDims.of(real_stats)) == proxy_cost(graph, SiteDims.of(pack(real_stats)))


def test_a_proxy_over_the_budget_is_refused_before_it_runs(real_stats, budget, monkeypatch):
    ran = []
    monkeypatch.setattr(Fused, "run", lambda self: ran.append(1))
    budget(1000)
    refused = (r"sum\(gram\(A\)\): needs about \d+ MB on 3 network\(s\), over the memory budget of 0 MB "
               r".*its largest value is gram\(A\)")
    with pytest.raises(MemoryBudgetError, match=refused):
        compile_proxy(parse("sum(gram(A))"))(real_stats)
    assert not ran


def test_a_chunk_over_the_budget_is_scored_in_halves(real_stats, budget):
    proxy = compile_proxy(parse("sum(abs(W * G))"))
    whole = proxy(real_stats)
    one = max(proxy_cost(proxy.graph, SiteDims.of([s])).peak_bytes for s in real_stats)
    budget(one)  # one network at a time fits, the three together do not
    with pytest.raises(MemoryBudgetError):
        proxy(real_stats)
    scored = score_proxies({"p": proxy}, real_stats, chunk=3, desc=None)["p"]
    torch.testing.assert_close(torch.from_numpy(scored[0]), whole[0])
    budget(one // 2)
    with pytest.raises(MemoryBudgetError):
        score_proxies({"p": proxy}, real_stats, chunk=3, desc=None)


def _sites(stats: list[NetStats], name: str) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for s in stats for t in s.tensors(name)]


def test_work_counts_elements_streamed_and_the_multiply_adds_of_matrix_primitives(real_stats):
    dims = SiteDims.of(real_stats)
    w = sum(o * k for o, k in _sites(real_stats, "W"))
    sites = len(_sites(real_stats, "W"))

    def work(text: str) -> tuple[float, float]:
        cost = proxy_cost(compile_proxy(parse(text)).graph, dims)
        return cost.streamed, cost.multiply_adds

    assert work("sum(abs(W))") == ((w + w) + (w + sites), 0)  # abs reads and writes W; sum reads, writes one
    assert work("sum(W * G)") == (3 * w + (w + sites), 0)
    gram = sum(o * o * k for o, k in _sites(real_stats, "W"))
    assert work("sum(gram(W))") == (sum(o * o for o, _ in _sites(real_stats, "W")) + sites, gram)
    relu = _sites(real_stats, "R")  # N x F_r at every ReLU site
    batches = [s.batch_size for s in real_stats]
    streamed = sum(n * n for n, _ in relu) + sum(b * b for b in batches)  # layersum reads and writes
    products = (sum(n * n * f for n, f in relu)  # gram: an inner product per entry
                + sum(b ** 3 for b in batches))  # slogdet of one N x N matrix per network
    assert work("slogdet(layersum(gram(R)))") == (streamed, products)


def test_every_matrix_primitive_counts_its_work():
    """A matrix primitive's cost is not the elements it streams; without a ``work`` entry a new one
    (say an O x O x K product) would pass as cheap."""
    assert [p.name for p in PRIMITIVES.values() if p.kind == "matrix" and p.work is None] == []
