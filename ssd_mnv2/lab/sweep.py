"""Short training runs of several anchor configs with one budget, each scored on the WIDER dev set."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..anchors import anchor_counts
from ..config import Config, load_config
from .plots import plot_sweep
from .report import format_sweep_table, json_float

__all__ = ["run_sweep"]

def _first_val_images(cfg: Config, n: int) -> List[str]:
    d = cfg.data
    if d.val_list:
        from ..evaluation.image_list import read_image_list

        imgs = read_image_list(d.val_list)
    else:
        imgs = sorted(f"{p.parent.name}/{p.name}" for p in Path(d.val_images).glob("*/*.jpg"))
    return imgs[:n] if n and n > 0 else imgs


def run_sweep(configs: Sequence[Union[str, Path]], epochs: int = 1,
              max_iters_per_epoch: int = 50, width: Optional[float] = None,
              out_dir: Union[str, Path] = "runs/anchor_sweep", batch_size: int = 8,
              image_size: Optional[int] = None, eval_size: str = "max-side 640",
              eval_images: int = 100, seed: int = 0, overrides: Sequence[str] = (),
              num_workers: Optional[int] = None, progress: bool = False) -> List[Dict[str, Any]]:
    """Train each anchor config briefly with the same seed and budget, then evaluate it.

    Each config trains with :func:`ssd_mnv2.engine.trainer.fit` in ``out_dir/<name>`` (``epochs``
    x ``max_iters_per_epoch`` iterations of ``batch_size``; ``width``/``image_size`` override the
    model; the TFLite ImageNet backbone only fits width 1.0, other widths start from scratch)
    and is scored on the first ``eval_images`` dev images (0 = all) with the official WIDER
    protocol (:func:`ssd_mnv2.evaluation.driver.evaluate_detector`) at ``eval_size``. Writes
    ``sweep.md``, ``sweep.json`` and ``sweep.png`` to ``out_dir``; returns the rows.
    """
    from ..engine.checkpoint import latest_checkpoint
    from ..engine.run_folder import run_files
    from ..engine.trainer import fit
    from ..evaluation.driver import evaluate_detector
    from ..predictor import Detector

    out = Path(out_dir)
    for path in configs:  # one run per folder: refuse before training anything
        held = run_files(out / Path(path).stem)
        if held:
            raise RuntimeError(f"sweep: {out / Path(path).stem} already holds a run ({', '.join(held)}); "
                               "choose another --out, or move the old sweep away")
    out.mkdir(parents=True, exist_ok=True)
    rows: List[Dict[str, Any]] = []
    budget = {"epochs": epochs, "max_iters_per_epoch": max_iters_per_epoch, "batch_size": batch_size,
              "width": width, "image_size": image_size, "eval_size": eval_size,
              "eval_images": eval_images, "seed": seed, "overrides": list(overrides)}
    for path in configs:
        name = Path(path).stem
        run_dir = out / name
        ov = [f"train.out_dir={run_dir}", f"train.epochs={int(epochs)}",
              f"train.max_iters_per_epoch={int(max_iters_per_epoch)}",
              f"train.batch_size={int(batch_size)}", f"train.seed={int(seed)}", "train.eval_every=0",
              "solver.warmup_epochs=0.0"]
        if width is not None:
            ov.append(f"model.width={float(width)}")
        if image_size is not None:
            ov.append(f"model.image_size={int(image_size)}")
        if num_workers is not None:
            ov.append(f"data.num_workers={int(num_workers)}")
        cfg = load_config(path, ov + list(overrides))
        backbone = cfg.train.pretrained_backbone
        if cfg.model.width != 1.0 and backbone.lower().endswith(".tflite"):
            cfg = load_config(path, ov + list(overrides) + ["train.pretrained_backbone=none"])
            backbone = "none"
        t0 = time.perf_counter()
        res = fit(cfg, progress=progress)
        train_s = time.perf_counter() - t0
        ck = latest_checkpoint(run_dir)
        if ck is None:
            raise RuntimeError(f"sweep: training {name} left no checkpoint in {run_dir}")
        det = Detector.from_files(ck / "model.params", ck / "config.yaml", fused=False)
        imgs = _first_val_images(cfg, eval_images)
        list_file = run_dir / "eval_list.txt"
        list_file.write_text("\n".join(imgs) + "\n")
        ev = evaluate_detector(det, cfg.data.val_images, cfg.data.val_gt_dir, list_file=str(list_file),
                               size=eval_size, out_dir=str(run_dir / "eval"))
        S = cfg.model.image_size
        last = res.history[-1] if res.history else {}
        rows.append({"name": name, "config": str(path), "anchors": int(sum(anchor_counts(cfg, S, S))),
                     "per_location": cfg.anchors.per_location(),
                     "ap_easy": json_float(ev["ap"].get("easy"), 4), "ap_medium": json_float(ev["ap"].get("medium"), 4),
                     "ap_hard": json_float(ev["ap"].get("hard"), 4),
                     "ms_per_image": json_float(ev.get("ms_per_image"), 1), "iterations": res.global_step,
                     "final_loss": json_float(last.get("loss"), 4), "train_s": round(train_s, 1),
                     "backbone": backbone, "width": cfg.model.width, "image_size": S,
                     "eval_images": len(imgs)})
        (out / "sweep.json").write_text(json.dumps({"budget": budget, "rows": rows}, indent=1))
    (out / "sweep.md").write_text(format_sweep_table(rows, budget) + "\n")
    plot_sweep(rows, out / "sweep.png", budget)
    return rows
