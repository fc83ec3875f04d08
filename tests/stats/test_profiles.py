"""Measurement profiles: keys, overrides, input sources and Taskonomy's label convention."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from proxylang.bench.transnas import TRANSNAS
from proxylang.errors import DataError, ProxylangError
from proxylang.stats.extract import StatsCache
from proxylang.stats.profiles import (
    IGNORE_LABEL,
    PROFILES,
    Profile,
    get_profile,
    input_batch,
    taskonomy_labels,
)


def test_benchmark_profile_is_nas_bench_suite_zero_setting():
    p = get_profile("benchmark")
    assert (p.resolution, p.batch_size, p.mean, p.std) == (256, 32, 0.5, 0.5)
    assert p.classic_sites == ("Conv2d", "Linear")


def test_every_setting_changes_the_key():
    base = Profile("x", 64, 8)
    changed = [replace(base, resolution=128), replace(base, batch_size=16), replace(base, inputs="pink"),
               replace(base, labels="regions"), replace(base, mean=0.4), replace(base, std=0.2),
               replace(base, classic_sites=("Conv2d",)), replace(base, dtype="float64")]
    keys = {base.key()} | {p.key() for p in changed}
    assert len(keys) == len(changed) + 1
    assert replace(base, name="other").key() == base.key()  # the name is a label, not a setting


def test_profile_goes_into_cache_paths(tmp_path):
    lite, bench = (StatsCache(tmp_path, benchmark=TRANSNAS, space="micro", profile=PROFILES[n])
                   for n in ("lite", "benchmark"))
    assert lite.path(lite.key("(1, 2)")) != bench.path(bench.key("(1, 2)"))
    assert PROFILES["lite"].key() in str(lite.path(lite.key("(1, 2)")))


def test_overrides_rename_and_unknown_profiles_fail():
    p = get_profile("lite").with_overrides(resolution=32)
    assert p.resolution == 32 and "changed" in p.name and p.key() != get_profile("lite").key()
    assert get_profile("lite").with_overrides() is get_profile("lite")
    with pytest.raises(ProxylangError, match="unknown profile 'huge'"):
        get_profile("huge")
    with pytest.raises(ProxylangError, match="profile bad: resolution must be between 4 and 4096, got 2"):
        Profile("bad", 2, 8)


@pytest.mark.parametrize("inputs", ["white", "pink", "photos"])
@pytest.mark.parametrize("labels", ["uniform", "regions"])
def test_synthetic_batches_are_seeded_and_shaped(inputs, labels):
    p = Profile("t", 16, 3, inputs, labels)
    x, y = input_batch(p, 1, 17)
    x2, y2 = input_batch(p, 1, 17)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, input_batch(p, 2, 17)[0])
    assert x.shape == (3, 3, 16, 16) and y.shape == (3, 16, 16)
    assert int(y.min()) >= 0 and int(y.max()) < 17
    assert -1.01 <= float(x.min()) and float(x.max()) <= 1.01 or inputs == "white"  # (x - 0.5) / 0.5


def test_region_labels_are_equally_frequent_connected_levels():
    x, y = input_batch(Profile("t", 64, 2, "pink", "regions"), 0, 17)
    counts = torch.bincount(y.flatten(), minlength=17)
    assert counts.min() > 0.5 * counts.float().mean()  # every class present, roughly balanced
    same_as_right = (y[:, :, 1:] == y[:, :, :-1]).float().mean()
    assert same_as_right > 0.5  # regions, not per-pixel noise (uniform labels: ~1/17)


def test_taskonomy_label_mapping_on_a_hand_made_map():
    raw = torch.tensor([[0, 1, 2], [17, 18, 255]])
    assert taskonomy_labels(raw, 17).tolist() == [[0, 0, 1], [16, IGNORE_LABEL, IGNORE_LABEL]]


def test_image_folders_use_taskonomy_conventions(tmp_path):
    from PIL import Image

    images, labels = tmp_path / "img", tmp_path / "lab"
    images.mkdir(), labels.mkdir()
    for i in range(3):
        Image.new("RGB", (12, 10), (255, 0, 0)).save(images / f"im{i}.png")
        Image.new("L", (12, 10), 3 if i else 99).save(labels / f"im{i}.png")
    p = get_profile("lite").with_overrides(resolution=4, batch_size=3, images=images, labels=labels)
    x, y = input_batch(p, 0, 17)
    assert x.shape == (3, 3, 4, 4) and y.shape == (3, 4, 4)
    assert torch.allclose(x[:, 0], torch.ones(3, 4, 4)) and torch.allclose(x[:, 1], -torch.ones(3, 4, 4))
    assert set(y.unique().tolist()) == {2, IGNORE_LABEL}  # raw 3 is class 2; 99 is not a class
    with pytest.raises(DataError, match="cannot fill"):
        input_batch(replace(p, batch_size=4), 0, 17)
    (images / "bad.png").write_text("not an image")
    with pytest.raises(DataError, match="cannot read image"):
        input_batch(replace(p, batch_size=4), 0, 17)
    with pytest.raises(ProxylangError, match="needs a folder of images"):
        input_batch(replace(p, inputs="white"), 0, 17)
