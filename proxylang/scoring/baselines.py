"""The classic zero-cost proxies that Table 3 compares against, in two kinds.

*Expression baselines* (snip, grad_norm, plain, l2_norm, params, nwot) are written in the language
itself (``proxylang/library/<name>.px``) and scored from cached statistics like any searched proxy.

*Network baselines* need something the statistics do not hold (another input, a second-order
gradient, a re-initialised copy), so they are functions ``(model, inputs, targets) -> float`` here,
following NASLib's definitions (``naslib/predictors/utils/pruners/measures``) with these choices:

- Sites are NASLib's: the modules of the profile's ``classic_sites`` types (``Conv2d`` and ``Linear`` in
  every profile, so a decoder's ``ConvTranspose2d`` layers are left out, as the reference scores leave
  them out). Expression baselines get the same sites (:meth:`proxylang.stats.NetStats.only_sites`),
  except the whole-model counts ``params`` and ``flops`` (``WHOLE_MODEL``); SasWOT and searched proxies
  keep every site. Sums run over sites and elements.
- The network is scored in training mode (batch statistics), like NASLib; functions that change
  weights work on a deep copy, so ``model`` is left as it was.
- A score that overflows or is undefined comes back as NaN or ±inf; the evaluation ranks it last.
- ``epe_nas`` needs one class label per image, which segmentation does not have. Each image gets the
  most frequent class of its label map (ignored pixels excluded). NASLib's reference file stores -1e8
  for every segmentation network (its code fails on label maps), so there is nothing to agree with; the
  value is kept so the table is complete. The formula is the authors': per class, Σ log(|c| + k) over
  the class's Jacobian correlation matrix; with at most 100 classes the score is the sum of their
  absolute values (the pairwise form is for more classes); classes with one image are skipped.
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

from proxylang.errors import ProxylangError
from proxylang.lang.ast import Node
from proxylang.lang.parse import parse
from proxylang.scoring.flops import count_flops
from proxylang.stats.extract import SITE_TYPES, default_loss, weight_matrix
from proxylang.stats.profiles import NASLIB_SITES

Sites = tuple[type[nn.Module], ...]
NetworkProxy = Callable[[nn.Module, Tensor, Tensor, Sites], float]
MODULE_TYPES: dict[str, type[nn.Module]] = {t.__name__: t for t in SITE_TYPES}
NASLIB_TYPES: Sites = tuple(MODULE_TYPES[n] for n in NASLIB_SITES)
EPE_PAIRWISE_CLASSES = 100  # epe_nas: beyond this many classes the authors take the pairwise form

JACOBIAN_EPS = 1e-5  # jacov / epe_nas: keeps log and 1/x finite at a zero eigenvalue
ZEN_MIXUP = 1e-2  # zen: size of the input perturbation
# Table 3 order
BASELINES = ("fisher", "flops", "grad_norm", "grasp", "epe_nas", "jacov", "nwot", "params", "snip",
             "synflow", "zen", "l2_norm", "plain")
EXPRESSION_BASELINES = ("grad_norm", "l2_norm", "nwot", "params", "plain", "snip")
# NASLib counts these over the whole model (its model_stats), not over its per-layer sites
WHOLE_MODEL = ("flops", "params")


def site_types(names: tuple[str, ...]) -> Sites:
    """Module classes of the site type names of a profile (``"Conv2d"``, ``"Linear"``, ...)."""
    unknown = [n for n in names if n not in MODULE_TYPES]
    if unknown:
        raise ProxylangError(f"unknown site type {unknown[0]!r}; expected some of {', '.join(MODULE_TYPES)}")
    return tuple(MODULE_TYPES[n] for n in names)


def _sites(model: nn.Module, sites: Sites) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) in sites]


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def synflow(model: nn.Module, inputs: Tensor, targets: Tensor, sites: Sites = NASLIB_TYPES) -> float:
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
    used = [m for m in _sites(net, sites) if m.weight.grad is not None]
    return float(sum((m.weight.detach() * m.weight.grad).abs().sum() for m in used))


def fisher(model: nn.Module, inputs: Tensor, targets: Tensor, sites: Sites = NASLIB_TYPES) -> float:
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

    handles = [m.register_forward_hook(on_output) for m in _sites(model, sites)]
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


def grasp(model: nn.Module, inputs: Tensor, targets: Tensor, sites: Sites = NASLIB_TYPES) -> float:
    """Σ -W ⊙ (H g), H the Hessian of the loss and g its gradient (a Hessian-vector product): how
    pruning a weight changes the gradient flow."""
    model.train()
    weights = [m.weight for m in _sites(model, sites)]
    loss = default_loss(model(inputs), targets)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    used = [(w, g) for w, g in zip(weights, grads, strict=True) if g is not None and g.requires_grad]
    if not used:
        return 0.0  # no weight reaches the loss: nothing to prune
    z = sum((g.detach() * g).sum() for _, g in used)
    hg = torch.autograd.grad(z, [w for w, _ in used], allow_unused=True)
    return float(sum((-w.detach() * h).sum() for (w, _), h in zip(used, hg, strict=True) if h is not None))


def _input_jacobian(model: nn.Module, inputs: Tensor) -> tuple[np.ndarray, int]:
    """∂(Σ outputs)/∂input, one row per image; and the number of output channels (classes)."""
    model.train()
    x = inputs.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    out = model(x)
    out.sum().backward()
    model.zero_grad(set_to_none=True)
    jacobian = x.grad if x.grad is not None else torch.zeros_like(x)  # output independent of the input
    return jacobian.detach().reshape(len(x), -1).double().cpu().numpy(), out.shape[1]


def _correlation_score(jacobians: np.ndarray) -> float:
    """-Σ log(λ+k) + 1/(λ+k) over eigenvalues λ of the images' Jacobian correlation matrix."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jacobians)
    if not np.isfinite(corr).all():
        return math.nan
    eig = np.clip(np.linalg.eigvalsh(corr), 0.0, None)  # a correlation matrix is PSD; clip round-off
    return float(-np.sum(np.log(eig + JACOBIAN_EPS) + 1.0 / (eig + JACOBIAN_EPS)))


def jacov(model: nn.Module, inputs: Tensor, targets: Tensor, sites: Sites = NASLIB_TYPES) -> float:
    """Jacobian covariance (NASWOT's first score): high when images' input Jacobians are uncorrelated."""
    return _correlation_score(_input_jacobian(model, inputs)[0])


def _image_labels(targets: Tensor) -> list[int]:
    """One class per image: its label itself, or the most frequent valid class of its label map."""
    if targets.dim() == 1:
        return targets.tolist()
    labels = []
    for t in targets.reshape(len(targets), -1):
        t = t[t >= 0]
        labels.append(int(torch.mode(t).values) if len(t) else -1)
    return labels


def epe_nas(model: nn.Module, inputs: Tensor, targets: Tensor, sites: Sites = NASLIB_TYPES) -> float:
    """EPE-NAS, the authors' formula: per class with at least two images, s_c = Σ log(|c| + k) over the
    class's Jacobian correlation matrix; the score is Σ_c |s_c| (with more than 100 output classes, the
    mean pairwise |s_c − s_c'| of per-entry statistics)."""
    jac, num_classes = _input_jacobian(model, inputs)
    labels = np.array(_image_labels(targets))
    pairwise = num_classes > EPE_PAIRWISE_CLASSES
    per_class = []
    for c in np.unique(labels[labels >= 0]):
        members = jac[labels == c]
        if len(members) < 2:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.corrcoef(members))
        value = np.sum(np.log(corr + JACOBIAN_EPS))
        per_class.append(value / len(corr) if pairwise else value)
    values = np.array(per_class)
    if not pairwise:
        return float(np.abs(values).sum())
    return float(np.abs(values[:, None] - values[None, :]).sum() / max(len(values), 1))


def zen(model: nn.Module, inputs: Tensor, targets: Tensor, sites: Sites = NASLIB_TYPES) -> float:
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


def flops(model: nn.Module, inputs: Tensor, targets: Tensor, sites: Sites = NASLIB_TYPES) -> float:
    """MFLOPs of one image at the input's resolution, in the reference files' convention."""
    return float(count_flops(model, inputs.shape[-1]))


NETWORK_BASELINES: dict[str, NetworkProxy] = {
    "fisher": fisher, "flops": flops, "grasp": grasp, "epe_nas": epe_nas, "jacov": jacov,
    "synflow": synflow, "zen": zen,
}


def library_expression(name: str) -> Node:
    """The parsed expression of ``proxylang/library/<name>.px``."""
    source = resources.files("proxylang") / "library" / f"{name}.px"
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        raise ProxylangError(f"no proxy named {name!r} in the library") from None
    return parse(text, source=f"{name}.px")


def score_network(names: list[str] | tuple[str, ...], model: nn.Module, inputs: Tensor, targets: Tensor,
                  sites: tuple[str, ...] = NASLIB_SITES) -> dict[str, float]:
    """Every named network baseline on one network, summed over the modules of the ``sites`` types; a
    failure (e.g. a singular matrix, an overflow error) scores NaN rather than stopping the benchmark."""
    inputs, targets = inputs.to(_device_of(model)), targets.to(_device_of(model))
    types = site_types(sites)
    scores = {}
    for name in names:
        try:
            scores[name] = NETWORK_BASELINES[name](model, inputs, targets, types)
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            scores[name] = math.nan
    return scores
