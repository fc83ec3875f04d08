"""The classic zero-cost proxies that Table 3 compares against, in two kinds.

*Expression baselines* (snip, grad_norm, plain, l2_norm, params, nwot) are written in the language
itself (``proxylang/library/<name>.px``) and scored from cached statistics like any searched proxy.

*Network baselines* need something the statistics do not hold (another input, a second-order
gradient, a re-initialised copy), so they are functions ``(model, inputs, targets) -> float`` here,
following NASLib's definitions (``naslib/predictors/utils/pruners/measures``) with these choices:

- Sites are the conv sites of :mod:`proxylang.extract` (``Conv2d``, ``ConvTranspose2d``, ``Linear``),
  so the decoder counts, as it does for every expression proxy. Sums run over sites and elements.
- The network is scored in training mode (batch statistics), like NASLib; functions that change
  weights work on a deep copy, so ``model`` is left as it was.
- A score that overflows or is undefined comes back as NaN or ±inf; the evaluation ranks it last.
- ``epe_nas`` needs one class label per image, which segmentation does not have. Each image gets the
  most frequent class of its label map (ignored pixels excluded); with uniformly random labels that
  grouping is arbitrary, so the score measures little. NASLib's reference file stores -1e8 for every
  segmentation network, i.e. it gave up; the value is kept so the table is complete.
- ``zen`` measures the network's output (the logits: a segmentation net has no global pooling).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from importlib import resources

import numpy as np
import torch
from torch import Tensor, nn

from proxylang.ast import Node
from proxylang.errors import ProxylangError
from proxylang.extract import SITE_TYPES, default_loss, weight_matrix

NetworkProxy = Callable[[nn.Module, Tensor, Tensor], float]

JACOBIAN_EPS = 1e-5  # jacov / epe_nas: keeps log and 1/x finite at a zero eigenvalue
ZEN_MIXUP = 1e-2  # zen: size of the input perturbation
# Table 3 order
BASELINES = ("fisher", "flops", "grad_norm", "grasp", "epe_nas", "jacov", "nwot", "params", "snip",
             "synflow", "zen", "l2_norm", "plain")
EXPRESSION_BASELINES = ("grad_norm", "l2_norm", "nwot", "params", "plain", "snip")


def _sites(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, SITE_TYPES)]


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def synflow(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Σ |W ⊙ ∂R/∂W| with R the summed output of the network with |W|, no batch-norm, in float64, on
    one all-ones image: a data-free measure of how much signal every weight carries."""
    net = copy.deepcopy(model).double()
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            net.set_submodule(name, nn.Identity())
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=_device_of(net))
    net(ones).sum().backward()
    used = [m for m in _sites(net) if m.weight.grad is not None]
    return float(sum((m.weight.detach() * m.weight.grad).abs().sum() for m in used))


def fisher(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Σ over channels of ½·mean_n(Σ_hw a ⊙ ∂L/∂a)², each channel's value counted once per weight of
    that channel (as NASLib spreads it over the weights): the loss change from pruning a channel."""
    per_channel: dict[nn.Module, Tensor] = {}

    def on_output(module: nn.Module, _inp: tuple, out: Tensor) -> None:
        act = out.detach()

        def on_grad(grad: Tensor) -> None:
            g = (act * grad).flatten(2).sum(2) if act.dim() > 2 else act * grad
            value = 0.5 * g.pow(2).mean(0)
            per_channel[module] = per_channel.get(module, 0) + value

        out.register_hook(on_grad)

    handles = [m.register_forward_hook(on_output) for m in _sites(model)]
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        default_loss(model(inputs), targets).backward()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    total = 0.0
    for module, value in per_channel.items():
        rows = weight_matrix(module, module.weight)
        total += float(value.abs().sum()) * rows.shape[1]
    return total


def grasp(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Σ -W ⊙ (H g), H the Hessian of the loss and g its gradient (a Hessian-vector product): how
    pruning a weight changes the gradient flow."""
    model.train()
    weights = [m.weight for m in _sites(model)]
    loss = default_loss(model(inputs), targets)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    used = [(w, g) for w, g in zip(weights, grads, strict=True) if g is not None and g.requires_grad]
    if not used:
        return 0.0  # no weight reaches the loss: nothing to prune
    z = sum((g.detach() * g).sum() for _, g in used)
    hg = torch.autograd.grad(z, [w for w, _ in used], allow_unused=True)
    return float(sum((-w.detach() * h).sum() for (w, _), h in zip(used, hg, strict=True) if h is not None))


def _input_jacobian(model: nn.Module, inputs: Tensor) -> np.ndarray:
    """∂(Σ outputs)/∂input, one row per image."""
    model.train()
    x = inputs.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    jacobian = x.grad if x.grad is not None else torch.zeros_like(x)  # output independent of the input
    return jacobian.detach().reshape(len(x), -1).double().cpu().numpy()


def _correlation_score(jacobians: np.ndarray) -> float:
    """-Σ log(λ+k) + 1/(λ+k) over eigenvalues λ of the images' Jacobian correlation matrix."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jacobians)
    if not np.isfinite(corr).all():
        return math.nan
    eig = np.clip(np.linalg.eigvalsh(corr), 0.0, None)  # a correlation matrix is PSD; clip round-off
    return float(-np.sum(np.log(eig + JACOBIAN_EPS) + 1.0 / (eig + JACOBIAN_EPS)))


def jacov(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Jacobian covariance (NASWOT's first score): high when images' input Jacobians are uncorrelated."""
    return _correlation_score(_input_jacobian(model, inputs))


def _image_labels(targets: Tensor) -> list[int]:
    """One class per image: its label itself, or the most frequent valid class of its label map."""
    if targets.dim() == 1:
        return targets.tolist()
    labels = []
    for t in targets.reshape(len(targets), -1):
        t = t[t >= 0]
        labels.append(int(torch.mode(t).values) if len(t) else -1)
    return labels


def epe_nas(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """EPE-NAS: per class, the Jacobian-correlation statistic Σ log(|c|+k) + 1/(|c|+k) over the class's
    correlation matrix; the score is the mean absolute difference between classes' statistics."""
    jac = _input_jacobian(model, inputs)
    labels = np.array(_image_labels(targets))
    per_class = []
    for c in np.unique(labels):
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.atleast_2d(np.corrcoef(jac[labels == c])))
        per_class.append(np.sum(np.log(corr + JACOBIAN_EPS) + 1.0 / (corr + JACOBIAN_EPS)))
    values = np.array(per_class)
    return float(np.abs(values[:, None] - values[None, :]).sum() / len(values))


def zen(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Zen-score: with Gaussian weights, log of the output's expected change under a small input
    perturbation, plus Σ log √mean(running var) over batch-norm layers (undoing their rescaling)."""
    net = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)  # seeded: the score must not depend on the global RNG
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, SITE_TYPES):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_parameters()
        x = torch.randn(inputs.shape, generator=gen).to(_device_of(net))
        x_mixed = x + ZEN_MIXUP * torch.randn(inputs.shape, generator=gen).to(x.device)
        net.train()
        change = (net(x) - net(x_mixed)).abs().flatten(1).sum(1).mean()
        log_bn = sum(float(torch.log(torch.sqrt(m.running_var.mean())))
                     for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    return float(torch.log(change)) + log_bn


def flops(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Multiply-accumulates of one image at the input's resolution (the benchmark's own counter)."""
    from proxylang.bench.transnas import count_flops

    return float(count_flops(model, inputs.shape[-1]))


NETWORK_BASELINES: dict[str, NetworkProxy] = {
    "fisher": fisher, "flops": flops, "grasp": grasp, "epe_nas": epe_nas, "jacov": jacov,
    "synflow": synflow, "zen": zen,
}


def library_expression(name: str) -> Node:
    """The parsed expression of ``proxylang/library/<name>.px``."""
    from proxylang import parse

    source = resources.files("proxylang") / "library" / f"{name}.px"
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        raise ProxylangError(f"no proxy named {name!r} in the library") from None
    return parse(text, source=f"{name}.px")


def score_network(names: list[str] | tuple[str, ...], model: nn.Module, inputs: Tensor,
                  targets: Tensor) -> dict[str, float]:
    """Every named network baseline on one network; a failure (e.g. a singular matrix, an overflow
    error) scores NaN rather than stopping the benchmark."""
    inputs, targets = inputs.to(_device_of(model)), targets.to(_device_of(model))
    scores = {}
    for name in names:
        try:
            scores[name] = NETWORK_BASELINES[name](model, inputs, targets)
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            scores[name] = math.nan
    return scores
