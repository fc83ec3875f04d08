"""What every command shares: one ``error:`` line and exit code 2 for any user error, and reading a
proxy from a file or stdin."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import torch
from tqdm import tqdm

from proxylang.errors import DataError, ProxylangError
from proxylang.executors import ENGINES, Executor, make_executor
from proxylang.files import read_stream, read_text
from proxylang.runtime import FREE_MEMORY_SHARE, MEMORY_ENV

USER_ERROR_EXIT = 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``ProxylangError`` into ``error: <message>`` on stderr and exit code 2."""
    try:
        yield
    except ProxylangError as exc:
        _exit_with_error(str(exc))


def _exit_with_error(message: str) -> None:
    for bar in list(tqdm._instances):  # clear any progress bar first, so the error is the line left
        bar.close()
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
    if path != "-":
        return read_text(path, "proxy"), path
    if sys.stdin is None or sys.stdin.closed:
        raise DataError("<stdin>: no standard input to read the proxy from")
    try:
        return read_stream(sys.stdin.buffer, "<stdin>", "proxy"), "<stdin>"
    except (OSError, ValueError) as exc:
        raise DataError(f"<stdin>: cannot read the proxy ({exc})") from None


memory_budget_option = click.option(
    "--memory-budget", type=click.FloatRange(min=0, min_open=True, max=1e6), metavar="GB",
    help=f"Refuse a measurement or proxy estimated to need more [default: ${MEMORY_ENV}, else "
         f"{FREE_MEMORY_SHARE:.0%} of the memory free on the device].")


_engine_option = click.option(
    "--engine", type=click.Choice(ENGINES), default="local", show_default=True,
    help="Where evaluations run: this machine, or a Ray cluster (pip install -e '.[ray]'), where a task "
         "whose worker dies is run again.")
_address_option = click.option(
    "--address", metavar="auto|HOST:PORT",
    help="Ray cluster to join: auto, or HOST:PORT [default: start a local one].")


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--engine`` and ``--address`` (passed as ``engine`` and ``address``): where a command's many
    evaluations run; :func:`proxylang.executors.make_executor` turns them into an executor."""
    return _engine_option(_address_option(command))


def open_executor(engine: str, address: str | None, device: torch.device | str = "cpu",
                  workers: int = 1) -> Executor:
    """The executor ``engine_options`` ask for (``workers`` local processes for the local engine); on a
    CUDA device each Ray task asks for one GPU, since it runs there too."""
    gpus = 1 if torch.device(device).type == "cuda" else 0
    return make_executor(engine, address, workers, gpus_per_task=gpus)
