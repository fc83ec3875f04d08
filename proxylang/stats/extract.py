"""Statistics extraction: hooks on any ``nn.Module`` turn one forward + backward pass into ``NetStats``.

What is a site
--------------
*Conv sites* are the modules of type ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.Linear`` that run
in the forward pass, in module (registration) order. NASLib sums its classic proxies over
``nn.Conv2d``/``nn.Linear`` only, which drops a segmentation decoder's upsampling layers; SasWOT hooks
"every conv/linear layer of encoder and decoder", so transposed convolutions are sites here too (the
classic proxies restore NASLib's choice through a profile's ``classic_sites``). A transposed
convolution's weight is stored as ``(in, out/groups, kh, kw)``; it is re-laid out so that ``W`` is
``(out, in/groups · kh · kw)`` like a convolution's. Modules that never run (e.g. the unused branches
of a cell) are not sites. A module called more than once contributes one site whose ``A`` is its
outputs concatenated along features.

*ReLU sites* are the leaf modules whose type name contains ``ReLU`` (ReLU, LeakyReLU, ReLU6, ...), what
NWOT hooks; ``R`` is their *input*. Functional ``F.relu`` calls cannot be hooked and are not seen.

Every statistic is detached, cloned (an in-place activation later in the network must not rewrite
it), in ``dtype`` (float32 by default), and on the CPU unless ``keep_on_device`` is set; *live*
statistics (``copy=False``) are the network's own tensors instead, for scoring during the pass. The network
runs in training mode (batch-norm uses batch statistics, as in NASLib) and its parameters' ``.grad``
are cleared afterwards, so no autograd graph or gradient outlives the call.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from proxylang.bench.benchmark import Benchmark
from proxylang.errors import MemoryBudgetError, ProxylangError
from proxylang.runtime import MEMORY_ENV, memory_budget, resolve_device, show_bytes
from proxylang.stats.netstats import INPUTS, NetStats
from proxylang.stats.profiles import DEFAULT_PROFILE, IGNORE_LABEL, Profile, get_profile, input_batch

SITE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
# Peak memory of extract_stats per byte of the activations it copies (A and R): autograd holds every
# activation of the network, sites or not, until the backward pass, beside the copies. Measured up to 3.2
# on TransNAS-Bench-101 networks from 128 px batch 8 to 256 px batch 32 (benchmarks/extraction_memory.py).
ACTIVATION_PEAK_FACTOR = 3.5

LossFn = Callable[[Tensor, Tensor], Tensor]


def is_relu_site(module: nn.Module) -> bool:
    """NWOT's rule (class name contains ``ReLU``), restricted to leaf modules: a composite block such
    as TransNAS-Bench-101's ``ReLUConvBN`` would otherwise count its inner ReLU's input twice."""
    return "ReLU" in type(module).__name__ and next(module.children(), None) is None


def weight_matrix(module: nn.Module, weight: Tensor) -> Tensor:
    """A conv/linear weight (or its gradient) viewed as ``(out, in/groups · kh · kw)``."""
    if isinstance(module, nn.ConvTranspose2d):
        groups = module.groups
        in_ch, out_per_group = weight.shape[:2]
        grouped = weight.reshape(groups, in_ch // groups, out_per_group, *weight.shape[2:])
        return grouped.transpose(1, 2).reshape(groups * out_per_group, -1)
    return weight.reshape(weight.shape[0], -1)


def default_loss(output: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy: pixel-wise for ``(N, C, H, W)`` logits with ``(N, H, W)`` labels, per sample for
    ``(N, C)`` logits with ``(N,)`` labels; labels equal to ``IGNORE_LABEL`` are ignored."""
    if output.dim() == 4 and targets.shape != (output.shape[0], *output.shape[2:]):
        raise ProxylangError(
            f"labels of shape {tuple(targets.shape)} do not match network output {tuple(output.shape)}")
    return F.cross_entropy(output, targets.long(), ignore_index=IGNORE_LABEL)


def extract_stats(model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn | None = None, *,
                  site_types: tuple[type[nn.Module], ...] = SITE_TYPES,
                  keep_on_device: bool = False, dtype: torch.dtype = torch.float32,
                  copy: bool = True, needs: Collection[str] = INPUTS) -> NetStats:
    """Statistics of ``model`` on one minibatch at its current weights (see the module docstring).

    ``inputs`` and ``targets`` are moved to the model's device; ``loss_fn(output, targets)`` defaults to
    :func:`default_loss`.

    ``copy=False`` gives *live* statistics, to be scored at once and dropped: the network's own
    activations, weights and gradients on its device, not copied (only what an in-place operation of
    the network overwrote, which shows in a tensor's version counter, is measured again with copies).
    ``needs`` names the inputs kept; an activation input left out (``A``, ``R``) is never stored: ``A``
    holds shape-only placeholders (meta tensors) and ``R`` is empty.
    """
    loss_fn = loss_fn or default_loss

    def stat(t: Tensor) -> Tensor:
        t = t.detach().to(dtype)
        if not copy:
            return t
        return t.clone() if keep_on_device else t.to("cpu", copy=True)

    def kept(t: Tensor) -> Tensor:
        """An activation: recorded with its version, so a later in-place write is noticed."""
        t = stat(t.reshape(t.shape[0], -1))
        versions.append((t, t._version))
        return t

    params = list(model.parameters())
    device = params[0].device if params else inputs.device
    outputs: dict[nn.Module, list[Tensor]] = {}
    relu_inputs: list[Tensor] = []
    versions: list[tuple[Tensor, int]] = []

    def on_conv(module: nn.Module, _inp: tuple, out: Tensor) -> None:
        flat = out.reshape(out.shape[0], -1)
        placeholder = torch.empty(flat.shape, dtype=dtype, device="meta")
        outputs.setdefault(module, []).append(kept(flat) if "A" in needs else placeholder)

    def on_relu(_module: nn.Module, inp: tuple) -> None:
        relu_inputs.append(kept(inp[0]))

    conv_modules = [m for m in model.modules() if isinstance(m, site_types)]
    handles = [m.register_forward_hook(on_conv) for m in conv_modules]
    if "R" in needs:
        handles += [m.register_forward_pre_hook(on_relu) for m in model.modules() if is_relu_site(m)]
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        output = model(inputs.to(device))
        loss = loss_fn(output, targets.to(device))
        loss.backward()
        del output
        sites = [m for m in conv_modules if m in outputs]
        A = [torch.cat(outputs[m], dim=1) if len(outputs[m]) > 1 else outputs[m][0] for m in sites]
        W = [stat(weight_matrix(m, m.weight)) for m in sites]
        G = [stat(weight_matrix(m, m.weight.grad)) if m.weight.grad is not None
             else torch.zeros_like(w) for m, w in zip(sites, W, strict=True)]
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if any(t._version != version for t, version in versions):  # only without copies
        return extract_stats(model, inputs, targets, loss_fn, site_types=site_types, keep_on_device=True,
                             dtype=dtype, needs=needs)
    names = {m: name for name, m in model.named_modules()}
    meta = {"sites": [names[m] for m in sites], "site_types": [type(m).__name__ for m in sites],
            "loss": float("nan") if loss.is_meta else float(loss.detach())}  # meta: shapes only
    return NetStats(A=A, G=G, W=W, R=relu_inputs, meta=meta)


def extraction_peak_bytes(stats: NetStats, batch_bytes: int) -> int:
    """What :func:`extract_stats` needs at its peak to return ``stats`` (of real or meta tensors) from a
    batch of ``batch_bytes``: the activations held for the backward pass beside their copies, and the
    weights' gradients beside the W and G copies."""
    activations = sum(t.numel() * t.element_size() for t in stats.A + stats.R)
    weights = sum(t.numel() * t.element_size() for t in stats.W + stats.G)
    return int(ACTIVATION_PEAK_FACTOR * activations + 1.5 * weights) + batch_bytes


class MemoryCheck:
    """Refuses, before anything is allocated, a network of a benchmark space whose measurement under a
    profile would not fit the memory budget (``runtime.memory_budget``) of ``device``. The sizes come
    from the same extraction run on the meta device (shapes only, about 0.5 s); once a network needs
    under a quarter of the budget, the space's others are taken to fit too and are not checked."""

    def __init__(self, benchmark: Benchmark, space: str, profile: Profile, device: str) -> None:
        self.benchmark, self.space, self.profile, self.device = benchmark, space, profile, device
        self._check_each = True

    def __call__(self, arch: str) -> None:
        if not self._check_each:
            return
        n, r = self.profile.batch_size, self.profile.resolution
        with torch.device("meta"):
            model = self.benchmark.build_network(self.space, arch)
            inputs, targets = torch.empty(n, 3, r, r), torch.zeros(n, r, r, dtype=torch.long)
        shapes = extract_stats(model, inputs, targets, dtype=self.profile.torch_dtype, keep_on_device=True)
        need = extraction_peak_bytes(shapes, inputs.numel() * 4 + targets.numel() * 8)
        budget = memory_budget(self.device)
        if need > budget:
            raise MemoryBudgetError(
                f"measuring {self.space} arch {arch} at {r}x{r}, batch {n} needs about {show_bytes(need)} "
                f"(its statistics alone {show_bytes(shapes.nbytes())}), over the memory budget of "
                f"{show_bytes(budget)} ({MEMORY_ENV} or --memory-budget); lower the resolution or the "
                "batch size")
        self._check_each = need > budget / 4


class Measurement:
    """How every architecture of a benchmark space is measured under a profile: its network built with
    the seed on the device after the memory check (:class:`MemoryCheck`), and the one minibatch every
    architecture sees (the same images for all, so scores are comparable). Pickled, it is only its
    settings: a worker of an executor makes the batch and the memory check where it runs."""

    def __init__(self, benchmark: Benchmark, space: str, profile: Profile, seed: int, device: str) -> None:
        self.benchmark, self.space, self.profile = benchmark, space, profile
        self.seed, self.device = seed, device
        self._batch: tuple[Tensor, Tensor] | None = None
        self._memory: MemoryCheck | None = None

    def __getstate__(self) -> tuple[Benchmark, str, Profile, int, str]:
        return self.benchmark, self.space, self.profile, self.seed, self.device

    def __setstate__(self, state: tuple[Benchmark, str, Profile, int, str]) -> None:
        self.__init__(*state)

    def batch(self) -> tuple[Tensor, Tensor]:
        if self._batch is None:
            self._batch = input_batch(self.profile, self.seed, self.benchmark.num_classes)
        return self._batch

    def network(self, arch: str) -> nn.Module:
        """The seeded network of ``arch`` on the device, once the memory check lets it be measured."""
        if self._memory is None:
            self._memory = MemoryCheck(self.benchmark, self.space, self.profile, self.device)
        self._memory(arch)
        torch.manual_seed(self.seed)
        return self.benchmark.build_network(self.space, arch).to(self.device)

    def stats(self, model: nn.Module, live: bool = False, needs: Collection[str] = INPUTS) -> NetStats:
        """``model``'s statistics on the batch, on the device: copies, or ``live`` ones
        (:func:`extract_stats` with ``copy=False``)."""
        inputs, targets = self.batch()
        return extract_stats(model, inputs, targets, keep_on_device=True, copy=not live, needs=needs,
                             dtype=self.profile.torch_dtype)


# ----------------------------------------------------------------------------------------- disk cache


STATS_FORMAT = "proxylang-stats-2"  # bump when what a file holds changes: older files are recomputed


@dataclass(frozen=True)
class StatsKey:
    """Everything that decides a network's statistics: the architecture, the weight/input seed and the
    measurement profile's key (:meth:`proxylang.stats.profiles.Profile.key`); ``variant`` names a derived form
    (e.g. thinned statistics)."""

    space: str
    arch: str
    seed: int = 0
    profile: str = get_profile(DEFAULT_PROFILE).key()
    variant: str = ""

    def setting_path(self) -> Path:
        """The folder of every architecture's file under this key's space and settings."""
        setting = f"{self.profile}-s{self.seed}" + (f"-{self.variant}" if self.variant else "")
        return Path(_safe(self.space)) / _safe(setting)

    def relative_path(self) -> Path:
        """A file name made only of safe characters, one folder per setting."""
        return self.setting_path() / f"{_safe(self.arch)}.pt"

    def fields(self) -> dict[str, str | int]:
        """What a cache file records of its key, with the file format's version."""
        return {"format": STATS_FORMAT, "space": self.space, "arch": self.arch, "seed": self.seed,
                "profile": self.profile, "variant": self.variant}

    def recorded_in(self, meta: dict) -> bool:
        """Whether a cached file was written for this key, in this format: a file copied over from
        another architecture or setting, or written by an older version, is not read as this one's."""
        return all(meta.get(name) == value for name, value in self.fields().items())


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "_"


def default_cache_root() -> Path:
    """``$PROXYLANG_CACHE``, else ``~/.cache/proxylang``."""
    return Path(os.environ.get("PROXYLANG_CACHE") or Path.home() / ".cache" / "proxylang")


def default_cache_budget() -> int:
    """``$PROXYLANG_CACHE_GB`` gigabytes (default 20) of disk for cached statistics."""
    text = os.environ.get("PROXYLANG_CACHE_GB", "20")
    try:
        gigabytes = float(text)
    except ValueError:
        gigabytes = math.nan
    if not 0 <= gigabytes < 2**30:
        raise ProxylangError(f"PROXYLANG_CACHE_GB must be a number of gigabytes (0 stores nothing), "
                             f"got {text!r}")
    return int(gigabytes * 2**30)


class StatsCache:
    """``NetStats`` on disk, one file per :class:`StatsKey`; nothing is kept in memory.

    Use: ``get_or_compute(key, fn)``; a file that cannot be read is recomputed and overwritten. Bound to a
    benchmark space (``benchmark=..., space=...``), ``compute(arch)`` builds that benchmark's network
    seeded with ``seed`` and measures it on the batch described by the other settings; what a search
    stores is a derived form of those (``proxylang.search.data.thinned_stats``), since scoring a whole
    space reads live statistics and stores only scores (``proxylang.scoring.sweep``).

    Statistics are large (W and G hold every weight: 100-500 MB per TransNAS-Bench-101 network in
    float32), so the cache has a disk budget, ``max_bytes``. Once the folder holds that much, new
    statistics are still returned but no longer stored. Filling up and then stopping, rather than
    evicting, keeps the first architectures of every sweep cached: an LRU cache smaller than a
    repeated sweep would evict each file just before it is needed again and never hit.
    """

    def __init__(self, root: str | Path | None = None, *, benchmark: Benchmark | None = None,
                 space: str | None = None, profile: Profile | None = None, seed: int = 0,
                 device: str | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.max_bytes = default_cache_budget() if max_bytes is None else max_bytes
        self._used: int | None = None  # bytes on disk, measured on first store
        self.benchmark, self.space, self.seed = benchmark, space, seed
        self.profile = profile or get_profile(DEFAULT_PROFILE)
        self.device = str(resolve_device(device))
        self._measurement: Measurement | None = None

    def path(self, key: StatsKey) -> Path:
        return self.root / key.relative_path()

    def get_or_compute(self, key: StatsKey, fn: Callable[[], NetStats]) -> NetStats:
        """The cached statistics of ``key`` (on the CPU), or ``fn()``, stored on the CPU if the budget
        allows and returned where it was computed (on a GPU, scoring then runs there too)."""
        path = self.path(key)
        if path.exists():
            try:
                cached = NetStats.load(path)
            except ValueError:  # torn or foreign file (NetStats.load says which): recompute below
                cached = None
            if cached is not None and key.recorded_in(cached.meta):
                return cached
        stats = fn()
        stats.meta.update(key.fields())
        if self._used is None:
            self._used = sum(f.stat().st_size for f in self.root.rglob("*.pt")) if self.root.exists() else 0
        if self._used + stats.nbytes() <= self.max_bytes:
            stats.to("cpu").save(path)
            self._used += path.stat().st_size
        return stats

    def key(self, arch: str, variant: str = "") -> StatsKey:
        if self.benchmark is None or self.space is None:
            raise ProxylangError("this statistics cache is not bound to a benchmark space")
        return StatsKey(self.space, arch, self.seed, self.profile.key(), variant)

    def compute(self, arch: str) -> NetStats:
        """Statistics of one of the benchmark's networks, without the cache."""
        if self._measurement is None:
            self.key(arch)  # not bound to a benchmark space: the error says so
            self._measurement = Measurement(self.benchmark, self.space, self.profile, self.seed, self.device)
        stats = self._measurement.stats(self._measurement.network(arch))
        stats.meta.update(space=self.space, arch=arch, seed=self.seed, profile=self.profile.key())
        return stats

