"""How much of the ImageNet MobileNetV2 1.0 survives channel-slicing to a narrower width.

    python scripts/slice_fidelity.py [--weights W.tflite] [--images DIR] [--num 8]

For each width, the 1.0 weights are sliced (``slice_mobilenet_v2``) and both networks run on the
same images at 224x224. For a few bottlenecks it prints the median over the kept channels of the
correlation between the narrow network's output channel and the same channel of the full one
(1.00 = the narrow net computes the same features; 0 = unrelated).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BLOCKS = (1, 2, 3, 4, 6, 10, 13, 17)  # bottleneck indices (block b is features[b + 2])


def main(argv=None) -> int:
    import cv2
    import mxnet as mx
    from mxnet.gluon.model_zoo.vision import get_mobilenet_v2

    from ssd_mnv2.inference import collect_images
    from ssd_mnv2.model.pretrained import (NUM_TRUNCATED_LAYERS, _width1_layers,
                                           load_tflite_mobilenet_v2, slice_mobilenet_v2)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="../shared/data/weights/mobilenet_v2_1.0_224_ptq.tflite")
    ap.add_argument("--images", default="../shared/data/widerface/train/images")
    ap.add_argument("--num", type=int, default=8)
    ap.add_argument("--widths", default="1.0,0.75,0.5,0.25")
    args = ap.parse_args(argv)

    paths = sorted(p for p, _ in collect_images([args.images]))[:: max(1, 400 // args.num)][: args.num]
    x = np.stack([cv2.resize(cv2.imread(str(p)), (224, 224))[:, :, ::-1].transpose(2, 0, 1) for p in paths])
    x = mx.nd.array(x.astype(np.float32)) / 127.5 - 1
    src = _width1_layers()
    load_tflite_mobilenet_v2(src, args.weights, include_head=False)
    print("| width | " + " | ".join(f"block {b}" for b in BLOCKS) + " |")
    print("|---|" + "---:|" * len(BLOCKS))
    for w in (float(v) for v in args.widths.split(",")):
        net = get_mobilenet_v2(w)
        net.initialize()
        dst = list(net.features)[:NUM_TRUNCATED_LAYERS]
        h = mx.nd.zeros((1, 3, 32, 32))
        for layer in dst:  # materialise the shapes
            h = layer(h)
        kept = slice_mobilenet_v2(src, dst)
        hf, hs, cells = x, x, []
        for i in range(NUM_TRUNCATED_LAYERS):
            with mx.autograd.predict_mode():
                hf, hs = src[i](hf), dst[i](hs)
            if i - 2 in BLOCKS:
                f, g = hf.asnumpy()[:, kept[i - 2]], hs.asnumpy()
                corr = [np.corrcoef(f[:, c].ravel(), g[:, c].ravel())[0, 1] for c in range(g.shape[1])]
                cells.append(f"{np.nanmedian(corr):.2f}")
        print(f"| {w:g} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
