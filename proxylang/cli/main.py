"""The ``proxylang`` command: ``check`` and ``show`` here, the benchmark and search commands from their
modules. Every command wraps its body in ``user_errors()`` so a bad input prints one ``error:`` line,
never a traceback."""

from __future__ import annotations

import click

from proxylang.cli.bench import baselines_command, eval_command
from proxylang.cli.common import CommandGroup, memory_budget_option, read_proxy_text, user_errors
from proxylang.cli.evolve import evolve
from proxylang.lang.check import check
from proxylang.lang.graph import ProxyGraph, write_graph
from proxylang.lang.parse import parse
from proxylang.lang.printer import to_latex, to_text
from proxylang.runtime import THREADS_ENV, set_memory_budget, set_threads


@click.group(cls=CommandGroup)
@click.option("--threads", type=click.IntRange(1, 1024), envvar=THREADS_ENV, show_envvar=True,
              help="CPU threads for torch [default: torch's own, one per core].")
@memory_budget_option
def main(threads: int | None, memory_budget: float | None) -> None:
    """proxylang: zero-cost NAS proxies as expressions over per-layer statistics."""
    set_threads(threads)
    set_memory_budget(memory_budget)


@main.command("check")
@click.argument("file", type=str)
def check_command(file: str) -> None:
    """Parse and type-check FILE (.px, or - for stdin); print its type and canonical form."""
    with user_errors():
        text, source = read_proxy_text(file)
        node = parse(text, source)
        typed = check(node, source)
        click.echo(f"{to_text(node)}  : {typed.type}")


@main.command("show")
@click.argument("file", type=str)
@click.option("--latex", is_flag=True, help="Print LaTeX instead of canonical text.")
@click.option("--graph", "graph_out", type=str, default=None, metavar="OUT",
              help="Also write the computation graph: OUT.dot as DOT text, OUT.png or OUT.svg rendered by "
                   "Graphviz's dot.")
def show_command(file: str, latex: bool, graph_out: str | None) -> None:
    """Print the proxy in FILE in canonical text (or LaTeX), and optionally draw its graph."""
    with user_errors():
        text, source = read_proxy_text(file)
        node = parse(text, source)
        typed = check(node, source)
        if graph_out is not None:  # first, so that a failure is the only output
            write_graph(ProxyGraph(typed), graph_out)
        click.echo(to_latex(node) if latex else to_text(node))


main.add_command(eval_command)
main.add_command(baselines_command)
main.add_command(evolve)
