"""Training data pipeline: data set -> augmentation -> targets, built inside DataLoader workers.

Every sample's randomness comes from ``(seed, epoch, index)``: the batch sampler yields
``(epoch, index)`` pairs, so augmentation is reproducible and a resumed run sees the same
batches as an uninterrupted one. Multi-scale training (``data.canvas_sizes``): the sampler
draws each batch's canvas from ``(seed, epoch, batch)`` and yields ``(epoch, index, size)``.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..anchors import anchor_counts, generate_anchors
from ..config import Config
from ..matching import TargetEncoder
from .transforms import TrainAugment

__all__ = ["build_dataset", "build_augment", "TrainSamples", "EpochBatchSampler", "build_train_samples",
           "canvas_sizes"]


def build_dataset(cfg: Config, split: str = "train"):
    """The configured data set (``split`` = train or val), validated at construction."""
    d = cfg.data
    images = d.train_images if split == "train" else d.val_images
    labels = d.train_labels if split == "train" else d.val_labels
    if d.format == "widerface":
        from .widerface import WiderFaceDataset

        return WiderFaceDataset(images, labels, min_face_px=d.min_face_px,
                                drop_invalid=d.drop_invalid, skip_bad=d.skip_bad)
    from .voc import VOCFaceDataset

    return VOCFaceDataset(images, labels, class_names=tuple(cfg.model.class_names),
                          skip_bad=d.skip_bad)


def canvas_sizes(cfg: Config) -> Tuple[int, ...]:
    """The training canvases: ``data.canvas_sizes``, or ``(model.image_size,)`` when empty."""
    return tuple(cfg.data.canvas_sizes) or (cfg.model.image_size,)


class TrainSamples:
    """Indexable by ``(epoch, i)`` or ``(epoch, i, size)``:
    ``(image CHW float32 RGB 0-255 (3, S, S), cls_targets (N,), box_targets (N, 4))``, with N the
    anchors of an S x S input (S = ``size``, default ``augment.size``).

    ``ignore_invalid``: the data set's :meth:`ignored_boxes` (WIDER ``invalid``, VOC
    ``difficult``) become ignore regions instead of background. ``encoders``: the target
    encoder of each further canvas size (multi-scale training); ``encoder`` is ``augment.size``'s."""

    def __init__(self, dataset, augment: TrainAugment, encoder: TargetEncoder, seed: int = 0,
                 indices: Optional[Sequence[int]] = None, ignore_invalid: bool = False,
                 encoders: Optional[Dict[int, TargetEncoder]] = None) -> None:
        self.dataset = dataset
        self.augment = augment
        self.encoder = encoder
        self.encoders: Dict[int, TargetEncoder] = {**(encoders or {}), augment.size: encoder}
        self.seed = int(seed)
        self.indices = list(range(len(dataset))) if indices is None else list(indices)
        self.ignore_invalid = bool(ignore_invalid)

    def __len__(self) -> int:
        return len(self.indices)

    def sample(self, epoch: int, i: int, size: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Augmented ``(image_rgb uint8 (S, S, 3), boxes (M, 5))`` for (epoch, i): ``x1 y1 x2 y2``
        px and the ignore flag (1 = ignore region); S = ``size`` or ``augment.size``."""
        idx = self.indices[i]
        rng = np.random.default_rng([self.seed, epoch, idx])
        img, boxes = self.dataset[idx]
        faces = (np.asarray(boxes, np.float32).reshape(len(boxes), -1)[:, :4] if len(boxes)
                 else np.zeros((0, 4), np.float32))
        parts = [np.concatenate([faces, np.zeros((len(faces), 1), np.float32)], axis=1)]
        if self.ignore_invalid:
            ign = self.dataset.ignored_boxes(idx).reshape(-1, 4)
            parts.append(np.concatenate([ign, np.ones((len(ign), 1), np.float32)], axis=1))
        return self.augment(img, np.concatenate(parts, axis=0), rng, size)

    def __getitem__(self, key):
        epoch, i, size = key if len(key) == 3 else (*key, self.augment.size)
        if size not in self.encoders:
            raise KeyError(f"no target encoder for a {size} px canvas (have {sorted(self.encoders)})")
        img, boxes = self.sample(epoch, i, size)
        cls_t, box_t = self.encoders[size](boxes[:, :4], ignore=boxes[:, 4] > 0)
        return (np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32), cls_t, box_t)


class EpochBatchSampler:
    """Shuffled batches of ``(epoch, index)`` pairs; order depends only on (seed, epoch).

    ``start_batch`` skips the first batches of ``epoch`` (mid-epoch resume). ``last_batch``
    'discard' drops the incomplete final batch (fixed shapes for static graphs).
    ``sizes`` (``data.canvas_sizes``): when given, each batch gets a canvas drawn from them
    (uniformly, from ``(seed, epoch, batch)``, so a resumed epoch draws the same) and yields
    ``(epoch, index, size)`` triples; empty: pairs, each sample on the augmentation's own size.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, epoch: int = 0,
                 start_batch: int = 0, shuffle: bool = True, sizes: Sequence[int] = ()) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.start_batch = start_batch
        self.shuffle = shuffle

    def __len__(self) -> int:
        return max(0, self.num_samples // self.batch_size - self.start_batch)

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        order = np.arange(self.num_samples)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.num_samples)
        nb = self.num_samples // self.batch_size
        for b in range(self.start_batch, nb):
            batch = [int(i) for i in order[b * self.batch_size:(b + 1) * self.batch_size]]
            if self.sizes:
                size = self.canvas_of(b)
                yield [(self.epoch, i, size) for i in batch]
            else:
                yield [(self.epoch, i) for i in batch]

    def canvas_of(self, b: int) -> int:
        """The canvas of batch ``b`` of this epoch (multi-scale training)."""
        if len(self.sizes) == 1:
            return self.sizes[0]
        rng = np.random.default_rng([self.seed, self.epoch, b, 11])
        return self.sizes[int(rng.integers(len(self.sizes)))]


def build_augment(cfg: Config, photometric: Optional[bool] = None) -> TrainAugment:
    """The configured training augmentation (``photometric`` overrides ``data.photometric``)."""
    d = cfg.data
    return TrainAugment(size=cfg.model.image_size, crop_scale=tuple(d.crop_scale), zoom_out=d.zoom_out,
                        photometric=d.photometric if photometric is None else photometric, flip=d.flip,
                        min_face_px=d.min_train_face_px, crop_policy=d.crop_policy,
                        small_faces=d.small_faces, cut_faces=d.cut_faces, min_visible=d.min_visible,
                        background_prob=d.background_prob, background_kinds=d.background_kinds)


def target_encoder(cfg: Config, size: int) -> TargetEncoder:
    """The training-target encoder of a ``size`` x ``size`` canvas (``cfg.match``)."""
    m = cfg.match
    return TargetEncoder(generate_anchors(cfg, size, size), m.iou_thresh, cfg.anchors.variances, m.ignore_iou,
                         assigner=m.assigner, topk=m.atss_topk, level_counts=anchor_counts(cfg, size, size))


def build_train_samples(cfg: Config, dataset, rank: int = 0, num_workers: int = 1) -> TrainSamples:
    """Augment + encode ``dataset`` for training; with several workers each gets a shard by rank."""
    d = cfg.data
    augment = build_augment(cfg)
    encoders = {s: target_encoder(cfg, s) for s in {*canvas_sizes(cfg), cfg.model.image_size}}
    indices = list(range(rank, len(dataset), num_workers))
    return TrainSamples(dataset, augment, encoders[augment.size], cfg.train.seed, indices,
                        ignore_invalid=d.invalid_faces == "ignore", encoders=encoders)
