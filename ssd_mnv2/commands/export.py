"""``ssd-mnv2 export``: MXNet symbol/params or ONNX with the BGR->RGB and normalisation in the graph."""
from __future__ import annotations

from . import add_model_args, load_detector, model_files


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export the model (MXNet symbol or ONNX)",
                       description="The exported graph takes (1, 3, H, W) float32 BGR 0..255 (a cv2 image "
                                   "transposed) and returns ids, scores, boxes_xyxy in input pixels.")
    add_model_args(p)
    p.add_argument("--format", choices=["mxnet", "onnx"], default="mxnet")
    p.add_argument("--out", default="outputs/export", help="output folder (default: outputs/export)")
    p.add_argument("--size", default=None, help="trace / ONNX reference size WxH (default: the training size)")
    p.add_argument("--name", default="face_detector", help="file name prefix")
    p.add_argument("--static", action="store_true", help="ONNX: fix H and W to --size (default: dynamic)")
    p.add_argument("--graph", choices=["auto", "full", "raw"], default="auto",
                   help="ONNX: full = decode+NMS in graph (1 class), raw = network only (auto)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..deploy.mxnet_symbol import export_files, export_mxnet
    from ..deploy.onnx import export_onnx
    from ..io_utils import refuse_output_over_input

    refuse_output_over_input(export_files(args.out, args.name, args.format), model_files(args), "--out/--name")
    det = load_detector(args, fused=False)
    if args.format == "mxnet":
        paths = export_mxnet(det, args.out, size=args.size, name=args.name)
    else:
        paths = export_onnx(det, args.out, size=args.size, name=args.name, graph=args.graph,
                            dynamic=not args.static)
    for k, v in paths.items():
        print(f"{k}: {v}")
    return 0
