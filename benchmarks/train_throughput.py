"""Training throughput on this machine: full step vs data pipeline alone.

    python benchmarks/train_throughput.py [--iters 20] [--batch-size 16] [--widths 1.0 0.5]

Prints a table: images/s of the full training step (data loading + forward + backward + update)
and of the data pipeline alone (decode, augment, target encoding in DataLoader workers), and the
share of the step time spent waiting for data. Uses the WIDER train split of the config.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import mxnet as mx
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, mxnet {mx.__version__}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def measure(config: str, width: float, iters: int, batch_size: int, workers: int, warmup: int = 3):
    import mxnet as mx
    from mxnet import autograd, gluon

    from ssd_mnv2.config import load_config
    from ssd_mnv2.data.loader import EpochLoader
    from ssd_mnv2.data.pipeline import build_dataset, build_train_samples
    from ssd_mnv2.loss import MultiBoxLoss
    from ssd_mnv2.model.ssd import build_ssd

    ov = [f"model.width={width}", f"train.batch_size={batch_size}", f"data.num_workers={workers}",
          "train.pretrained_backbone=none"]
    cfg = load_config(config, ov)
    ds = build_dataset(cfg, "train")
    samples = build_train_samples(cfg, ds)

    loader = EpochLoader(samples, batch_size, seed=0, num_workers=workers)  # the trainer's loader

    # data pipeline alone
    it = loader.epoch(0)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(iters):
        next(it)
    data_ips = iters * batch_size / (time.perf_counter() - t0)

    # full step
    net = build_ssd(cfg)
    for bn in net.backbone.batchnorms(3):
        bn._kwargs["use_global_stats"] = True
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-4})
    loss_fn = MultiBoxLoss()
    it = loader.epoch(1)
    step_times, waits = [], []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        batch = [b.as_in_context(mx.cpu()) for b in next(it)]  # workers return cpu_shared arrays
        t1 = time.perf_counter()
        with autograd.record():
            c, b, _ = net(batch[0])
            _, _, total = loss_fn([c], [b], [batch[1]], [batch[2]])
        autograd.backward(total)
        trainer.step(1)
        total[0].wait_to_read()
        t2 = time.perf_counter()
        if i >= warmup:
            step_times.append(t2 - t0)
            waits.append(t1 - t0)
    loader.close()
    step = statistics.median(step_times)
    return {"width": width, "step_ips": batch_size / step, "ms_per_image": 1000 * step / batch_size,
            "data_ips": data_ips, "wait_share": sum(waits) / sum(step_times)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "ssd_mnv2/models/face_mnv2_300.yaml"))
    ap.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"300x300, batch {args.batch_size}, {args.workers} data workers, {args.iters} timed steps (median)")
    rows = [measure(args.config, w, args.iters, args.batch_size, args.workers) for w in args.widths]
    print("| width | train step img/s | ms/image | data pipeline alone img/s | waiting for data |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['width']} | {r['step_ips']:.1f} | {r['ms_per_image']:.0f} | {r['data_ips']:.1f} | "
              f"{100 * r['wait_share']:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
