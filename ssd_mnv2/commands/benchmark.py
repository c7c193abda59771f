"""``ssd-mnv2 benchmark``: median ms/image per backend (mxnet plain/fused, int8, onnxruntime)."""
from __future__ import annotations

import os
import sys

from ..deploy.backends import BACKEND_CHOICES, BENCH_BACKENDS
from . import add_model_args


def add_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="inference speed table (per backend and input size)",
                       description="Without --params (and no shipped model) the weights are random: "
                                   "speed only, labelled as such.")
    add_model_args(p)
    p.add_argument("--backends", default=",".join(BENCH_BACKENDS),
                   help=f"comma-separated, of: {', '.join(BACKEND_CHOICES)} (int8 here: mxnet-int8)")
    p.add_argument("--sizes", default="300x300,640x480", help="comma-separated WxH")
    p.add_argument("--reps", type=int, default=50, help="timed repetitions per measurement")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2,
                   help="OMP / onnxruntime intra-op threads (set before MXNet is imported)")
    p.add_argument("--image", default=None, help="benchmark image (default: synthetic)")
    p.add_argument("--quantized", action="append", default=None,
                   help="int8 model folder of `ssd-mnv2 quantize` (repeat for both engines; "
                        "default: quantize on the fly)")
    p.add_argument("--calib-images", default=None, help="calibration folder for on-the-fly int8")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    p.set_defaults(func=run)


def run(args) -> int:
    if "mxnet" in sys.modules and os.environ.get("OMP_NUM_THREADS") != str(args.threads):
        print(f"warning: MXNet already imported; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
              "stays in force", file=sys.stderr)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from ..bench import benchmark_main

    return benchmark_main(args)
