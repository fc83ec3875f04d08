"""How closely any single-draw l2_norm can agree with the data files' reference l2_norm.

The reference l2_norm (Σ‖W‖₂ over Conv2d/Linear) of each architecture is one random draw of the
benchmark's initialisation. Its expectation has a closed form (a Kaiming-normal encoder conv with n
weights of variance 2/fan_out has E‖W‖ ≈ √(2n/fan_out); a default-initialised decoder conv's
weights are uniform with variance 1/(3·fan_in)), so this script prints the Kendall tau between that
draw-free value and the reference over every arch of each space: the agreement that is left when only
the reference's own draw is noisy. Networks are built on the meta device (no weights allocated).

    python benchmarks/l2_norm_noise.py
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from proxylang.bench.transnas import build_network, load_zc_json
from proxylang.scoring.evaluate import kendall


def expected_l2_norm(model: nn.Module) -> float:
    """E Σ‖W‖₂ over Conv2d/Linear weights under the benchmark's initialisation (norms concentrate, so
    E‖W‖ ≈ √(n · variance))."""
    encoder = set(model.encoder.modules())
    total = 0.0
    for m in model.modules():
        if type(m) not in (nn.Conv2d, nn.Linear):
            continue
        w = m.weight
        variance = 2.0 / (w.shape[0] * w[0, 0].numel()) if m in encoder else 1.0 / (3 * w[0].numel())
        total += math.sqrt(variance * w.numel())
    return total


def main() -> None:
    data = Path(os.environ.get("PROXYLANG_DATA", "../shared/benchmarks")) / "transnas"
    for space in ("micro", "macro"):
        records = load_zc_json(data / f"zc_transbench101_{space}.json", "segmentsemantic", space)
        expected = []
        for arch in records:
            with torch.device("meta"):
                expected.append(expected_l2_norm(build_network(space, arch)))
        reference = [records[a].score("l2_norm") for a in records]
        print(f"{space}: Kendall(expected l2_norm, reference l2_norm) = {kendall(expected, reference):.3f} "
              f"over {len(records)} archs")


if __name__ == "__main__":
    main()
