"""``ssd-mnv2 quantize``: an int8 model calibrated on real images (+ optional AP change)."""
from __future__ import annotations

from . import add_model_args, load_detector


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="int8 quantization with calibration (ONNX Runtime or oneDNN)",
                       description="--engine onnxruntime (default): static QDQ int8 of the raw network "
                                   "(onnxruntime.quantization), decode/NMS stay float; --engine mxnet: "
                                   "mx.contrib.quantization.quantize_net_v2 (oneDNN). Saves into --out; run it "
                                   "with --quantized DIR (detect, webcam, evaluate, benchmark).")
    add_model_args(p)
    p.add_argument("--engine", choices=["onnxruntime", "mxnet"], default="onnxruntime",
                   help="onnxruntime (default; fast on CPUs with VNNI) or mxnet (oneDNN)")
    p.add_argument("--calib-images", default=None,
                   help="folder of calibration images (default: the config's data.train_images)")
    p.add_argument("--num-calib", type=int, default=200, help="number of calibration images")
    p.add_argument("--calib-mode", choices=["naive", "entropy", "minmax"], default=None,
                   help="activation ranges: minmax (onnxruntime; its histogram methods need all "
                        "activations in memory), naive|entropy (mxnet, default naive)")
    p.add_argument("--size", default=None, help="calibration input WxH (default: the training size)")
    p.add_argument("--out", default="outputs/quantized", help="output folder (default: outputs/quantized)")
    p.add_argument("--exclude-heads", action="store_true",
                   help="mxnet: keep the prediction heads in float (onnxruntime always does)")
    p.add_argument("--eval-images", default=None, help="with --gt: report the AP change on this set")
    p.add_argument("--gt", default=None, help="WIDER ground-truth folder (wider_*_val.mat)")
    p.add_argument("--list", default=None, help="image list restricting the evaluation")
    p.add_argument("--eval-size", default=None, help="evaluation input size (default: the config's eval.size)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..deploy.backends import load_quantized, make_detector
    from ..deploy.int8_onednn import compare_ap, quantize_detector

    det = load_detector(args, fused=args.engine == "mxnet")
    calib = args.calib_images or det.cfg.data.train_images
    if args.engine == "onnxruntime":
        from ..deploy.int8_onnx import quantize_onnx

        mode = args.calib_mode or "minmax"
        if mode != "minmax":
            raise ValueError(f"--calib-mode {mode} is for --engine mxnet; onnxruntime takes minmax")
        paths = quantize_onnx(det, calib, args.out, num_calib=args.num_calib, size=args.size, method=mode)
    else:
        mode = args.calib_mode or "naive"
        if mode not in ("naive", "entropy"):
            raise ValueError("--engine mxnet takes --calib-mode naive|entropy")
        paths = quantize_detector(det, calib, args.out, num_calib=args.num_calib, calib_mode=mode,
                                  size=args.size, exclude_heads=args.exclude_heads)
    for k, v in paths.items():
        print(f"{k}: {v}")
    if args.eval_images:
        if not args.gt:
            raise ValueError("--eval-images needs --gt")
        # the float reference runs on the same engine (ONNX Runtime float = MXNet within 1e-4)
        ref = make_detector("onnxruntime", lambda fused: det) if args.engine == "onnxruntime" else det
        q = load_quantized(args.out)
        res = compare_ap(ref, q, args.eval_images, args.gt, args.out, list_file=args.list, size=args.eval_size)
        print(json.dumps({"fp32": res["fp32"]["ap"], "int8": res["int8"]["ap"], **res["delta"]}, indent=1))
    return 0
