"""Copy a training run's checkpoint into the package as the shipped model.

    python scripts/publish_model.py runs/face_mnv2_300 [--which last|best] [--checkpoint ep021-it000000]

Writes ssd_mnv2/models/face_mnv2_300.params (atomically) and the checkpoint's resolved config
as ssd_mnv2/models/face_mnv2_300.yaml, and prints their sizes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from ssd_mnv2.config import dump_config, load_config
    from ssd_mnv2.engine.checkpoint import latest_checkpoint
    from ssd_mnv2.io_utils import atomic_path
    from ssd_mnv2.model.ssd import build_ssd
    from ssd_mnv2.model.weights import load_params

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_dir")
    ap.add_argument("--which", choices=["last", "best"], default="last")
    ap.add_argument("--name", default="face_mnv2_300")
    ap.add_argument("--checkpoint", default=None,
                    help="a checkpoint folder name under RUN_DIR/checkpoints (e.g. ep021-it000000); overrides --which")
    args = ap.parse_args(argv)
    if args.checkpoint:
        ck = Path(args.run_dir) / "checkpoints" / args.checkpoint
        if not (ck / "model.params").is_file():
            raise SystemExit(f"no checkpoint {ck}")
    else:
        ck = latest_checkpoint(args.run_dir, f"{args.which}.json")
    if ck is None:
        raise SystemExit(f"no {args.which} checkpoint in {args.run_dir}")
    cfg = load_config(ck / "config.yaml")
    net = build_ssd(cfg, init=False)
    load_params(net, ck / "model.params")  # verify before publishing
    dest = ROOT / "ssd_mnv2" / "models"
    with atomic_path(dest / f"{args.name}.params") as tmp:
        net.save_parameters(tmp)  # without the anchor constants (computed from the config)
    dump_config(cfg, dest / f"{args.name}.yaml")
    for f in (dest / f"{args.name}.params", dest / f"{args.name}.yaml"):
        print(f"{f} ({f.stat().st_size / 2**20:.1f} MiB)")
    print(f"from {ck}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
