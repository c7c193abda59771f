"""Per-level class and box predictors (plain SSD 3x3 convs or SSDLite depthwise-separable)."""
from __future__ import annotations

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

__all__ = ["make_predictor", "flatten_prediction"]


def make_predictor(kind: str, in_channels: int, out_channels: int) -> HybridBlock:
    """``ssd``: 3x3 conv. ``ssdlite``: depthwise 3x3 + BN + ReLU6, then pointwise 1x1."""
    if kind == "ssd":
        return nn.Conv2D(out_channels, 3, padding=1, in_channels=in_channels)
    if kind == "ssdlite":
        blk = nn.HybridSequential()
        with blk.name_scope():
            blk.add(nn.Conv2D(in_channels, 3, padding=1, groups=in_channels, use_bias=False,
                              in_channels=in_channels),
                    nn.BatchNorm(in_channels=in_channels),
                    nn.Activation("relu"),  # ReLU (ReLU6 clip is not needed after BN here)
                    nn.Conv2D(out_channels, 1, in_channels=in_channels))
        return blk
    raise ValueError(f"unknown head kind {kind!r} (expected 'ssd' or 'ssdlite')")


def flatten_prediction(F, x):
    """(B, A*k, H, W) -> (B, H*W*A*k) in (y, x, anchor) order."""
    return F.flatten(F.transpose(x, axes=(0, 2, 3, 1)))
