"""MobileNetV2 feature stages (stride 8/16/32, optionally also 4) plus SSD extra down-sample levels."""
from __future__ import annotations

from typing import List, Sequence

from mxnet.gluon import nn
from mxnet.gluon.block import Block, HybridBlock
from mxnet.gluon.model_zoo.vision import get_mobilenet_v2

__all__ = ["MobileNetV2Backbone", "stage_channels", "level_channels", "STAGE_SPLITS", "STRIDE4_END"]

# features[:9] -> stride 8 (38x38 at 300), [9:16] -> stride 16 (19x19), [16:20] -> stride 32 (10x10);
# features[20:] (the 1280-channel conv, pool) are dropped.
STAGE_SPLITS = ((0, 9), (9, 16), (16, 20))
# model.stride4: the first stage is also tapped after features[:STRIDE4_END] (stride 4, the
# 24-channel bottlenecks); it stays one stage (same layers, parameter names and freezing).
STRIDE4_END = 6


def stage_channels(width: float, stride4: bool = False) -> List[int]:
    """Output channels of the stage levels at width multiplier ``width``: [s4 (with ``stride4``),]
    s8, s16, s32 (Gluon's MobileNetV2 uses ``int(c * width)`` channels)."""
    return [int(24 * width)] * int(stride4) + [int(32 * width), int(96 * width), int(320 * width)]


def level_channels(width: float, extra_channels: Sequence[Sequence[int]], global_pool: bool,
                   stride4: bool = False) -> List[int]:
    """Channels of every backbone output level: stages, extras, global pool (= the last extra's)."""
    ch = stage_channels(width, stride4) + [int(c[1]) for c in extra_channels]
    return ch + ch[-1:] * int(global_pool)


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
    """Returns a list of feature maps, one per level: the stage levels ([s4,] s8, s16, s32), then
    the extras (+ global pool).

    Input: (B, 3, H, W) already normalised. Output level ``l``: (B, C_l, H_l, W_l), C_l =
    ``level_channels[l]``. ``stages`` always holds the three founding stages (features[:9],
    [9:16], [16:20]); with ``stride4`` the first one is run layer by layer and its
    features[:6] output (stride 4) is one more level, in front.
    """

    def __init__(self, width: float = 1.0, extra_channels: Sequence[Sequence[int]] = ((256, 512), (128, 256)),
                 global_pool: bool = True, stride4: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.stride4 = stride4
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
        self.level_channels: List[int] = level_channels(width, extra_channels, global_pool, stride4)

    def feature_layers(self) -> List[Block]:
        """The 20 MobileNetV2 ``features`` children in their original order (for weight import)."""
        return [layer for st in self.stages for layer in st]

    def batchnorms(self, stages: int = 3) -> List[nn.BatchNorm]:
        """BatchNorm layers of the first ``stages`` founding backbone stages (stage 1 is
        features[:9], the stride-4 and stride-8 levels' layers together with ``stride4``)."""
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
        for i, st in enumerate(self.stages):
            if i == 0 and self.stride4:
                for j, layer in enumerate(st):
                    x = layer(x)
                    if j + 1 == STRIDE4_END:
                        feats.append(x)  # stride 4
            else:
                x = st(x)
            feats.append(x)
        for blk in self.extras:
            x = blk(x)
            feats.append(x)
        if self.global_pool is not None:
            feats.append(self.global_pool(x))
        return feats
