"""TransNAS-Bench-101 ``segmentsemantic``: networks of the micro and macro spaces built from the data
files' arch keys, their parameter and FLOP counts, and ground-truth readers."""

from proxylang.bench.transnas.flops import count_flops
from proxylang.bench.transnas.ground_truth import (
    ArchRecord,
    ArchTable,
    arch_key,
    data_dir,
    load_api_pth,
    load_zc_json,
    space_of_file,
    zc_json_path,
)
from proxylang.bench.transnas.networks import SPACES, build_network, count_params, parse_arch

__all__ = [
    "SPACES", "ArchRecord", "ArchTable", "arch_key", "build_network", "count_flops", "count_params",
    "data_dir", "load_api_pth", "load_zc_json", "parse_arch", "space_of_file", "zc_json_path",
]
