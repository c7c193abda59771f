"""Data sets (WIDER FACE, Pascal VOC) and transforms."""
