"""FLOPs of any network in NAS-Bench-Suite-Zero's convention (tensorwatch/torchstat), which the
reference data files' ``flops`` scores use.

Found by matching the files exactly: one 3xRxR image (batch 1), every leaf module counted once:
``Conv2d`` multiply-accumulates plus one per output for a bias, ``BatchNorm2d`` two per input
element (one if not affine), ReLU/LeakyReLU one per element. Transposed convolutions (the decoder's
upsamplings), identities and zero edges count nothing, because that counter did not support them.
The pass runs on the meta device, so it costs no arithmetic and no memory whatever the model's device,
in eval mode (BatchNorm's batch statistics are the slow part of a meta pass, and change no count).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

ELEMENTWISE = (nn.ReLU, nn.LeakyReLU)


def _module_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        macs_per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        return out.numel() * (macs_per_output + (module.bias is not None))
    if isinstance(module, nn.BatchNorm2d):
        return x.numel() * (2 if module.affine else 1)
    if isinstance(module, ELEMENTWISE):
        return x.numel()
    return 0


def count_flops(model: nn.Module, resolution: int = 256) -> float:
    """MFLOPs of one ``resolution`` x ``resolution`` RGB image through ``model``, in the data files'
    convention (see the module docstring); at 256 it reproduces their ``flops`` scores."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += _module_flops(module, inputs[0], out)

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    meta = {name: torch.empty_like(t, device="meta")
            for name, t in (*model.named_parameters(), *model.named_buffers())}
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            functional_call(model, meta, (torch.empty(1, 3, resolution, resolution, device="meta"),))
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return total / 1e6
