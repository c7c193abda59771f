"""``ssd-mnv2 anchors``: anchor summary, face statistics, coverage, k-means proposals, sweeps.

Each sub-command is one call into the :mod:`ssd_mnv2.lab` package (see its doc for where faces
are measured: by default the training resize, faces x image_size / min(W, H)).
"""
from __future__ import annotations

from pathlib import Path

MEASURE_HELP = ("where faces are measured: 'train' (default: the training resize, faces scaled "
                "by image_size/min(W,H), i.e. a crop of scale 1) or an inference size spec "
                "('max-side 640', '640x480', 'original')")


def add_parser(sub) -> None:
    p = sub.add_parser("anchors", help="anchor summary, face statistics, coverage, suggest, sweep",
                       description="Anchor aspect-ratio experiments (see ssd_mnv2/lab/).")
    asub = p.add_subparsers(dest="anchors_command", metavar="ACTION")
    asub.required = True

    s = asub.add_parser("summary", help="per-level feature sizes and anchor counts, parameters")
    s.add_argument("--config", default=None, help="YAML config (default: the shipped model's)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--size", default=None, help="input WxH (or N) (default: model.image_size square)")
    s.add_argument("--no-params", action="store_true", help="do not build the net to count parameters")
    s.set_defaults(func=run_summary)

    s = asub.add_parser("stats", help="face size / aspect-ratio distribution (table + histograms)")
    s.add_argument("--config", default=None, help="config giving the data and image_size (default: shipped)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--split", choices=["train", "val"], default="train")
    s.add_argument("--measure", default="train", help=MEASURE_HELP)
    s.add_argument("--max-images", type=int, default=None, help="only the first N images")
    s.add_argument("--out", default="runs/anchors/stats", help="output folder (md, json, png)")
    s.set_defaults(func=run_stats)

    s = asub.add_parser("coverage", help="compare how anchor configs cover the faces, by size")
    s.add_argument("--config", nargs="+", required=True, metavar="YAML", help="anchor configs to compare")
    s.add_argument("--data-config", default=None,
                   help="config giving the data and image_size of the measurement (default: the first --config)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override applied to the data config")
    s.add_argument("--split", choices=["train", "val"], default="val")
    s.add_argument("--measure", default="train", help=MEASURE_HELP)
    s.add_argument("--max-images", type=int, default=None, help="only the first N images")
    s.add_argument("--out", default="runs/anchors/coverage", help="output folder (md, json, png)")
    s.add_argument("--prefix", default="coverage", help="output file name prefix")
    s.set_defaults(func=run_coverage)

    s = asub.add_parser("suggest", help="k-means (1 - IoU) anchors per level -> a new config")
    s.add_argument("--data-config", default=None, help="config giving data and model (default: shipped)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--levels", type=int, default=None,
                   help="detection levels of the proposed model (default: the data config's)")
    s.add_argument("--k-per-level", type=int, default=2, help="anchor sizes per level (k-means clusters)")
    s.add_argument("--ratios-per-level", type=int, default=1, help="aspect ratios per level")
    s.add_argument("--split", choices=["train", "val"], default="train")
    s.add_argument("--measure", default="train", help=MEASURE_HELP)
    s.add_argument("--max-images", type=int, default=None, help="only the first N images")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="configs/anchors/suggested.yaml", help="config to write")
    s.add_argument("--report", default=None, help="also write the clustering report (JSON) here")
    s.set_defaults(func=run_suggest)

    s = asub.add_parser("scale", help="face sizes in training samples (crop policy) vs evaluation")
    s.add_argument("--config", nargs="+", required=True, metavar="YAML",
                   help="configs whose training augmentation to simulate (the first gives the dev set)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override applied to every config")
    s.add_argument("--eval-size", default="original", help="evaluation input size spec")
    s.add_argument("--max-images", type=int, default=None, help="only the first N training images")
    s.add_argument("--samples-per-image", type=int, default=2)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="runs/anchors/scale", help="output folder (md, json, png)")
    s.set_defaults(func=run_scale)

    s = asub.add_parser("sweep", help="train each anchor config briefly, evaluate, compare")
    s.add_argument("--configs", nargs="+", required=True, metavar="YAML")
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--max-iters-per-epoch", type=int, default=50)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--width", type=float, default=None, help="override model.width (e.g. 0.5)")
    s.add_argument("--image-size", type=int, default=None, help="override model.image_size")
    s.add_argument("--eval-size", default="max-side 640", help="evaluation input size spec")
    s.add_argument("--eval-images", type=int, default=100, help="first N dev images (0 = all)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--num-workers", type=int, default=None, help="override data.num_workers")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override applied to every config")
    s.add_argument("--out", default="runs/anchor_sweep", help="output folder")
    s.add_argument("--progress", action="store_true", help="show tqdm bars while training")
    s.set_defaults(func=run_sweep)


def _parse_wh(spec):
    if spec is None:
        return None, None
    from ..sizes import parse_size

    kind, wh = parse_size(spec)
    if kind != "fixed":
        raise ValueError(f"--size {spec!r}: expected WxH or N")
    return wh[1], wh[0]


def run_summary(args) -> int:
    from ..lab.summary import anchor_summary
    from ..config import load_config

    cfg = load_config(args.config, args.overrides)
    h, w = _parse_wh(args.size)
    text, _ = anchor_summary(cfg, h, w, with_params=not args.no_params)
    print(text)
    return 0


def run_scale(args) -> int:
    from ..config import load_config
    from ..lab.scale import scale_report

    cfgs = {Path(c).stem: load_config(c, args.overrides) for c in args.config}
    rep = scale_report(cfgs, args.out, args.eval_size, args.max_images, args.samples_per_image,
                       args.seed)
    print(rep["table"])
    print(f"wrote {args.out}/scale.md, scale.json, {rep['png']}")
    return 0


def run_stats(args) -> int:
    from ..lab.faces import collect_faces
    from ..lab.report import format_stats_table
    from ..lab.stats import write_stats
    from ..config import load_config

    cfg = load_config(args.config, args.overrides)
    faces = collect_faces(cfg, args.split, args.measure, max_images=args.max_images)
    st = write_stats(faces, args.out, anchor_cfg=cfg)
    print(format_stats_table(st))
    print("wrote " + ", ".join(st["files"]))
    return 0


def run_coverage(args) -> int:
    from ..lab.coverage import compare_coverage, write_coverage
    from ..lab.faces import collect_faces
    from ..lab.report import format_coverage_table
    from ..config import load_config

    data_cfg = load_config(args.data_config or args.config[0], args.overrides)
    faces = collect_faces(data_cfg, args.split, args.measure, max_images=args.max_images)
    results = compare_coverage(args.config, faces)
    files = write_coverage(results, args.out, args.prefix)
    print(format_coverage_table(results))
    print("(" + ", ".join(f"{r['name']} {r['seconds']} s" for r in results) + ")")
    print("wrote " + ", ".join(files.values()))
    return 0


def run_suggest(args) -> int:
    import json

    from ..lab.suggest import suggest_anchors
    from ..config import load_config

    from ..config import DEFAULT_CONFIG
    from ..io_utils import refuse_output_over_input

    outs = [args.out] + ([args.report] if args.report else [])
    refuse_output_over_input(outs, [args.data_config or DEFAULT_CONFIG], "--out/--report")
    data_cfg = load_config(args.data_config, args.overrides)
    cfg, report = suggest_anchors(data_cfg, args.levels, args.k_per_level, args.ratios_per_level,
                                  split=args.split, measure=args.measure, out=args.out,
                                  seed=args.seed, max_images=args.max_images)
    print(report["faces"])
    print(f"rule: {report['rule']}")
    for lv in report["per_level"]:
        print(f"  level {lv['level']} stride {lv['stride']:>4} range {lv['range'][0]:g}-{lv['range'][1]:g} px: "
              f"{lv['faces']:>6} faces -> sizes {list(cfg.anchors.sizes[lv['level']])} ratios "
              f"{list(cfg.anchors.ratios[lv['level']])}" + (f" (k-means mean IoU {lv['mean_iou']})"
                                                       if lv.get("mean_iou") is not None else
                                                       f" ({lv.get('note', '')})"))
    print(f"mean centred IoU of the faces with their level's best anchor shape: "
          f"{report['mean_centred_iou']:.3f}")
    print(f"wrote {report['config_path']} (validated with load_config)")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.report}")
    return 0


def run_sweep(args) -> int:
    from ..lab.report import format_sweep_table
    from ..lab.sweep import run_sweep as sweep

    rows = sweep(args.configs, epochs=args.epochs, max_iters_per_epoch=args.max_iters_per_epoch,
                 width=args.width, out_dir=args.out, batch_size=args.batch_size,
                 image_size=args.image_size, eval_size=args.eval_size, eval_images=args.eval_images,
                 seed=args.seed, overrides=args.overrides, num_workers=args.num_workers,
                 progress=args.progress)
    import json
    from pathlib import Path

    budget = json.loads((Path(args.out) / "sweep.json").read_text())["budget"]
    print(format_sweep_table(rows, budget))
    print(f"wrote {Path(args.out) / 'sweep.md'}, sweep.json, sweep.png")
    return 0
