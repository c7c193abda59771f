"""Speed of one shipped model against another, interleaved call by call in one process.

    python benchmarks/model_speed_ratio.py                         # the default model vs face_mnv2_300
    python benchmarks/model_speed_ratio.py --models face_mnv2_fpn_300,face_mnv2_300 --reps 300
    python benchmarks/model_speed_ratio.py --models runs/arms/dense/checkpoints/ep032-it000218/model.params,face_mnv2_300

Each model runs through the same backend (default: the default backend, ONNX Runtime) on the
same synthetic BGR image per size; the calls alternate in blocks (``--block`` calls of A, a
pause, then of B, ...) so that a machine whose speed drifts (a shared VM) slows both alike,
while one model's idle thread pool (ONNX Runtime spins after a run) does not steal the other's
cores. Prints, per size, the median and the 25th/75th
percentile end-to-end ms of ``predict`` (display threshold 0.5, as detect/webcam run) and the
ratio of the medians, plus the machine line. The thread count is set before MXNet is imported.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks/model_speed_ratio.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None,
                   help="two models A,B: shipped names or .params files (a checkpoint's model.params "
                        "reads the config.yaml beside it; default: the default model, then face_mnv2_300)")
    p.add_argument("--backend", default="auto", help="backend of both (default: auto = the default backend)")
    p.add_argument("--sizes", default="640x480,300x300", help="comma-separated WxH images (input = image size)")
    p.add_argument("--reps", type=int, default=200, help="timed calls per model and size")
    p.add_argument("--block", type=int, default=10, help="calls of one model before switching")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=2, help="OMP / ONNX Runtime threads")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np

    from ssd_mnv2.bench import machine_info
    from ssd_mnv2.data.synthetic import make_image
    from ssd_mnv2.deploy.backends import make_detector
    from ssd_mnv2.predictor import DEFAULT_MODEL, Detector

    names = args.models.split(",") if args.models else [DEFAULT_MODEL, "face_mnv2_300"]
    if len(names) != 2:
        raise SystemExit("--models: give two names, A,B")
    def load(name: str, fused: bool) -> Detector:
        """A shipped model's name, or a ``.params`` file (a checkpoint's, with its config.yaml)."""
        if not name.endswith(".params"):
            return Detector.default(model=name, fused=fused)
        params = Path(name)
        config = params.with_suffix(".yaml")
        return Detector.from_files(params, config if config.is_file() else params.parent / "config.yaml",
                                   fused=fused)

    dets = [make_detector(args.backend, lambda fused, n=n: load(n, fused), threads=args.threads)
            for n in names]
    threshold = dets[0].cfg.eval.display_threshold
    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"backend {args.backend}: {type(dets[0]).__name__}; {args.reps} calls per model and size, "
          f"alternating in blocks of {args.block}\n")
    print(f"| image | {names[0]} ms (p25-p75) | {names[1]} ms (p25-p75) | ratio {names[0]} / {names[1]} |")
    print("|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.lower().split("x"))
        img = make_image(rng, (w, h), 3)[0]
        for _ in range(args.warmup):
            for d in dets:
                d.predict(img, size="original", threshold=threshold)
        times = [[], []]
        for _ in range(max(1, args.reps // args.block)):
            for i, d in enumerate(dets):
                time.sleep(0.05)  # let the other model's thread pool go idle
                for _ in range(args.block):
                    t0 = time.perf_counter()
                    d.predict(img, size="original", threshold=threshold)
                    times[i].append((time.perf_counter() - t0) * 1000.0)
        q = [np.percentile(t, [25, 50, 75]) for t in times]
        print(f"| {w}x{h} | {q[0][1]:.2f} ({q[0][0]:.2f}-{q[0][2]:.2f}) | {q[1][1]:.2f} ({q[1][0]:.2f}-{q[1][2]:.2f}) "
              f"| {q[0][1] / q[1][1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
