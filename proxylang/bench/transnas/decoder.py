"""TransNAS-Bench-101's segmentation decoder: conv/transposed-conv layers from the encoder's
features back to the input resolution, one logit map per class."""

from __future__ import annotations

import math

from torch import nn

from proxylang.bench.transnas.ops import DecoderLayer

WIDEST = 1024
DEPTH = 6  # layers between the 1024-channel entry conv and the classifier


class SegmentationDecoder(nn.Sequential):
    """Entry conv to 1024 channels; ``6 - u`` channel-halving convs and ``u - 1`` channel-halving 2x
    upsamplings (u = log2 of the encoder's reduction); one more 2x upsampling; a 3x3 classifier.
    The layer count depends only on the reduction, so the network runs at any multiple of it."""

    def __init__(self, in_channels: int, reduction: int, num_classes: int) -> None:
        upsamplings = round(math.log2(reduction))
        if 2 ** upsamplings != reduction or not 2 <= upsamplings <= DEPTH:
            raise ValueError(f"encoder reduction {reduction} is not a power of two in [4, 64]")
        layers = [DecoderLayer(in_channels, WIDEST, upsample=False)]
        c = WIDEST
        for i in range(DEPTH - 1):
            layers.append(DecoderLayer(c, c // 2, upsample=i >= DEPTH - upsamplings))
            c //= 2
        layers.append(DecoderLayer(c, c, upsample=True))
        layers.append(nn.Conv2d(c, num_classes, 3, padding=1))
        super().__init__(*layers)
