import json
import random

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import segsearch.cli as cli
import segsearch.latency as latency
from proxylang.errors import DataError, ProxylangError
from proxylang.runtime import resolve_device
from segsearch.latency import (
    Calibration,
    LatencyTable,
    calibration_archs,
    fit_ratio,
    measure_latency_ms,
    time_call,
    time_part,
)
from segsearch.network import build_network
from segsearch.search import Search, SearchConfig
from segsearch.space import random_arch, save_arch

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


def test_a_cpu_part_has_one_time_for_kernels_and_launch():
    calls = []
    kernel, launch = time_part(lambda: calls.append(torch.ones(64, 64) @ torch.ones(64, 64)), CPU, 1, 3)
    assert len(calls) == 4 and kernel == launch > 0


@pytest.fixture
def gpu_named(monkeypatch):
    """Tables that believe they are on a GPU (none is needed: nothing is timed)."""
    monkeypatch.setattr(latency, "device_name", lambda device: "NVIDIA Test GPU")
    return torch.device("cuda")


def _gpu_table_file(path, net, kernel_ms, launch_ms, table_format=latency.TABLE_FORMAT):
    keys = [b.key for b in net.latency_blocks(SIZE)]
    header = {"format": table_format, "device": "NVIDIA Test GPU", "dtype": "torch.float32"}
    path.write_text(json.dumps({**header, "entries": dict(zip(keys, kernel_ms, strict=True)),
                                "launches": dict(zip(keys, launch_ms, strict=True))}))


def test_a_gpu_prediction_is_the_slower_of_the_kernel_and_launch_streams(tmp_path, gpu_named):
    net, path = _net(), tmp_path / "t.json"
    parts = len(net.latency_blocks(SIZE))
    kernels = [1.0] * parts
    launches = [0.5] * (parts - 1) + [0.5 + parts]  # more launch time in all than kernel time
    _gpu_table_file(path, net, kernels, launches)
    table = LatencyTable(gpu_named, path=path)
    assert table.part_sums_ms(net, SIZE) == (pytest.approx(parts), pytest.approx(0.5 * parts + parts))
    assert table.predict_ms(net, SIZE) == pytest.approx(1.5 * parts)  # the launches set the pace
    _gpu_table_file(path, net, [3.0] * parts, launches)
    assert LatencyTable(gpu_named, path=path).predict_ms(net, SIZE) == pytest.approx(3.0 * parts)
    table.save()
    assert json.loads(path.read_text())["launches"] == table.launches


def test_an_older_gpu_table_is_refused_since_its_times_include_launch_gaps(tmp_path, gpu_named):
    path = tmp_path / "t.json"
    parts = len(_net().latency_blocks(SIZE))
    _gpu_table_file(path, _net(), [1.0] * parts, [1.0] * parts, "segsearch-latency/2")
    with pytest.raises(ProxylangError, match="GPU times of segsearch-latency/2, from launch to finish"):
        LatencyTable(gpu_named, path=path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format": latency.TABLE_FORMAT, "launches": {}}))
    with pytest.raises(ProxylangError, match="t.json: launch times do not match the entries"):
        LatencyTable(gpu_named, path=path)


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


class ParameterCostTable(LatencyTable):
    """Parts 'timed' at one millisecond per 10k parameters per 64 input columns: fast and exact."""

    def block_ms(self, block):
        ms = sum(p.numel() for p in block.module.parameters()) / 1e4 * block.input_shapes[0][-1] / 64
        return ms, ms


@pytest.fixture
def measured_as(monkeypatch):
    """Whole networks 'measured' at ``factor[size]`` times a table's raw sum: a known calibration."""
    def install(table, factor):
        calls = []

        def measure(net, size, *args, **kwargs):
            calls.append(size)
            return factor[size] * table.uncalibrated_ms(net, size)

        monkeypatch.setattr(latency, "measure_latency_ms", measure)
        return calls
    return install


def test_fit_ratio_recovers_a_known_ratio_and_minimises_the_relative_error():
    raw = [10.0, 20.0, 40.0]
    assert fit_ratio(raw, [0.7 * r for r in raw]) == pytest.approx(0.7)
    measured = [7.7, 12.6, 28.0]  # noisy: least squares on the relative error r * raw / measured - 1
    x = np.array(raw) / np.array(measured)
    best = np.linalg.lstsq(x[:, None], np.ones(3), rcond=None)[0][0]
    assert fit_ratio(raw, measured) == pytest.approx(best)
    with pytest.raises(ValueError, match="no positive finite ratio"):
        fit_ratio([5e-324], [1e300])


def test_predict_ms_is_the_raw_sum_times_the_calibration_at_that_size():
    table = ParameterCostTable(CPU, calibration_networks=2)
    net = _net()
    table.calibrations[SIZE] = Calibration((10.0, 30.0), (8.0, 24.0), 1.0)
    assert table.predict_ms(net, SIZE) == pytest.approx(0.8 * table.uncalibrated_ms(net, SIZE))
    uncalibrated = ParameterCostTable(CPU)
    uncalibrated.calibrations[SIZE] = table.calibrations[SIZE]  # kept, but a table that does not calibrate
    assert uncalibrated.predict_ms(net, SIZE) == table.uncalibrated_ms(net, SIZE)  # uncalibrated
    with pytest.raises(ValueError, match="does not calibrate"):
        LatencyTable(CPU).calibration(SIZE)


def test_a_calibration_measures_students_of_its_own_stream():
    table = LatencyTable(CPU, warmup=0, repeats=1, calibration_networks=2)
    calibration = table.calibration(SIZE)
    students = [build_network(a) for a in calibration_archs(2)]
    assert calibration.networks == 2 and calibration.seconds > 0
    assert list(calibration.raw_ms) == [table.uncalibrated_ms(n, SIZE) for n in students]
    assert all(ms > 0 for ms in calibration.measured_ms)
    assert calibration.ratio == fit_ratio(calibration.raw_ms, calibration.measured_ms)
    assert table.calibration(SIZE) is calibration  # fitted once per size
    evaluated = {random_arch(random.Random(0)).network_key()}
    assert evaluated.isdisjoint(a.network_key() for a in calibration_archs(5))


def test_calibrations_are_kept_per_size(measured_as):
    table = ParameterCostTable(CPU, calibration_networks=2)
    calls = measured_as(table, {SIZE: 0.5, (32, 128): 0.8})
    net = _net()
    assert table.predict_ms(net, SIZE) == pytest.approx(0.5 * table.uncalibrated_ms(net, SIZE))
    assert calls == [SIZE, SIZE] and set(table.calibrations) == {SIZE}
    assert table.predict_ms(net, (32, 128)) == pytest.approx(0.8 * table.uncalibrated_ms(net, (32, 128)))
    assert calls == [SIZE, SIZE, (32, 128), (32, 128)]  # a calibration at 32x64 says nothing of 32x128
    assert table.calibrations[SIZE].ratio == pytest.approx(0.5)


def test_a_calibration_survives_the_file_round_trip(tmp_path, measured_as):
    path = tmp_path / "t.json"
    table = ParameterCostTable(CPU, path=path, calibration_networks=3)
    measured_as(table, {SIZE: 0.9})
    first = table.predict_ms(_net(), SIZE)
    table.save()
    data = json.loads(path.read_text())
    assert data["format"] == "segsearch-latency/3" and set(data["calibrations"]) == {"32x64"}
    calls = measured_as(table, {SIZE: 2.0})  # a re-fit would change the prediction
    reloaded = ParameterCostTable(CPU, path=path, calibration_networks=5)
    assert reloaded.calibrations == table.calibrations
    assert reloaded.predict_ms(_net(), SIZE) == pytest.approx(first) and calls == []


def test_a_table_file_without_calibrations_loads_and_is_calibrated_when_needed(tmp_path, measured_as):
    path = tmp_path / "t.json"
    old = LatencyTable(CPU, warmup=0, repeats=1)
    old.uncalibrated_ms(_net(), SIZE)
    path.write_text(json.dumps({**old.header, "format": "segsearch-latency/1", "entries": old.entries}))
    table = LatencyTable(CPU, path=path, calibration_networks=2)
    assert table.entries == old.entries and table.calibrations == {}
    measured_as(table, {SIZE: 0.6})
    assert table.predict_ms(_net(), SIZE) == pytest.approx(0.6 * old.uncalibrated_ms(_net(), SIZE))
    table.save()
    assert json.loads(path.read_text())["format"] == "segsearch-latency/3"
    assert LatencyTable(CPU, path=path).calibrations == table.calibrations


GOOD = {"raw_ms": [10.0, 20.0], "measured_ms": [8.0, 15.0], "seconds": 3.5}


@pytest.mark.parametrize("calibrations, problem", [
    ([1, 2], "calibrations must be an object"),
    ({"32by64": GOOD}, "'32by64' is corrupt: its key is not a size"),
    ({"0x64": GOOD}, "'0x64' is corrupt: its key is not a size"),
    ({"32x64": [1]}, "must be lists of positive milliseconds"),
    ({"32x64": {**GOOD, "raw_ms": None}}, "must be lists of positive milliseconds"),
    ({"32x64": {**GOOD, "raw_ms": [10.0, -1.0]}}, "must be lists of positive milliseconds"),
    ({"32x64": {**GOOD, "measured_ms": [8.0, True]}}, "must be lists of positive milliseconds"),
    ({"32x64": {**GOOD, "measured_ms": [8.0]}}, "2 raw sums for 1 measurements"),
    ({"32x64": {**GOOD, "raw_ms": [], "measured_ms": []}}, "0 raw sums for 0 measurements"),
    ({"32x64": {**GOOD, "seconds": "3"}}, "seconds holds '3'"),
    ({"32x64": {"raw_ms": [1.0], "measured_ms": [1.0]}}, "seconds holds None"),
    ({"32x64": {**GOOD, "raw_ms": [1e-300, 1e-300], "measured_ms": [1e300, 1e300]}},
     "no positive finite ratio"),
])
def test_a_corrupt_calibration_is_one_clean_error(tmp_path, calibrations, problem):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({**LatencyTable(CPU).header, "entries": {}, "calibrations": calibrations}))
    with pytest.raises(ProxylangError) as error:
        LatencyTable(CPU, path=path, calibration_networks=2)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_the_search_filters_on_the_calibrated_prediction():
    table = ParameterCostTable(CPU, calibration_networks=2)
    table.calibrations[SIZE] = Calibration((10.0,), (5.0,), 0.0)
    config = SearchConfig(population=4, generations=0, parents=2, calibration_size=2, resolution=SIZE,
                          batch_size=2, layers=5, target_fps=8.0, latency_size=SIZE)
    search = Search(None, config, CPU, latency_table=table, log=lambda _: None)
    arch = random_arch(random.Random(0), layers=5)
    net = build_network(arch, config.num_classes, "student")
    assert search.predicted_fps(arch) == pytest.approx(1000.0 / (0.5 * table.uncalibrated_ms(net, SIZE)))


def test_latency_predict_prints_the_calibrated_prediction(tmp_path, monkeypatch, one_thread):
    monkeypatch.setattr(cli, "CALIBRATION_NETWORKS", 2)
    arch, table_path = tmp_path / "arch.json", tmp_path / "t.json"
    save_arch(random_arch(random.Random(0), layers=5), arch)
    args = ["latency", str(arch), "--size", "32x64", "--device", "cpu", "--warmup", "0", "--repeats", "1",
            "--predict", "--latency-table", str(table_path)]
    first = CliRunner().invoke(cli.main, args)
    assert first.exit_code == 0, first.output
    assert "calibrating the latency table at 32x64 on 2 random students" in first.output
    table = LatencyTable(CPU, path=table_path, calibration_networks=2)
    ratio = table.calibrations[SIZE].ratio
    predicted = table.predict_ms(build_network(random_arch(random.Random(0), layers=5)), SIZE)
    assert f"lookup table predicts {predicted:.2f} ms" in first.output
    assert f"parts x {ratio:.3f}, calibrated on 2 networks)" in first.output
    again = CliRunner().invoke(cli.main, args)
    assert again.exit_code == 0 and "calibrating" not in again.output  # kept in the file
    assert f"lookup table predicts {predicted:.2f} ms" in again.output
