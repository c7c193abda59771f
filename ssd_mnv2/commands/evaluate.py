"""``ssd-mnv2 evaluate``: official WIDER FACE protocol (Easy/Medium/Hard AP)."""
from __future__ import annotations

from . import add_model_args, load_detector


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="WIDER FACE Easy/Medium/Hard AP (official protocol)",
                       description="Run the detector over --images and score it, or score an existing "
                                   "prediction folder (--pred). Prints the table; writes wider_eval.json "
                                   "and wider_pr.png into --out.")
    add_model_args(p)
    p.add_argument("--images", default=None, help="folder of <event>/<name>.jpg")
    p.add_argument("--pred", default=None, help="score this prediction folder instead of running a model")
    p.add_argument("--gt", required=True, help="folder with the official wider_*_val.mat files")
    p.add_argument("--list", default=None, help="file of <event>/<name>.jpg lines restricting the set")
    p.add_argument("--size", default=None,
                   help="network input: original (default from config), WxH, or 'max-side N'")
    p.add_argument("--out", default="outputs/wider_eval", help="output folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine.evaluate import evaluate_detector, evaluate_predictions

    if (args.images is None) == (args.pred is None):
        raise ValueError("give exactly one of --images (run the model) or --pred (score predictions)")
    if args.pred is not None:
        evaluate_predictions(args.pred, args.gt, list_file=args.list, out_dir=args.out)
        return 0
    det = load_detector(args)
    evaluate_detector(det, args.images, args.gt, list_file=args.list,
                      size=args.size or det.cfg.eval.size, out_dir=args.out)
    return 0
