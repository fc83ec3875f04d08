"""Benchmarks whose networks and ground truth proxylang evaluates proxies on (TransNAS-Bench-101)."""
