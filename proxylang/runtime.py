"""Where and how torch runs: the device, the number of CPU threads and the memory budget, chosen in one
place.

Threads: torch starts one OpenMP thread per core, the fastest choice on a machine the run has to
itself, and the default here. Under contention it collapses (statistics extraction ran at 6.9 s per
network with two threads beside another job and at 0.6 s with one: idle OpenMP threads spin-wait for a
busy core), so every command takes ``--threads`` and reads ``$PROXYLANG_THREADS`` to set it.

Memory: statistics and proxy intermediates are estimated before they are allocated (``stats.extract``,
``lang.cost``) and refused when over the budget: ``--memory-budget``/``$PROXYLANG_MEMORY_GB`` gigabytes,
else a fraction of the memory free on the device when asked, so that a proxy such as ``gram(A)`` at a
large resolution ends in one error instead of taking the machine down.
"""

from __future__ import annotations

import math
import os

import torch

from proxylang.errors import ProxylangError

THREADS_ENV = "PROXYLANG_THREADS"
MEMORY_ENV = "PROXYLANG_MEMORY_GB"
# of the memory free when a budget is asked for: the estimates run 11-47 % above measured peaks
# (benchmarks/extraction_memory.py), and the rest of the machine keeps 30 % of what was free
FREE_MEMORY_SHARE = 0.7
_memory_budget_gb: float | None = None


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


def set_memory_budget(gigabytes: float | None) -> None:
    """Fix the budget at ``gigabytes`` (None: ``$PROXYLANG_MEMORY_GB``, else a share of free memory). The
    environment variable is read now too, so that a bad one fails before any work."""
    global _memory_budget_gb
    if gigabytes is not None:
        _positive_gigabytes(gigabytes, "the memory budget", gigabytes)
    _memory_budget_gb = gigabytes
    _environment_budget()


def memory_budget_setting() -> dict[str, str]:
    """The budget chosen in this process as the environment that gives it to another one (a Ray worker,
    which does not see ``--memory-budget``); empty when none was chosen."""
    gigabytes = _memory_budget_gb if _memory_budget_gb is not None else _environment_budget()
    return {} if gigabytes is None else {MEMORY_ENV: repr(gigabytes)}


def _positive_gigabytes(value: float, name: str, shown: object) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise ProxylangError(f"{name} must be a positive number of gigabytes, got {shown!r}")
    return value


def _environment_budget() -> float | None:
    """``$PROXYLANG_MEMORY_GB`` in gigabytes, None when unset."""
    text = os.environ.get(MEMORY_ENV)
    if not text:
        return None
    try:
        gigabytes = float(text)
    except ValueError:
        raise ProxylangError(f"{MEMORY_ENV} must be a number of gigabytes, got {text!r}") from None
    return _positive_gigabytes(gigabytes, MEMORY_ENV, text)


def memory_budget(device: torch.device | str | None = None) -> int:
    """Bytes that one network's statistics, or one batch's proxy intermediates, may take on ``device``."""
    gigabytes = _memory_budget_gb if _memory_budget_gb is not None else _environment_budget()
    if gigabytes is not None:
        return int(gigabytes * 2**30)
    return int(FREE_MEMORY_SHARE * free_memory(torch.device(device or "cpu")))


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device``: the GPU's own count, or the host's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):  # not Linux: what the OS reports as free pages
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def show_bytes(count: float) -> str:
    """``12.3 GB`` / ``456 MB``: sizes in messages."""
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"
