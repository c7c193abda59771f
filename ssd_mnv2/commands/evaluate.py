"""``ssd-mnv2 evaluate``: official WIDER FACE protocol (Easy/Medium/Hard AP), or any VOC/COCO-format
face set (``--format voc|coco``: AP50, AP50:95, best F1, recall by face size)."""
from __future__ import annotations

from . import add_engine_args, add_model_args, add_tta_args, backend_detector, tta_detector


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="WIDER FACE Easy/Medium/Hard AP (official protocol)",
                       description="Run the detector over --images and score it, or score an existing "
                                   "prediction folder (--pred). Prints the table; writes wider_eval.json "
                                   "and wider_pr.png into --out.")
    add_model_args(p)
    p.add_argument("--images", default=None,
                   help="folder of <event>/<name>.jpg (default: the config's data.val_images)")
    p.add_argument("--pred", default=None, help="score this prediction folder instead of running a model")
    p.add_argument("--gt", default=None,
                   help="folder with the official wider_*_val.mat files (default: data.val_gt_dir)")
    p.add_argument("--list", default=None, help="file of <event>/<name>.jpg lines restricting the set "
                   "(voc/coco: image names or ids)")
    p.add_argument("--size", default=None,
                   help="network input: original (default from config), WxH, or 'max-side N'")
    p.add_argument("--out", default=None, help="output folder (default: outputs/<format>_eval)")
    p.add_argument("--allow-missing", action="store_true",
                   help="with --pred: score only the images that have a prediction file (default: "
                        "an image without one is an error); the count is printed and saved")
    add_engine_args(p)
    g = p.add_argument_group("your own face set (--format voc or coco)")
    g.add_argument("--format", default="wider", choices=["wider", "voc", "coco"],
                   help="wider (default: the official protocol), voc (a folder of <name>.xml) or coco "
                        "(an instances.json); voc/coco report AP50 (VOC), AP50:95 (COCO), best F1, "
                        "recall by face size and write <format>_eval.json + <format>_pr.png")
    g.add_argument("--annotations", default=None,
                   help="voc: folder of <name>.xml (paired with --images/<name>.jpg); coco: the instances.json")
    g.add_argument("--classes", default=None, metavar="A,B",
                   help="object classes that count as a face, all mapped to 'face' (default: every object), "
                        "e.g. with_mask,without_mask,mask_weared_incorrect")
    g.add_argument("--skip-bad", action="store_true",
                   help="warn about bad or unpaired files and leave those images out (default: stop)")
    add_tta_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation.driver import evaluate_detector, evaluate_predictions

    if args.format != "wider":
        return run_faceset(args)
    if args.annotations is not None or args.classes is not None or args.skip_bad:
        raise ValueError("--annotations/--classes/--skip-bad are for --format voc or coco")
    args.out = args.out or "outputs/wider_eval"
    if args.images is not None and args.pred is not None:
        raise ValueError("give either --images (run the model) or --pred (score predictions), not both")
    if args.pred is not None:
        if args.gt is None:
            raise ValueError("--pred needs --gt (the folder of the official .mat files)")
        if args.tta_scales or args.tta_flip:
            raise ValueError("--tta-* options run the model: they cannot be used with --pred")
        evaluate_predictions(args.pred, args.gt, list_file=args.list, out_dir=args.out,
                             allow_missing=args.allow_missing)
        return 0
    if args.allow_missing:
        raise ValueError("--allow-missing is for --pred (scoring existing prediction files)")
    det = tta_detector(backend_detector(args), args)
    images = args.images or det.cfg.data.val_images
    gt = args.gt or det.cfg.data.val_gt_dir
    evaluate_detector(det, images, gt, list_file=args.list,
                      size=args.size or det.cfg.eval.size, out_dir=args.out)
    return 0


def run_faceset(args) -> int:
    """``--format voc|coco``: score the model (or ``--pred`` files) on the face set."""
    from ..data.faceset import load_faceset
    from ..evaluation.faceset import evaluate_faceset_detector, evaluate_faceset_predictions

    fmt = args.format
    if args.gt is not None:
        raise ValueError(f"--gt is the WIDER .mat folder; with --format {fmt} give --annotations")
    if args.annotations is None:
        raise ValueError(f"--format {fmt} needs --annotations "
                         f"({'a folder of .xml files' if fmt == 'voc' else 'the instances.json'})")
    if args.pred is None and args.images is None:
        raise ValueError(f"--format {fmt} needs --images DIR (or --pred DIR to score prediction files)")
    if args.pred is not None and (args.tta_scales or args.tta_flip):
        raise ValueError("--tta-* options run the model: they cannot be used with --pred")
    out = args.out or f"outputs/{fmt}_eval"
    faces = load_faceset(fmt, args.images, args.annotations, list_file=args.list, classes=args.classes,
                         skip_bad=args.skip_bad)
    if args.pred is not None:
        evaluate_faceset_predictions(args.pred, faces, out_dir=out)
        return 0
    det = tta_detector(backend_detector(args), args)
    evaluate_faceset_detector(det, faces, out, size=args.size or det.cfg.eval.size)
    return 0
