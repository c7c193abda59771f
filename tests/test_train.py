"""Trainer: checkpoints, exact resume, NaN guard, two contexts, SIGKILL during a write."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from ssd_mnv2.engine.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from ssd_mnv2.engine.schedule import lr_at
from ssd_mnv2.engine.hooks import Hook
from ssd_mnv2.engine.trainer import NonFiniteLossError, fit, parse_ctx
from ssd_mnv2.model.ssd import build_ssd
from ssd_mnv2.model.weights import load_params
from ssd_mnv2.data.synthetic import write_wider
from tiny_configs import tiny_config


@pytest.fixture()
def data(tmp_path):
    write_wider(tmp_path / "d", n_images=8, zero_face_every=4)
    return tmp_path / "d"


def _params(out_dir):
    ck = latest_checkpoint(out_dir)
    return mx.nd.load(str(ck / "model.params"))


def test_three_iterations_write_a_loadable_checkpoint(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "run")
    res = fit(cfg, max_iters=3, progress=False)
    assert res.global_step == 3
    ck = latest_checkpoint(tmp_path / "run")
    loaded = load_checkpoint(ck)
    assert loaded["state"]["global_step"] == 3 and loaded["state"]["iteration"] == 3
    assert loaded["optim"]  # Adam moments were saved (no pickle)
    net = build_ssd(loaded["config"], init=False)
    load_params(net, loaded["params"])
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_diou_box_loss_trains_through_the_trainer(data, tmp_path):
    rows = {}
    for kind in ("smooth_l1", "diou"):
        cfg = tiny_config(data, tmp_path / kind, loss={"box_loss": kind})
        res = fit(cfg, max_iters=4, progress=False)  # one whole epoch: one history row
        rows[kind] = res.history[0]
    assert np.isfinite(rows["diou"]["box_loss"]) and rows["diou"]["box_loss"] > 0
    assert rows["diou"]["box_loss"] != pytest.approx(rows["smooth_l1"]["box_loss"], rel=1e-3)
    # the classification term starts the same (same seed and data); only the box term differs
    assert rows["diou"]["cls_loss"] == pytest.approx(rows["smooth_l1"]["cls_loss"], rel=1e-3)


def test_resume_is_exact(data, tmp_path):
    cfg_a = tiny_config(data, tmp_path / "a")
    fit(cfg_a, max_iters=6, progress=False)  # 4 iterations/epoch: crosses an epoch boundary
    cfg_b = tiny_config(data, tmp_path / "b")
    fit(cfg_b, max_iters=3, progress=False)
    st = load_checkpoint(latest_checkpoint(tmp_path / "b"))["state"]
    assert (st["epoch"], st["iteration"], st["global_step"]) == (0, 3, 3)
    assert st["lr"] == pytest.approx(lr_at(cfg_b, 2, 4))
    fit(cfg_b, resume=True, max_iters=3, progress=False)
    st_a = load_checkpoint(latest_checkpoint(tmp_path / "a"))["state"]
    st_b = load_checkpoint(latest_checkpoint(tmp_path / "b"))["state"]
    assert st_a["global_step"] == st_b["global_step"] == 6
    assert st_a["lr"] == pytest.approx(st_b["lr"])
    pa, pb = _params(tmp_path / "a"), _params(tmp_path / "b")
    for k in pa:
        np.testing.assert_allclose(pa[k].asnumpy(), pb[k].asnumpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_multi_scale_training_resumes_exactly(data, tmp_path):
    """data.canvas_sizes: batches of different canvases train (the loss is finite for each) and
    an interrupted run resumes onto the same canvases, ending with the same weights."""
    from ssd_mnv2.data.pipeline import EpochBatchSampler

    sizes = {"data": {"canvas_sizes": [64, 96, 128]}}
    drawn = {b[0][2] for e in (0, 1) for b in EpochBatchSampler(8, 2, seed=1, epoch=e, sizes=[64, 96, 128])}
    assert len(drawn) >= 2  # the 6 iterations below see more than one canvas
    cfg_a = tiny_config(data, tmp_path / "a", **sizes)
    res = fit(cfg_a, max_iters=6, progress=False)
    assert res.global_step == 6
    cfg_b = tiny_config(data, tmp_path / "b", **sizes)
    fit(cfg_b, max_iters=3, progress=False)
    fit(cfg_b, resume=True, max_iters=3, progress=False)
    pa, pb = _params(tmp_path / "a"), _params(tmp_path / "b")
    for k in pa:
        np.testing.assert_allclose(pa[k].asnumpy(), pb[k].asnumpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    plain = tiny_config(data, tmp_path / "c")
    fit(plain, max_iters=6, progress=False)
    pc = _params(tmp_path / "c")
    assert any(not np.allclose(pa[k].asnumpy(), pc[k].asnumpy()) for k in pa)


def test_run_folder_in_the_old_flat_format_resumes_exactly(data, tmp_path):
    """A run written before the match/loss/solver/decode sections (train.lr, eval.nms_iou...
    in its config.yaml files) resumes with a new-format config, exactly as an uninterrupted run."""
    import yaml

    from ssd_mnv2.config import LEGACY_KEYS

    def to_old_format(path):
        d = yaml.safe_load(path.read_text())
        for key in ("assigner", "atss_topk"):  # added after the flat format: such a file has none
            d["match"].pop(key)
        for key in ("box_loss", "iou_target"):
            d["loss"].pop(key)
        for (old, key), new in LEGACY_KEYS.items():
            d[old][key] = d[new].pop(key)
        for new in set(LEGACY_KEYS.values()):
            assert not d.pop(new)
        path.write_text(yaml.safe_dump(d, sort_keys=False))

    fit(tiny_config(data, tmp_path / "a"), max_iters=5, progress=False)
    cfg_b = tiny_config(data, tmp_path / "b")
    fit(cfg_b, max_iters=3, progress=False)
    for f in [tmp_path / "b" / "config.yaml"] + list((tmp_path / "b").glob("checkpoints/*/config.yaml")):
        to_old_format(f)
        assert "lr" in yaml.safe_load(f.read_text())["train"]
    fit(cfg_b, resume=True, max_iters=2, progress=False)
    pa, pb = _params(tmp_path / "a"), _params(tmp_path / "b")
    for k in pa:
        np.testing.assert_allclose(pa[k].asnumpy(), pb[k].asnumpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_epoch_logs_and_curves(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "run", train={"epochs": 2})
    res = fit(cfg, progress=False)
    assert res.epochs_done == 2
    hist = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in hist)
    assert (tmp_path / "run" / "log.csv").read_text().startswith("epoch,")
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


class PoisonLoss(Hook):
    """Fault injection: a NaN loss at global step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_loss(self, run, losses):
        if run.state["global_step"] == self.step:
            return [l * float("nan") for l in losses]
        return None


def test_nan_guard_fires_and_keeps_last_good_checkpoint(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "run")
    fit(cfg, max_iters=2, progress=False)
    before = _params(tmp_path / "run")
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        fit(cfg, resume=True, hooks=[PoisonLoss(3)], progress=False)
    after = _params(tmp_path / "run")
    st = load_checkpoint(latest_checkpoint(tmp_path / "run"))["state"]
    assert st["global_step"] == 2
    for k in before:
        np.testing.assert_array_equal(before[k].asnumpy(), after[k].asnumpy())


def test_two_cpu_contexts(data, tmp_path):
    assert parse_ctx("cpu:0,cpu:1") == [mx.cpu(0), mx.cpu(1)]
    with pytest.raises(ValueError, match="--ctx"):
        parse_ctx("tpu:0")
    cfg = tiny_config(data, tmp_path / "run", train={"ctx": "cpu:0,cpu:1", "batch_size": 4})
    res = fit(cfg, max_iters=2, progress=False)
    assert res.global_step == 2


def test_lr_schedule_warmup_cosine_step():
    from ssd_mnv2.config import Config, SolverCfg, TrainCfg
    t = Config(solver=SolverCfg(lr=0.1, warmup_epochs=1, schedule="cosine"), train=TrainCfg(epochs=10))
    assert lr_at(t, 0, 10) == pytest.approx(0.01)
    assert lr_at(t, 10, 10) == pytest.approx(0.1)
    assert lr_at(t, 100, 10) == pytest.approx(0.001)
    s = Config(solver=SolverCfg(lr=0.1, warmup_epochs=0, schedule="step", step_epochs=[5, 8], step_factor=0.1),
               train=TrainCfg(epochs=10))
    assert [round(lr_at(s, e * 10, 10), 6) for e in (0, 5, 8)] == [0.1, 0.01, 0.001]


def test_sigkill_during_checkpoint_write_leaves_loadable_checkpoint(data, tmp_path):
    """Kill the writer right after it starts writing a new checkpoint folder."""
    cfg_dir = tmp_path / "run"
    cfg = tiny_config(data, cfg_dir)
    fit(cfg, max_iters=1, progress=False)  # a first good checkpoint
    code = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
import ssd_mnv2.engine.checkpoint as ck
from tiny_configs import tiny_config
from ssd_mnv2.engine.trainer import fit
from pathlib import Path
orig = ck.mx.nd.save
def slow_save(*a, **k):
    print('WRITING', flush=True)
    import time; time.sleep(30)
ck.mx.nd.save = slow_save
fit(tiny_config(Path({str(data)!r}), Path({str(cfg_dir)!r})), resume=True, max_iters=1, progress=False)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    t0 = time.time()
    for line in p.stdout:
        if "WRITING" in line:
            break
        assert time.time() - t0 < 120
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    ck = latest_checkpoint(cfg_dir)
    loaded = load_checkpoint(ck)
    assert loaded["state"]["global_step"] == 1
    load_params(build_ssd(loaded["config"], init=False), loaded["params"])


def test_ctrl_c_saves_and_exits_cleanly(data, tmp_path):
    out = tmp_path / "run"
    code = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from tiny_configs import tiny_config
from ssd_mnv2.engine.trainer import fit
r = fit(tiny_config(Path({str(data)!r}), Path({str(out)!r}), train={{"epochs": 1000}}), progress=False)
print("INTERRUPTED", r.interrupted, r.global_step, flush=True)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    t0 = time.time()
    while not (out / "last.json").exists():  # the first epoch's checkpoint
        assert time.time() - t0 < 120 and p.poll() is None
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    assert "INTERRUPTED True" in stdout
    st = load_checkpoint(latest_checkpoint(out))["state"]
    assert st["global_step"] >= 4


def test_init_params_fine_tunes_from_a_trained_model(data, tmp_path):
    fit(tiny_config(data, tmp_path / "a"), max_iters=2, progress=False)
    src = latest_checkpoint(tmp_path / "a") / "model.params"
    cfg = tiny_config(data, tmp_path / "b", train={"init_params": str(src)})
    net_seen = {}
    import ssd_mnv2.engine.trainer as tr
    orig = tr._freeze

    def spy(net, c):
        net_seen.update({k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()})
        return orig(net, c)
    tr._freeze = spy
    try:
        fit(cfg, max_iters=1, progress=False)
    finally:
        tr._freeze = orig
    ref = mx.nd.load(str(src))
    for k, v in ref.items():
        if not k.endswith("anchors"):
            np.testing.assert_array_equal(net_seen[k], v.asnumpy(), err_msg=k)
    with pytest.raises(FileNotFoundError):
        fit(tiny_config(data, tmp_path / "c", train={"init_params": str(tmp_path / "nope.params")}),
            max_iters=1, progress=False)


def test_in_training_evaluation_logs_ap_and_keeps_the_best_checkpoint(data, tmp_path):
    """eval_every=1 on a synthetic dev set with official .mat ground truth: every epoch's row
    gets Easy/Medium/Hard AP, the evaluation folder is written and best.json names the epoch
    with the highest Hard AP."""
    from ssd_mnv2.data.widerface import parse_wider_labels
    from ssd_mnv2.data.synthetic import write_wider_mats

    gt: dict = {}
    for r in parse_wider_labels(str(data / "labels.txt"), allow_degenerate=True):
        event, name = r.rel_path[:-4].split("/")
        boxes = r.boxes_xywh_px.astype(int)
        boxes = boxes[(boxes[:, 2] > 0) & (boxes[:, 3] > 0)]
        idx = list(range(1, len(boxes) + 1))
        gt.setdefault(event, {})[name] = (boxes, {"easy": idx, "medium": idx, "hard": idx})
    write_wider_mats(tmp_path / "gt", gt)
    cfg = tiny_config(data, tmp_path / "run", train={"epochs": 3, "eval_every": 1, "eval_size": "original"},
                      data={"val_gt_dir": str(tmp_path / "gt")})
    fit(cfg, progress=False)
    hist = json.loads((tmp_path / "run" / "log.json").read_text())
    for h in hist:
        for s in ("easy", "medium", "hard"):
            assert 0.0 <= h[f"ap_{s}"] <= 1.0
    for ep in (1, 2, 3):
        summary = json.loads((tmp_path / "run" / "eval" / f"epoch{ep:03d}" / "wider_eval.json").read_text())
        assert summary["ap"]["hard"] == pytest.approx(hist[ep - 1]["ap_hard"], abs=1e-6)
    assert (tmp_path / "run" / "eval" / "epoch001" / "predictions").is_dir()
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    hard = [h["ap_hard"] for h in hist]
    assert best["epoch"] == 1 + int(np.argmax(hard))
    assert (tmp_path / "run" / best["dir"] / "model.params").is_file()


def test_finetune_arm_starts_from_a_copy_and_continues_to_its_target(data, tmp_path):
    """An arm copies the run's latest checkpoint, records start and target step, and an
    interrupted arm resumes to the same target; asking again for another budget or other
    overrides is an error; the arm spec and the table are checked."""
    from ssd_mnv2.engine.arms import arms_table, parse_arm, prepare_arm, remaining_iters

    fit(tiny_config(data, tmp_path / "run"), max_iters=3, progress=False)
    spec = prepare_arm(tmp_path / "arms", "lower_lr", tmp_path / "run", 4, ["solver.lr=0.0005"])
    assert (spec["start_step"], spec["target_step"]) == (3, 7)
    arm = tmp_path / "arms" / "lower_lr"
    assert remaining_iters(arm) == 4
    cfg = tiny_config(data, arm, solver={"lr": 0.0005})
    fit(cfg, resume=True, max_iters=2, progress=False)  # interrupted after 2 of 4
    assert remaining_iters(arm) == 2
    assert prepare_arm(tmp_path / "arms", "lower_lr", tmp_path / "run", 4, ["solver.lr=0.0005"]) == spec
    fit(cfg, resume=True, max_iters=remaining_iters(arm), progress=False)
    assert remaining_iters(arm) == 0
    assert load_checkpoint(latest_checkpoint(arm))["state"]["global_step"] == 7
    assert load_checkpoint(latest_checkpoint(tmp_path / "run"))["state"]["global_step"] == 3  # untouched
    with pytest.raises(ValueError, match="exists with .*'iters': 4.*asked for .*'iters': 5"):
        prepare_arm(tmp_path / "arms", "lower_lr", tmp_path / "run", 5, ["solver.lr=0.0005"])
    with pytest.raises(FileNotFoundError, match="no checkpoint to start the arm from"):
        prepare_arm(tmp_path / "arms", "x", tmp_path / "nothing", 1)
    assert parse_arm("ms data.canvas_sizes=[64,96]  train.seed=2") == ("ms", ["data.canvas_sizes=[64,96]", "train.seed=2"])
    assert parse_arm("control") == ("control", [])
    for bad, msg in (("", "empty arm spec"), ("a=1", "the first word is the arm's folder name"),
                     ("ms canvas", "overrides must be KEY=VALUE")):
        with pytest.raises(ValueError, match=msg):
            parse_arm(bad)
    row = {"name": "ms", "overrides": ["data.canvas_sizes=[64,96]"], "train_s": 90.0,
           "ap": {"easy": 0.8612, "medium": 0.8, "hard": 0.66},
           "face_free": {"blank original": {"images": 4, "share_ge_0.5": 0.0, "max_top": 0.04},
                         "blank 300x300": {"images": 4, "share_ge_0.5": 0.0, "max_top": 0.06},
                         "blank unpadded": {"images": 4, "share_ge_0.5": 1.0, "max_top": 0.75},
                         "patterns": {"images": 9, "share_ge_0.5": 2 / 9, "max_top": 0.7},
                         "dev crops": {"images": 294, "share_ge_0.5": 0.065, "max_top": 0.9}}}
    table = arms_table([row, {"name": "c", "overrides": []}]).splitlines()
    assert table[2] == ("| ms | data.canvas_sizes=[64,96] | 0.861 | 0.800 | 0.660 | 0.06 | 0.75 | 2 / 9 | "
                        "6.5 % | 1.5 |")
    assert table[3].startswith("| c | (control) |  |  |  |")


def test_finetune_arm_can_start_from_an_earlier_checkpoint_folder(data, tmp_path):
    """``prepare_arm`` given a checkpoint folder (not the run's latest) starts the arm there: the
    arm's ``from`` is that folder and its start step is that checkpoint's step."""
    from ssd_mnv2.engine.arms import prepare_arm, remaining_iters

    cfg = tiny_config(data, tmp_path / "run")
    fit(cfg, max_iters=3, progress=False)
    first = tmp_path / "kept" / "step3"  # kept aside: rotation may delete it from the run
    shutil.copytree(latest_checkpoint(tmp_path / "run"), first)
    fit(cfg, resume=True, max_iters=2, progress=False)
    assert load_checkpoint(latest_checkpoint(tmp_path / "run"))["state"]["global_step"] == 5
    spec = prepare_arm(tmp_path / "arms", "early", first, 4)
    assert (spec["from"], spec["start_step"], spec["target_step"]) == (str(first), 3, 7)
    assert remaining_iters(tmp_path / "arms" / "early") == 4
    latest = prepare_arm(tmp_path / "arms", "late", tmp_path / "run", 4)
    assert latest["start_step"] == 5 and latest["from"] == str(latest_checkpoint(tmp_path / "run"))


def test_an_extended_arm_trains_on_from_its_checkpoint_and_keeps_its_old_scores(data, tmp_path):
    """``extend_arm`` raises a finished arm's target: its step carries on from the checkpoint
    (not from the start), the old scores move to scored/step<N>/, the budget cannot shrink and
    the change cannot differ."""
    from ssd_mnv2.engine.arms import extend_arm, prepare_arm, remaining_iters

    fit(tiny_config(data, tmp_path / "run"), max_iters=3, progress=False)
    spec = prepare_arm(tmp_path / "arms", "c", tmp_path / "run", 2)
    arm = tmp_path / "arms" / "c"
    cfg = tiny_config(data, arm)
    fit(cfg, resume=True, max_iters=remaining_iters(arm), progress=False)
    (arm / "result.json").write_text('{"ap": {"easy": 0.5}}')
    (arm / "eval").mkdir()
    (arm / "eval" / "wider_eval.json").write_text("{}")
    assert extend_arm(tmp_path / "arms", "c", 2) == spec and (arm / "result.json").is_file()  # same budget
    longer = extend_arm(tmp_path / "arms", "c", 5)
    assert (longer["start_step"], longer["target_step"]) == (3, 8) == (spec["start_step"], 8)
    assert json.loads((arm / "arm.json").read_text()) == longer
    assert not (arm / "result.json").exists() and not (arm / "eval").exists()
    assert json.loads((arm / "scored" / "step5" / "result.json").read_text()) == {"ap": {"easy": 0.5}}
    assert (arm / "scored" / "step5" / "eval" / "wider_eval.json").is_file()
    assert remaining_iters(arm) == 3
    fit(cfg, resume=True, max_iters=remaining_iters(arm), progress=False)
    assert remaining_iters(arm) == 0
    assert load_checkpoint(latest_checkpoint(arm))["state"]["global_step"] == 8
    assert prepare_arm(tmp_path / "arms", "c", tmp_path / "run", 5) == longer
    with pytest.raises(ValueError, match="already has 5 iterations, asked for 4: an arm is not shortened"):
        extend_arm(tmp_path / "arms", "c", 4)
    with pytest.raises(ValueError, match=r"has overrides \[\], asked for \['train.seed=1'\]"):
        extend_arm(tmp_path / "arms", "c", 6, ["train.seed=1"])
    with pytest.raises(FileNotFoundError, match="no arm to extend"):
        extend_arm(tmp_path / "arms", "nothing", 6)


class WorkerPids(Hook):
    """Records the data workers' pids at every epoch's first batch."""

    def __init__(self):
        self.per_epoch = []

    def on_batch_end(self, run, losses):
        if run.iteration == 1:
            self.per_epoch.append(run.loader.worker_pids)


def test_data_workers_are_forked_once_per_run_and_end_with_it(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "run", train={"epochs": 3}, data={"num_workers": 1})
    seen = WorkerPids()
    res = fit(cfg, hooks=[seen], progress=False)
    assert res.epochs_done == 3 and len(seen.per_epoch) == 3
    pids = seen.per_epoch[0]
    assert len(pids) == 1 and seen.per_epoch == [pids] * 3  # the same worker served every epoch
    with pytest.raises(ChildProcessError):  # reaped when fit returned (not a zombie, not alive)
        os.waitpid(pids[0], os.WNOHANG)


def test_epoch_loader_yields_each_epochs_batches_in_the_sampler_order():
    from ssd_mnv2.data.loader import EpochLoader
    from ssd_mnv2.data.pipeline import EpochBatchSampler

    class Samples:  # indexed like the training samples: by (epoch, index)
        def __len__(self):
            return 10

        def __getitem__(self, key):
            epoch, i = key
            return np.array([epoch, i], dtype=np.float32)

    loader = EpochLoader(Samples(), batch_size=3, seed=5, num_workers=0)
    for epoch, start in [(0, 0), (1, 0), (1, 2)]:
        got = [b.asnumpy().astype(int).tolist() for b in loader.epoch(epoch, start)]
        want = [[[e, i] for e, i in batch] for batch in EpochBatchSampler(10, 3, 5, epoch, start)]
        assert got == want and len(got) == 3 - start
    assert loader.worker_pids == []
    loader.close()
    with pytest.raises(RuntimeError, match="after close"):
        loader.epoch(0)


@pytest.mark.parametrize("mode", ["reinit", "densify"])
def test_an_arm_resumes_into_a_densified_level_with_fresh_heads_only(data, tmp_path, mode):
    cfg = tiny_config(data, tmp_path / "run")
    fit(cfg, max_iters=2, progress=False)
    start = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    dense = {"density": [[2], [1], [1], [1], [1]]}
    with pytest.raises(CheckpointError, match=r"cannot resume: .*cls_heads.0.weight.*anchors.density=\[\] "
                                         r"\(now \[\[2\], \[1\], \[1\], \[1\], \[1\]\]\)"):
        fit(tiny_config(data, tmp_path / "run", anchors=dense), resume=True, max_iters=1, progress=False)
    res = fit(tiny_config(data, tmp_path / "run", anchors=dense, train={"init_mismatched": mode}),
              resume=True, max_iters=1, progress=False)
    assert res.global_step == 3  # the step, LR position and the other weights carried on
    after = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    w_start, w_after = (mx.nd.load(str(c["params"]))["cls_heads.0.weight"] for c in (start, after))
    assert w_after.shape[0] == 4 * w_start.shape[0]
    assert after["config"].anchors.per_location()[0] == 4
    moved = [k for k in start["optim"] if k.startswith("backbone.") and not np.array_equal(
        start["optim"][k].asnumpy(), after["optim"][k].asnumpy())]
    assert moved  # the Adam moments were restored and updated, not restarted
