"""Device and thread choices: one place, clear errors."""

from __future__ import annotations

import pytest
import torch

from proxylang.errors import ProxylangError
from proxylang.runtime import MEMORY_ENV, THREADS_ENV, memory_budget_setting, resolve_device, set_threads


def test_devices_resolve_or_fail_with_one_clear_message():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    for bad, message in (("tpu", "unknown device"), ("meta", "unsupported device")):
        with pytest.raises(ProxylangError, match=message):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ProxylangError, match="CUDA is not available"):
            resolve_device("cuda")


def test_thread_count_from_argument_or_environment(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv(THREADS_ENV, "2")
        assert set_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv(THREADS_ENV, "many")
        with pytest.raises(ProxylangError, match=THREADS_ENV):
            set_threads()
        with pytest.raises(ProxylangError, match="between 1 and 1024"):
            set_threads(0)
        monkeypatch.delenv(THREADS_ENV)
        assert set_threads() == torch.get_num_threads()  # torch's default is left alone
    finally:
        torch.set_num_threads(before)


def test_the_chosen_memory_budget_is_handed_on_as_environment(monkeypatch, budget):
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    assert memory_budget_setting() == {}  # nothing chosen: a worker measures its own free memory
    monkeypatch.setenv(MEMORY_ENV, "6")
    assert memory_budget_setting() == {MEMORY_ENV: "6.0"}
    budget(2.5 * 2**30)  # --memory-budget wins over the environment, as in this process
    assert memory_budget_setting() == {MEMORY_ENV: "2.5"}
