"""The ``segsearch`` command: search, latency, train, eval.

Every error the user can cause (a bad file, option or dataset) is printed as one ``error: ...`` line
with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import click
import torch

from proxylang.cli.common import CommandGroup, read_proxy_text
from proxylang.errors import ProxylangError
from proxylang.lang.compile import compile_proxy
from proxylang.lang.parse import parse
from proxylang.runtime import resolve_device, set_threads
from segsearch.data import DATASETS, SegmentationDataset
from segsearch.latency import (
    LatencyTable,
    default_table_path,
    device_name,
    measure_latency_ms,
)
from segsearch.network import ROLES, build_network
from segsearch.search import Search, SearchConfig, random_baseline
from segsearch.space import load_arch, save_arch
from segsearch.train import TrainConfig, evaluate, load_checkpoint, train


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``1024x2048``) to ``(H, W)``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ProxylangError(f"size {text!r} is not HxW with positive integers (e.g. 1024x2048)")
    return int(parts[0]), int(parts[1])


def cache_dir() -> Path:
    """``$SEGSEARCH_CACHE``, else ``~/.cache/segsearch``: where latency tables live by default."""
    return Path(os.environ.get("SEGSEARCH_CACHE") or Path.home() / ".cache" / "segsearch")


def load_proxy(path: Path, device: torch.device):
    """Parse and compile a ``.px`` file with proxylang."""
    text, source = read_proxy_text(str(path))
    return compile_proxy(parse(text, source), device=device, source=source)


@click.group(cls=CommandGroup)
def main() -> None:
    """Training-free search of FasterSeg real-time segmenters driven by a proxylang proxy."""


@main.command()
@click.option("--proxy", "proxy_path", type=click.Path(path_type=Path), required=True,
              help="proxy expression file (.px), e.g. examples/saswot.px")
@click.option("--out", type=click.Path(path_type=Path), default=Path("arch.json"), show_default=True)
@click.option("--resolution", default="{}x{}".format(*SearchConfig.resolution), show_default=True,
              help="HxW of the scoring batch")
@click.option("--batch-size", default=SearchConfig.batch_size, show_default=True,
              help="images in the scoring batch")
@click.option("--population", default=SearchConfig.population, show_default=True)
@click.option("--generations", default=SearchConfig.generations, show_default=True)
@click.option("--parents", default=SearchConfig.parents, show_default=True,
              help="top-K parents per generation")
@click.option("--calibration", default=SearchConfig.calibration_size, show_default=True,
              help="random pre-sample for AVT min/max")
@click.option("--seed", default=SearchConfig.seed, show_default=True)
@click.option("--num-classes", default=SearchConfig.num_classes, show_default=True)
@click.option("--target-fps", type=float, default=None, help="reject students predicted slower than this")
@click.option("--latency-size", default="{}x{}".format(*SearchConfig.latency_size), show_default=True,
              help="HxW the FPS refers to")
@click.option("--latency-table", type=click.Path(path_type=Path), default=None,
              help="latency lookup table file (default: one per device under $SEGSEARCH_CACHE)")
@click.option("--compare-random", default=100, show_default=True,
              help="score this many random legal architectures against the result")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="search state, written every generation (default: OUT with .search.json)")
@click.option("--resume", is_flag=True, help="continue the search saved in --checkpoint")
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for torch (default 1 on a CPU: scoring batches are tiny, and extra threads "
                   "only spin-wait on a shared machine)")
def search(proxy_path: Path, out: Path, resolution: str, batch_size: int, population: int, generations: int,
           parents: int, calibration: int, seed: int, num_classes: int, target_fps: float | None,
           latency_size: str, latency_table: Path | None, compare_random: int, checkpoint: Path | None,
           resume: bool, device: str | None, threads: int | None) -> None:
    """Evolve an architecture by proxy score at initialisation and write it to OUT (arch.json)."""
    dev = resolve_device(device)
    set_threads(threads if threads is not None or dev.type != "cpu" else 1)
    config = SearchConfig(population=population, generations=generations, parents=min(parents, population),
                          calibration_size=calibration, resolution=parse_size(resolution),
                          batch_size=batch_size, num_classes=num_classes, seed=seed, target_fps=target_fps,
                          latency_size=parse_size(latency_size), proxy=str(proxy_path))
    proxy = load_proxy(proxy_path, dev)
    table = None
    if target_fps is not None:
        table = LatencyTable(dev, path=latency_table or default_table_path(dev, False, cache_dir()))
    checkpoint = checkpoint or out.with_suffix(".search.json")
    runner = Search(proxy, config, dev, checkpoint, table, log=click.echo)
    if resume:
        runner.resume()
    elif checkpoint.exists():
        raise ProxylangError(f"{checkpoint} holds a search; pass --resume to continue it, or remove it")
    click.echo(f"searching on {device_name(dev)}: scoring at {resolution}, batch {batch_size}, "
               f"population {population}, {generations} generations, seed {seed}")
    runner.run()
    best, measured_fps = runner.verified_best()
    info = {"score": best.score, "proxy": str(proxy_path), "seed": seed, "resolution": resolution,
            "device": device_name(dev), "history": runner.state.history}
    if target_fps is not None:
        info.update(target_fps=target_fps, latency_size=latency_size, predicted_fps=best.fps,
                    measured_fps=measured_fps)
    save_arch(best.arch, out, {"search": info})
    click.echo(f"wrote {out}: proxy score {best.score:.6g}")
    if compare_random > 0:
        scores = random_baseline(runner.scorer, compare_random, seed)
        finite = [s for s in scores if s != float("-inf")]
        beaten = sum(best.score > s for s in scores)
        click.echo(f"{compare_random} random legal architectures: best {max(scores):.6g}, median "
                   f"{statistics.median(finite) if finite else float('nan'):.6g}, invalid "
                   f"{len(scores) - len(finite)}; searched beats {beaten}/{compare_random}")
    if target_fps is not None:
        verdict = "meets" if measured_fps >= target_fps else "MISSES"
        click.echo(f"measured {measured_fps:.2f} FPS at {latency_size} on {device_name(dev)} (predicted "
                   f"{best.fps:.2f}); {verdict} --target-fps {target_fps}")


@main.command()
@click.argument("arch_path", type=click.Path(path_type=Path))
@click.option("--size", default="1024x2048", show_default=True, help="HxW of the input image")
@click.option("--role", type=click.Choice(ROLES), default="student", show_default=True)
@click.option("--num-classes", default=19, show_default=True)
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
@click.option("--fp16", is_flag=True, help="half precision (CUDA only)")
@click.option("--warmup", type=int, default=None, help="untimed calls (default 10 on GPU, 1 on CPU)")
@click.option("--repeats", type=int, default=None, help="timed calls (default 50 on GPU, 3 on CPU)")
@click.option("--predict", is_flag=True, help="also print the lookup table's prediction")
@click.option("--latency-table", type=click.Path(path_type=Path), default=None)
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads for torch")
def latency(arch_path: Path, size: str, role: str, num_classes: int, device: str | None, fp16: bool,
            warmup: int | None, repeats: int | None, predict: bool, latency_table: Path | None,
            threads: int | None) -> None:
    """Measure the latency and FPS of ARCH_PATH's network (batch 1) on this device."""
    set_threads(threads)
    dev = resolve_device(device)
    hw = parse_size(size)
    net = build_network(load_arch(arch_path), num_classes, role)
    if predict:
        table = LatencyTable(dev, fp16, latency_table or default_table_path(dev, fp16, cache_dir()))
        predicted = table.predict_ms(net, hw)
        table.save()
    ms = measure_latency_ms(net, hw, dev, fp16, warmup, repeats)
    params = sum(p.numel() for p in net.parameters()) / 1e6
    click.echo(f"{role} of {arch_path} ({params:.2f} M parameters) at {size} on {device_name(dev)} "
               f"{'fp16' if fp16 else 'fp32'}: {ms:.2f} ms, {1000.0 / ms:.2f} FPS")
    if predict:
        click.echo(f"lookup table predicts {predicted:.2f} ms, {1000.0 / predicted:.2f} FPS "
                   f"(relative error {abs(predicted - ms) / ms:.1%})")


@main.command(name="train")
@click.argument("arch_path", type=click.Path(path_type=Path))
@click.option("--dataset", type=click.Choice(sorted(DATASETS)), required=True)
@click.option("--data-root", type=click.Path(path_type=Path), required=True)
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--lr", default=0.01, show_default=True)
@click.option("--lr-decay", default=0.992, show_default=True, help="learning rate factor per epoch")
@click.option("--size", default=None, help="HxW training size (default 512x1024 Cityscapes, 360x480 CamVid)")
@click.option("--role", type=click.Choice(ROLES), default="student", show_default=True)
@click.option("--teacher", type=click.Path(path_type=Path), default=None, help="teacher checkpoint for KD")
@click.option("--kd-weight", default=1.0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--workers", default=0, show_default=True, help="data loader processes")
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
def train_command(arch_path: Path, dataset: str, data_root: Path, epochs: int, batch_size: int, lr: float,
                  lr_decay: float, size: str | None, role: str, teacher: Path | None, kd_weight: float,
                  out: Path, seed: int, workers: int, device: str | None) -> None:
    """Train ARCH_PATH's network on a dataset; checkpoints and history.json go to --out."""
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ProxylangError("--epochs and --batch-size must be at least 1 and --lr positive")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, kd_weight=kd_weight,
                         role=role, size=parse_size(size) if size else None, seed=seed, workers=workers)
    history = train(load_arch(arch_path), dataset, data_root, out, config, resolve_device(device), teacher)
    best = max(history, key=lambda h: h["miou"])
    click.echo(f"best val mIoU {best['miou']:.4f} (epoch {best['epoch']}); checkpoints in {out}")


@main.command(name="eval")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--dataset", type=click.Choice(sorted(DATASETS)), required=True)
@click.option("--data-root", type=click.Path(path_type=Path), required=True)
@click.option("--split", default="val", show_default=True)
@click.option("--size", default=None, help="HxW evaluation size (default: the dataset's)")
@click.option("--batch-size", default=4, show_default=True)
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
def eval_command(checkpoint: Path, dataset: str, data_root: Path, split: str, size: str | None,
                 batch_size: int, device: str | None) -> None:
    """mIoU of a trained CHECKPOINT on a dataset split."""
    dev = resolve_device(device)
    model, info = load_checkpoint(checkpoint, dev)
    data = SegmentationDataset(dataset, data_root, split, parse_size(size) if size else None)
    if info["num_classes"] != data.num_classes:
        raise ProxylangError(f"{checkpoint} predicts {info['num_classes']} classes, {dataset} has "
                             f"{data.num_classes}")
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size)
    confusion = evaluate(model, loader, dev, progress=True)
    click.echo(f"{dataset} {split}: mIoU {confusion.mean_iou():.4f}, pixel accuracy "
               f"{confusion.pixel_accuracy():.4f} ({len(data)} images)")
