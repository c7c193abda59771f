"""Count images carrying an EXIF orientation other than 1 (the images whose stored pixels differ
from what a viewer shows). Header only (PIL), nothing decoded. "none" = no EXIF orientation tag, "unreadable" = PIL cannot
open the header.

    python scripts/count_exif_orientation.py DIR [DIR ...]
"""
from __future__ import annotations

import os
import sys
from collections import Counter

from PIL import Image


def orientation_tag(path: str):
    """The EXIF orientation tag's value, "none" without one, "unreadable" if PIL cannot open it."""
    try:
        with Image.open(path) as im:
            o = im.getexif().get(0x0112)
    except Exception:
        return "unreadable"
    return "none" if o is None else int(o)


EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def main(dirs) -> None:
    for d in dirs:
        counts: Counter = Counter()
        rotated = []
        for root, _, files in os.walk(d):
            for f in sorted(files):
                if not f.lower().endswith(EXTS):
                    continue
                p = os.path.join(root, f)
                o = orientation_tag(p)
                counts[o] += 1
                if isinstance(o, int) and o != 1:
                    rotated.append((os.path.relpath(p, d), o))
        total = sum(counts.values())
        print(f"{d}: {total} images; EXIF orientation: "
              + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))))
        print(f"  orientation other than 1: {len(rotated)}")
        for p, o in rotated:
            print(f"    {p}  orientation={o}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["../shared/data/widerface/train/images", "../shared/data/widerface/dev/images"])
