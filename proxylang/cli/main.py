"""The ``proxylang`` command. Other stages' commands are listed in ``LAZY_COMMANDS`` (or added with
``main.add_command(...)``) and wrap their bodies in ``user_errors()`` so a bad input prints one
``error:`` line, never a traceback."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from proxylang.errors import ProxylangError
from proxylang.lang.check import check
from proxylang.lang.graph import ProxyGraph, write_graph
from proxylang.lang.parse import parse
from proxylang.lang.printer import to_latex, to_text

USER_ERROR_EXIT = 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``ProxylangError`` into ``error: <message>`` on stderr and exit code 2."""
    try:
        yield
    except ProxylangError as exc:
        _exit_with_error(str(exc))


def _exit_with_error(message: str) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(USER_ERROR_EXIT)


class CommandGroup(click.Group):
    """A command group (``proxylang``, ``segsearch``) whose user errors all end the same way: a bad
    option or argument (click's usage errors, normally three lines) and a ``ProxylangError`` from any
    command print one ``error:`` line and exit with code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False  # let click's own errors reach the handler below
        try:
            return super().main(*args, **kwargs)
        except click.ClickException as exc:
            _exit_with_error(exc.format_message())
        except ProxylangError as exc:
            _exit_with_error(str(exc))
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)


def read_proxy_text(path: str) -> tuple[str, str]:
    """The text of a .px file, or of stdin for ``-``; returns ``(text, source name)``."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except OSError as exc:
        raise ProxylangError(f"{path}: cannot read ({exc.strerror})") from None


# name -> (module, attribute): imported on first use, so `proxylang check` starts fast and the modules
# that import this one (for user_errors) make no import cycle
LAZY_COMMANDS = {
    "eval": ("proxylang.cli.bench", "eval_command"),
    "baselines": ("proxylang.cli.bench", "baselines_command"),
    "evolve": ("proxylang.cli.evolve", "evolve"),
}


class _LazyGroup(CommandGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and name not in self.commands:
            module, attribute = LAZY_COMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup)
def main() -> None:
    """proxylang: zero-cost NAS proxies as expressions over per-layer statistics."""


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
