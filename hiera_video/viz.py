"""Pictures without a plotting library: a PNG writer (zlib + numpy) and a confusion-matrix heatmap.

Kept dependency-free on purpose: evaluation runs on training nodes where matplotlib may be absent.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from .fileio import atomic_write


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
    atomic_write(path, png)


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


def mae_figure(model, clip, mask, mean, std, max_frames: int = 8, scale: int = 1) -> np.ndarray:
    """The MAE picture: one column per frame (the first frame of each 2-frame token, at most
    `max_frames`), rows original / masked input (deleted units grey) / reconstruction (visible
    patches kept, masked ones predicted). `clip` is a normalised [C, T, H, W] video (or [C, H, W]
    image), `mask` [U] bool (True = kept). Returns uint8 [H, W, 3], 2-pixel white gaps."""
    import torch

    x = clip.unsqueeze(0).float()
    rec = model.reconstruct(x, mask.view(1, -1))[0]  # [C, T', H, W] or [C, H, W], normalised
    orig = x[0, :, ::model.config["patch_stride"][0]] if x.dim() == 5 else x[0]
    if rec.dim() == 3:  # images: one "frame"
        rec, orig = rec.unsqueeze(1), orig.unsqueeze(1)
    # Visible pixels: each kept unit upsampled to the frame grid. [U] -> [T', H, W]
    units = mask.view(1, 1, *model.mask_spatial_shape).float()
    size = orig.shape[1:] if x.dim() == 5 else orig.shape[2:]
    visible = torch.nn.functional.interpolate(units, size=tuple(size))[0, 0].bool()
    visible = visible if x.dim() == 5 else visible.unsqueeze(0)
    m = torch.tensor(mean).view(-1, 1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1, 1)

    def to_rgb(v: torch.Tensor) -> torch.Tensor:  # normalised [C, T, H, W] -> uint8 [T, H, W, C]
        return (v * s + m).clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 3, 0)

    masked = torch.where(visible.unsqueeze(0), orig, (0.5 - m) / s)  # grey where deleted
    rows = [to_rgb(r)[:max_frames] for r in (orig, masked, rec)]
    T, H, W, _ = rows[0].shape
    gap = 2
    out = np.full((3 * H + 2 * gap, T * W + (T - 1) * gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for t in range(T):
            out[i * (H + gap):i * (H + gap) + H, t * (W + gap):t * (W + gap) + W] = row[t].numpy()
    return np.kron(out, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else out
