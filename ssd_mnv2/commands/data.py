"""``ssd-mnv2 data preview``: a PNG grid of augmented training samples with their boxes."""
from __future__ import annotations

from . import add_config_args


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="data set tools (preview)")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    pv = dsub.add_parser("preview", help="save a PNG grid of augmented samples with boxes")
    add_config_args(pv)
    pv.add_argument("--n", type=int, default=16, help="number of samples")
    pv.add_argument("--seed", type=int, default=0)
    pv.add_argument("--out", default="outputs/data_preview.png", help="PNG path")
    pv.set_defaults(func=run_preview)


def run_preview(args) -> int:
    from ..config import load_config
    from ..data.pipeline import build_dataset, build_train_samples
    from ..data.preview import save_preview_grid

    cfg = load_config(args.config, args.overrides)
    ds = build_dataset(cfg, "train")
    augment = build_train_samples(cfg, ds).augment
    path = save_preview_grid(ds, augment, args.out, n=args.n, seed=args.seed)
    print(f"wrote {path}")
    return 0
