"""Where and how torch runs: the device and the number of CPU threads, chosen in one place.

Threads: torch starts one OpenMP thread per core, the fastest choice on a machine the run has to
itself, and the default here. Under contention it collapses (statistics extraction ran at 6.9 s per
network with two threads beside another job and at 0.6 s with one: idle OpenMP threads spin-wait for a
busy core), so every command takes ``--threads`` and reads ``$PROXYLANG_THREADS`` to set it.
"""

from __future__ import annotations

import os

import torch

from proxylang.errors import ProxylangError

THREADS_ENV = "PROXYLANG_THREADS"


def resolve_device(name: str | None = None) -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:1``), or CUDA when present and the CPU otherwise."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ProxylangError(f"unknown device {name!r}; use cpu or cuda[:index]") from None
    if device.type not in ("cpu", "cuda"):
        raise ProxylangError(f"unsupported device {name!r}; use cpu or cuda[:index]")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ProxylangError(f"device {name!r} asked for but CUDA is not available here")
    return device


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` CPU threads (else ``$PROXYLANG_THREADS``, else leave torch's default); returns the
    count in use."""
    if threads is None:
        text = os.environ.get(THREADS_ENV)
        if text is None:
            return torch.get_num_threads()
        try:
            threads = int(text)
        except ValueError:
            raise ProxylangError(f"{THREADS_ENV} must be a whole number of threads, got {text!r}") from None
    if not 1 <= threads <= 1024:
        raise ProxylangError(f"the thread count must be between 1 and 1024, got {threads}")
    torch.set_num_threads(threads)
    return threads
