"""Speed of the fused compiler against the per-site eager interpreter, in one process on the same data.

Builds 60 small conv nets (conv + BN + ReLU blocks, then a linear head) of varying depth and width,
extracts their statistics once, and times every expression both ways. Prints one row per expression
(eager, fused on packed statistics, ratio) and the geometric-mean speed-up; also the one-off packing cost.

    python benchmarks/compile_speed.py [--nets 60] [--repeats 3] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

from proxylang import compile_proxy, evaluate_eager, pack, parse
from proxylang.stats.extract import extract_stats

EXPRESSIONS = [
    "sum(lt(softmax(W), relu(G)))", "sum(abs(W * G))", "frobenius(G)", "frobenius(W)", "sum(W * G)",
    "sum(pow(W, 0))", "let c = gt(R, 0)\nslogdet(layersum(gram(c) + gram(1 - c)))", "mean(normalize(A))",
    "kl(W, G)", "cosine(W, G)", "mse(W, G)", "l1loss(A, relu(A))", "sum(logsoftmax(A))",
    "slogdet(gram(W))", "sum(matmul(gram(W), G))", "sum(pairwise(R, R))", "sum(hamming(R, R))",
    "l1norm(sigmoid(W) * exp(G))", "mean(abslog(W)) + sum(W > G)", "normsum(invert(1 + abs(G)))",
    "sum(softmax(W) < relu(G)) + mean(pow(A, 2))", "slogdet(layersum(gram(A)))",
]


def build_net(depth: int, width: int, classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for i in range(depth):
        out = width * (1 + i // 2)
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


def network_stats(count: int, batch: int = 8, resolution: int = 16) -> list:
    stats = []
    for i in range(count):
        torch.manual_seed(i)
        model = build_net(depth=2 + i % 5, width=4 + 2 * (i % 4))
        inputs = torch.randn(batch, 3, resolution, resolution)
        targets = torch.randint(0, 10, (batch,))
        stats.append(extract_stats(model, inputs, targets, nn.functional.cross_entropy))
    return stats


def best_time(fn, repeats: int, device: str = "cpu", budget_s: float = 0.5) -> float:
    """Best of at least ``repeats`` runs, and of as many more as fit in ``budget_s`` (the minimum is the
    figure least disturbed by other processes on a shared machine)."""
    best, spent, runs = math.inf, 0.0, 0
    while runs < repeats or spent < budget_s:
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch, both sides (1: steady timings on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    stats = [s.to(args.device) for s in network_stats(args.nets)]  # both sides on the same device
    sites = sum(len(s.W) for s in stats)
    pack_time = best_time(lambda: pack(stats, args.device), args.repeats, args.device)
    packed = pack(stats, args.device)
    print(f"{args.nets} networks, {sites} conv sites, {sum(len(s.R) for s in stats)} ReLU sites; "
          f"pack once: {pack_time * 1e3:.1f} ms")
    print(f"{'expression':<48} {'eager ms':>9} {'fused ms':>9} {'speed-up':>9}")
    ratios = []
    for text in EXPRESSIONS:
        node = parse(text)
        proxy = compile_proxy(node, device=args.device)
        fused_scores, fused_valid = proxy(packed)
        eager_scores, eager_valid = evaluate_eager(node, stats)
        agree = torch.equal(fused_valid.cpu(), eager_valid) and torch.allclose(
            fused_scores.cpu()[eager_valid], eager_scores[eager_valid], rtol=1e-3, atol=1e-3)
        eager = best_time(lambda n=node: evaluate_eager(n, stats), args.repeats, args.device)
        fused = best_time(lambda p=proxy: p(packed), args.repeats, args.device)
        ratios.append(eager / fused)
        label = " ".join(text.split())
        label = label if len(label) <= 46 else label[:43] + "..."
        print(f"{label:<48} {eager * 1e3:9.2f} {fused * 1e3:9.2f} {eager / fused:8.1f}x"
              f"{'' if agree else '  (scores differ!)'}")
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"geometric-mean speed-up over {len(ratios)} expressions: {geo:.1f}x")


if __name__ == "__main__":
    main()
