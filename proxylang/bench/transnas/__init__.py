"""TransNAS-Bench-101 ``segmentsemantic``: networks of the micro and macro spaces built from the data
files' arch keys, their parameter counts, ground-truth readers, and :data:`TRANSNAS`, the
benchmark as the value the other stages take."""

from proxylang.bench.benchmark import Benchmark
from proxylang.bench.transnas.ground_truth import (
    TASK,
    ArchRecord,
    ArchTable,
    data_dir,
    load_api_pth,
    load_zc_json,
    space_of_file,
    zc_json_path,
)
from proxylang.bench.transnas.networks import (
    NUM_CLASSES,
    SPACES,
    all_archs,
    arch_key,
    build_network,
    count_params,
    parse_arch,
)

TRANSNAS = Benchmark(name="transnas", title="TransNAS-Bench-101", task=TASK, spaces=SPACES,
                     num_classes=NUM_CLASSES, build_network=build_network, parse_arch=parse_arch,
                     all_archs=all_archs,
                     truth_file=zc_json_path, read_truth=load_zc_json)

__all__ = [
    "NUM_CLASSES", "SPACES", "TASK", "TRANSNAS", "ArchRecord", "ArchTable", "all_archs", "arch_key",
    "build_network",
    "count_params", "data_dir", "load_api_pth", "load_zc_json", "parse_arch",
    "space_of_file", "zc_json_path",
]
