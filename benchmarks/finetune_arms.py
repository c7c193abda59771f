"""Fine-tuning arms from one run's checkpoint: one change each, the same start and budget, scored
on dev AP at original size (all dev images, official protocol, ONNX Runtime) and on the
face-free sets of ``benchmarks/face_free.py``. Prints a Markdown table.

    python benchmarks/finetune_arms.py --from runs/face_mnv2_fpn_300 --iters 218 \\
        --set train.epochs=40 --arm control \\
        --arm "multiscale data.canvas_sizes=[448,480,512,544,576]" \\
        --arm "unfreeze train.freeze_stages=0"
    python benchmarks/finetune_arms.py --table          # the arms scored so far in --out

Each ``--arm "NAME [KEY=VALUE ...]"`` starts from a copy of the ``--from`` run's latest checkpoint
(weights, Adam moments, step, LR position, RNG) in ``--out/NAME`` and trains ``--iters``
iterations with ``--config``, the common ``--set`` overrides and its own (``ssd-mnv2 train
--resume``; in-training evaluation off). ``--score-start`` adds a row for the start checkpoint
itself. Everything is resumable: an interrupted arm trains on to the same target step, a scored
arm (``result.json``) is skipped, unless ``--extend`` raises its budget to ``--iters``: it then
trains on from its checkpoint and is scored again (the old scores move to ``scored/step<N>/``).
Each step runs as its own process (the CLI a user runs), so
the memory of a training is returned before the next starts. Run it while no other training
runs: a 512 px training holds ~13 GB.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(cmd: List[str], log: Path) -> None:
    print("$ " + " ".join(cmd), flush=True)
    with open(log, "a") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if rc != 0:
        raise RuntimeError(f"exit status {rc}: {' '.join(cmd)} (log: {log})")


def run_arm(name: str, overrides: List[str], iters: int, args) -> Dict[str, Any]:
    from ssd_mnv2.engine.arms import arm_checkpoint, extend_arm, prepare_arm, remaining_iters

    arm = Path(args.out) / name
    result = arm / "result.json"
    if args.extend and (arm / "arm.json").is_file():
        extend_arm(args.out, name, iters, overrides)
    if result.is_file():
        return json.loads(result.read_text())
    spec = prepare_arm(args.out, name, args.source, iters, overrides)
    log = arm / "arm.log"
    t0 = time.time()
    left = remaining_iters(arm)
    if left > 0:
        sets = [x for o in ["train.eval_every=0", *args.set, *overrides] for x in ("--set", o)]
        _run(["ssd-mnv2", "train", "--config", args.config, "--resume", "--no-progress",
              "--out-dir", str(arm), "--max-iters", str(left), *sets], log)
        if remaining_iters(arm) > 0:
            raise RuntimeError(f"{arm}: stopped before its target step (log: {log}); run again to continue")
    train_s = time.time() - t0
    ck = arm_checkpoint(arm)
    if not (arm / "eval" / "wider_eval.json").is_file():
        _run(["ssd-mnv2", "evaluate", "--params", str(ck / "model.params"), "--config",
              str(ck / "config.yaml"), "--size", "original", "--out", str(arm / "eval")], log)
    if not (arm / "face_free" / "face_free.json").is_file():
        _run([sys.executable, str(ROOT / "benchmarks" / "face_free.py"), str(ck), "--out",
              str(arm / "face_free")], log)
    row = {"name": name, "overrides": overrides, "common": list(args.set), "config": args.config,
           "from": spec["from"], "start_step": spec["start_step"], "target_step": spec["target_step"],
           "checkpoint": str(ck),
           "ap": json.loads((arm / "eval" / "wider_eval.json").read_text())["ap"],
           "face_free": json.loads((arm / "face_free" / "face_free.json").read_text())[0]["sets"],
           "train_s": round(train_s, 1)}
    result.write_text(json.dumps(row, indent=1))
    return row


def main(argv=None) -> int:
    from ssd_mnv2.engine.arms import arms_table, parse_arm

    p = argparse.ArgumentParser(prog="benchmarks/finetune_arms.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", default="runs/face_mnv2_fpn_300",
                   help="run folder whose latest checkpoint every arm starts from, or one checkpoint "
                        "folder (e.g. runs/face_mnv2_fpn_300/checkpoints/ep032-it000000)")
    p.add_argument("--config", default="configs/face_mnv2_fpn_512.yaml")
    p.add_argument("--iters", type=int, default=218, help="iterations per arm (default: one epoch)")
    p.add_argument("--arm", action="append", default=[], help="'NAME [KEY=VALUE ...]' (repeatable)")
    p.add_argument("--set", action="append", default=[], help="override for every arm (repeatable)")
    p.add_argument("--score-start", action="store_true", help="also score the start checkpoint")
    p.add_argument("--extend", action="store_true",
                   help="an arm that exists with fewer iterations trains on to --iters (and is scored again)")
    p.add_argument("--out", default="runs/arms")
    p.add_argument("--table", action="store_true", help="only print the table of the scored arms")
    args = p.parse_args(argv)
    arms = [parse_arm(a) for a in args.arm]
    names = [n for n, _ in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"--arm: names must differ, got {names}")
    if args.table:
        results = [json.loads(f.read_text()) for f in sorted(Path(args.out).glob("*/result.json"))]
    else:
        todo = ([("start", [], 0)] if args.score_start else []) + [(n, o, args.iters) for n, o in arms]
        results = []
        for name, overrides, iters in todo:
            results.append(run_arm(name, overrides, iters, args))
            print(json.dumps({k: results[-1][k] for k in ("name", "ap", "train_s")}), flush=True)
    print(arms_table(results))
    return 0


if __name__ == "__main__":
    from ssd_mnv2.bench import run_script

    run_script(main, "benchmarks/finetune_arms.py")
