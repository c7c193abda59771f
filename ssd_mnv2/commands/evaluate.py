"""``ssd-mnv2 evaluate``: official WIDER FACE protocol (Easy/Medium/Hard AP)."""
from __future__ import annotations

from . import add_engine_args, add_model_args, backend_detector


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
    p.add_argument("--list", default=None, help="file of <event>/<name>.jpg lines restricting the set")
    p.add_argument("--size", default=None,
                   help="network input: original (default from config), WxH, or 'max-side N'")
    p.add_argument("--out", default="outputs/wider_eval", help="output folder")
    p.add_argument("--allow-missing", action="store_true",
                   help="with --pred: score only the images that have a prediction file (default: "
                        "an image without one is an error); the count is printed and saved")
    add_engine_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine.evaluate import evaluate_detector, evaluate_predictions

    if args.images is not None and args.pred is not None:
        raise ValueError("give either --images (run the model) or --pred (score predictions), not both")
    if args.pred is not None:
        if args.gt is None:
            raise ValueError("--pred needs --gt (the folder of the official .mat files)")
        evaluate_predictions(args.pred, args.gt, list_file=args.list, out_dir=args.out,
                             allow_missing=args.allow_missing)
        return 0
    if args.allow_missing:
        raise ValueError("--allow-missing is for --pred (scoring existing prediction files)")
    det = backend_detector(args)
    images = args.images or det.cfg.data.val_images
    gt = args.gt or det.cfg.data.val_gt_dir
    evaluate_detector(det, images, gt, list_file=args.list,
                      size=args.size or det.cfg.eval.size, out_dir=args.out)
    return 0
