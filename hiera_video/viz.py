"""Pictures without a plotting library: a PNG writer (zlib + numpy) and a confusion-matrix heatmap.

Kept dependency-free on purpose: evaluation runs on training nodes where matplotlib may be absent.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """uint8 [H, W, 3] (RGB) or [H, W] (grey) -> PNG file."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"write_png wants uint8 [H, W, 3] or [H, W], got {image.dtype} {list(image.shape)}")
    H, W = image.shape[:2]
    color_type = 2 if image.ndim == 3 else 0
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(H))  # filter byte 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, color_type, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path)


def confusion_png(matrix: np.ndarray, path: str | os.PathLike, max_side: int = 800) -> None:
    """Row-normalised confusion matrix ([true, predicted] counts) as a heatmap: rows are true classes
    in index order, columns predictions; white 0, dark blue 1; each class a square of pixels."""
    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    C = len(rows)
    cell = max(1, min(max_side // max(C, 1), 40))
    low, high = np.array([255, 255, 255.0]), np.array([8, 48, 107.0])
    rgb = (low + (high - low) * rows[..., None]).round().astype(np.uint8)  # [C, C, 3]
    write_png(path, np.kron(rgb, np.ones((cell, cell, 1), np.uint8)))
