"""Boxes and labels on AVA keyframes without an imaging library: a 5x7 bitmap font, clipped rectangle
and text drawing on uint8 [H, W, 3] arrays, and the keyframe pictures of tools/visualize_ava.py.

Kept dependency-free (numpy, plus PyAV to read the JPEG keyframes) for the same reason as viz.py:
evaluation nodes may lack Pillow, OpenCV and matplotlib.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

# Before anything imports decord: see the note in hiera_video/data/decode.py.
import av
import numpy as np

from .data.ava_io import (Box, Key, frame_path, keyframe_index, read_annotations, read_detections,
                          read_labelmap)
from .viz import write_png

Color = tuple[int, int, int]

DET_COLOR: Color = (0, 255, 0)     # detections: solid green boxes, label block above the box
GT_COLOR: Color = (255, 64, 255)   # ground truth: thinner dashed magenta boxes, labels below the box
TEXT_COLOR: Color = (0, 0, 0)      # black on the box colour reads on any frame

# ------------------------------------------------------------------------------------------------ font

GLYPH_W, GLYPH_H = 5, 7
# One glyph per line: the character, then its 7 rows as 5-bit masks in hex (bit 4 = leftmost pixel).
# The shapes follow the classic HD44780 LCD font, except that g j p q y have an 8th row: their
# descenders hang into the 1-pixel margin below the line instead of being squeezed into 7 rows.
_FONT_TABLE = """\
  00 00 00 00 00 00 00
0 0E 11 13 15 19 11 0E
1 04 0C 04 04 04 04 0E
2 0E 11 01 02 04 08 1F
3 1F 02 04 02 01 11 0E
4 02 06 0A 12 1F 02 02
5 1F 10 1E 01 01 11 0E
6 06 08 10 1E 11 11 0E
7 1F 01 02 04 08 08 08
8 0E 11 11 0E 11 11 0E
9 0E 11 11 0F 01 02 0C
A 0E 11 11 11 1F 11 11
B 1E 11 11 1E 11 11 1E
C 0E 11 10 10 10 11 0E
D 1C 12 11 11 11 12 1C
E 1F 10 10 1E 10 10 1F
F 1F 10 10 1E 10 10 10
G 0E 11 10 17 11 11 0F
H 11 11 11 1F 11 11 11
I 0E 04 04 04 04 04 0E
J 07 02 02 02 02 12 0C
K 11 12 14 18 14 12 11
L 10 10 10 10 10 10 1F
M 11 1B 15 15 11 11 11
N 11 11 19 15 13 11 11
O 0E 11 11 11 11 11 0E
P 1E 11 11 1E 10 10 10
Q 0E 11 11 11 15 12 0D
R 1E 11 11 1E 14 12 11
S 0F 10 10 0E 01 01 1E
T 1F 04 04 04 04 04 04
U 11 11 11 11 11 11 0E
V 11 11 11 11 11 0A 04
W 11 11 11 15 15 15 0A
X 11 11 0A 04 0A 11 11
Y 11 11 11 0A 04 04 04
Z 1F 01 02 04 08 10 1F
a 00 00 0E 01 0F 11 0F
b 10 10 16 19 11 11 1E
c 00 00 0E 10 10 11 0E
d 01 01 0D 13 11 11 0F
e 00 00 0E 11 1F 10 0E
f 06 09 08 1C 08 08 08
g 00 00 0F 11 11 0F 01 0E
h 10 10 16 19 11 11 11
i 04 00 0C 04 04 04 0E
j 02 00 06 02 02 02 12 0C
k 10 10 12 14 18 14 12
l 0C 04 04 04 04 04 0E
m 00 00 1A 15 15 11 11
n 00 00 16 19 11 11 11
o 00 00 0E 11 11 11 0E
p 00 00 1E 11 11 1E 10 10
q 00 00 0F 11 11 0F 01 01
r 00 00 16 19 10 10 10
s 00 00 0E 10 0E 01 1E
t 08 08 1C 08 08 09 06
u 00 00 11 11 11 13 0D
v 00 00 11 11 11 0A 04
w 00 00 11 11 15 15 0A
x 00 00 11 0A 04 0A 11
y 00 00 11 11 11 0F 01 0E
z 00 00 1F 02 04 08 1F
. 00 00 00 00 00 0C 0C
, 00 00 00 00 0C 04 08
: 00 0C 0C 00 0C 0C 00
; 00 0C 0C 00 0C 04 08
( 02 04 08 08 08 04 02
) 08 04 02 02 02 04 08
/ 00 01 02 04 08 10 00
- 00 00 00 1F 00 00 00
_ 00 00 00 00 00 00 1F
% 18 19 02 04 08 13 03
' 0C 04 08 00 00 00 00
+ 00 04 04 1F 04 04 00
& 0C 12 14 08 15 12 0D
# 0A 0A 1F 0A 1F 0A 0A
! 04 04 04 04 00 00 04
? 0E 11 01 02 04 00 04
= 00 00 1F 00 1F 00 00
" 0A 0A 0A 00 00 00 00
"""
_UNKNOWN = "00 1F 11 11 11 1F 00"  # a small hollow box marks characters the font lacks


def _bitmap(rows: str) -> np.ndarray:
    masks = [int(r, 16) for r in rows.split()]
    return np.array([[(m >> (GLYPH_W - 1 - c)) & 1 for c in range(GLYPH_W)] for m in masks], dtype=bool)


FONT: dict[str, np.ndarray] = {line[0]: _bitmap(line[2:]) for line in _FONT_TABLE.splitlines()}
UNKNOWN_GLYPH = _bitmap(_UNKNOWN)


def glyph(char: str) -> np.ndarray:
    """The [7, 5] bool bitmap of one character ([8, 5] for descenders; the hollow box when the font
    lacks it)."""
    return FONT.get(char, UNKNOWN_GLYPH)


# --------------------------------------------------------------------------------------------- drawing

def _paint(img: np.ndarray, x: int, y: int, mask: np.ndarray, color: Color) -> None:
    """Set img[y + i, x + j] = color where mask[i, j], dropping whatever falls outside the image."""
    H, W = img.shape[:2]
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    region = img[y0:y1, x0:x1]
    region[mask[y0 - y:y1 - y, x0 - x:x1 - x]] = color


def fill_rect(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, color: Color) -> None:
    """Fill the pixels x1..x2, y1..y2 (inclusive), clipped at the image border."""
    H, W = img.shape[:2]
    x1, x2 = sorted((int(x1), int(x2)))
    y1, y2 = sorted((int(y1), int(y2)))
    img[max(y1, 0):min(y2 + 1, H), max(x1, 0):min(x2 + 1, W)] = color


def draw_rect(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, color: Color, thickness: int = 2,
              dash: int = 0) -> None:
    """Outline of the rectangle with corner pixels (x1, y1) and (x2, y2) (inclusive), `thickness` pixels
    growing inwards, so the outer border pixels are exactly the rectangle's edge. dash > 0 draws dashes
    and gaps of that many pixels. Parts outside the image are dropped (boxes may leave the frame)."""
    x1, x2 = sorted((int(x1), int(x2)))
    y1, y2 = sorted((int(y1), int(y2)))
    H, W = img.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, W - 1), min(y2, H - 1)
    if cx1 > cx2 or cy1 > cy2:
        return
    # The mask is built over the clipped region only, but from the unclipped edges: an edge outside the
    # image then simply has no pixels, instead of being redrawn at the border.
    ys = np.arange(cy1, cy2 + 1)[:, None]
    xs = np.arange(cx1, cx2 + 1)[None, :]
    t = max(int(thickness), 1)
    mask = (ys - y1 < t) | (y2 - ys < t) | (xs - x1 < t) | (x2 - xs < t)
    if dash > 0:
        # Distance along either edge: on horizontal edges it is x, on vertical ones y.
        mask &= ((xs - x1 + ys - y1) // dash) % 2 == 0
    _paint(img, cx1, cy1, mask, color)


def text_size(text: str, scale: int = 1) -> tuple[int, int]:
    """(width, height) in pixels that draw_text covers: one glyph cell (5 + 1 pixels) per character plus
    a 1-pixel margin on every side, all times `scale`."""
    return (GLYPH_W + 1) * len(text) * scale + scale, (GLYPH_H + 2) * scale


def draw_text(img: np.ndarray, x: int, y: int, text: str, color: Color, background: Color | None = None,
              scale: int = 1) -> tuple[int, int]:
    """One line of text whose box (text_size) has its top-left corner at (x, y); the first glyph's
    top-left pixel is at (x + scale, y + scale). `background` fills the whole box first. Each font pixel
    becomes a scale x scale square; anything outside the image is dropped. Returns text_size."""
    w, h = text_size(text, scale)
    x, y, scale = int(x), int(y), max(int(scale), 1)
    if background is not None:
        fill_rect(img, x, y, x + w - 1, y + h - 1, background)
    for i, char in enumerate(text):
        if char == " ":
            continue
        mask = np.kron(glyph(char), np.ones((scale, scale), dtype=bool)) if scale > 1 else glyph(char)
        _paint(img, x + scale + i * (GLYPH_W + 1) * scale, y + scale, mask, color)
    return w, h


def draw_label_block(img: np.ndarray, x: int, y: int, lines: Sequence[str], color: Color,
                     background: Color | None, scale: int = 1) -> tuple[int, int]:
    """Lines stacked from (x, y) down on one background of the widest line's width. Returns (w, h)."""
    if not lines:
        return 0, 0
    w = max(text_size(line, scale)[0] for line in lines)
    line_h = text_size("", scale)[1]
    if background is not None:
        fill_rect(img, x, y, x + w - 1, y + line_h * len(lines) - 1, background)
    for i, line in enumerate(lines):
        draw_text(img, x, y + i * line_h, line, color, None, scale)
    return w, line_h * len(lines)


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


def _place(img: np.ndarray, px1: int, py1: int, py2: int, size: tuple[int, int], above: bool) -> tuple[int, int]:
    """Top-left corner of a label block: outside the box (above it or below it) when it fits in the
    image, else just inside that edge; shifted left so it stays in the image when the box is near the
    right border."""
    H, W = img.shape[:2]
    w, h = size
    x = max(min(px1, W - w), 0)
    if above:
        y = py1 - h if py1 - h >= 0 else max(py1, 0)
    else:
        y = py2 + 1 if py2 + 1 + h <= H else min(py2 + 1, H) - h
    return x, y


def annotate_keyframe(rgb: np.ndarray, detections: Sequence[tuple[Box, Actions]],
                      gt: Sequence[tuple[Box, Sequence[int]]] | None = None, names: dict[int, str] | None = None,
                      top: int = 3, scale: int = 2, text_scale: int = 1) -> np.ndarray:
    """The keyframe `rgb` (uint8 [H, W, 3]) enlarged `scale` times (nearest neighbour), with
    - detections (group_detections' entries for this keyframe): green boxes, each labelled above with
      its `top` best actions as `0.93 walk` lines; boxes without actions thin and unlabelled;
    - ground truth (read_annotations' entries), if given: thinner dashed magenta boxes, labelled below
      with their action names.
    Labels are drawn after all boxes so no box line crosses a label. Returns uint8 [H*scale, W*scale, 3]."""
    scale = max(int(scale), 1)
    img = np.repeat(np.repeat(np.asarray(rgb, dtype=np.uint8), scale, 0), scale, 1)
    H, W = img.shape[:2]
    det_t, gt_t = max(2, scale), max(1, scale // 2)
    labels: list[tuple[int, int, int, list[str], Color, bool]] = []
    for box, action_ids in gt or ():
        x1, y1, x2, y2 = _pixels(box, W, H)
        draw_rect(img, x1, y1, x2, y2, GT_COLOR, gt_t, dash=4 * scale)
        labels.append((x1, y1, y2, [_name(a, names) for a in action_ids], GT_COLOR, False))
    for box, actions in detections:
        x1, y1, x2, y2 = _pixels(box, W, H)
        kept = list(actions)[:top]
        draw_rect(img, x1, y1, x2, y2, DET_COLOR, det_t if kept else 1)
        labels.append((x1, y1, y2, [f"{score:.2f} {_name(a, names)}" for a, score in kept], DET_COLOR, True))
    for x1, y1, y2, lines, color, above in labels:
        if lines:
            size = (max(text_size(s, text_scale)[0] for s in lines), text_size("", text_scale)[1] * len(lines))
            x, y = _place(img, x1, y1, y2, size, above)
            draw_label_block(img, x, y, lines, TEXT_COLOR, color, text_scale)
    return img


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """A JPEG (any image FFmpeg reads) as uint8 [H, W, 3] RGB, via PyAV. ValueError names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keyframe file not found: {path}")
    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0)).to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration, ValueError) as e:
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
