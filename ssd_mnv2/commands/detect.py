"""``ssd-mnv2 detect``: faces in images, folders or globs -> annotated images + detections.json."""
from __future__ import annotations

from . import add_model_args, display_overrides, load_detector


def add_engine_args(p) -> None:
    """``--backend``, ``--onnx``, ``--quantized``: which engine runs the model."""
    p.add_argument("--backend", default="auto", choices=["auto", "mxnet", "mxnet-plain", "onnxruntime", "int8"],
                   help="auto (default: onnxruntime where installed, else mxnet), mxnet (oneDNN-fused), "
                        "mxnet-plain, onnxruntime (the model is exported once to a cache), int8 (needs --quantized)")
    p.add_argument("--onnx", default=None, help="ONNX model for --backend onnxruntime "
                   "(default: export the MXNet model once, cached in $SSD_MNV2_CACHE or ~/.cache/ssd_mnv2)")
    p.add_argument("--quantized", default=None,
                   help="folder made by `ssd-mnv2 quantize` (implies --backend int8; ONNX Runtime or oneDNN, "
                        "whichever the folder holds)")


def add_backend_args(p) -> None:
    add_engine_args(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="minimum score to keep a face (default: the config's eval.display_threshold)")
    p.add_argument("--size", default=None,
                   help="network input: original, WxH or 'max-side N' (default: the config's eval.size)")


def backend_detector(args):
    from ..export import make_detector

    if args.backend in ("auto", "onnxruntime") and args.onnx:
        return make_detector("onnxruntime", None, onnx=args.onnx, overrides=args.overrides)
    return make_detector(args.backend, lambda fused: load_detector(args, fused=fused), onnx=args.onnx,
                         quantized=args.quantized, overrides=args.overrides)


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="detect faces in images / folders / globs",
                       description="Writes annotated (or --blur'red) images and detections.json into --out. "
                                   "An unreadable image is reported and skipped; the exit code is 1 if any failed.")
    add_model_args(p)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image files, folders or glob patterns (default: matplotlib's sample "
                        "photo grace_hopper.jpg, a demo)")
    p.add_argument("--out", default="outputs/detect", help="output folder (default: outputs/detect)")
    add_backend_args(p)
    p.add_argument("--blur", action="store_true", help="anonymise faces (blur) instead of drawing boxes")
    p.add_argument("--wider-txt", action="store_true", help="also write WIDER-format txt files into OUT/wider")
    p.add_argument("--no-images", action="store_true", help="only write detections.json")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from ..inference import detect_paths

    inputs = list(args.inputs)
    if not inputs:  # demo: a photo that ships with matplotlib
        from matplotlib import cbook

        inputs = [cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)]
    args.overrides = display_overrides(args)  # threshold inside the graph: same boxes, faster NMS
    det = backend_detector(args)
    summary = detect_paths(det, inputs, args.out, threshold=args.threshold, size=args.size,
                           blur=args.blur, wider_txt=args.wider_txt, save_images=not args.no_images)
    print(summary.text(), file=sys.stderr if summary.failed else sys.stdout)
    return 0 if summary.ok else 1
