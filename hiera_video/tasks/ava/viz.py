"""Boxes and labels on AVA keyframes, drawn with Pillow: the keyframe pictures of tools/visualize_ava.py
(detections as solid green boxes labelled above with their best actions, ground truth as dashed magenta
boxes labelled below), and reading the keyframe JPEGs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ...viz import write_png
from .io import Box, Key, frame_path, keyframe_index, read_annotations, read_detections, read_labelmap

Color = tuple[int, int, int]

DET_COLOR: Color = (0, 255, 0)     # detections: solid green boxes, label block above the box
GT_COLOR: Color = (255, 64, 255)   # ground truth: thinner dashed magenta boxes, labels below the box
TEXT_COLOR: Color = (0, 0, 0)      # black on the box colour reads on any frame
LABEL_PAD = 2                      # pixels between a label block's edge and its text

# --------------------------------------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=8)
def label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at `size` pixels; on Pillow < 10.1 (or without FreeType) its one
    fixed-size bitmap font, which still reads, only smaller."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # TypeError: no size= before Pillow 10.1
        return ImageFont.load_default()


def _line_height(font) -> int:
    try:
        ascent, descent = font.getmetrics()  # FreeType: the same height for every line
        return ascent + descent
    except AttributeError:  # the bitmap font has no metrics
        return font.getbbox("Agjy")[3] + 1


def label_size(lines: Sequence[str], font) -> tuple[int, int]:
    """(width, height) in pixels of the block that draw_label_block fills for `lines`."""
    width = max((font.getbbox(line)[2] for line in lines), default=0)
    return width + 2 * LABEL_PAD, _line_height(font) * len(lines) + 2 * LABEL_PAD


def draw_label_block(draw: ImageDraw.ImageDraw, x: int, y: int, lines: Sequence[str], font, color: Color,
                     background: Color) -> tuple[int, int]:
    """Lines stacked from (x, y) down on one `background` block (label_size). Returns its size."""
    w, h = label_size(lines, font)
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=background)
    for i, line in enumerate(lines):
        draw.text((x + LABEL_PAD, y + LABEL_PAD + i * _line_height(font)), line, fill=color, font=font)
    return w, h


def draw_dashed_rect(draw: ImageDraw.ImageDraw, x1: int, y1: int, x2: int, y2: int, color: Color, width: int,
                     dash: int) -> None:
    """Dashed outline with inclusive corners (x1, y1), (x2, y2): dashes and gaps of `dash` pixels along
    each edge, `width` pixels growing inwards as Pillow's solid rectangles do (Pillow has no dashes)."""
    w, dash = max(int(width), 1), max(int(dash), 1)
    for start in range(x1, x2 + 1, 2 * dash):
        end = min(start + dash - 1, x2)
        draw.rectangle((start, y1, end, y1 + w - 1), fill=color)
        draw.rectangle((start, y2 - w + 1, end, y2), fill=color)
    for start in range(y1, y2 + 1, 2 * dash):
        end = min(start + dash - 1, y2)
        draw.rectangle((x1, start, x1 + w - 1, end), fill=color)
        draw.rectangle((x2 - w + 1, start, x2, end), fill=color)


# ----------------------------------------------------------------------------------------- AVA pictures

Actions = list[tuple[int, float]]  # (action id, score), best first


def group_detections(rows: Iterable[tuple[str, int, Box, int, float]],
                     min_score: float = 0.0) -> dict[Key, list[tuple[Box, Actions]]]:
    """Rows of a results file (read_detections) as people per keyframe: one entry per distinct box
    (same video, timestamp and coordinates), its actions with score >= min_score sorted best first.
    A box whose actions all fall below min_score stays, with no actions: it was still detected."""
    out: dict[Key, dict[Box, Actions]] = {}
    for video_id, timestamp, box, action, score in rows:
        actions = out.setdefault((video_id, timestamp), {}).setdefault(box, [])
        if score >= min_score:
            actions.append((action, score))
    return {key: [(box, sorted(actions, key=lambda a: -a[1])) for box, actions in people.items()]
            for key, people in out.items()}


def _name(action: int, names: dict[int, str] | None) -> str:
    return names.get(action, f"#{action}") if names else f"#{action}"


def _pixels(box: Box, W: int, H: int) -> tuple[int, int, int, int]:
    """Normalised box -> inclusive pixel corners in a W x H image."""
    x1, y1, x2, y2 = box
    return (round(x1 * W), round(y1 * H), max(round(x2 * W) - 1, round(x1 * W)),
            max(round(y2 * H) - 1, round(y1 * H)))


def _place(W: int, H: int, px1: int, py1: int, py2: int, size: tuple[int, int], above: bool) -> tuple[int, int]:
    """Top-left corner of a label block in a W x H image: outside the box (above it or below it) when it
    fits in the image, else just inside that edge; shifted left so it stays in the image when the box is
    near the right border."""
    w, h = size
    x = max(min(px1, W - w), 0)
    if above:
        y = py1 - h if py1 - h >= 0 else max(py1, 0)
    else:
        y = py2 + 1 if py2 + 1 + h <= H else min(py2 + 1, H) - h
    return x, y


def annotate_keyframe(rgb: np.ndarray, detections: Sequence[tuple[Box, Actions]],
                      gt: Sequence[tuple[Box, Sequence[int]]] | None = None, names: dict[int, str] | None = None,
                      top: int = 3, scale: int = 2, font_size: int = 11) -> np.ndarray:
    """The keyframe `rgb` (uint8 [H, W, 3]) enlarged `scale` times (nearest neighbour), with
    - detections (group_detections' entries for this keyframe): green boxes, each labelled above with
      its `top` best actions as `0.93 walk` lines; boxes without actions thin and unlabelled;
    - ground truth (read_annotations' entries), if given: thinner dashed magenta boxes, labelled below
      with their action names.
    Labels (black text of `font_size` pixels on the box colour) are drawn after all boxes so no box
    line crosses a label. Returns uint8 [H*scale, W*scale, 3]."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"annotate_keyframe wants an RGB frame [H, W, 3], got {list(rgb.shape)}")
    scale = max(int(scale), 1)
    frame = Image.fromarray(rgb)
    img = frame.resize((frame.width * scale, frame.height * scale), Image.Resampling.NEAREST)
    W, H = img.size
    draw = ImageDraw.Draw(img)
    font = label_font(font_size)
    det_t, gt_t = max(2, scale), max(1, scale // 2)
    labels: list[tuple[int, int, int, list[str], Color, bool]] = []
    for box, action_ids in gt or ():
        x1, y1, x2, y2 = _pixels(box, W, H)
        draw_dashed_rect(draw, x1, y1, x2, y2, GT_COLOR, gt_t, dash=4 * scale)
        labels.append((x1, y1, y2, [_name(a, names) for a in action_ids], GT_COLOR, False))
    for box, actions in detections:
        x1, y1, x2, y2 = _pixels(box, W, H)
        kept = list(actions)[:top]
        draw.rectangle((x1, y1, x2, y2), outline=DET_COLOR, width=det_t if kept else 1)
        labels.append((x1, y1, y2, [f"{score:.2f} {_name(a, names)}" for a, score in kept], DET_COLOR, True))
    for x1, y1, y2, lines, color, above in labels:
        if lines:
            x, y = _place(W, H, x1, y1, y2, label_size(lines, font), above)
            draw_label_block(draw, x, y, lines, font, TEXT_COLOR, color)
    return np.array(img)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """A JPEG or PNG (any image Pillow reads) as uint8 [H, W, 3] RGB. ValueError names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keyframe file not found: {path}")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: cannot decode the image: {e or type(e).__name__}") from None


def visualize_ava(frames_root: str | os.PathLike, detections: str | os.PathLike, labelmap: str | os.PathLike,
                  out_dir: str | os.PathLike, gt: str | os.PathLike | None = None, top: int = 3,
                  min_score: float = 0.2, max_keyframes: int = 20, scale: int = 2) -> tuple[list[Path], int]:
    """One PNG per keyframe with detections, `out_dir/{video_id}_{timestamp:04d}.png`, for the first
    `max_keyframes` keyframes by video and time. Every file is read, and every needed keyframe JPEG
    checked to exist, before the first PNG is written, so a bad input leaves no half-done folder. Returns the
    written paths and the number of keyframes with detections. Raises FileNotFoundError / ValueError
    (AvaFormatError) naming the file."""
    if top < 1 or scale < 1 or max_keyframes < 1:
        raise ValueError(f"--top, --scale and --max-keyframes must be >= 1 (got {top}, {scale}, {max_keyframes})")
    names = dict(read_labelmap(labelmap))
    people = group_detections(read_detections(detections), min_score)
    truth = read_annotations(gt) if gt is not None else {}
    keys = sorted(people)[:max_keyframes]
    paths = {}
    for video_id, timestamp in keys:
        try:
            path = frame_path(frames_root, video_id, keyframe_index(timestamp))
        except ValueError as e:
            raise ValueError(f"{detections}: keyframe {video_id},{timestamp}: {e}") from None
        if not path.is_file():
            raise FileNotFoundError(f"keyframe file not found: {path} (video {video_id} at {timestamp} s)")
        paths[video_id, timestamp] = path
    written = []
    for key in keys:
        image = annotate_keyframe(read_rgb(paths[key]), people[key], truth.get(key) if gt is not None else None,
                                  names, top, scale)
        target = Path(out_dir) / f"{key[0]}_{key[1]:04d}.png"
        write_png(target, image)
        written.append(target)
    return written, len(people)
