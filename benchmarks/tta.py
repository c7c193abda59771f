"""What test-time augmentation buys on the WIDER FACE dev split, and what it costs.

    python benchmarks/tta.py                                  # the shipped model, all dev images
    python benchmarks/tta.py --params P.params --config C.yaml --max-images 20

Rows: no TTA, flip, multi-scale (``--scales``, default original,0.5x,1.5x), multi-scale + flip,
the TTA rows once per ``--merge`` method (default nms and vote). Columns: Easy / Medium / Hard AP
(official protocol) at the base size ``--size`` (default: original) and ms/image of the whole
(TTA) predict, after one warm-up image. ``--max-images N`` takes N images spread evenly over the
sorted dev list (so every part of it is sampled). Prints a Markdown table and writes it with the
per-row summaries to ``--out``/tta_table.json. The thread count is set before MXNet is imported.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_parser() -> argparse.ArgumentParser:
    from ssd_mnv2.commands import add_engine_args, add_model_args

    p = argparse.ArgumentParser(prog="benchmarks/tta.py", description=__doc__.split("\n\n")[0])
    add_model_args(p)
    add_engine_args(p)
    p.add_argument("--images", default=None, help="WIDER dev images (default: the config's data.val_images)")
    p.add_argument("--gt", default=None, help="official .mat folder (default: the config's data.val_gt_dir)")
    p.add_argument("--max-images", type=int, default=0, help="evaluate N images spread over the split (0: all)")
    p.add_argument("--size", default="original", help="base network input (default: original)")
    p.add_argument("--scales", default="original,0.5x,1.5x", help="multi-scale rows: sizes to run and merge")
    p.add_argument("--merge", default="nms,vote", help="merge methods of the TTA rows (comma-separated)")
    p.add_argument("--threads", type=int, default=2, help="OMP / ONNX Runtime threads")
    p.add_argument("--out", default="outputs/tta_bench", help="folder for predictions and tta_table.json")
    return p


def pick_images(images_dir: str, n: int) -> list:
    """``event/name.jpg`` of ``n`` images spread evenly over the sorted split (all if n <= 0)."""
    import numpy as np

    from ssd_mnv2.evaluation.image_list import find_images

    found = find_images(images_dir)
    if n <= 0 or n >= len(found):
        return found
    idx = np.unique(np.linspace(0, len(found) - 1, n).round().astype(int))
    return [found[i] for i in idx]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before mxnet / onnxruntime sessions
    from ssd_mnv2.imageio import read_image
    from ssd_mnv2.bench import machine_info
    from ssd_mnv2.commands import backend_detector
    from ssd_mnv2.evaluation.driver import evaluate_detector
    from ssd_mnv2.tta import MERGE_METHODS, TTADetector, parse_scales

    scales = parse_scales(args.scales)
    merges = [m.strip() for m in args.merge.split(",") if m.strip()]
    bad = [m for m in merges if m not in MERGE_METHODS]
    if bad or not merges:
        raise ValueError(f"--merge: expected a list of {', '.join(MERGE_METHODS)}, got {args.merge!r}")
    base = backend_detector(args)
    images_dir = args.images or base.cfg.data.val_images
    gt_dir = args.gt or base.cfg.data.val_gt_dir
    chosen = pick_images(images_dir, args.max_images)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    list_file = out / "images.txt"
    list_file.write_text("\n".join(chosen) + "\n")
    warm = read_image(os.path.join(images_dir, chosen[0]))

    rows = [("no TTA", None, base)]
    for m in merges:
        rows += [("flip", m, TTADetector(base, "original", flip=True, merge=m)),
                 (f"multi-scale {','.join(scales)}", m, TTADetector(base, scales, merge=m)),
                 (f"multi-scale {','.join(scales)} + flip", m, TTADetector(base, scales, flip=True, merge=m))]
    info = machine_info()
    describe = base.describe() if hasattr(base, "describe") else {}
    results = []
    for i, (name, merge, det) in enumerate(rows):
        tag = f"row{i}"
        det.predict(warm, size=args.size)  # warm-up (session, memory) outside the timing
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            s = evaluate_detector(det, images_dir, gt_dir, list_file=str(list_file), size=args.size,
                                  out_dir=str(out / tag))
        results.append({"tta": name, "merge": merge or "-", "passes": getattr(det, "num_passes", 1),
                        "ap": s["ap"], "ms_per_image": s["ms_per_image"], "wall_s": time.perf_counter() - t0})
        r = results[-1]
        print(f"{name} ({r['merge']}): easy {r['ap']['easy']:.4f} medium {r['ap']['medium']:.4f} "
              f"hard {r['ap']['hard']:.4f}, {r['ms_per_image']:.1f} ms/image", file=sys.stderr, flush=True)

    head = (f"TTA on WIDER FACE dev ({len(chosen)} images), base size {args.size}, model "
            f"{describe.get('model', '?')}, backend {describe.get('backend', type(base).__name__)}\n"
            "Machine: " + ", ".join(f"{k}={v}" for k, v in info.items()) + f", threads={args.threads}")
    lines = [head, "", "| TTA | merge | passes | Easy | Medium | Hard | ms/image |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['tta']} | {r['merge']} | {r['passes']} | {r['ap']['easy']:.4f} | "
                     f"{r['ap']['medium']:.4f} | {r['ap']['hard']:.4f} | {r['ms_per_image']:.1f} |")
    print("\n".join(lines))
    doc = {"images": len(chosen), "size": args.size, "machine": info, "model": describe, "rows": results}
    (out / "tta_table.json").write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    from ssd_mnv2.bench import run_script

    run_script(main, "benchmarks/tta.py")
