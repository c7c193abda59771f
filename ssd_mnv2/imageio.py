"""Reading image files: the one reader used by training, evaluation and inference.

One orientation rule everywhere: **the EXIF orientation is applied**, so an image has the pixels
an image viewer, labelme / CVAT and ``PIL.ImageOps.exif_transpose`` show (a phone photo stored
sideways with orientation 6 is read upright). Training, evaluation and ``detect`` therefore see
the same pixels for the same file, and :func:`image_size` (header only) agrees with the decoded
size.

* :func:`read_image_bgr` (alias :func:`read_image`): ``(H, W, 3)`` uint8 BGR, for the
  detectors; :func:`read_image_rgb`: the same read converted to RGB, for the training datasets.
* ``max_pixels`` > 0 refuses an image whose header declares more pixels, before decoding it.
* A file that cannot be decoded raises :class:`ImageError` naming the file (a ``ValueError``
  and an ``OSError``, so code catching either keeps working); a missing file raises
  ``FileNotFoundError``.
* :func:`image_file_problem`: a problem of a file that decodes anyway (a truncated JPEG).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Optional, Tuple, Union

import cv2
import numpy as np

__all__ = ["ImageError", "read_image", "read_image_bgr", "read_image_rgb", "image_size",
           "exif_orientation", "apply_exif_orientation", "image_file_problem"]

PathLike = Union[str, "os.PathLike[str]"]

EXIF_ORIENTATION_TAG = 0x0112


class ImageError(ValueError, OSError):
    """An image file or array that is not a usable 8-bit colour image (the message names it)."""


# ------------------------------------------------------------------ header (nothing decoded)
def _header(path: PathLike) -> Tuple[int, int, int]:
    """``(stored width, stored height, EXIF orientation 1..8)`` from the file header (PIL)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(os.fspath(path)) as im:
            w, h = im.size
            try:
                o = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1))
            except Exception:  # a malformed EXIF block: as if there were none
                o = 1
    return w, h, (o if 1 <= o <= 8 else 1)


def exif_orientation(path: PathLike) -> Optional[int]:
    """The EXIF orientation (1..8) of an image file; 1 without EXIF, None when PIL cannot read
    the header."""
    from PIL import UnidentifiedImageError

    try:
        return _header(path)[2]
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def image_size(path: PathLike) -> Tuple[int, int]:
    """``(width, height)`` of an image as read (EXIF orientation applied), from its header only."""
    w, h, o = _header(path)
    return (h, w) if o >= 5 else (w, h)


def _header_info(path: Path) -> Tuple[Optional[int], str, int]:
    """``(pixels, "WxH = ", orientation)`` from one read of the file header (nothing decoded).
    ``pixels`` is None when PIL cannot read the header (OpenCV may still decode the file; the
    orientation is then 1); the size text is "" when PIL refuses to report the size."""
    from PIL import Image, UnidentifiedImageError

    try:
        w, h, o = _header(path)
        return w * h, f"{w}x{h} = ", o
    except Image.DecompressionBombError as e:  # PIL refuses even to open more than 2 x its limit
        m = re.search(r"\((\d+) pixels\)", str(e))
        n = int(m.group(1)) if m else 2 * int(Image.MAX_IMAGE_PIXELS or 0) + 1
        return n, "", 1
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None, "", 1


# ------------------------------------------------------------------ orientation
def apply_exif_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels ``(H, W, C)`` into displayed pixels for EXIF ``orientation`` (1..8),
    as ``PIL.ImageOps.exif_transpose`` (6 = rotate 90 degrees clockwise, 8 = counter-clockwise)."""
    if orientation == 2:
        out = img[:, ::-1]
    elif orientation == 3:
        out = img[::-1, ::-1]
    elif orientation == 4:
        out = img[::-1]
    elif orientation == 5:  # transpose
        out = np.swapaxes(img, 0, 1)
    elif orientation == 6:  # rotate 90 clockwise
        out = np.swapaxes(img, 0, 1)[:, ::-1]
    elif orientation == 7:  # transverse
        out = np.swapaxes(img, 0, 1)[::-1, ::-1]
    elif orientation == 8:  # rotate 90 counter-clockwise
        out = np.swapaxes(img, 0, 1)[::-1]
    else:
        return img
    return np.ascontiguousarray(out)


# ------------------------------------------------------------------ readers
def read_image_bgr(path: PathLike, max_pixels: int = 0) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 BGR, EXIF orientation applied (grayscale, alpha
    and 16-bit are converted).

    ``max_pixels`` > 0: an image whose header declares more pixels is refused with an
    :class:`ImageError` before it is decoded (``eval.max_image_pixels``; a small PNG can declare
    400 megapixels and take gigabytes to decode). A missing file raises ``FileNotFoundError``,
    an undecodable one :class:`ImageError`; both name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    pixels, size_text, orientation = _header_info(path)  # one header read: size limit + EXIF
    if max_pixels > 0 and pixels is not None and pixels > max_pixels:
        raise ImageError(f"{path}: image of {size_text}{pixels / 1e6:.3g} megapixels is over the "
                         f"limit of {max_pixels / 1e6:.3g} megapixels (eval.max_image_pixels; raise it "
                         "with --set eval.max_image_pixels=N, 0 = no limit)")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise ImageError(f"{path}: not a readable image file")
    return apply_exif_orientation(img, orientation)


read_image = read_image_bgr


def read_image_rgb(path: PathLike, max_pixels: int = 0) -> np.ndarray:
    """:func:`read_image_bgr` converted to ``(H, W, 3)`` uint8 RGB (the training datasets)."""
    return cv2.cvtColor(read_image_bgr(path, max_pixels), cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------ damaged files
def _jpeg_truncated(path: Path) -> bool:
    """True when a JPEG file ends before its end-of-image marker (cut off while copying or
    downloading). OpenCV decodes such a file without an error, grey from where it ends."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False  # not a JPEG
        f.seek(-2, 2)
        if f.read(2) == b"\xff\xd9":
            return False  # the usual case: the file ends with the marker
        f.seek(0)
        data = f.read()
    # the marker may be followed by other data: look for it after the first start-of-scan
    # (a thumbnail's end marker sits in an APP segment before it; inside the compressed data
    # 0xFF is always followed by 0x00 or a restart marker, so 0xFFD9 is the end marker)
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False  # not a marker where one should be: leave the verdict to the decoder
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", pos) < 0
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return True  # the file ends before the image data


def image_file_problem(path: PathLike) -> Optional[str]:
    """A problem of an image file that decodes anyway (so far: a truncated JPEG), or None."""
    if _jpeg_truncated(Path(path)):
        return ("truncated JPEG (the file ends before its end-of-image marker): the bottom of the "
                "image is missing")
    return None
