"""Per-layer statistics of one untrained network: the only thing a proxy expression reads.

This is the contract between the stages that *produce* statistics (``proxylang.bench`` for
TransNAS-Bench-101, ``segsearch`` for FasterSeg) and the compiler that *consumes* them. Every tensor
is stored already viewed as a 2-D matrix, so the shape rules of the language are the same for any
network:

===== ============================================ =====================================
input  what it is                                    matrix view (rows, cols)
===== ============================================ =====================================
``W``  weight of a conv/linear layer                  ``(O, K)``: out channels x (in · kh · kw)
``G``  gradient of the loss w.r.t. that weight        ``(O, K)``, paired with ``W`` by module
``A``  output activation of that layer                ``(N, F)``: batch x (O · H · W)
``R``  input of each ReLU-family module (NWOT codes)  ``(N, F_r)``: batch x features
===== ============================================ =====================================

``A``, ``G`` and ``W`` share one list of *conv sites* (one entry per ``nn.Conv2d``/``nn.Linear``, in
module order); ``R`` has its own list of *ReLU sites*, because NWOT's kernel is taken at the
nonlinearities, not at the convolutions.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from proxylang.files import atomic_write

CONV_INPUTS = ("A", "G", "W")
RELU_INPUTS = ("R",)
INPUTS = CONV_INPUTS + RELU_INPUTS


@dataclass
class NetStats:
    """Statistics of one network at initialisation, one 2-D tensor per site (see module docstring)."""

    A: list[torch.Tensor]
    G: list[torch.Tensor]
    W: list[torch.Tensor]
    R: list[torch.Tensor] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.A) == len(self.G) == len(self.W)):
            counts = f"{len(self.A)}, {len(self.G)}, {len(self.W)}"
            raise ValueError(f"A, G and W must have one entry per conv site, got {counts}")
        for name in INPUTS:
            for i, t in enumerate(getattr(self, name)):
                if t.dim() != 2:
                    raise ValueError(f"{name}[{i}] must be a 2-D matrix view, got shape {tuple(t.shape)}")
        for i, (w, g) in enumerate(zip(self.W, self.G, strict=True)):
            if w.shape != g.shape:
                raise ValueError(f"G[{i}] {tuple(g.shape)} does not match W[{i}] {tuple(w.shape)}")

    @property
    def batch_size(self) -> int:
        """N, the shared row count of every A and R matrix."""
        rows = {t.shape[0] for t in self.A + self.R}
        if len(rows) > 1:
            raise ValueError(f"activations disagree on the batch size: {sorted(rows)}")
        return rows.pop() if rows else 0

    def tensors(self, name: str) -> list[torch.Tensor]:
        """The per-site matrices of input ``name`` (one of ``INPUTS``)."""
        if name not in INPUTS:
            raise KeyError(f"unknown statistic {name!r}; expected one of {', '.join(INPUTS)}")
        return getattr(self, name)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> NetStats:
        """A copy on ``device`` (and ``dtype`` if given)."""

        def move(ts: list[torch.Tensor]) -> list[torch.Tensor]:
            return [t.to(device=device, dtype=dtype or t.dtype) for t in ts]

        return NetStats(move(self.A), move(self.G), move(self.W), move(self.R), dict(self.meta))

    def only_sites(self, types: tuple[str, ...]) -> NetStats:
        """The conv sites whose module type (``meta["site_types"]``, written by extraction) is one of
        ``types``, e.g. NASLib's ``("Conv2d", "Linear")`` for the classic proxies; ReLU sites stay."""
        kinds = self.meta.get("site_types")
        if kinds is None or len(kinds) != len(self.W):
            raise ValueError("these statistics do not record their site types")
        keep = [i for i, kind in enumerate(kinds) if kind in types]
        meta = dict(self.meta, site_types=[kinds[i] for i in keep])
        if "sites" in meta:
            meta["sites"] = [meta["sites"][i] for i in keep]
        return NetStats([self.A[i] for i in keep], [self.G[i] for i in keep], [self.W[i] for i in keep],
                        list(self.R), meta)

    def nbytes(self) -> int:
        """Memory held by the tensors, to keep caches bounded."""
        return sum(t.numel() * t.element_size() for name in INPUTS for t in self.tensors(name))

    def save(self, path: str | Path) -> None:
        """Write atomically, so an interrupted run leaves no torn file."""
        atomic_write(path, lambda f: torch.save(
            {"A": self.A, "G": self.G, "W": self.W, "R": self.R, "meta": self.meta}, f))

    @classmethod
    def load(cls, path: str | Path) -> NetStats:
        """Read a file written by :meth:`save`; a torn or foreign file raises ``ValueError``."""
        try:
            d = torch.load(Path(path), map_location="cpu", weights_only=True)
            return cls(d["A"], d["G"], d["W"], d.get("R", []), d.get("meta", {}))
        except (
            OSError,
            RuntimeError,
            KeyError,
            TypeError,
            ValueError,
            IndexError,
            EOFError,
            pickle.UnpicklingError,
        ) as exc:
            raise ValueError(f"{path}: not a readable statistics file ({exc})") from exc
