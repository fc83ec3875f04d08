"""A proxy as a DAG: shared sub-expressions once, a topological schedule that drops each value after its
last reader, and `proxylang show --graph`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner

from proxylang.cli.main import main
from proxylang.lang.ast import Input, Node, Num
from proxylang.lang.check import check
from proxylang.lang.compile import evaluate_eager
from proxylang.lang.graph import ProxyGraph, to_dot
from proxylang.lang.interpret import Eager, Fused
from proxylang.lang.pack import pack
from proxylang.lang.parse import parse
from proxylang.lang.printer import number_text

SASWOT = str(Path(__file__).resolve().parents[2] / "examples" / "saswot.px")
NWOT = "let c = gt(R, 0)\nslogdet(layersum(gram(c) + gram(1 - c)))"


def graph_of(text: str) -> ProxyGraph:
    return ProxyGraph(check(parse(text)))


def label(node: Node) -> str:
    if isinstance(node, Input):
        return node.name
    return number_text(node.value) if isinstance(node, Num) else node.op


def test_shared_sub_expressions_are_one_vertex_and_the_schedule_is_topological():
    graph = graph_of(NWOT)
    c = parse("R > 0")
    assert nx.is_directed_acyclic_graph(graph.dag)
    assert graph.dag.number_of_nodes() == 10  # R, 0, c, gram(c), 1, 1 - c, gram(1 - c), +, layersum, slogdet
    assert sorted(n.op for n in graph.dag.successors(c)) == ["gram", "sub"]
    position = {node: i for i, node in enumerate(graph.order)}
    assert set(position) == set(graph.dag) and graph.order[-1] == graph.root
    assert all(position[a] < position[b] for a, b in graph.dag.edges)
    # arguments left to right, depth first: the order a recursive evaluator meets them
    assert [label(n) for n in graph.order] == [
        "R", "0", "gt", "gram", "1", "sub", "gram", "add", "layersum", "slogdet"]


def test_a_repeated_argument_is_one_edge_with_both_positions():
    graph = graph_of("sum(hamming(R, R))")
    hamming = parse("hamming(R, R)")
    assert graph.dag.edges[Input("R"), hamming]["positions"] == [0, 1]
    assert graph.steps[1].args == (Input("R"), Input("R"))


class Recording:
    """Mixed into an interpreter: the nodes held in its environment when each step starts."""

    def run_node(self, typed, args):
        self.held.append((typed.node, set(self.env)))
        return super().run_node(typed, args)


class RecordingFused(Recording, Fused):
    pass


class RecordingEager(Recording, Eager):
    pass


def _check_each_value_is_dropped_after_its_last_reader(graph: ProxyGraph, held: list) -> None:
    order = [node for node, _ in held]
    assert order == graph.order
    for i, node in enumerate(order[:-1]):
        readers = [order.index(r) for r in graph.dag.successors(node)]
        assert readers, node
        last = max(readers)
        for j, (_, env) in enumerate(held):
            assert (node in env) == (i < j <= last), (node, order[j])


def test_values_are_dropped_after_their_last_reader(real_stats):
    graph = graph_of("let x = abs(W * G)\nsum(x) + mean(softmax(x) - x) + frobenius(G)")
    fused = RecordingFused(graph, pack(real_stats), {}, calibrating=False)
    fused.held = []
    scores, valid = fused.score()
    _check_each_value_is_dropped_after_its_last_reader(graph, fused.held)
    # abs(W * G) is read three times; after its last reader it is gone, and so is everything but the root
    x = parse("abs(W * G)")
    last = max(graph.order.index(r) for r in graph.dag.successors(x))
    assert x in fused.held[last][1] and x not in fused.held[last + 1][1]
    assert set(fused.env) == {graph.root}
    eager = RecordingEager(graph, real_stats[0], {}, real_stats[0].W[0].dtype)
    eager.held = []
    assert float(eager.run()) == pytest.approx(float(scores[0]), rel=1e-9) and valid.all()
    _check_each_value_is_dropped_after_its_last_reader(graph, eager.held)


def test_the_eager_oracle_computes_a_shared_sub_expression_once_per_site(real_stats):
    calls = []

    class Counting(Eager):
        def run_node(self, typed, args):
            calls.append(typed.node)
            return super().run_node(typed, args)

    graph = graph_of(NWOT)
    Counting(graph, real_stats[0], {}, real_stats[0].W[0].dtype).run()
    assert calls.count(parse("R > 0")) == 1
    assert evaluate_eager(parse(NWOT), real_stats)[1].all()


# ---- drawing -------------------------------------------------------------------------------------

def run(*args):
    return CliRunner().invoke(main, list(args))


def _labels(dot: str) -> list[str]:
    return re.findall(r'^\s*n\d+ \[label="([^"]*)"', dot, flags=re.MULTILINE)


def test_show_graph_writes_the_dag_of_saswot_as_dot(tmp_path):
    out = tmp_path / "saswot.dot"
    result = run("show", SASWOT, "--graph", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("norm_avt(")  # the canonical text is still printed
    dot = out.read_text(encoding="utf-8")
    assert dot.startswith("digraph proxy {") and dot.rstrip().endswith("}")
    labels = _labels(dot)
    # the let-bound codes c = gt(R, 0) are read twice but drawn once, as are R and each constant
    assert labels.count("gt") == 1 and labels.count("R") == 1 and labels.count("gram") == 2
    assert sorted(label for label in labels if label in "AGWR") == ["G", "R", "W"]
    assert labels.count("norm_avt") == 2 and labels.count("0") == 1 and labels.count("1") == 1
    ids = dict(re.findall(r'^\s*(n\d+) \[label="([^"]*)"', dot, flags=re.MULTILINE))
    gt = next(i for i, label in ids.items() if label == "gt")
    readers = re.findall(rf"^\s*{gt} -> (n\d+)", dot, flags=re.MULTILINE)
    assert sorted(ids[r] for r in readers) == ["gram", "sub"]
    assert len(re.findall(r"->", dot)) == 19  # one edge per argument of each distinct call
    assert dot.count("peripheries=2") == 1  # the proxy's value


def test_dot_marks_argument_positions_only_where_they_matter():
    labelled, plain = r'^\s*n\d+ -> n\d+ \[label="[12]"\];', r"^\s*n\d+ -> n\d+;"
    dot = to_dot(graph_of("sum(W - G) + cosine(W, G)"))  # sub has an order; cosine and add commute
    assert len(re.findall(labelled, dot, flags=re.MULTILINE)) == 2
    assert len(re.findall(plain, dot, flags=re.MULTILINE)) == 5
    dot = to_dot(graph_of("sum(hamming(R, R))"))  # one argument in both positions: two edges
    assert re.findall(r'^\s*n0 -> n1 \[label="([12])"\];', dot, flags=re.MULTILINE) == ["1", "2"]


@pytest.mark.parametrize("out", ["graph.pdf", "graph", "graph.dot.txt"])
def test_an_unsupported_suffix_is_one_error_line(tmp_path, out):
    result = run("show", SASWOT, "--graph", str(tmp_path / out))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ".dot, .png or .svg" in lines[0]
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_rendering_without_graphviz_names_the_missing_renderer(tmp_path, monkeypatch, suffix):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot executable here
    result = run("show", SASWOT, "--graph", str(tmp_path / f"graph{suffix}"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Graphviz's dot" in lines[0]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_rendering_with_graphviz(tmp_path):
    out = tmp_path / "graph.svg"
    result = run("show", SASWOT, "--graph", str(out))
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text(encoding="utf-8")
