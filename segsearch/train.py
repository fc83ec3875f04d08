"""Retraining a searched architecture: SGD with exponential learning-rate decay, optional knowledge
distillation from a trained teacher, mIoU on the validation split after every epoch, checkpoints.

A checkpoint holds the architecture, the role and the class count next to the weights, so
``segsearch eval`` and a student's ``--teacher`` rebuild the network without any other file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from proxylang.errors import DataError
from proxylang.files import atomic_write
from segsearch.data import SegmentationDataset
from segsearch.metrics import IGNORE_INDEX, ConfusionMatrix
from segsearch.network import MAX_CLASSES, ROLES, SegNet, build_network, fits_batch_norm, smallest_scale
from segsearch.space import Arch, ArchError, arch_from_dict

CHECKPOINT_FORMAT = "segsearch-checkpoint/1"


@dataclass(frozen=True)
class TrainConfig:
    """Defaults follow FasterSeg's retraining (SGD, momentum 0.9, weight decay 5e-4, lr x0.992 per
    epoch); distillation is pixel-wise KL between softened teacher and student predictions."""

    epochs: int = 10
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay: float = 0.992
    kd_weight: float = 1.0
    kd_temperature: float = 1.0
    role: str = "student"
    size: tuple[int, int] | None = None
    seed: int = 0
    workers: int = 0


def save_checkpoint(path: Path, model: SegNet, dataset: str, epoch: int, miou: float) -> None:
    """Write atomically, so an interrupted run never leaves a torn checkpoint."""
    atomic_write(path, lambda f: torch.save(
        {"format": CHECKPOINT_FORMAT, "arch": model.arch.to_dict(), "role": model.role,
         "num_classes": model.num_classes, "dataset": dataset, "epoch": epoch, "miou": miou,
         "state_dict": model.state_dict()}, f))


def load_checkpoint(path: str | Path, device: torch.device) -> tuple[SegNet, dict]:
    """The network stored in ``path`` (on ``device``) and the checkpoint's other fields."""
    if not Path(path).is_file():  # torch would wait forever on a pipe
        raise DataError(f"{path}: cannot read the checkpoint: no such file, or not a regular file")
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler raises many types for a foreign or torn file
        raise DataError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not a segsearch checkpoint")
    classes, role = data.get("num_classes"), data.get("role")
    if isinstance(classes, bool) or not isinstance(classes, int) or not 1 <= classes <= MAX_CLASSES:
        raise DataError(f"{path}: the class count must be an integer from 1 to {MAX_CLASSES}")
    if role not in ROLES:
        raise DataError(f"{path}: the role must be one of {', '.join(ROLES)}")
    try:
        model = build_network(arch_from_dict(data.get("arch")), classes, role)
        model.load_state_dict(data.get("state_dict"))
    except ArchError as exc:
        raise DataError(f"{path}: {exc}") from None
    except (TypeError, AttributeError, RuntimeError):  # no mapping of tensors, or not the architecture's
        raise DataError(f"{path}: its weights do not fit its architecture") from None
    return model.to(device), {k: v for k, v in data.items() if k != "state_dict"}


@torch.no_grad()
def evaluate(model: SegNet, loader: DataLoader, device: torch.device,
             progress: bool = False) -> ConfusionMatrix:
    """Confusion matrix of ``model``'s argmax predictions over ``loader``."""
    model.eval()
    confusion = ConfusionMatrix(model.num_classes)
    for images, labels in tqdm(loader, desc="eval", leave=False, disable=not progress):
        confusion.update(model(images.to(device)).argmax(1).cpu(), labels)
    return confusion


def distillation_loss(student: Tensor, teacher: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """KL(teacher || student) of the softened class distributions, averaged over labelled pixels."""
    log_p = F.log_softmax(student / temperature, dim=1)
    q = F.softmax(teacher / temperature, dim=1)
    per_pixel = (q * (q.clamp_min(1e-12).log() - log_p)).sum(1)
    keep = labels != IGNORE_INDEX
    return per_pixel[keep].mean() * temperature**2 if keep.any() else per_pixel.sum() * 0.0


def train(arch: Arch, dataset: str, data_root: str | Path, out_dir: str | Path, config: TrainConfig,
          device: torch.device, teacher_checkpoint: str | Path | None = None,
          progress: bool = True) -> list[dict]:
    """Train ``arch`` (as ``config.role``) on ``dataset``'s train split, evaluate mIoU on its
    validation split after every epoch, keep ``last.pt`` and ``best.pt`` in ``out_dir``; returns the
    per-epoch history (also written to ``history.json``)."""
    torch.manual_seed(config.seed)
    train_set = SegmentationDataset(dataset, data_root, "train", config.size, train=True, seed=config.seed)
    last_batch = len(train_set) % config.batch_size or config.batch_size
    if not fits_batch_norm(last_batch, train_set.size, smallest_scale(arch)):
        height, width = train_set.size
        raise DataError(f"{data_root}: the last training batch would hold {last_batch} image of "
                        f"{height}x{width}, too small for batch norm; change --batch-size or use a "
                        "larger --size")
    val_set = SegmentationDataset(dataset, data_root, train_set.spec.val_split, config.size)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=False,
                        num_workers=config.workers, generator=torch.Generator().manual_seed(config.seed))
    val_loader = DataLoader(val_set, batch_size=config.batch_size, num_workers=config.workers)
    model = build_network(arch, train_set.num_classes, config.role).to(device)
    teacher = None
    if teacher_checkpoint is not None:
        teacher, info = load_checkpoint(teacher_checkpoint, device)
        if info["num_classes"] != train_set.num_classes:
            raise DataError(f"{teacher_checkpoint}: teacher predicts {info['num_classes']} classes, "
                            f"{dataset} has {train_set.num_classes}")
        teacher.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    best = -1.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, batches = 0.0, 0
        for images, labels in tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", leave=False,
                                   disable=not progress):
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(images)
                loss = loss + config.kd_weight * distillation_loss(logits, teacher_logits, labels,
                                                                   config.kd_temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, batches = total + float(loss.detach()), batches + 1
        schedule.step()
        confusion = evaluate(model, val_loader, device)
        miou = confusion.mean_iou()
        history.append({"epoch": epoch, "loss": total / max(batches, 1), "miou": miou,
                        "pixel_accuracy": confusion.pixel_accuracy(), "lr": optimizer.param_groups[0]["lr"]})
        save_checkpoint(out / "last.pt", model, dataset, epoch, miou)
        if miou > best:
            best = miou
            save_checkpoint(out / "best.pt", model, dataset, epoch, miou)
        (out / "history.json").write_text(json.dumps({"config": asdict(config), "epochs": history}, indent=1))
        if progress:
            tqdm.write(f"epoch {epoch}: loss {history[-1]['loss']:.4f}  val mIoU {miou:.4f}")
    return history
