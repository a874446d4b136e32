"""Pictures of evaluation and pretraining: PNG writing (Pillow), the confusion matrix (a labelled
matplotlib figure, or a plain Pillow heatmap where matplotlib is absent) and the MAE figure.

matplotlib is the optional `viz` extra: evaluation runs on training nodes that may lack it, so every
picture here still comes out without it, only plainer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .fileio import atomic_path

logger = logging.getLogger("hiera_video")

# Class names on the confusion matrix's axes up to this many classes; beyond, they would overlap.
MAX_NAMED_CLASSES = 40


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """uint8 [H, W, 3] (RGB) or [H, W] (grey) -> PNG file, written atomically."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"write_png wants uint8 [H, W, 3] or [H, W], got {image.dtype} {list(image.shape)}")
    with atomic_path(path) as tmp:
        # format= because the temporary's name does not end in .png
        Image.fromarray(image).save(tmp, format="PNG")


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """[true, predicted] counts -> each row's share (rows without videos stay 0)."""
    counts = np.asarray(matrix, dtype=np.float64)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def confusion_png(matrix: np.ndarray, path: str | os.PathLike, names: Sequence[str] | None = None,
                  max_side: int = 800) -> None:
    """Row-normalised confusion matrix ([true, predicted] counts): rows are true classes in index order,
    columns predictions. With matplotlib a figure with a colour bar and, up to MAX_NAMED_CLASSES classes,
    `names` on both axes; without it a heatmap of Pillow squares (white 0, dark blue 1), no names."""
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion_png wants a square [C, C] matrix, got {list(counts.shape)}")
    if names is not None and len(names) != len(counts):
        raise ValueError(f"confusion_png: {len(names)} class names for {len(counts)} classes")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        logger.info("%s: a plain heatmap without class names (matplotlib is not installed; "
                    "pip install 'hiera-video[viz]' for a labelled figure)", path)
        _confusion_heatmap(row_normalised(counts), path, max_side)
        return
    save_figure(confusion_figure(row_normalised(counts), names), path)


def _confusion_heatmap(rows: np.ndarray, path, max_side: int) -> None:
    C = len(rows)
    cell = max(1, min(max_side // max(C, 1), 40))
    low, high = np.array([255, 255, 255.0]), np.array([8, 48, 107.0])
    rgb = (low + (high - low) * rows[..., None]).round().astype(np.uint8)  # [C, C, 3]
    image = Image.fromarray(rgb).resize((C * cell, C * cell), Image.Resampling.NEAREST)
    write_png(path, np.asarray(image))


def confusion_figure(rows: np.ndarray, names: Sequence[str] | None = None):
    """The matplotlib Figure of a row-normalised confusion matrix (see confusion_png)."""
    # Figure without pyplot: no GUI backend, no global figure list to leak into on long runs.
    from matplotlib.figure import Figure

    C = len(rows)
    named = names is not None and C <= MAX_NAMED_CLASSES
    side = min(max(4.0, 0.28 * C), 14.0) + (2.5 if named else 0.0)  # inches; names need a margin
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class's videos")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if named:
        ax.set_xticks(range(C), [str(n) for n in names], rotation=90, fontsize=8)
        ax.set_yticks(range(C), [str(n) for n in names], fontsize=8)
    ax.set_title(f"confusion matrix, {C} classes (rows sum to 1)")
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> None:
    """A matplotlib Figure -> PNG file, written atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def mae_figure(model, clip, mask, mean, std, max_frames: int = 8, scale: int = 1) -> np.ndarray:
    """The MAE picture: one column per frame (the first frame of each 2-frame token, at most
    `max_frames`), rows original / masked input (deleted units grey) / reconstruction (visible
    patches kept, masked ones predicted). `clip` is a normalised [C, T, H, W] video (or [C, H, W]
    image), `mask` [U] bool (True = kept). Returns uint8 [H, W, 3], 2-pixel white gaps."""
    import torch  # here: the PNG helpers above work without torch

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
