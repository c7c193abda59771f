"""Config loading: base: inheritance, the decode/match/loss/solver sections and their old
spellings, deep freezing, and what the repository's configs resolve to."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ssd_mnv2.config import (DEFAULT_CONFIG, LEGACY_KEYS, Config, ConfigError, config_from_dict,
                             config_to_dict, dump_config, load_config)
from tiny_configs import tiny_config_dict

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / "training_state" / "face_mnv2_fpn_300"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def parent(tmp_path) -> Path:
    """A complete tiny config (new spelling) to inherit from."""
    return _write(tmp_path / "parent.yaml", yaml.safe_dump(tiny_config_dict(), sort_keys=False))


# ------------------------------------------------------------------------------ inheritance
def test_child_overrides_and_deep_merges(parent, tmp_path):
    child = _write(tmp_path / "child.yaml", "base: parent.yaml\nsolver:\n  lr: 0.05\n"
                                            "model:\n  head: ssdlite\n")
    p, c = load_config(parent), load_config(child)
    assert (c.solver.lr, c.model.head) == (0.05, "ssdlite")
    assert c.solver.optimizer == p.solver.optimizer == "adam"  # the rest of the section is kept
    assert c.model.width == p.model.width and c.anchors == p.anchors and c.train == p.train


def test_child_list_replaces_the_parents_list(parent, tmp_path):
    child = _write(tmp_path / "child.yaml",
                   "base: parent.yaml\nanchors:\n  sizes: [[12, 16], [32], [48], [64], [90]]\n")
    c = load_config(child)
    assert c.anchors.sizes == ((12.0, 16.0), (32.0,), (48.0,), (64.0,), (90.0,))
    assert c.anchors.ratios == load_config(parent).anchors.ratios


def test_chain_with_paths_relative_to_each_file(parent, tmp_path):
    _write(tmp_path / "a" / "mid.yaml", "base: ../parent.yaml\ntrain:\n  epochs: 7\n  seed: 3\n")
    leaf = _write(tmp_path / "a" / "b" / "leaf.yaml", "base: ../mid.yaml\ntrain:\n  seed: 5\n")
    c = load_config(leaf)
    assert (c.train.epochs, c.train.seed) == (7, 5)
    assert c.train.batch_size == load_config(parent).train.batch_size


def test_cycle_is_an_error_naming_the_files(tmp_path):
    _write(tmp_path / "x.yaml", "base: y.yaml\n")
    _write(tmp_path / "y.yaml", "base: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle") as e:
        load_config(tmp_path / "x.yaml")
    assert "x.yaml" in str(e.value) and "y.yaml" in str(e.value)
    _write(tmp_path / "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "self.yaml")


def test_missing_base_file_names_the_referencing_file(tmp_path):
    child = _write(tmp_path / "child.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(child)
    assert "child.yaml" in str(e.value) and "nowhere.yaml" in str(e.value)
    with pytest.raises(ConfigError, match="base"):
        load_config(_write(tmp_path / "bad.yaml", "base: [a.yaml]\n"))


def test_unknown_key_in_a_base_file_names_that_file(parent, tmp_path):
    _write(tmp_path / "broken_base.yaml", "base: parent.yaml\ntrain:\n  nope: 1\n")
    child = _write(tmp_path / "child.yaml", "base: broken_base.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(child)
    assert "broken_base.yaml" in str(e.value) and "train.nope" in str(e.value)
    _write(tmp_path / "typo_base.yaml", "solver:\n  lr: fast\n")
    with pytest.raises(ConfigError, match="typo_base.yaml.*solver.lr"):
        load_config(_write(tmp_path / "c2.yaml", "base: typo_base.yaml\n"))


def test_dump_writes_the_resolved_config_without_base(parent, tmp_path):
    child = _write(tmp_path / "child.yaml", "base: parent.yaml\ntrain:\n  epochs: 9\n")
    cfg = load_config(child, ["solver.lr=0.02"])
    dump_config(cfg, tmp_path / "out.yaml")
    text = (tmp_path / "out.yaml").read_text()
    assert "base" not in yaml.safe_load(text) and "!!python" not in text
    assert load_config(tmp_path / "out.yaml") == cfg
    with pytest.raises(ConfigError, match="base"):
        config_from_dict({"base": "parent.yaml"})  # only files have a base


# ------------------------------------------------------------------------------ decode
def test_shipped_yaml_decoder_settings_land_in_decode():
    """The previous shipped model's yaml (old spelling: decoder keys under eval) still loads."""
    old_yaml = ROOT / "ssd_mnv2" / "models" / "face_mnv2_300.yaml"
    raw = yaml.safe_load(old_yaml.read_text())
    assert "decode" not in raw and "score_threshold" in raw["eval"]  # the old spelling, kept
    cfg = load_config(old_yaml)
    for k in ("score_threshold", "nms_iou", "pre_nms_topk", "max_detections"):
        assert getattr(cfg.decode, k) == raw["eval"][k]
        assert not hasattr(cfg.eval, k)
    assert cfg.eval.size == raw["eval"]["size"]


def test_old_style_eval_dict_and_overrides_map_to_decode(tmp_path):
    d = tiny_config_dict()
    d.pop("decode")
    d["eval"] = {"score_threshold": 0.1, "nms_iou": 0.3, "max_detections": 50, "pre_nms_topk": 200,
                 "display_threshold": 0.6}
    cfg = config_from_dict(d)
    assert (cfg.decode.score_threshold, cfg.decode.nms_iou, cfg.decode.max_detections,
            cfg.decode.pre_nms_topk) == (0.1, 0.3, 50, 200)
    assert cfg.eval.display_threshold == 0.6
    p = _write(tmp_path / "old.yaml", yaml.safe_dump(d))
    assert load_config(p, ["eval.score_threshold=0.5"]).decode.score_threshold == 0.5
    assert load_config(p, ["decode.score_threshold=0.4"]).decode.score_threshold == 0.4
    new = _write(tmp_path / "new.yaml", yaml.safe_dump(tiny_config_dict()))
    assert load_config(new, ["eval.nms_iou=0.25"]).decode.nms_iou == 0.25


def test_both_spellings_with_different_values_is_an_error():
    d = tiny_config_dict(eval={"size": "original"})
    d["eval"]["nms_iou"] = 0.3
    d["decode"]["nms_iou"] = 0.5
    with pytest.raises(ConfigError) as e:
        config_from_dict(d)
    assert "eval.nms_iou" in str(e.value) and "decode.nms_iou" in str(e.value)
    d["decode"]["nms_iou"] = 0.3  # the same value twice: fine
    assert config_from_dict(d).decode.nms_iou == 0.3


# ------------------------------------------------------------------------------ train split
def test_old_flat_train_keys_map_to_match_loss_solver(tmp_path):
    d = tiny_config_dict()
    d.pop("solver")
    d["train"].update({"optimizer": "sgd", "lr": 0.02, "momentum": 0.8, "step_epochs": [3, 4],
                       "iou_thresh": 0.35, "ignore_iou": 0.25, "neg_ratio": 2.0, "box_weight": 1.5,
                       "min_hard_negatives": 4, "clip_gradient": 5.0, "lr_scaling": "none"})
    cfg = config_from_dict(d)
    assert (cfg.solver.optimizer, cfg.solver.lr, cfg.solver.momentum, cfg.solver.step_epochs,
            cfg.solver.clip_gradient, cfg.solver.lr_scaling) == ("sgd", 0.02, 0.8, (3, 4), 5.0, "none")
    assert (cfg.match.iou_thresh, cfg.match.ignore_iou) == (0.35, 0.25)
    assert (cfg.loss.neg_ratio, cfg.loss.box_weight, cfg.loss.min_hard_negatives) == (2.0, 1.5, 4)
    assert cfg.train.batch_size == 2 and not hasattr(cfg.train, "lr")
    # --set train.lr on an old-format file and on a new-format one
    old = _write(tmp_path / "old.yaml", yaml.safe_dump(d))
    assert load_config(old, ["train.lr=1e-4"]).solver.lr == pytest.approx(1e-4)
    new = _write(tmp_path / "new.yaml", yaml.safe_dump(tiny_config_dict()))
    c = load_config(new, ["train.lr=1e-4", "train.iou_thresh=0.4", "train.neg_ratio=5"])
    assert (c.solver.lr, c.match.iou_thresh, c.loss.neg_ratio) == (pytest.approx(1e-4), 0.4, 5.0)
    # an old-style child over a new-style base: the child wins
    child = _write(tmp_path / "child.yaml", "base: new.yaml\ntrain:\n  lr: 0.03\n")
    assert load_config(child).solver.lr == 0.03


def test_old_and_new_train_spelling_with_different_values_is_an_error():
    d = tiny_config_dict()
    d["train"]["lr"] = 0.5  # solver.lr is 0.001
    with pytest.raises(ConfigError) as e:
        config_from_dict(d)
    assert "train.lr" in str(e.value) and "solver.lr" in str(e.value)


def test_every_legacy_key_exists_in_its_new_section():
    for (old, key), new in LEGACY_KEYS.items():
        assert old in ("train", "eval") and key in {f.name for f in dataclasses.fields(getattr(Config(), new))}
        assert not hasattr(getattr(Config(), old), key)


@pytest.mark.parametrize("key,value,message", [
    ("neg_ratio", 0.0, "loss.neg_ratio: must be > 0"),
    ("min_hard_negatives", -1, "loss.min_hard_negatives: must be >= 0"),
    ("box_weight", -0.5, "loss.box_weight: must be >= 0"),
])
def test_loss_section_is_validated(key, value, message):
    d = tiny_config_dict()
    d.setdefault("loss", {})[key] = value
    with pytest.raises(ConfigError, match=message):
        config_from_dict(d)


@pytest.mark.parametrize("key,value,message", [
    ("cut_faces", "drop", "data.cut_faces: must be keep or ignore, got 'drop'"),
    ("min_visible", 1.5, r"data.min_visible: must be in \(0, 1\], got 1.5"),
    ("background_prob", -0.1, r"data.background_prob: must be in \[0, 1\], got -0.1"),
    ("background_kinds", ["flat", "logo"], r"data.background_kinds: must be a non-empty list of "
                                           r"crop, flat, noise, got \['flat', 'logo'\]"),
    ("background_kinds", [], r"data.background_kinds: must be a non-empty list"),
])
def test_cut_faces_options_are_validated(key, value, message):
    d = tiny_config_dict()
    d.setdefault("data", {})[key] = value
    with pytest.raises(ConfigError, match=message):
        config_from_dict(d)


# tiny_config: 5 levels, one size each, the last one the global pool
@pytest.mark.parametrize("density,message", [
    ([[2], [1]], r"anchors.density: has 2 levels but anchors.sizes/model have 5"),
    ([[2, 2], [1], [1], [1], [1]], r"anchors.density\[0\]: needs one value per size \(1: \[16.0\]\), got \[2, 2\]"),
    ([[0], [1], [1], [1], [1]], r"anchors.density\[0\]: every value must be an integer >= 1, got \[0\]"),
    ([[2], [1], [1], [1], [2]], r"anchors.density\[4\]: the global-pool level has one location"),
    ([[1.5], [1], [1], [1], [1]], r"anchors.density"),
])
def test_anchor_density_is_validated(density, message):
    d = tiny_config_dict()
    d["anchors"]["density"] = density
    with pytest.raises(ConfigError, match=message):
        config_from_dict(d)


def test_anchor_density_sets_anchors_per_location():
    d = tiny_config_dict()
    d["anchors"].update(sizes=[[10, 16], [32], [48], [64], [90]], ratios=[[1.0]] * 5,
                        density=[[2, 1], [1], [1], [1], [1]])
    assert config_from_dict(d).anchors.per_location() == [5, 1, 1, 1, 1]
    del d["anchors"]["density"]
    assert config_from_dict(d).anchors.per_location() == [2, 1, 1, 1, 1]


# ------------------------------------------------------------------------------ deep frozen
def test_config_is_frozen_all_the_way_down():
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.anchors.sizes[0].append(1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.solver.lr = 1.0
    assert isinstance(cfg.model.extra_channels[0], tuple) and isinstance(cfg.model.class_names, tuple)
    assert isinstance(cfg.data.crop_scale, tuple) and isinstance(cfg.solver.step_epochs, tuple)
    # lists given to a constructor or to replace() are stored as tuples too
    a = dataclasses.replace(cfg.anchors, sizes=[[16], [32], [64], [128], [192], [256]])
    assert a.sizes == ((16,), (32,), (64,), (128,), (192,), (256,))
    assert Config() == Config()


def test_dumps_are_plain_lists_and_old_dumps_compare_equal(tmp_path):
    for src in (DEFAULT_CONFIG, STATE / "config.yaml"):
        cfg = load_config(src)
        text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
        assert "tuple" not in text and "!!" not in text
        assert "- - 16.0" in text or "- - 10.0" in text  # nested lists, as before
        dump_config(cfg, tmp_path / "again.yaml")
        assert load_config(tmp_path / "again.yaml") == cfg


# ------------------------------------------------------------------------------ repo configs
# what each repository config resolved to before the base: rewrite (a few key fields; the full
# resolved dicts were compared when the configs were rewritten)
EXPECTED = {
    "face_mnv2_300": dict(width=1.0, sizes0=(16.0, 24.0, 32.0), levels=6, epochs=16, stop=3,
                          every=4, max_images=100, out="runs/face_mnv2_300", iou=0.5, init=None),
    "face_mnv2_300_stage2": dict(width=1.0, sizes0=(16.0, 24.0, 32.0), levels=6, epochs=16, stop=0,
                                 every=4, max_images=100, out="runs/face_mnv2_300_stage2", iou=0.5,
                                 init="runs/face_mnv2_300/stage1.params"),
    "face_mnv2_300_dense_small": dict(width=1.0, sizes0=(12.0, 16.0, 20.0, 24.0, 32.0), levels=6,
                                      epochs=14, stop=0, every=4, max_images=100,
                                      out="runs/face_mnv2_300_dense_small", iou=0.5, init=None),
    "face_mnv2_050_300": dict(width=0.5, sizes0=(16.0, 24.0, 32.0), levels=6, epochs=26, stop=0,
                              every=2, max_images=100, out="runs/face_mnv2_050_300", iou=0.5, init=None),
    "face_mnv2_fpn_300": dict(width=1.0, sizes0=(10.0, 16.0, 24.0), levels=5, epochs=32, stop=0,
                              every=4, max_images=0, out="runs/face_mnv2_fpn_300", iou=0.35, init=None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_repo_configs_resolve_as_before(name):
    c, e = load_config(ROOT / "configs" / f"{name}.yaml"), EXPECTED[name]
    assert (c.model.width, c.anchors.sizes[0], c.model.num_levels, c.train.epochs, c.train.stop_epoch,
            c.train.eval_every, c.train.eval_max_images, c.train.out_dir, c.match.iou_thresh,
            c.train.init_params) == (e["width"], e["sizes0"], e["levels"], e["epochs"], e["stop"],
                                     e["every"], e["max_images"], e["out"], e["iou"], e["init"])
    # the common recipe (configs/base.yaml)
    assert (c.solver.optimizer, c.solver.lr, c.solver.wd, c.solver.warmup_epochs, c.solver.schedule,
            c.train.batch_size, c.train.freeze_stages, c.data.min_train_face_px, c.eval.size,
            c.decode) == ("adam", 0.001, 4e-5, 0.3, "cosine", 16, 1, 8.0, "original", load_config().decode)


def fpn_stages(var: str = "STAGES") -> list:
    """``[(last_epoch, config path), ...]`` of scripts/train_fpn_model.sh's ``STAGES`` line (the
    64-channel run; ``STAGES96``: the 96-channel one)."""
    import re

    text = (ROOT / "scripts" / "train_fpn_model.sh").read_text()
    line = re.search(rf'^\s*{var}="([^"]+)"$', text, re.M)
    assert line, f"scripts/train_fpn_model.sh has no {var}=\"...\" line"
    stages = [(int(e), ROOT / c) for e, c in (s.split(":", 1) for s in line.group(1).split())]
    assert [e for e, _ in stages] == sorted(e for e, _ in stages) and all(c.is_file() for _, c in stages)
    return stages


@pytest.mark.parametrize("stages_var,state", [("STAGES", STATE),
                                              ("STAGES96", ROOT / "training_state" / "face_mnv2_fpn96_300")])
def test_fpn_config_resolves_to_the_committed_training_state(stages_var, state):
    """scripts/train_fpn_model.sh resumes the committed run with the config of its stage (its
    STAGES line: configs/face_mnv2_fpn_300.yaml to the end of epoch 15, and so on; STAGES96 for
    FPN_MODEL=fpn96): the same
    Config in every section that shapes training (``eval``, the inference-side settings, may
    have changed since: e.g. eval.pad_multiple; ``train.stop_epoch`` is the stage's end),
    whatever spelling the state's files use."""
    import json

    from ssd_mnv2.engine.checkpoint import _config_changes

    stages = fpn_stages(stages_var)
    assert stages[-1][0] == load_config(stages[-1][1]).train.epochs

    def stage_config(state_json: Path) -> Config:
        """The config of the stage that wrote the checkpoint: a checkpoint at the end of a
        stage's last epoch is that stage's; one past it, the next stage's."""
        st = json.loads(state_json.read_text())
        for last, config in stages:
            if st["epoch"] < last or (st["epoch"] == last and st["iteration"] == 0):
                return load_config(config)
        raise AssertionError(f"{state_json}: epoch {st['epoch']} is past the schedule")

    checkpoints = sorted(state.glob("checkpoints/*/config.yaml"))
    assert checkpoints
    latest = stage_config(checkpoints[-1].parent / "state.json")
    for old, new in [(state / "config.yaml", latest)] + [(c, stage_config(c.parent / "state.json"))
                                                         for c in checkpoints]:
        loaded = load_config(old)
        # bookkeeping that does not shape the weights: where a call stops (the script sets
        # train.stop_epoch per stage), the run folder and the in-training dev checks (a state
        # trained as a fine-tuning arm, benchmarks/finetune_arms.py, has its own folder and no
        # checks; the data order and augmentation are drawn from seed/epoch/batch only)
        train = dataclasses.replace(loaded.train, **{k: getattr(new.train, k) for k in (
            "stop_epoch", "out_dir", "eval_every", "eval_max_images", "eval_size")})
        assert dataclasses.replace(loaded, eval=new.eval, train=train) == new, old
        assert _config_changes(loaded, new) == []


def test_dense_config_changes_only_the_anchor_density_of_stage3():
    stage3 = load_config(ROOT / "configs" / "face_mnv2_fpn_512.yaml")
    dense = load_config(ROOT / "configs" / "face_mnv2_fpn_512_dense.yaml")
    assert dataclasses.replace(dense, anchors=stage3.anchors) == stage3
    assert dense.anchors.per_location() == [6, 2, 2, 2, 2] and stage3.anchors.per_location()[0] == 3


def _config_diff(a: str, b: str) -> dict:
    """``{(section, key): (value in a, value in b)}`` of two configs in configs/ (resolved)."""
    from ssd_mnv2.config import config_to_dict

    da, db = (config_to_dict(load_config(ROOT / "configs" / n)) for n in (a, b))
    return {(s, k): (da[s][k], db[s][k]) for s in da for k in da[s] if da[s][k] != db[s][k]}


def test_fpn_stage2_config_changes_only_the_canvas():
    """Stage 2 of the FPN schedule continues the same run: only the training canvas, the crop
    range (same largest zoom: 448 / 0.45 = 300 / 0.3) and the cut-face rule differ from stage 1."""
    diff = _config_diff("face_mnv2_fpn_300.yaml", "face_mnv2_fpn_448.yaml")
    assert diff == {("model", "image_size"): (300, 448), ("data", "crop_scale"): ([0.3, 1.0], [0.45, 1.0]),
                    ("data", "cut_faces"): ("keep", "ignore")}


def test_fpn_stage3_config_changes_the_canvas_and_adds_face_free_samples():
    """Stage 3 (epochs 22-32): a canvas of whole stride-128 cells at the same largest zoom
    (512 / 0.512 = 300 / 0.3) and face-free samples with their negatives; nothing else."""
    diff = _config_diff("face_mnv2_fpn_448.yaml", "face_mnv2_fpn_512.yaml")
    assert diff == {("model", "image_size"): (448, 512), ("data", "crop_scale"): ([0.45, 1.0], [0.512, 1.0]),
                    ("data", "background_prob"): (0.0, 0.05), ("loss", "min_hard_negatives"): (0, 32)}
    assert 512 % 128 == 0 and [e for e, _ in fpn_stages()][:3] == [15, 21, 32]


def test_fpn_stage4_config_only_stretches_the_schedule_to_40_epochs():
    """Stage 4 (epochs 33-40): stage 3's recipe on the cosine stretched from 32 to 40 epochs."""
    diff = _config_diff("face_mnv2_fpn_512.yaml", "face_mnv2_fpn_512_ext.yaml")
    assert diff == {("train", "epochs"): (32, 40)}
    assert fpn_stages()[-1] == (40, ROOT / "configs" / "face_mnv2_fpn_512_ext.yaml")


def test_fpn96_stages_are_the_fpn_stages_with_a_96_channel_neck_in_their_own_run_folder():
    """FPN_MODEL=fpn96 scripts/train_fpn_model.sh: the first three stages of the 64-channel
    schedule (same last epochs), each config changed only in the neck width and the run folder."""
    ours, theirs = fpn_stages("STAGES96"), fpn_stages()[:3]
    assert [e for e, _ in ours] == [e for e, _ in theirs] == [15, 21, 32]
    for (_, a), (_, b) in zip(theirs, ours):
        assert _config_diff(a.name, b.name) == {
            ("model", "neck_channels"): (64, 96),
            ("train", "out_dir"): ("runs/face_mnv2_fpn_300", "runs/face_mnv2_fpn96_300")}, b


def test_face_free_sample_settings_reach_the_augmentation_and_the_loss():
    from ssd_mnv2.data.pipeline import build_augment

    d = tiny_config_dict()
    d.setdefault("data", {}).update(background_prob=0.1, background_kinds=["flat"])
    d.setdefault("loss", {})["min_hard_negatives"] = 16
    cfg = config_from_dict(d)
    aug = build_augment(cfg)
    assert (aug.background_prob, aug.background_kinds) == (0.1, ("flat",))
    assert cfg.loss.min_hard_negatives == 16
    default = build_augment(config_from_dict(tiny_config_dict()))
    assert (default.background_prob, default.background_kinds) == (0.0, ("crop", "flat", "noise"))
