"""``ssd-mnv2 train``: train a detector from a config."""
from __future__ import annotations

import sys

from . import add_config_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a face detector",
                       description="Train with the config's data, model and schedule. Checkpoints, "
                                   "logs (log.csv/log.json) and curves.png go to train.out_dir, which must "
                                   "not hold another run (use --resume to continue one). Ctrl-C saves a "
                                   "checkpoint and exits with status 130.")
    add_config_args(p)  # default: the shipped model's config (its full training recipe)
    p.add_argument("--resume", action="store_true",
                   help="continue exactly from out_dir/last.json (epoch, optimizer, LR, RNG)")
    p.add_argument("--ctx", default=None, help="devices: cpu, cpu:0,cpu:1 or gpu:0,gpu:1")
    p.add_argument("--kvstore", default=None,
                   choices=["local", "device", "dist_sync", "dist_async", "dist_sync_device", "horovod"],
                   help="gradient aggregation (dist_* under `ssd-mnv2 launch` or MXNet's launcher)")
    p.add_argument("--out-dir", default=None, help="shortcut for --set train.out_dir=...")
    p.add_argument("--pretrained-backbone", default=None,
                   help="'none', a .tflite (width 1.0) or a Gluon .params file")
    p.add_argument("--max-iters", type=int, default=None,
                   help="stop after this many iterations (saves a checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars (for logs)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import load_config
    from ..engine.trainer import fit

    ov = list(args.overrides)
    if args.ctx:
        ov.append(f"train.ctx={args.ctx}")
    if args.kvstore:
        ov.append(f"train.kvstore={args.kvstore}")
    if args.out_dir:
        ov.append(f"train.out_dir={args.out_dir}")
    if args.pretrained_backbone:
        ov.append(f"train.pretrained_backbone={args.pretrained_backbone}")
    cfg = load_config(args.config, ov)
    res = fit(cfg, resume=args.resume, max_iters=args.max_iters, progress=not args.no_progress)
    if res.interrupted:  # Ctrl-C: saved, but not done (`train && evaluate` must stop here)
        print(f"interrupted after {res.global_step} step(s); outputs in {res.out_dir}", file=sys.stderr)
        return 130
    print(f"done: {res.epochs_done} epoch(s), {res.global_step} step(s); outputs in {res.out_dir}")
    return 0
