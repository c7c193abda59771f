"""Feature-fusion neck for the backbone stage levels: top-down FPN-lite, optional SSH context.

The plain SSD layout feeds each head straight from its backbone stage; at stride 8 that is the
32-channel linear-bottleneck output of an early stage, too weak for the smallest faces. The
FPN-lite neck brings the deeper stages' semantics down to it. Over the stage levels
``C_0 .. C_{n-1}`` (finest first: stride 8/16/32, or 4/8/16/32 with ``model.stride4``):

    L_i = ReLU(BN(conv1x1(C_i)))                      lateral, ``channels`` wide
    P_{n-1} = L_{n-1};  P_i = L_i + up2(P_{i+1})      (nearest upsampling, cropped)
    out_i = smooth(P_i) = ReLU(BN(pw1x1(dw3x3(P_i))))  depthwise-separable 3x3

With ``context`` each output then goes through an SSH-style context module: three branches with
3x3, 5x5 and 7x7 receptive fields built from stacked depthwise-separable 3x3 convolutions
(channels/2, /4, /4), concatenated back to ``channels``.

Upsampled maps are cropped to the lateral's size (``slice_like``), so any input size works,
also in exported (MXNet symbol / ONNX, dynamic H and W) graphs.
"""
from __future__ import annotations

from typing import Sequence

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

__all__ = ["FPNLite", "SSHContext", "dw_separable"]


def _conv_bn_relu(channels: int, kernel: int = 1, groups: int = 1, in_channels: int = 0
                  ) -> nn.HybridSequential:
    blk = nn.HybridSequential()
    with blk.name_scope():
        blk.add(nn.Conv2D(channels, kernel, padding=kernel // 2, groups=groups, use_bias=False,
                          in_channels=in_channels),
                nn.BatchNorm(in_channels=channels), nn.Activation("relu"))
    return blk


def dw_separable(in_channels: int, out_channels: int, relu: bool = True) -> nn.HybridSequential:
    """Depthwise 3x3 (+BN+ReLU) then pointwise 1x1 (+BN, +ReLU if ``relu``)."""
    blk = nn.HybridSequential()
    with blk.name_scope():
        blk.add(_conv_bn_relu(in_channels, 3, groups=in_channels, in_channels=in_channels),
                nn.Conv2D(out_channels, 1, use_bias=False, in_channels=in_channels),
                nn.BatchNorm(in_channels=out_channels))
        if relu:
            blk.add(nn.Activation("relu"))
    return blk


class SSHContext(HybridBlock):
    """SSH context module, depthwise-separable: (B, C, H, W) -> (B, C, H, W).

    Branch 1: one dw-separable 3x3 (C/2). Branch 2: two stacked (5x5 receptive field, C/4).
    Branch 3: three stacked (7x7, C/4), sharing the first of branch 2 as in SSH.
    """

    def __init__(self, channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        half, quarter = channels // 2, channels // 4
        with self.name_scope():
            self.b3 = dw_separable(channels, half, relu=False)
            self.b5_1 = dw_separable(channels, quarter)
            self.b5_2 = dw_separable(quarter, quarter, relu=False)
            self.b7_2 = dw_separable(quarter, quarter)
            self.b7_3 = dw_separable(quarter, quarter, relu=False)

    def hybrid_forward(self, F, x):
        t = self.b5_1(x)
        out = F.concat(self.b3(x), self.b5_2(t), self.b7_3(self.b7_2(t)), dim=1)
        return F.relu(out)


class FPNLite(HybridBlock):
    """Top-down fusion of ``n >= 2`` stage outputs (finest first, each level half the previous
    one's size): ``n`` maps (B, C_i, H_i, W_i) -> ``n`` maps (B, ``channels``, H_i, W_i).

    Children ``laterals``, ``smooth`` and ``context`` hold one block per level, finest first."""

    def __init__(self, in_channels: Sequence[int], channels: int = 64, context: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if len(in_channels) < 2:
            raise ValueError(f"FPNLite fuses at least 2 levels, got {len(in_channels)} input channel counts")
        with self.name_scope():
            self.laterals = nn.HybridSequential()
            self.smooth = nn.HybridSequential()
            self.context = nn.HybridSequential()
            for ch in in_channels:
                self.laterals.add(_conv_bn_relu(channels, 1, in_channels=int(ch)))
                self.smooth.add(dw_separable(channels, channels))
                if context:
                    self.context.add(SSHContext(channels))

    def hybrid_forward(self, F, *feats):
        if len(feats) != len(self.laterals):
            raise ValueError(f"FPNLite: {len(feats)} input levels, built for {len(self.laterals)}")
        lats = [lat(c) for lat, c in zip(self.laterals, feats)]
        tops = [lats[-1]]  # P_{n-1}, then P_{n-2} .. P_0
        for lat in reversed(lats[:-1]):
            tops.append(lat + F.slice_like(F.UpSampling(tops[-1], scale=2, sample_type="nearest"),
                                           lat, axes=(2, 3)))
        outs = [sm(p) for sm, p in zip(self.smooth, reversed(tops))]
        if len(self.context):
            outs = [ctx(o) for ctx, o in zip(self.context, outs)]
        return outs
