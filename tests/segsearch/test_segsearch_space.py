import json
import random

import pytest

from proxylang.errors import DataError
from segsearch.space import (
    MAX_LAYERS,
    OPS,
    Arch,
    ArchError,
    arch_from_dict,
    channels,
    check_arch,
    is_legal,
    load_arch,
    random_arch,
    save_arch,
)


def _arch(layers=6, beta=((0, 1, 0, 1, 0, 0), (0, 0, 0, 0, 0, 0)), op=1, ratio=4):
    return Arch(tuple((op, op, op) for _ in range(layers)), beta, tuple((ratio,) * 3 for _ in range(layers)))


def test_fasterseg_channel_rule():
    assert [channels(s, 1.0) for s in range(3)] == [96, 192, 384]
    assert channels(0, 8 / 12) == 64


def test_random_archs_are_legal_and_varied():
    rng = random.Random(0)
    archs = [random_arch(rng) for _ in range(50)]
    assert all(is_legal(a) for a in archs)
    assert len({a.key() for a in archs}) == 50
    assert all(a.num_layers == 16 and a.num_branches == 2 for a in archs)
    assert {tuple(sorted(a.final_scale(b) for b in range(2))) for a in archs} == {(0, 1), (0, 2), (1, 2)}


def test_path_follows_beta():
    arch = _arch()
    assert arch.path(0) == [0, 0, 1, 1, 2, 2, 2]
    assert arch.final_scale(0) == 2 and arch.final_scale(1) == 0


@pytest.mark.parametrize("beta, message", [
    (((0, 1, 0, 1, 0, 1), (0,) * 6), "last cell"),
    (((0, 1, 0, 0, 0, 0), (0, 0, 1, 0, 0, 0)), "distinct scales"),
    (((0, 1, 1, 0, 0, 0), (0,) * 6), "no non-skip stride-1 cell at 1/16"),
    (((1, 0, 1, 0, 1, 0), (0,) * 6), "at most 2"),
])
def test_illegal_paths_are_named(beta, message):
    with pytest.raises(ArchError, match=message):
        check_arch(_arch(beta=beta))


def test_a_resolution_of_only_skips_is_illegal():
    alpha = [[1, 1, 1] for _ in range(6)]
    alpha[2] = alpha[3] = [1, 0, 1]  # layers 2 and 3 run at 1/16 with stride 1 for branch 0
    arch = Arch(tuple(map(tuple, alpha)), ((0, 1, 0, 0, 1, 0), (0,) * 6), ((4,) * 3,) * 6)
    with pytest.raises(ArchError, match="1/16"):
        check_arch(arch)


def test_json_round_trip(tmp_path):
    arch = random_arch(random.Random(3))
    save_arch(arch, tmp_path / "a.json", {"search": {"score": 1.5}})
    assert load_arch(tmp_path / "a.json") == arch
    assert json.loads((tmp_path / "a.json").read_text())["ops"] == list(OPS)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("beta"), "lacks beta"),
    (lambda d: d["alpha"][0].append(1), "alpha row 0 must have 3 entries"),
    (lambda d: d["ratio"].__setitem__(1, [0, 9, 0]), "ratio row 1 holds 9"),
    (lambda d: d.__setitem__("format", "other/2"), "unknown architecture format"),
    (lambda d: d["alpha"].pop(), "alpha has 5 rows .layers. but ratio has 6"),
])
def test_bad_dicts_are_refused(edit, message):
    data = _arch().to_dict()
    edit(data)
    with pytest.raises(ArchError, match=message):
        arch_from_dict(data)


def test_an_absurd_layer_count_is_refused_before_any_network_is_built():
    with pytest.raises(ArchError, match=f"2 to {MAX_LAYERS} layers, got {MAX_LAYERS + 1}"):
        check_arch(_arch(layers=MAX_LAYERS + 1, beta=((0,) * (MAX_LAYERS + 1),)))


def test_huge_or_nested_values_are_shown_short():
    data = _arch().to_dict()
    data["alpha"][0][0] = "x" * 10_000
    with pytest.raises(ArchError, match=r"alpha row 0 holds 'x+\.\.\.; entries") as caught:
        arch_from_dict(data)
    assert len(str(caught.value)) < 120
    data["alpha"][0][0] = [[[1]]]
    with pytest.raises(ArchError, match=r"alpha row 0 holds \[\[\[1\]\]\]; entries"):
        arch_from_dict(data)
    nested: list = []
    for _ in range(100_000):  # too deep for repr
        nested = [nested]
    data["alpha"][0][0] = nested
    with pytest.raises(ArchError, match="alpha row 0 holds a JSON array; entries"):
        arch_from_dict(data)


def test_unreadable_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not a segsearch architecture file .invalid JSON"):
        load_arch(bad)
    with pytest.raises(DataError, match="missing.json: cannot read the segsearch architecture file: no such"):
        load_arch(tmp_path / "missing.json")
    bad.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="bad.json: not a segsearch architecture file"):
        load_arch(bad)
    bad.write_text("[[0, 1, 2]]")
    with pytest.raises(ArchError, match="bad.json: an architecture must be a JSON object"):
        load_arch(bad)


def test_network_key_ignores_choices_no_path_reads():
    arch = _arch()  # branch 0 visits 1/8 at layers 0-1, 1/16 at 2-3, 1/32 at 4-5; branch 1 stays at 1/8
    unused = Arch(arch.alpha[:3] + ((1, 1, 4),) + arch.alpha[4:], arch.beta,
                  arch.ratio[:5] + ((0, 0, 0),))  # the last cell always has the head width
    assert unused.key() != arch.key() and unused.network_key() == arch.network_key()
    used = Arch(arch.alpha[:3] + ((1, 4, 1),) + arch.alpha[4:], arch.beta, arch.ratio)
    assert used.network_key() != arch.network_key()
