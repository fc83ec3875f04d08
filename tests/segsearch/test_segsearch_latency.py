import json
import random

import pytest
import torch

from proxylang.errors import DataError, ProxylangError
from proxylang.runtime import resolve_device
from segsearch.latency import LatencyTable, measure_latency_ms, time_call
from segsearch.network import build_network
from segsearch.space import random_arch

CPU = torch.device("cpu")
SIZE = (32, 64)


def _net(seed=0):
    return build_network(random_arch(random.Random(seed), layers=5))


def test_time_call_measures_the_call():
    calls = []
    ms = time_call(lambda: calls.append(torch.ones(64, 64) @ torch.ones(64, 64)), CPU, warmup=2, repeats=3)
    assert len(calls) == 5 and ms > 0


def test_table_predicts_the_sum_of_parts_and_times_each_part_once(tmp_path):
    table = LatencyTable(CPU, path=tmp_path / "t.json", warmup=0, repeats=1)
    net = _net()
    blocks = net.latency_blocks(SIZE)
    first = table.predict_ms(net, SIZE)
    assert table.measured == len(blocks)
    assert first == pytest.approx(sum(table.entries[b.key] for b in blocks))
    assert table.predict_ms(_net(), SIZE) == first and table.measured == len(blocks)  # all looked up
    assert all(p.device.type == "cpu" for p in net.parameters()) and net.training  # caller's net untouched
    table.save()
    reloaded = LatencyTable(CPU, path=tmp_path / "t.json")
    assert reloaded.entries == table.entries and reloaded.predict_ms(net, SIZE) == first
    assert reloaded.measured == 0


def test_a_table_from_another_device_is_refused(tmp_path):
    path = tmp_path / "t.json"
    foreign = {"format": "segsearch-latency/1", "device": "NVIDIA H100", "dtype": "torch.float32"}
    path.write_text(json.dumps({**foreign, "entries": {}}))
    with pytest.raises(ProxylangError, match="measured with"):
        LatencyTable(CPU, path=path)
    path.write_text("[1, 2")
    with pytest.raises(DataError, match="t.json: not a latency table file .invalid JSON"):
        LatencyTable(CPU, path=path)


@pytest.mark.parametrize("entry", ['"abc"', "null", "true", "-1", "NaN", "[1]"])
def test_a_table_entry_that_is_not_a_latency_is_refused(tmp_path, entry):
    path = tmp_path / "t.json"
    header = LatencyTable(CPU).header
    path.write_text(json.dumps(header)[:-1] + f', "entries": {{"stem@(8, 8)": {entry}}}}}')
    with pytest.raises(ProxylangError, match=r"t.json: entry 'stem@\(8, 8\)' holds .*not a latency"):
        LatencyTable(CPU, path=path)


def test_time_call_needs_a_timed_call():
    with pytest.raises(ProxylangError, match="at least one timed call"):
        time_call(lambda: None, CPU, warmup=0, repeats=0)


def test_measured_latency_and_device_checks():
    assert measure_latency_ms(_net(), SIZE, CPU, warmup=0, repeats=1) > 0
    with pytest.raises(ProxylangError, match="fp16"):
        measure_latency_ms(_net(), SIZE, CPU, fp16=True)
    with pytest.raises(ProxylangError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ProxylangError, match="CUDA is not available"):
            resolve_device("cuda")
