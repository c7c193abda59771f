"""MobileNetV2 feature stages (stride 8/16/32) plus SSD extra down-sample levels."""
from __future__ import annotations

from typing import List, Sequence

from mxnet.gluon import nn
from mxnet.gluon.block import Block, HybridBlock
from mxnet.gluon.model_zoo.vision import get_mobilenet_v2

__all__ = ["MobileNetV2Backbone", "stage_channels", "STAGE_SPLITS"]

# features[:9] -> stride 8 (38x38 at 300), [9:16] -> stride 16 (19x19), [16:20] -> stride 32 (10x10);
# features[20:] (the 1280-channel conv, pool) are dropped.
STAGE_SPLITS = ((0, 9), (9, 16), (16, 20))


def stage_channels(width: float) -> List[int]:
    """Output channels of the three MobileNetV2 stages at width multiplier ``width``."""
    return [int(32 * width), int(96 * width), int(320 * width)]


def _extra_block(reduce_ch: int, out_ch: int) -> nn.HybridSequential:
    """1x1 reduce -> 3x3 stride 2, each with BN + ReLU (halves the feature map)."""
    blk = nn.HybridSequential()
    with blk.name_scope():
        blk.add(nn.Conv2D(reduce_ch, 1, use_bias=False, in_channels=0), nn.BatchNorm(),
                nn.Activation("relu"),
                nn.Conv2D(out_ch, 3, strides=2, padding=1, use_bias=False), nn.BatchNorm(),
                nn.Activation("relu"))
    return blk


class MobileNetV2Backbone(HybridBlock):
    """Returns a list of feature maps, one per level: 3 stages + extras (+ global pool).

    Input: (B, 3, H, W) already normalised. Output level ``l``: (B, C_l, H_l, W_l).
    """

    def __init__(self, width: float = 1.0, extra_channels: Sequence[Sequence[int]] = ((256, 512), (128, 256)),
                 global_pool: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.width = width
        with self.name_scope():
            mnet = get_mobilenet_v2(width)
            layers = list(mnet.features._children.values())[:STAGE_SPLITS[-1][1]]
            self.stages = nn.HybridSequential()
            for a, b in STAGE_SPLITS:
                st = nn.HybridSequential()
                for layer in layers[a:b]:
                    st.add(layer)
                self.stages.add(st)
            self.extras = nn.HybridSequential()
            for reduce_ch, out_ch in extra_channels:
                self.extras.add(_extra_block(int(reduce_ch), int(out_ch)))
            self.global_pool = nn.GlobalAvgPool2D() if global_pool else None
        ch = stage_channels(width) + [int(c[1]) for c in extra_channels]
        if global_pool:
            ch.append(ch[-1])
        self.level_channels: List[int] = ch

    def feature_layers(self) -> List[Block]:
        """The 20 MobileNetV2 ``features`` children in their original order (for weight import)."""
        return [layer for st in self.stages for layer in st]

    def batchnorms(self, stages: int = 3) -> List[nn.BatchNorm]:
        """BatchNorm layers of the first ``stages`` backbone stages."""
        found: List[nn.BatchNorm] = []

        def walk(b: Block) -> None:
            if isinstance(b, nn.BatchNorm):
                found.append(b)
            for c in b._children.values():
                walk(c)

        for st in list(self.stages)[:stages]:
            walk(st)
        return found

    def hybrid_forward(self, F, x):
        feats = []
        for st in self.stages:
            x = st(x)
            feats.append(x)
        for blk in self.extras:
            x = blk(x)
            feats.append(x)
        if self.global_pool is not None:
            feats.append(self.global_pool(x))
        return feats
