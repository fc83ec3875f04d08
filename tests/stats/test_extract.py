"""Statistics extraction on small hand-built networks: site rules, shapes, pairing, batches, cache."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import noise_batch
from torch import nn

from proxylang.bench.benchmark import Benchmark
from proxylang.bench.transnas import TRANSNAS
from proxylang.errors import MemoryBudgetError, ProxylangError
from proxylang.stats.extract import (
    STATS_FORMAT,
    StatsCache,
    StatsKey,
    extract_stats,
    weight_matrix,
)
from proxylang.stats.netstats import NetStats
from proxylang.stats.profiles import get_profile


class TinySegNet(nn.Module):
    """Encoder conv -> LeakyReLU -> decoder ConvTranspose -> classifier conv; one unused conv."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.act = nn.LeakyReLU(0.2)
        self.unused = nn.Conv2d(4, 4, 1)
        self.dec = nn.ConvTranspose2d(4, 6, 2, stride=2)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Conv2d(6, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.dec(self.act(self.enc(x)))))


def tiny_stats(**kwargs) -> tuple[TinySegNet, NetStats]:
    torch.manual_seed(0)
    net = TinySegNet()
    x, y = noise_batch(2, 8, 3, seed=0)
    return net, extract_stats(net, x, y, **kwargs)


def test_sites_shapes_and_pairing_by_module():
    net, stats = tiny_stats()
    assert stats.meta["sites"] == ["enc", "dec", "head"]  # the unused conv is not a site
    assert [tuple(w.shape) for w in stats.W] == [(4, 27), (6, 16), (3, 6)]
    assert [tuple(a.shape) for a in stats.A] == [(2, 4 * 16), (2, 6 * 64), (2, 3 * 64)]
    assert [tuple(r.shape) for r in stats.R] == [(2, 4 * 16), (2, 6 * 64)]
    assert torch.equal(stats.W[0], net.enc.weight.detach().reshape(4, -1))
    assert all(p.grad is None for p in net.parameters())  # gradients freed after extraction
    assert all(t.dtype == torch.float32 and not t.requires_grad for t in stats.A + stats.G + stats.W)


def test_gradient_matches_autograd_for_each_module():
    net, stats = tiny_stats()
    x, y = noise_batch(2, 8, 3, seed=0)
    nn.functional.cross_entropy(net(x), y).backward()
    assert torch.allclose(stats.G[0], net.enc.weight.grad.reshape(4, -1))
    assert torch.allclose(stats.G[1], weight_matrix(net.dec, net.dec.weight.grad))
    assert torch.allclose(stats.G[2], net.head.weight.grad.reshape(3, -1))


def test_relu_input_is_captured_before_the_in_place_relu_overwrites_it():
    net, stats = tiny_stats()
    assert (stats.R[1] < 0).any()  # input of ReLU(inplace=True) keeps its negative values
    assert torch.equal(stats.R[1], stats.A[1])  # and the decoder output is not rectified either


def test_transposed_conv_weight_is_laid_out_out_by_in():
    deconv = nn.ConvTranspose2d(4, 6, 3, groups=2)
    w = weight_matrix(deconv, deconv.weight)  # stored (in=4, out/groups=3, 3, 3)
    assert w.shape == (6, 2 * 9)
    # output channel 4 belongs to group 1 (out 3..5), local index 1, reading input channels 2..3
    assert torch.equal(w[4], deconv.weight[2:4, 1].reshape(-1))


def test_naslib_site_types_drop_the_transposed_conv():
    _, stats = tiny_stats(site_types=(nn.Conv2d, nn.Linear))
    assert stats.meta["sites"] == ["enc", "head"]


def test_only_sites_keeps_the_named_module_types():
    _, stats = tiny_stats()
    kept = stats.only_sites(("Conv2d", "Linear"))
    assert kept.meta["sites"] == ["enc", "head"] and kept.meta["site_types"] == ["Conv2d", "Conv2d"]
    assert torch.equal(kept.W[1], stats.W[2]) and torch.equal(kept.G[1], stats.G[2])
    assert len(kept.R) == len(stats.R)  # ReLU sites are NWOT's, untouched


def test_linear_network_with_class_labels():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    stats = extract_stats(net, torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0]))
    assert [tuple(w.shape) for w in stats.W] == [(5, 12), (3, 5)]
    assert stats.batch_size == 4


def test_mismatched_labels_are_a_user_error():
    net = TinySegNet()
    with pytest.raises(ProxylangError, match="do not match"):
        extract_stats(net, torch.randn(2, 3, 8, 8), torch.zeros(2, 4, 4, dtype=torch.long))


def test_mode_is_restored():
    net = TinySegNet().eval()
    extract_stats(net, *noise_batch(2, 8, 3))
    assert not net.training


def test_cache_computes_once_and_recovers_from_a_corrupt_file(tmp_path):
    cache = StatsCache(tmp_path)
    key = StatsKey("micro", "(1, 2, 3)", seed=0, profile="p")
    calls = []

    def compute() -> NetStats:
        calls.append(1)
        return tiny_stats()[1]

    first = cache.get_or_compute(key, compute)
    second = cache.get_or_compute(key, compute)
    assert len(calls) == 1 and torch.equal(first.A[0], second.A[0])
    assert cache.path(key).name == "1-2-3.pt"
    cache.path(key).write_bytes(b"torn")
    cache.get_or_compute(key, compute)
    assert len(calls) == 2 and NetStats.load(cache.path(key)).meta["sites"] == ["enc", "dec", "head"]


def test_cache_never_reads_a_file_written_for_another_key(tmp_path):
    """A statistics file copied over another architecture's (or from another seed or profile) is
    recomputed, not silently read as that architecture's statistics."""
    cache = StatsCache(tmp_path)
    one, other = StatsKey("micro", "(1, 2)"), StatsKey("micro", "(2, 1)")
    first, second = tiny_stats()[1], tiny_stats()[1]
    second.W[0].add_(1.0)
    cache.get_or_compute(one, lambda: first)
    cache.path(other).parent.mkdir(parents=True, exist_ok=True)
    cache.path(other).write_bytes(cache.path(one).read_bytes())  # the swap
    got = cache.get_or_compute(other, lambda: second)
    assert torch.equal(got.W[0], second.W[0]) and got.meta["arch"] == "(2, 1)"
    assert NetStats.load(cache.path(other)).meta["arch"] == "(2, 1)"  # and the file is rewritten
    reread = cache.get_or_compute(other, lambda: first)
    assert torch.equal(reread.W[0], second.W[0])  # now a hit


@pytest.mark.parametrize("edit", [
    lambda meta: meta.pop("format"),  # written before files carried their format
    lambda meta: meta.update(format="proxylang-stats-0"),  # an older format
    lambda meta: meta.pop("arch"),  # a key it does not record cannot be checked
])
def test_cache_recomputes_a_file_of_another_format_or_an_incomplete_key(tmp_path, edit):
    cache, key = StatsCache(tmp_path), StatsKey("micro", "(1, 2)")
    old, fresh = tiny_stats()[1], tiny_stats()[1]
    fresh.W[0].add_(1.0)
    old.meta.update(key.fields())
    edit(old.meta)
    old.save(cache.path(key))
    got = cache.get_or_compute(key, lambda: fresh)
    assert torch.equal(got.W[0], fresh.W[0]) and got.meta["format"] == STATS_FORMAT


def test_cache_stops_storing_at_its_disk_budget(tmp_path):
    stats = tiny_stats()[1]
    cache = StatsCache(tmp_path, max_bytes=int(2.5 * stats.nbytes()))
    for arch in "abcd":
        got = cache.get_or_compute(StatsKey("micro", arch), lambda: stats)
        assert torch.equal(got.W[0], stats.W[0])
    assert sorted(p.stem for p in tmp_path.rglob("*.pt")) == ["a", "b"]


def test_cache_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROXYLANG_CACHE", str(tmp_path))
    monkeypatch.setenv("PROXYLANG_CACHE_GB", "0.5")
    assert StatsCache().root == tmp_path and StatsCache().max_bytes == 2**29
    monkeypatch.setenv("PROXYLANG_CACHE_GB", "lots")
    with pytest.raises(ProxylangError, match="PROXYLANG_CACHE_GB"):
        StatsCache()
    monkeypatch.delenv("PROXYLANG_CACHE_GB")
    with pytest.raises(ProxylangError, match="not bound"):
        StatsCache().key("(1, 2)")


def test_a_composite_block_named_relu_is_not_a_relu_site():
    class ReLUConvBN(nn.Sequential):
        pass

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 1), ReLUConvBN(nn.ReLU(), nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)))
    stats = extract_stats(net, *noise_batch(2, 4, 3))
    assert len(stats.R) == 1 and torch.equal(stats.R[0], stats.A[0])


def _recording(built: list[str]) -> Benchmark:
    """TransNAS-Bench-101, noting the device of every network it builds."""
    def build(space: str, arch: str) -> nn.Module:
        model = TRANSNAS.build_network(space, arch)
        built.append(next(model.parameters()).device.type)
        return model

    return replace(TRANSNAS, build_network=build)


def test_a_network_over_the_memory_budget_is_refused_before_anything_is_allocated(tmp_path, budget):
    built: list[str] = []
    profile = get_profile("benchmark").with_overrides(resolution=512)
    cache = StatsCache(tmp_path, benchmark=_recording(built), space="micro", profile=profile, device="cpu")
    budget(8 * 2**30)
    refused = (r"measuring micro arch \(1, 0, 0, 2, 1, 0\) at 512x512, batch 32 needs about 1\d\.\d GB \(its "
               r"statistics alone 5\.\d GB\), over the memory budget of 8\.0 GB")
    with pytest.raises(MemoryBudgetError, match=refused):
        cache.compute("(1, 0, 0, 2, 1, 0)")
    assert built == ["meta"]  # only the shapes pass ran
    assert not list(tmp_path.rglob("*.pt"))


def test_the_memory_check_stops_once_networks_are_far_under_the_budget(tmp_path, budget):
    built: list[str] = []
    profile = get_profile("lite").with_overrides(resolution=32, batch_size=2)
    cache = StatsCache(tmp_path, benchmark=_recording(built), space="micro", profile=profile, device="cpu")
    budget(2**32)
    for arch in ("(1, 0, 0, 2, 1, 0)", "(1, 1, 0, 3, 1, 2)"):
        cache.compute(arch)
    assert built == ["meta", "cpu", "cpu"]
