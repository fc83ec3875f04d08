import random

import pytest
import torch

from segsearch.network import (
    SMALLEST_SCALE,
    Cell,
    build_network,
    fits_batch_norm,
    scaled_size,
    smallest_scale,
)
from segsearch.space import Arch, random_arch


def _small_arch(layers=6):
    rng = random.Random(5)
    return random_arch(rng, layers=layers)


def test_output_is_class_logits_at_any_input_size():
    net = build_network(_small_arch(), num_classes=7)
    for size in [(32, 64), (37, 53)]:
        assert net(torch.randn(2, 3, *size)).shape == (2, 7, *size)


def test_teacher_is_wider_than_student():
    arch = _small_arch()
    student, teacher = build_network(arch, role="student"), build_network(arch, role="teacher")
    count = lambda n: sum(p.numel() for p in n.parameters())  # noqa: E731
    assert count(teacher) > count(student)
    assert teacher.stem[-1][-1][0].out_channels == 96 and student.stem[-1][-1][0].out_channels == 64


def test_student_widths_follow_ratio():
    alpha = ((1, 1, 1),) * 4
    beta = ((0, 0, 0, 0),)
    narrow = build_network(Arch(alpha, beta, ((0, 0, 0),) * 4))
    wide = build_network(Arch(alpha, beta, ((4, 4, 4),) * 4))
    assert narrow.cells["0_0"].config == "cell:conv:64:32:1"  # 96 * 4/12
    assert wide.cells["0_0"].config == "cell:conv:64:96:1"
    assert narrow.cells["3_0000"].config.endswith(":64:1")  # last cell: the fixed head width


def test_branches_share_their_common_prefix():
    alpha = ((1, 1, 1),) * 6
    beta = ((0, 0, 1, 0, 1, 0), (0, 0, 1, 0, 0, 0))  # identical up to layer 3
    net = build_network(Arch(alpha, beta, ((2, 2, 2),) * 6))
    assert len(net.cells) == 4 + 2 * 2
    assert sum(isinstance(m, Cell) for m in net.modules()) == 8


def test_latency_blocks_cover_the_network_with_the_shapes_it_sees():
    net = build_network(_small_arch()).eval()
    size = (45, 70)
    blocks = net.latency_blocks(size)
    assert len({b.key for b in blocks}) == len(blocks)
    assert sum(b.key.startswith("cell:") for b in blocks) == len(net.cells)
    seen_inputs = {}

    def record(module, inputs):
        seen_inputs.setdefault(module, [t.shape for t in inputs])

    hooks = [b.module.register_forward_pre_hook(record) for b in blocks]
    with torch.no_grad():
        net(torch.randn(1, 3, *size))
    for h in hooks:
        h.remove()
    for b in blocks:
        assert [tuple(s) for s in seen_inputs[b.module]] == list(b.input_shapes), b.key


@pytest.mark.parametrize("factor, expected", [(8, (6, 9)), (32, (2, 3))])
def test_scaled_size_rounds_up(factor, expected):
    assert scaled_size((45, 70), factor) == expected


ZOOMED_TO_1_32 = Arch(((3, 3, 3),) * 6, ((0, 1, 0, 1, 0, 0), (0,) * 6), ((4, 4, 4),) * 6)
CONV_TO_1_16 = Arch(((1, 1, 1),) * 4, ((0, 1, 0, 0), (0,) * 4), ((0, 0, 0),) * 4)


@pytest.mark.parametrize("arch, scale, batch, size, fits", [
    (ZOOMED_TO_1_32, 64, 1, (64, 64), False),  # a zoomed convolution at 1/32 runs at 1/64
    (ZOOMED_TO_1_32, 64, 1, (65, 64), True),
    (ZOOMED_TO_1_32, 64, 2, (8, 8), True),
    (CONV_TO_1_16, 16, 1, (16, 16), False),
    (CONV_TO_1_16, 16, 1, (16, 17), True),
])
def test_fits_batch_norm_matches_the_smallest_feature_of_a_real_network(arch, scale, batch, size, fits):
    assert smallest_scale(arch) == scale and scale <= SMALLEST_SCALE
    assert fits_batch_norm(batch, size, scale) == fits
    net = build_network(arch).train()
    if fits:
        net(torch.randn(batch, 3, *size))
    else:
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            net(torch.randn(batch, 3, *size))
