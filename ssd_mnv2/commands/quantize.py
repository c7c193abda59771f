"""``ssd-mnv2 quantize``: oneDNN int8 model calibrated on real images (+ optional AP change)."""
from __future__ import annotations

from . import add_model_args, load_detector


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="int8 quantization (oneDNN) with calibration",
                       description="Quantizes the SSD network (decode/NMS stay float) with "
                                   "mx.contrib.quantization.quantize_net_v2 and saves symbol+params+yaml into "
                                   "--out; load it with --quantized DIR (detect, webcam, benchmark).")
    add_model_args(p)
    p.add_argument("--calib-images", default=None,
                   help="folder of calibration images (default: the config's data.train_images)")
    p.add_argument("--num-calib", type=int, default=200, help="number of calibration images")
    p.add_argument("--calib-mode", choices=["naive", "entropy"], default="naive")
    p.add_argument("--size", default=None, help="calibration input WxH (default: the training size)")
    p.add_argument("--out", default="outputs/quantized", help="output folder (default: outputs/quantized)")
    p.add_argument("--exclude-heads", action="store_true", help="keep the prediction heads in float")
    p.add_argument("--eval-images", default=None, help="with --gt: report the AP change on this set")
    p.add_argument("--gt", default=None, help="WIDER ground-truth folder (wider_*_val.mat)")
    p.add_argument("--list", default=None, help="image list restricting the evaluation")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..export import QuantizedDetector, compare_ap, quantize_detector

    det = load_detector(args)
    calib = args.calib_images or det.cfg.data.train_images
    paths = quantize_detector(det, calib, args.out, num_calib=args.num_calib,
                              calib_mode=args.calib_mode, size=args.size, exclude_heads=args.exclude_heads)
    for k, v in paths.items():
        print(f"{k}: {v}")
    if args.eval_images:
        if not args.gt:
            raise ValueError("--eval-images needs --gt")
        q = QuantizedDetector.from_dir(args.out)
        res = compare_ap(det, q, args.eval_images, args.gt, args.out, list_file=args.list)
        print(json.dumps(res["delta"], indent=1))
    return 0
