"""A checked proxy as a computation graph: a networkx DAG with one vertex per distinct sub-expression.

AST nodes are frozen, so equal sub-trees (a ``let`` name used twice, or the same expression written twice)
are one vertex, computed once and drawn once. Edges run from an argument to each expression that reads
it. ``ProxyGraph.steps`` is the schedule the interpreters run, with the values each step is the last to
read, so an intermediate is dropped as soon as nothing needs it; ``to_dot`` draws the graph as the
SasWOT paper's Figure 2 draws proxies.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from proxylang.errors import ProxylangError
from proxylang.lang.ast import Call, Input, Node, Num
from proxylang.lang.check import Typed
from proxylang.lang.primitives import PRIMITIVES
from proxylang.lang.printer import number_text


@dataclass(frozen=True)
class Step:
    """Compute ``typed`` from the values of ``args`` (in argument order; one may repeat, as in
    ``hamming(R, R)``), then drop the values of ``frees``, which no later step reads."""

    typed: Typed
    args: tuple[Node, ...]
    frees: tuple[Node, ...]


class ProxyGraph:
    """The DAG of a checked proxy and its schedule."""

    def __init__(self, typed: Typed) -> None:
        self.typed, self.root = typed, typed.node
        self.dag = nx.DiGraph()
        stack = [typed]
        while stack:
            t = stack.pop()
            if "typed" in self.dag.nodes.get(t.node, {}):
                continue  # a shared sub-expression, already added
            self.dag.add_node(t.node, typed=t)
            for position, arg in enumerate(t.args):  # in argument order: the schedule follows it
                if self.dag.has_edge(arg.node, t.node):
                    self.dag.edges[arg.node, t.node]["positions"].append(position)
                else:
                    self.dag.add_edge(arg.node, t.node, positions=[position])
                stack.append(arg)
        # a topological order: arguments left to right, depth first, as a recursive evaluator meets them
        # (the calibration of norm_avt sees the validity flags of everything evaluated before it, so the
        # order is part of the scores)
        self.order: list[Node] = list(nx.dfs_postorder_nodes(self.dag.reverse(copy=False), self.root))
        last_reader = {arg: node for node in self.order for arg in self.dag.predecessors(node)}
        frees: dict[Node, list[Node]] = {}
        for arg, reader in last_reader.items():
            frees.setdefault(reader, []).append(arg)
        typed_of = nx.get_node_attributes(self.dag, "typed")
        self.steps = [Step(typed_of[n], tuple(a.node for a in typed_of[n].args), tuple(frees.get(n, ())))
                      for n in self.order]


# ---- drawing -------------------------------------------------------------------------------------

def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: ProxyGraph) -> str:
    """The graph in Graphviz's DOT language: inputs as boxes, constants as plain numbers, primitives as
    ellipses named by their primitive, the proxy's value with a double border. Arguments flow downwards;
    the edges into a binary primitive whose arguments do not commute carry the argument's position."""
    ids = {node: f"n{i}" for i, node in enumerate(graph.order)}
    lines = ["digraph proxy {", "  node [fontname=Helvetica];", "  edge [arrowsize=0.7];"]
    for node in graph.order:
        if isinstance(node, Input):
            style = f"label={_quoted(node.name)}, shape=box, style=\"rounded,filled\", fillcolor=\"#dbe9f6\""
        elif isinstance(node, Num):
            style = f"label={_quoted(number_text(node.value))}, shape=plaintext"
        else:
            assert isinstance(node, Call)
            style = f"label={_quoted(node.op)}, shape=ellipse"
        if node == graph.root:
            style += ", peripheries=2"
        lines.append(f"  {ids[node]} [{style}];")
    for node in graph.order:
        if not isinstance(node, Call):
            continue
        primitive = PRIMITIVES[node.op]
        labelled = primitive.arity == 2 and not primitive.symmetric
        for position, arg in enumerate(node.args):
            label = f" [label={_quoted(str(position + 1))}]" if labelled else ""
            lines.append(f"  {ids[arg]} -> {ids[node]}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


RENDERED = (".png", ".svg")  # rendered by Graphviz's dot; .dot files are written as text


def write_graph(graph: ProxyGraph, path: str) -> None:
    """Write the graph to ``path``: DOT text for ``.dot``, an image by Graphviz's ``dot`` for ``.png`` and
    ``.svg``. A missing renderer, another suffix or a failed write is a ``ProxylangError``."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".dot", *RENDERED):
        raise ProxylangError(f"{path}: a graph is written as .dot, .png or .svg, not {suffix or 'no suffix'}")
    text = to_dot(graph)
    if suffix == ".dot":
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ProxylangError(f"{path}: cannot write ({exc.strerror})") from None
        return
    dot = shutil.which("dot")
    if dot is None:
        raise ProxylangError(f"{path}: rendering {suffix} needs Graphviz's dot executable, which is not on "
                             f"PATH (install Graphviz, or write a .dot file)")
    done = subprocess.run([dot, f"-T{suffix[1:]}", "-o", path], input=text, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
        raise ProxylangError(f"{path}: Graphviz's dot failed ({reason})")
