"""``ssd-mnv2 detect``: faces in images, folders or globs -> annotated images + detections.json."""
from __future__ import annotations

from . import add_backend_args, add_model_args, add_tta_args, backend_detector, display_overrides, tta_detector


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="detect faces in images / folders / globs",
                       description="Writes annotated (or --blur'red) images and detections.json into --out, "
                                   "which must not be an input or hold one. An unreadable image is reported and "
                                   "skipped, a damaged one (truncated JPEG) processed and flagged; the exit code "
                                   "is 1 if any failed or was damaged.")
    add_model_args(p)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image files, folders or glob patterns (default: matplotlib's sample "
                        "photo grace_hopper.jpg, a demo)")
    p.add_argument("--out", default="outputs/detect", help="output folder (default: outputs/detect)")
    add_backend_args(p)
    p.add_argument("--blur", action="store_true", help="anonymise faces (blur) instead of drawing boxes")
    p.add_argument("--wider-txt", action="store_true", help="also write WIDER-format txt files into OUT/wider")
    p.add_argument("--no-images", action="store_true", help="only write detections.json")
    add_tta_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from ..inference import detect_paths

    inputs = list(args.inputs)
    if not inputs:  # demo: a photo that ships with matplotlib
        from matplotlib import cbook

        inputs = [cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)]
    args.overrides = display_overrides(args)  # threshold inside the graph: same boxes, faster NMS
    det = tta_detector(backend_detector(args), args)
    summary = detect_paths(det, inputs, args.out, threshold=args.threshold, size=args.size,
                           blur=args.blur, wider_txt=args.wider_txt, save_images=not args.no_images)
    print(summary.text(), file=sys.stdout if summary.ok else sys.stderr)
    return 0 if summary.ok else 1
