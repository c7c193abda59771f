"""Network input size specs: ``original``, ``WxH`` or ``max-side N``."""
from __future__ import annotations

import re
from typing import Optional, Tuple

__all__ = ["parse_size", "resolve_size"]

_WXH = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_MAX = re.compile(r"^\s*max[-_ ]?side[\s:=]*(\d+)\s*$")


def parse_size(spec: Optional[str]) -> Tuple[str, Optional[Tuple[int, int]]]:
    """Parse a size spec into ``("original", None)``, ``("fixed", (w, h))`` or ``("max", (n, n))``."""
    if spec is None or str(spec).strip().lower() == "original":
        return "original", None
    s = str(spec).strip().lower()
    m = _WXH.match(s)
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        if w < 32 or h < 32:
            raise ValueError(f"size {spec!r}: width and height must be >= 32")
        return "fixed", (w, h)
    m = _MAX.match(s)
    if m:
        n = int(m.group(1))
        if n < 32:
            raise ValueError(f"size {spec!r}: max side must be >= 32")
        return "max", (n, n)
    if s.isdigit():
        n = int(s)
        if n < 32:
            raise ValueError(f"size {spec!r}: must be >= 32")
        return "fixed", (n, n)
    raise ValueError(f"size {spec!r}: expected 'original', 'WxH' (e.g. 640x480), 'N' or 'max-side N'")


def resolve_size(spec: Optional[str], width: int, height: int) -> Tuple[int, int]:
    """Network input ``(w, h)`` for an image of ``width x height`` under ``spec``."""
    kind, wh = parse_size(spec)
    if kind == "original":
        return int(width), int(height)
    if kind == "fixed":
        return wh
    n = wh[0]
    scale = n / float(max(width, height))
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))
