"""The ``segsearch`` command: search, latency, train, eval.

Every error the user can cause (a bad file, option or dataset) is printed as one ``error: ...`` line
with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from pathlib import Path
from typing import Any

import click
import torch

from proxylang.cli.common import (
    CommandGroup,
    engine_options,
    memory_budget_option,
    open_executor,
    read_proxy_text,
)
from proxylang.errors import MemoryBudgetError, ProxylangError, short_repr
from proxylang.files import writable_folder
from proxylang.lang.compile import CompiledProxy, compile_proxy
from proxylang.lang.parse import parse
from proxylang.runtime import (
    MEMORY_ENV,
    memory_budget,
    resolve_device,
    set_memory_budget,
    set_threads,
    show_bytes,
)
from segsearch.data import DATASETS, SegmentationDataset
from segsearch.latency import (
    CALIBRATION_NETWORKS,
    Calibration,
    LatencyTable,
    default_table_path,
    device_name,
    measure_latency_ms,
)
from segsearch.network import MAX_CLASSES, ROLES, SMALLEST_SCALE, build_network, estimated_bytes
from segsearch.search import Search, SearchConfig, random_baseline
from segsearch.space import load_arch, save_arch
from segsearch.train import TrainConfig, evaluate, load_checkpoint, train

# Bounds on what options may ask for, so that a typo fails at once instead of exhausting the machine
MAX_SIDE = 8192
MAX_BATCH = 1024
MAX_COUNT = 1000  # architectures a search builds at once: population, parents, calibration, comparison
MAX_WORKERS = 64
SEEDS = click.IntRange(0, 2**32 - 1)


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``1024x2048``) to ``(H, W)``, each side from 1 to :data:`MAX_SIDE`."""
    match = re.fullmatch(r"([0-9]{1,6})x([0-9]{1,6})", text.strip().lower())
    if match is None or not all(1 <= int(side) <= MAX_SIDE for side in match.groups()):
        raise ProxylangError(f"size {short_repr(text)} is not HxW with sides from 1 to {MAX_SIDE} "
                             "(e.g. 1024x2048)")
    return int(match[1]), int(match[2])


class Size(click.ParamType):
    """An ``HxW`` option, checked while the command line is parsed so the error names the option."""

    name = "HxW"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_size(str(value))
        except ProxylangError as exc:
            self.fail(str(exc), param, ctx)


class FiniteFloatRange(click.FloatRange):
    """click's float range without nan (every comparison with it is false, so it passes any bound) and
    without infinities."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{short_repr(value)} is not a finite number", param, ctx)
        return number


POSITIVE = FiniteFloatRange(min=0, min_open=True)


def size_text(size: tuple[int, int]) -> str:
    """``(H, W)`` back to ``HxW``, as messages and arch.json show it."""
    return "{}x{}".format(*size)


def check_batch_memory(batch: int, size: tuple[int, int], num_classes: int, options: str,
                       device: torch.device) -> None:
    """Refuse a batch over the memory budget (``proxylang.runtime.memory_budget``) before anything is
    allocated; the estimate (:func:`segsearch.network.estimated_bytes`) is rough, from a CPU
    statistics pass."""
    need, budget = estimated_bytes(batch, size, num_classes), memory_budget(device)
    if need > budget:
        raise MemoryBudgetError(f"{options}: {batch} image(s) of {size_text(size)} with {num_classes} "
                                f"classes would need about {show_bytes(need)}, over the memory budget of "
                                f"{show_bytes(budget)} ({MEMORY_ENV} or --memory-budget)")


def cache_dir() -> Path:
    """``$SEGSEARCH_CACHE``, else ``~/.cache/segsearch``: where latency tables live by default."""
    return Path(os.environ.get("SEGSEARCH_CACHE") or Path.home() / ".cache" / "segsearch")


def calibrated(table: LatencyTable, size: tuple[int, int]) -> Calibration:
    """The table's calibration at ``size``. Fitting one measures students whole (minutes on a CPU at
    1024x2048), so it is announced first and saved at once."""
    fresh = size not in table.calibrations
    if fresh:
        click.echo(f"calibrating the latency table at {size_text(size)} on {table.calibration_networks} "
                   f"random students measured whole (once per size, kept in {table.path})")
    calibration = table.calibration(size)
    if fresh:
        table.save()
    return calibration


def calibration_text(calibration: Calibration) -> str:
    return f"parts x {calibration.ratio:.3f}, calibrated on {calibration.networks} networks"


def load_proxy(path: Path, device: torch.device) -> CompiledProxy:
    """Parse and compile a ``.px`` file with proxylang."""
    text, source = read_proxy_text(str(path))
    return compile_proxy(parse(text, source), device=device, source=source)


@click.group(cls=CommandGroup)
@memory_budget_option
def main(memory_budget: float | None) -> None:
    """Training-free search of FasterSeg real-time segmenters driven by a proxylang proxy."""
    set_memory_budget(memory_budget)


@main.command()
@click.option("--proxy", "proxy_path", type=click.Path(path_type=Path), required=True,
              help="proxy expression file (.px), e.g. examples/saswot.px")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("arch.json"),
              show_default=True)
@click.option("--resolution", type=Size(), default=size_text(SearchConfig.resolution), show_default=True,
              help=f"HxW of the scoring batch (sides from 8 to {MAX_SIDE})")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=SearchConfig.batch_size,
              show_default=True, help=f"images in the scoring batch (the batch must fit the memory "
                                      f"budget, and batch norm needs two values per channel "
                                      f"at 1/{SMALLEST_SCALE} scale)")
@click.option("--population", type=click.IntRange(2, MAX_COUNT), default=SearchConfig.population,
              show_default=True)
@click.option("--generations", type=click.IntRange(min=0), default=SearchConfig.generations,
              show_default=True)
@click.option("--parents", type=click.IntRange(1, MAX_COUNT), default=SearchConfig.parents,
              show_default=True, help="top-K parents per generation")
@click.option("--calibration", type=click.IntRange(2, MAX_COUNT), default=SearchConfig.calibration_size,
              show_default=True, help="random pre-sample for AVT min/max")
@click.option("--seed", type=SEEDS, default=SearchConfig.seed, show_default=True)
@click.option("--num-classes", type=click.IntRange(1, MAX_CLASSES), default=SearchConfig.num_classes,
              show_default=True)
@click.option("--target-fps", type=POSITIVE, default=None,
              help="reject students predicted slower than this (by the latency table, calibrated at "
                   "--latency-size on a few students measured whole)")
@click.option("--latency-size", type=Size(), default=size_text(SearchConfig.latency_size), show_default=True,
              help=f"HxW the FPS refers to (sides up to {MAX_SIDE}, within the memory budget)")
@click.option("--latency-table", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="latency lookup table file (default: one per device under $SEGSEARCH_CACHE)")
@click.option("--compare-random", type=click.IntRange(0, MAX_COUNT), default=100, show_default=True,
              help="score this many random legal architectures against the result")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="search state, written every generation (default: OUT with .search.json)")
@click.option("--resume", is_flag=True, help="continue the search saved in --checkpoint")
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for torch (default 1 on a CPU: scoring batches are tiny, and extra threads "
                   "only spin-wait on a shared machine)")
@engine_options
def search(proxy_path: Path, out: Path, resolution: tuple[int, int], batch_size: int, population: int,
           generations: int, parents: int, calibration: int, seed: int, num_classes: int,
           target_fps: float | None, latency_size: tuple[int, int], latency_table: Path | None,
           compare_random: int, checkpoint: Path | None, resume: bool, device: str | None,
           threads: int | None, engine: str, address: str | None) -> None:
    """Evolve an architecture by proxy score at initialisation and write it to OUT (arch.json).

    Every option and file is checked before the search starts."""
    dev = resolve_device(device)
    check_batch_memory(batch_size, resolution, num_classes, "--batch-size and --resolution", dev)
    if target_fps is not None:
        check_batch_memory(1, latency_size, num_classes, "--latency-size", dev)
    set_threads(threads if threads is not None or dev.type != "cpu" else 1)
    config = SearchConfig(population=population, generations=generations, parents=min(parents, population),
                          calibration_size=calibration, resolution=resolution, batch_size=batch_size,
                          num_classes=num_classes, seed=seed, target_fps=target_fps,
                          latency_size=latency_size, proxy=str(proxy_path))
    checkpoint = checkpoint or out.with_suffix(".search.json")
    writable_folder(out.parent, "--out")
    writable_folder(checkpoint.parent, "--checkpoint")
    proxy = load_proxy(proxy_path, dev)
    table = None
    if target_fps is not None:
        table_path = latency_table or default_table_path(dev, False, cache_dir())
        writable_folder(table_path.parent, "--latency-table")
        table = LatencyTable(dev, path=table_path, calibration_networks=CALIBRATION_NETWORKS)
    executor = open_executor(engine, address, dev)
    click.get_current_context().call_on_close(executor.close)
    runner = Search(proxy, config, dev, checkpoint, table, log=click.echo, executor=executor)
    if resume:
        runner.resume()
    elif checkpoint.exists():
        raise ProxylangError(f"{checkpoint} holds a search; pass --resume to continue it, or remove it")
    click.echo(f"searching on {device_name(dev)}: scoring at {size_text(resolution)}, batch {batch_size}, "
               f"population {population}, {generations} generations, seed {seed}")
    if table is not None:
        click.echo(f"latency table at {size_text(latency_size)}: "
                   f"{calibration_text(calibrated(table, latency_size))}")
    runner.run()
    best, measured_fps = runner.verified_best()
    info = {"score": best.score, "proxy": str(proxy_path), "seed": seed, "resolution": size_text(resolution),
            "device": device_name(dev), "history": runner.state.history}
    if target_fps is not None:
        info.update(target_fps=target_fps, latency_size=size_text(latency_size), predicted_fps=best.fps,
                    measured_fps=measured_fps)
    save_arch(best.arch, out, {"search": info})
    click.echo(f"wrote {out}: proxy score {best.score:.6g}")
    if compare_random > 0:
        scores = random_baseline(runner.scorer, compare_random, seed, executor=executor)
        finite = [s for s in scores if s != float("-inf")]
        beaten = sum(best.score > s for s in scores)
        click.echo(f"{compare_random} random legal architectures: best {max(scores):.6g}, median "
                   f"{statistics.median(finite) if finite else float('nan'):.6g}, invalid "
                   f"{len(scores) - len(finite)}; searched beats {beaten}/{compare_random}")
    if target_fps is not None:
        verdict = "meets" if measured_fps >= target_fps else "MISSES"
        click.echo(f"measured {measured_fps:.2f} FPS at {size_text(latency_size)} on {device_name(dev)} "
                   f"(predicted {best.fps:.2f}); {verdict} --target-fps {target_fps}")


@main.command()
@click.argument("arch_path", type=click.Path(path_type=Path))
@click.option("--size", type=Size(), default="1024x2048", show_default=True,
              help=f"HxW of the input image (sides up to {MAX_SIDE}, within the memory budget)")
@click.option("--role", type=click.Choice(ROLES), default="student", show_default=True)
@click.option("--num-classes", type=click.IntRange(1, MAX_CLASSES), default=19, show_default=True)
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
@click.option("--fp16", is_flag=True, help="half precision (CUDA only)")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="untimed calls (default 10 on GPU, 1 on CPU)")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="timed calls (default 50 on GPU, 3 on CPU)")
@click.option("--predict", is_flag=True,
              help="also print the lookup table's prediction (calibrating the table at --size first if "
                   "it has no calibration there)")
@click.option("--latency-table", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads for torch")
def latency(arch_path: Path, size: tuple[int, int], role: str, num_classes: int, device: str | None,
            fp16: bool, warmup: int | None, repeats: int | None, predict: bool, latency_table: Path | None,
            threads: int | None) -> None:
    """Measure the latency and FPS of ARCH_PATH's network (batch 1) on this device."""
    set_threads(threads)
    dev = resolve_device(device)
    check_batch_memory(1, size, num_classes, "--size", dev)
    arch = load_arch(arch_path)
    table = None
    if predict:
        table_path = latency_table or default_table_path(dev, fp16, cache_dir())
        writable_folder(table_path.parent, "--latency-table")
        table = LatencyTable(dev, fp16, table_path, calibration_networks=CALIBRATION_NETWORKS)
    net = build_network(arch, num_classes, role)
    if table is not None:
        calibration = calibrated(table, size)
        predicted = table.predict_ms(net, size)
        table.save()
    ms = measure_latency_ms(net, size, dev, fp16, warmup, repeats)
    params = sum(p.numel() for p in net.parameters()) / 1e6
    click.echo(f"{role} of {arch_path} ({params:.2f} M parameters) at {size_text(size)} on "
               f"{device_name(dev)} {'fp16' if fp16 else 'fp32'}: {ms:.2f} ms, {1000.0 / ms:.2f} FPS")
    if table is not None:
        click.echo(f"lookup table predicts {predicted:.2f} ms, {1000.0 / predicted:.2f} FPS "
                   f"(relative error {abs(predicted - ms) / ms:.1%}; {calibration_text(calibration)})")


@main.command(name="train")
@click.argument("arch_path", type=click.Path(path_type=Path))
@click.option("--dataset", type=click.Choice(sorted(DATASETS)), required=True)
@click.option("--data-root", type=click.Path(path_type=Path), required=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=8, show_default=True,
              help="images per step (the batch must fit the memory budget)")
@click.option("--lr", type=POSITIVE, default=0.01, show_default=True)
@click.option("--lr-decay", type=FiniteFloatRange(0, 1, min_open=True), default=0.992, show_default=True,
              help="learning rate factor per epoch")
@click.option("--size", type=Size(), default=None,
              help="HxW training size (default 512x1024 Cityscapes, 360x480 CamVid)")
@click.option("--role", type=click.Choice(ROLES), default="student", show_default=True)
@click.option("--teacher", type=click.Path(path_type=Path), default=None, help="teacher checkpoint for KD")
@click.option("--kd-weight", type=FiniteFloatRange(min=0), default=1.0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True,
              help="output folder")
@click.option("--seed", type=SEEDS, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(0, MAX_WORKERS), default=0, show_default=True,
              help="data loader processes")
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
def train_command(arch_path: Path, dataset: str, data_root: Path, epochs: int, batch_size: int, lr: float,
                  lr_decay: float, size: tuple[int, int] | None, role: str, teacher: Path | None,
                  kd_weight: float, out: Path, seed: int, workers: int, device: str | None) -> None:
    """Train ARCH_PATH's network on a dataset; checkpoints and history.json go to --out."""
    dev = resolve_device(device)
    check_batch_memory(batch_size, size or DATASETS[dataset].default_size, DATASETS[dataset].num_classes,
                       "--batch-size and --size", dev)
    writable_folder(out, "--out")
    arch = load_arch(arch_path)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, kd_weight=kd_weight,
                         role=role, size=size, seed=seed, workers=workers)
    history = train(arch, dataset, data_root, out, config, dev, teacher)
    best = max(history, key=lambda h: h["miou"])
    click.echo(f"best val mIoU {best['miou']:.4f} (epoch {best['epoch']}); checkpoints in {out}")


@main.command(name="eval")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--dataset", type=click.Choice(sorted(DATASETS)), required=True)
@click.option("--data-root", type=click.Path(path_type=Path), required=True)
@click.option("--split", default="val", show_default=True)
@click.option("--size", type=Size(), default=None, help="HxW evaluation size (default: the dataset's)")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=4, show_default=True)
@click.option("--device", default=None, help="cpu or cuda[:i] (default: CUDA when present)")
def eval_command(checkpoint: Path, dataset: str, data_root: Path, split: str, size: tuple[int, int] | None,
                 batch_size: int, device: str | None) -> None:
    """mIoU of a trained CHECKPOINT on a dataset split."""
    dev = resolve_device(device)
    check_batch_memory(batch_size, size or DATASETS[dataset].default_size, DATASETS[dataset].num_classes,
                       "--batch-size and --size", dev)
    model, info = load_checkpoint(checkpoint, dev)
    data = SegmentationDataset(dataset, data_root, split, size)
    if info["num_classes"] != data.num_classes:
        raise ProxylangError(f"{checkpoint} predicts {info['num_classes']} classes, {dataset} has "
                             f"{data.num_classes}")
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size)
    confusion = evaluate(model, loader, dev, progress=True)
    click.echo(f"{dataset} {split}: mIoU {confusion.mean_iou():.4f}, pixel accuracy "
               f"{confusion.pixel_accuracy():.4f} ({len(data)} images)")
