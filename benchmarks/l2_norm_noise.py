"""How closely any single-draw l2_norm can agree with the data files' reference l2_norm.

The reference l2_norm (Σ‖W‖₂ over Conv2d/Linear) of each architecture is one random draw of the
benchmark's initialisation, and so is ours. This script draws that initialisation's norms many times,
layer by layer and exactly in distribution, without building weights: a Kaiming-normal encoder conv
with n weights of variance σ² = 2/fan_out has ‖W‖² = σ²·χ²ₙ; a default-initialised decoder layer's
weights are uniform on ±1/√fan_in, whose squared norm is a sum of n independent terms (drawn from its
normal limit: n is in the hundreds at least). Networks are built on the meta device for their shapes.

It prints, per space: the Kendall tau between independent draws and the reference (mean, min, max over
the draws), between two independent draws, and between the draw-free expectation E‖W‖ ≈ √(n σ²) and the
reference, with the number of distinct expected values: micro archs that use the same operations in
another order have the same expectation, so its tau-b is taken over few tied groups and reads high,
while any real draw orders the archs inside each group at random.

    python benchmarks/l2_norm_noise.py [--draws 16] [--seed 0]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from torch import nn

from proxylang.bench.transnas import build_network, load_zc_json, zc_json_path
from proxylang.scoring.evaluate import kendall


def layer_laws(model: nn.Module) -> list[tuple[int, float, bool]]:
    """(weights n, per-weight variance, Gaussian?) of every Conv2d/Linear weight under the benchmark's
    initialisation: Kaiming-normal fan_out on the encoder, PyTorch's uniform default elsewhere."""
    encoder = set(model.encoder.modules())
    laws = []
    for m in model.modules():
        if type(m) not in (nn.Conv2d, nn.Linear):
            continue
        w = m.weight
        if m in encoder:
            laws.append((w.numel(), 2.0 / (w.shape[0] * w[0, 0].numel()), True))
        else:
            laws.append((w.numel(), 1.0 / (3 * w[0].numel()), False))
    return laws


def drawn_norms(laws: list[tuple[int, float, bool]], draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` independent values of Σ‖W‖₂ for one architecture."""
    total = np.zeros(draws)
    for n, variance, gaussian in laws:
        if gaussian:
            squares = variance * rng.chisquare(n, draws)
        else:  # u ~ U(-b, b): E u² = b²/3 = variance, Var u² = 4 b⁴/45 = 0.8 variance²
            squares = rng.normal(n * variance, math.sqrt(0.8 * n) * variance, draws)
        total += np.sqrt(squares)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for space in ("micro", "macro"):
        records = load_zc_json(zc_json_path(space), "segmentsemantic", space)
        reference = [records[a].score("l2_norm") for a in records]
        laws = []
        for arch in records:
            with torch.device("meta"):
                laws.append(layer_laws(build_network(space, arch)))
        draws = np.stack([drawn_norms(law, args.draws, rng) for law in laws], axis=1)
        vs_reference = [kendall(d, reference) for d in draws]
        expected = np.round([sum(math.sqrt(n * v) for n, v, _ in law) for law in laws], 9)
        print(f"{space} ({len(records)} archs, {args.draws} draws):")
        print(f"  Kendall(one draw, reference) mean {np.mean(vs_reference):.3f}, "
              f"min {min(vs_reference):.3f}, max {max(vs_reference):.3f}")
        print(f"  Kendall(draw, independent draw) {kendall(draws[0], draws[1]):.3f}")
        print(f"  Kendall(expectation, reference) {kendall(expected, reference):.3f} "
              f"(tau-b over {len(set(expected))} distinct expected values)")


if __name__ == "__main__":
    main()
