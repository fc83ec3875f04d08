"""Benchmarks whose networks and ground truth proxylang evaluates proxies on, by name."""

from proxylang.bench.benchmark import Benchmark, SpaceTruth
from proxylang.bench.transnas import TRANSNAS

BENCHMARKS: dict[str, Benchmark] = {TRANSNAS.name: TRANSNAS}

__all__ = ["BENCHMARKS", "Benchmark", "SpaceTruth"]
