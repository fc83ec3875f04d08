"""Measurement profiles: every setting that decides the statistics (and so the scores) of a network.

A proxy's ranking depends on how the untrained network is measured: the input resolution (too small
and a macro network that halves its input six times ends in a 1×1 map, where a 3×3 convolution acts as
a 1×1 one), the batch, what the input images are, how they are normalised, which labels the loss sees,
which layers the classic proxies sum over and the dtype of the statistics. A :class:`Profile` holds all
of them, has a name that every command accepts (``--profile NAME``), and a :meth:`Profile.key` that goes
into every cache path and results header, so scores taken under different settings never mix.

``benchmark`` is NAS-Bench-Suite-Zero's setting, the one behind the reference scores in the data files:
256×256, batch 32, Taskonomy images normalised with mean 0.5 / std 0.5, pixel-wise cross-entropy on the
17 segmentation classes, classic proxies summed over ``Conv2d``/``Linear``. ``lite`` is the default, the
setting that a 2-core CPU can run over a whole space; docs/benchmark.md gives the measurements behind it.

The input batch of a profile is built here too (:func:`input_batch`): seeded white noise, 1/f ("pink")
noise with natural images' power spectrum, crops of the photographs that matplotlib ships, or a folder
of real images with Taskonomy's label convention.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import MISSING, dataclass, replace
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from proxylang.errors import DataError, ProxylangError
from proxylang.schema import bounded, check_ranges

IGNORE_LABEL = -100  # label value that cross-entropy ignores (PyTorch's default ignore_index)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SYNTHETIC_INPUTS = ("white", "pink", "photos")
SYNTHETIC_LABELS = ("uniform", "regions")
# matplotlib's sample photographs: the only real photographs an installed dependency ships
SAMPLE_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
# NASLib's classic proxies sum over these module types (so a decoder's ConvTranspose2d is left out)
NASLIB_SITES = ("Conv2d", "Linear")
# Far above any zero-cost setting (the benchmark's is 256, batch 32); what a proxy may allocate within
# them is the memory budget's call (StatsCache.check_memory, lang.cost).
MAX_RESOLUTION, MAX_BATCH = 4096, 1024


@dataclass(frozen=True)
class Profile:
    """How statistics and classic-proxy scores are taken (see the module docstring).

    ``inputs`` is one of ``SYNTHETIC_INPUTS`` or a folder of images; ``labels`` one of
    ``SYNTHETIC_LABELS`` or a folder of label maps. ``mean``/``std`` normalise pixel values in
    [0, 1]. ``classic_sites`` are the module types the classic proxies sum over (SasWOT and searched
    proxies always see every conv/linear site, decoder included). ``dtype`` is the statistics' dtype.
    """

    name: str
    resolution: int = bounded(MISSING, 4, MAX_RESOLUTION)
    batch_size: int = bounded(MISSING, 2, MAX_BATCH)
    inputs: str = "white"
    labels: str = "uniform"
    mean: float = 0.5
    std: float = 0.5
    classic_sites: tuple[str, ...] = NASLIB_SITES
    dtype: str = "float32"

    def __post_init__(self) -> None:
        check_ranges(self, f"profile {self.name}:")
        if self.inputs not in SYNTHETIC_INPUTS:
            _image_files(Path(self.inputs))  # a missing or empty folder fails now, not at the first network
        elif self.labels not in SYNTHETIC_LABELS:
            raise ProxylangError("a folder of labels needs a folder of images (--images) to pair them with")
        if self.dtype not in ("float32", "float64"):
            raise ProxylangError(f"profile {self.name}: dtype must be float32 or float64, got {self.dtype}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    def key(self) -> str:
        """Every setting in a folder-safe string (cache paths, results files): equal keys, equal
        statistics. A folder of images enters by a digest of its resolved path."""
        sites = "-".join(self.classic_sites)
        raw = (f"r{self.resolution}-b{self.batch_size}-{_source_tag(self.inputs)}-{_source_tag(self.labels)}"
               f"-mean{self.mean:g}-std{self.std:g}-{sites}-{self.dtype}")
        return re.sub(r"[^A-Za-z0-9]+", "-", raw)

    def describe(self) -> str:
        """One line for output headers."""
        return (f"profile {self.name}: {self.resolution}x{self.resolution}, batch {self.batch_size}, "
                f"inputs {self.inputs}, labels {self.labels}, normalised (x-{self.mean:g})/{self.std:g}, "
                f"classic proxies on {'/'.join(self.classic_sites)}, {self.dtype}")

    def with_overrides(self, resolution: int | None = None, batch_size: int | None = None,
                       images: Path | None = None, labels: Path | None = None) -> Profile:
        """This profile with command-line overrides; the name records that it was changed."""
        changes = {k: v for k, v in (("resolution", resolution), ("batch_size", batch_size),
                                     ("inputs", images and str(images)), ("labels", labels and str(labels)))
                   if v is not None}
        if not changes:
            return self
        return replace(self, name=f"{self.name} (with {', '.join(sorted(changes))} changed)", **changes)


def _source_tag(source: str) -> str:
    if source in SYNTHETIC_INPUTS or source in SYNTHETIC_LABELS:
        return source
    digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9]+', '-', Path(source).name).strip('-') or 'dir'}-{digest}"


PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile("benchmark", resolution=256, batch_size=32, inputs="photos", labels="regions"),
    Profile("lite", resolution=128, batch_size=8, inputs="photos", labels="regions"),
]}
DEFAULT_PROFILE = "lite"


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name is a one-line error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProxylangError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}") from None


# ----------------------------------------------------------------------------------------- inputs


def input_batch(profile: Profile, seed: int, num_classes: int) -> tuple[Tensor, Tensor]:
    """The one minibatch every architecture sees under ``profile``: normalised images
    ``(N, 3, r, r)`` and integer labels ``(N, r, r)`` (``IGNORE_LABEL`` where a label is unknown)."""
    n, r = profile.batch_size, profile.resolution
    gen = torch.Generator().manual_seed(seed)
    if profile.inputs == "white":
        pixels = (0.5 + 0.25 * torch.randn(n, 3, r, r, generator=gen))
    elif profile.inputs == "pink":
        pixels = pink_noise(n, r, gen)
    elif profile.inputs == "photos":
        pixels = photo_crops(n, r, gen)
    else:
        files = _pick(_image_files(Path(profile.inputs)), n, gen, profile.inputs)
        pixels = torch.stack([_read_image(p, r, label=False) for p in files])
    images = (pixels - profile.mean) / profile.std
    if profile.labels == "uniform":
        labels = torch.randint(0, num_classes, (n, r, r), generator=gen)
    elif profile.labels == "regions":
        labels = region_labels(pixels, num_classes)
    elif profile.inputs in SYNTHETIC_INPUTS:
        raise ProxylangError("a folder of labels needs a folder of images (--images) to pair them with")
    else:
        by_stem = {p.stem: p for p in _image_files(Path(profile.labels))}
        missing = [p.name for p in files if p.stem not in by_stem]
        if missing:
            raise DataError(f"{profile.labels}: no label image for {missing[0]}")
        labels = taskonomy_labels(torch.stack([_read_image(by_stem[p.stem], r, label=True) for p in files]),
                                  num_classes)
    return images, labels


def pink_noise(n: int, r: int, gen: torch.Generator) -> Tensor:
    """``n`` colour images of 1/f noise (amplitude ∝ 1/frequency, natural images' spectrum), pixel
    values around 0.5 with a photograph's spread, channels correlated as in real images."""
    freq = torch.fft.fftfreq(r)
    radius = torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    radius[0, 0] = 1.0 / r  # no infinite DC term
    white = torch.randn(n, 4, r, r, generator=gen)
    field = torch.fft.ifft2(torch.fft.fft2(white) / radius).real
    field = (field - field.mean(dim=(2, 3), keepdim=True)) / field.std(dim=(2, 3), keepdim=True)
    luminance, colour = field[:, :1], field[:, 1:]
    return (0.5 + 0.22 * luminance + 0.08 * colour).clamp(0.0, 1.0)


def photo_crops(n: int, r: int, gen: torch.Generator) -> Tensor:
    """``n`` seeded random crops (a quarter to all of the shorter side, random flips) of matplotlib's
    sample photographs, resized to ``r``×``r``: real image statistics without a download."""
    import matplotlib
    folder = Path(matplotlib.get_data_path()) / "sample_data"
    photos = []
    for name in SAMPLE_PHOTOS:
        with Image.open(folder / name) as img:
            photos.append(img.convert("RGB"))
    crops = []
    for i in range(n):
        img = photos[i % len(photos)]
        side = min(img.size)
        size = int(side * (0.25 + 0.75 * float(torch.rand((), generator=gen))))
        left = int(float(torch.rand((), generator=gen)) * (img.width - size + 1))
        top = int(float(torch.rand((), generator=gen)) * (img.height - size + 1))
        crop = img.crop((left, top, left + size, top + size)).resize((r, r), Image.BILINEAR)
        data = torch.frombuffer(bytearray(crop.tobytes()), dtype=torch.uint8).reshape(r, r, 3)
        pixels = data.permute(2, 0, 1).float() / 255.0
        crops.append(pixels.flip(-1) if float(torch.rand((), generator=gen)) < 0.5 else pixels)
    return torch.stack(crops)


def region_labels(pixels: Tensor, num_classes: int) -> Tensor:
    """Segmentation-like labels for synthetic inputs: each image's smoothed luminance cut into
    ``num_classes`` equally frequent levels, so classes form connected regions that follow the image
    (as real segment maps do) instead of independent per-pixel noise."""
    smooth = pixels.mean(dim=1, keepdim=True)
    width = 2 * (smooth.shape[-1] // 16) + 1  # two box blurs an eighth of the image wide (odd)
    for _ in range(2):
        smooth = torch.nn.functional.avg_pool2d(smooth, width, stride=1, padding=width // 2,
                                                count_include_pad=False)
    flat = smooth[:, 0].flatten(1)
    levels = torch.linspace(0, 1, num_classes + 1)[1:-1]
    edges = torch.quantile(flat, levels, dim=1).T  # (N, classes - 1)
    labels = torch.searchsorted(edges.contiguous(), flat.contiguous())
    return labels.reshape(pixels.shape[0], *pixels.shape[2:])


def taskonomy_labels(raw: Tensor, num_classes: int) -> Tensor:
    """Taskonomy's ``segmentsemantic`` label convention (NASLib ``semantic_segment_label``): raw value 0
    is merged into 1, then 1 is subtracted, giving classes 0..16; values past the last class are
    ignored by the loss."""
    labels = raw.long().clone()
    labels[labels == 0] = 1
    labels -= 1
    labels[labels >= num_classes] = IGNORE_LABEL
    return labels


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _pick(files: list[Path], n: int, gen: torch.Generator, folder: str) -> list[Path]:
    if n > len(files):
        raise DataError(f"{folder}: {len(files)} images cannot fill a batch of {n}")
    return [files[i] for i in torch.randperm(len(files), generator=gen)[:n].tolist()]


def _read_image(path: Path, resolution: int, label: bool) -> Tensor:
    """Centre-cropped to a square and resized: pixel values in [0, 1], or raw integer label values."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if label else "RGB")
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize(
                (resolution, resolution), Image.NEAREST if label else Image.BILINEAR)
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None
    if label:
        return data.reshape(resolution, resolution).long()
    return data.reshape(resolution, resolution, 3).permute(2, 0, 1).float() / 255.0

