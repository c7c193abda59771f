"""Run a detector on images, folders, globs, video files, cameras and streams.

    from ssd_mnv2.predictor import Detector
    from ssd_mnv2.inference import detect_paths, run_video
    det = Detector.default()
    summary = detect_paths(det, ["photos/", "extra/*.png"], "out/")   # annotated images + JSON
    run_video(det, "0", display=True)                                  # webcam, 'q' quits

Works with any detector offering ``predict(image_bgr, size, threshold)``, ``input_size(w, h,
size)``, ``describe()`` and ``cfg`` (the MXNet :class:`~ssd_mnv2.predictor.Detector`, the
ONNX Runtime and int8 detectors of :mod:`ssd_mnv2.export`).
"""
from __future__ import annotations

import glob
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .viz import blur_faces, draw_detections, draw_fps

__all__ = ["IMAGE_EXTS", "collect_images", "check_output_dir", "detect_image", "detect_paths",
           "DetectSummary", "open_video_source", "run_video", "VideoSummary", "VideoSourceError"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
_GLOB_CHARS = set("*?[")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- images

def collect_images(inputs: Sequence[Union[str, Path]]) -> List[Tuple[Path, str]]:
    """Expand files, folders (recursively) and glob patterns into ``(path, output_name)`` pairs.

    ``output_name`` is the path relative to the folder given (or the file name), used for the
    annotated copy. Raises FileNotFoundError for a missing path / glob matching nothing and
    ValueError for a folder without images.
    """
    if not inputs:
        raise ValueError("no input given: pass image files, folders or glob patterns")
    found: List[Tuple[Path, str]] = []
    for item in inputs:
        s = str(item)
        if any(c in s for c in _GLOB_CHARS) and not os.path.exists(s):
            matches = sorted(glob.glob(s, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no file matches the pattern {s!r}")
            files = [Path(m) for m in matches if os.path.isfile(m)]
            imgs = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
            if not imgs:
                raise ValueError(f"the pattern {s!r} matches {len(matches)} paths but no image "
                                 f"files ({', '.join(IMAGE_EXTS)})")
            root = Path(os.path.commonpath([str(p.parent) for p in imgs])) if len(imgs) > 1 else imgs[0].parent
            found += [(p, str(p.relative_to(root))) for p in imgs]
            continue
        p = Path(s)
        if p.is_dir():
            imgs = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
            if not imgs:
                raise ValueError(f"folder {p} contains no images (looked for {', '.join(IMAGE_EXTS)}, "
                                 "including sub-folders)")
            found += [(q, str(q.relative_to(p))) for q in imgs]
        elif p.is_file():
            found.append((p, p.name))  # any extension: a bad file is reported when read
        else:
            raise FileNotFoundError(f"input not found: {p}")
    # unique output names (two inputs may have files with the same relative name)
    seen: Dict[str, int] = {}
    out: List[Tuple[Path, str]] = []
    done = set()
    for p, name in found:
        key = str(p.resolve())
        if key in done:
            continue
        done.add(key)
        n = seen.get(name, 0)
        seen[name] = n + 1
        if n:
            stem, ext = os.path.splitext(name)
            name = f"{stem}_{n}{ext}"
        out.append((p, name))
    return out


def check_output_dir(out_dir: Union[str, Path]) -> Path:
    """Create ``out_dir`` and check that files can be written there (clear RuntimeError if not)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RuntimeError(f"output path {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise RuntimeError(f"cannot write to the output folder {out}: {e.strerror or e}") from None
    return out


def _wider_key(path: Path) -> str:
    event = path.parent.name or "images"
    return f"{event}/{path.stem}"


def detect_image(detector: Any, image_bgr: np.ndarray, threshold: Optional[float] = None,
                 size: Optional[str] = None, blur: bool = False, draw: bool = True
                 ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Boxes, scores (>= threshold, default ``eval.display_threshold``) and the rendered image."""
    if threshold is None:
        threshold = detector.cfg.eval.display_threshold
    boxes, scores = detector.predict(image_bgr, size=size, threshold=threshold)
    vis = None
    if blur:
        vis = blur_faces(image_bgr, boxes)
    elif draw:
        vis = draw_detections(image_bgr, boxes, scores)
    return boxes, scores, vis


@dataclass
class DetectSummary:
    images: int = 0
    processed: int = 0
    faces: int = 0
    failed: List[Tuple[str, str]] = field(default_factory=list)
    damaged: List[Tuple[str, str]] = field(default_factory=list)  # processed, but e.g. truncated
    json_path: str = ""
    out_dir: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.damaged

    def text(self) -> str:
        s = (f"{self.processed}/{self.images} images, {self.faces} faces, "
             f"{1000 * self.seconds / max(self.processed, 1):.1f} ms/image -> {self.json_path}")
        if self.damaged:
            s += (f"\n{len(self.damaged)} damaged image(s), processed as far as they decode "
                  "(flagged in the JSON):" + "".join(f"\n  {p}: {e}" for p, e in self.damaged))
        if self.failed:
            s += f"\n{len(self.failed)} image(s) failed:" + "".join(
                f"\n  {p}: {e}" for p, e in self.failed)
        return s


def detect_paths(detector: Any, inputs: Sequence[Union[str, Path]], out_dir: Union[str, Path],
                 threshold: Optional[float] = None, size: Optional[str] = None, blur: bool = False,
                 wider_txt: bool = False, save_images: bool = True, verbose: bool = True
                 ) -> DetectSummary:
    """Detect faces in every image of ``inputs``; write annotated (or blurred) copies,
    ``detections.json`` and optionally WIDER-format txt files (``<out>/wider/<event>/<name>.txt``).

    An image that cannot be read (or declares more than ``eval.max_image_pixels``) is reported
    and skipped (listed in ``summary.failed`` and in the JSON); a damaged one that decodes (a
    truncated JPEG) is processed and flagged (``"damaged"`` in its JSON record, and
    ``summary.damaged``); the rest goes on. ``out_dir`` must not be an input or hold one.
    """
    from .evaluation.predictions import write_wider_prediction
    from .io_utils import atomic_write_text, refuse_output_over_input
    from .imageio import ImageError, image_file_problem, read_image

    if threshold is None:
        threshold = detector.cfg.eval.display_threshold
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"--threshold must be in [0, 1], got {threshold}")
    size_spec = size if size is not None else detector.cfg.eval.size
    from .sizes import parse_size

    parse_size(size_spec)  # clear error before any work
    items = collect_images(inputs)
    refuse_output_over_input([out_dir], [p for p, _ in items], "--out")
    out = check_output_dir(out_dir)
    max_pixels = getattr(detector.cfg.eval, "max_image_pixels", 0)
    summary = DetectSummary(images=len(items), out_dir=str(out), json_path=str(out / "detections.json"))
    records: List[Dict[str, Any]] = []
    describe = detector.describe() if hasattr(detector, "describe") else {}
    t_total = 0.0
    for i, (path, name) in enumerate(items):
        try:
            img = read_image(path, max_pixels)
            damage = image_file_problem(path)
            H, W = img.shape[:2]
            in_w, in_h = detector.input_size(W, H, size_spec)
            t0 = time.perf_counter()
            boxes, scores, vis = detect_image(detector, img, threshold, size_spec, blur, save_images)
            t_total += time.perf_counter() - t0
            rec: Dict[str, Any] = {
                "path": str(path), "image_size": [int(W), int(H)], "input_size": [int(in_w), int(in_h)],
                "num_faces": int(len(scores)),
                "boxes_xyxy_px": [[round(float(v), 2) for v in b] for b in boxes],
                "scores": [round(float(s), 5) for s in scores],
            }
            if damage:
                rec["damaged"] = damage
                summary.damaged.append((str(path), damage))
            if save_images and vis is not None:
                dst = out / name
                if dst.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"):
                    dst = dst.with_suffix(".png")
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(dst), vis):
                    raise RuntimeError(f"cannot write {dst}")
                rec["output"] = str(dst)
            if wider_txt:
                rec["wider_txt"] = write_wider_prediction(str(out / "wider"), _wider_key(path), boxes, scores)
            records.append(rec)
            summary.processed += 1
            summary.faces += len(scores)
            if verbose:
                _log(f"[{i + 1}/{len(items)}] {path}: {len(scores)} faces"
                     + (f" (DAMAGED: {damage})" if damage else ""))
        except (ImageError, FileNotFoundError, OSError, cv2.error) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            summary.failed.append((str(path), msg))
            if verbose:
                _log(f"[{i + 1}/{len(items)}] {path}: FAILED: {msg}")
        except RuntimeError as e:
            if "cannot write" in str(e):
                raise
            summary.failed.append((str(path), str(e).splitlines()[0]))
    summary.seconds = t_total
    doc = {
        "model": describe,
        "threshold": float(threshold),
        "size": size_spec,
        "blur": bool(blur),
        "images": records,
        "failed": [{"path": p, "error": e} for p, e in summary.failed],
        "damaged": [{"path": p, "problem": e} for p, e in summary.damaged],
        "summary": {"images": summary.images, "processed": summary.processed, "faces": summary.faces,
                    "failed": len(summary.failed), "damaged": len(summary.damaged),
                    "ms_per_image": round(1000 * t_total / max(summary.processed, 1), 2)},
    }
    try:
        atomic_write_text(summary.json_path, json.dumps(doc, indent=1))
    except OSError as e:
        raise RuntimeError(f"cannot write {summary.json_path}: {e.strerror or e}") from None
    return summary


# ----------------------------------------------------------------------------- video

class VideoSourceError(RuntimeError):
    """A camera, video file or stream that cannot be opened or read."""


def _source_kind(source: Union[str, int]) -> Tuple[str, Union[str, int]]:
    if isinstance(source, int) or str(source).strip().isdigit():
        return "camera", int(source)
    s = str(source)
    if "://" in s:
        return "stream", s
    return "file", s


def open_video_source(source: Union[str, int]) -> Tuple[cv2.VideoCapture, str]:
    """Open a camera index, a video file or a stream URL; clear VideoSourceError if impossible."""
    kind, src = _source_kind(source)
    if kind == "file" and not Path(src).is_file():
        raise FileNotFoundError(f"video file not found: {src} (for a camera pass its index, e.g. 0)")
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        cap.release()
        if kind == "camera":
            raise VideoSourceError(f"cannot open camera {src}: no such device, no permission, or it is "
                                   "in use by another program (try another index, e.g. --source 1)")
        if kind == "stream":
            raise VideoSourceError(f"cannot open stream {src}: unreachable, wrong URL or unsupported protocol")
        raise VideoSourceError(f"cannot open video file {src}: corrupt or not a video OpenCV can decode")
    return cap, kind


@dataclass
class VideoSummary:
    frames: int = 0
    seconds: float = 0.0
    faces: int = 0
    reason: str = ""
    output: Optional[str] = None
    mean_ms: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        s = (f"{self.frames} frames, {self.fps:.1f} FPS end to end, {self.mean_ms:.1f} ms/frame detection, "
             f"{self.faces} faces; stopped: {self.reason}")
        if self.output:
            s += f"; wrote {self.output}"
        return s


def _open_writer(path: str, fps: float, size: Tuple[int, int]) -> cv2.VideoWriter:
    ext = Path(path).suffix.lower()
    codec = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "MJPG"}.get(ext)
    if codec is None:
        raise ValueError(f"--output {path}: use a .mp4 or .avi file name")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), fps, size)
    if not w.isOpened():
        raise RuntimeError(f"cannot write the output video {path} (codec {codec} unavailable or folder not writable)")
    return w


def run_video(detector: Any, source: Union[str, int] = 0, threshold: Optional[float] = None,
              size: Optional[str] = None, display: bool = True, output: Optional[str] = None,
              max_frames: int = 0, blur: bool = False, camera_retries: int = 10,
              window: str = "ssd-mnv2 (q quits)") -> VideoSummary:
    """Detect faces frame by frame with a boxes + FPS overlay.

    Ends on 'q'/Esc in the window, Ctrl-C, ``max_frames``, the end of a video file, or a
    camera/stream that stops delivering frames (after ``camera_retries`` failed reads). Raises
    :class:`VideoSourceError` when the source cannot be opened or delivers no frame at all.
    """
    if threshold is None:
        threshold = detector.cfg.eval.display_threshold
    size_spec = size if size is not None else detector.cfg.eval.size
    if output and _source_kind(source)[0] == "file":
        from .io_utils import refuse_output_over_input

        refuse_output_over_input([output], [source], "--output")
    cap, kind = open_video_source(source)
    writer = None
    writer_wh = (0, 0)
    summary = VideoSummary(output=output)
    total_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if kind == "file" else 0
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 0.0
    fps_in = fps_in if 1.0 <= fps_in <= 240.0 else 25.0
    ema_fps = None
    det_ms_total = 0.0
    failures = 0
    t_start = time.perf_counter()
    try:
        while True:
            if max_frames and summary.frames >= max_frames:
                summary.reason = f"--max-frames {max_frames} reached"
                break
            t_frame = time.perf_counter()
            ok, frame = cap.read()
            if not ok or frame is None:
                if kind == "file":
                    if summary.frames == 0:
                        raise VideoSourceError(f"video file {source}: no frame could be decoded (corrupt "
                                               "file or unsupported codec)")
                    if total_frames and summary.frames < total_frames - 1:
                        summary.reason = (f"video file ended early: decoded {summary.frames} of "
                                          f"{total_frames} frames (truncated or corrupt?)")
                    else:
                        summary.reason = "end of video file"
                    break
                failures += 1
                if failures <= camera_retries:
                    time.sleep(0.05)
                    continue
                what = "camera" if kind == "camera" else "stream"
                if summary.frames == 0:
                    raise VideoSourceError(f"{what} {source} opened but delivered no frames "
                                           "(device busy, unplugged or not a capture device?)")
                summary.reason = (f"{what} {source} stopped delivering frames after {summary.frames} "
                                  "frames (disconnected?)")
                break
            failures = 0
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            t0 = time.perf_counter()
            boxes, scores = detector.predict(frame, size=size_spec, threshold=threshold)
            det_ms = (time.perf_counter() - t0) * 1000.0
            det_ms_total += det_ms
            vis = blur_faces(frame, boxes) if blur else draw_detections(frame, boxes, scores)
            dt = time.perf_counter() - t_frame
            inst = 1.0 / max(dt, 1e-6)
            ema_fps = inst if ema_fps is None else 0.9 * ema_fps + 0.1 * inst
            draw_fps(vis, ema_fps, det_ms, len(scores))
            summary.frames += 1
            summary.faces += len(scores)
            if output:
                if writer is None:
                    writer_wh = (vis.shape[1], vis.shape[0])
                    writer = _open_writer(output, fps_in, writer_wh)
                if (vis.shape[1], vis.shape[0]) != writer_wh:  # a stream may change resolution
                    vis = cv2.resize(vis, writer_wh)
                writer.write(vis)
            if display:
                try:
                    cv2.imshow(window, vis)
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error:
                    raise RuntimeError("cannot open a display window (headless OpenCV or no $DISPLAY): "
                                       "use --no-display (with --output to save the video)") from None
                if key in (ord("q"), 27):
                    summary.reason = "'q' pressed"
                    break
    except KeyboardInterrupt:
        summary.reason = "interrupted (Ctrl-C)"
    finally:
        summary.seconds = time.perf_counter() - t_start
        summary.mean_ms = det_ms_total / max(summary.frames, 1)
        cap.release()
        if writer is not None:
            writer.release()
        if display:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    if output and writer is None:
        summary.output = None
    return summary

