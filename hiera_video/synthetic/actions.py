"""Synthetic action videos: the embedded default dataset.

Eight classes in four time-reversed pairs (`CLASSES`): one clip of a pair is exactly the other played
backwards, so only temporal order tells them apart; two more class sets (`CLASS_SETS`: "paths",
"dynamics") check a recipe on other actions. Each clip is one dark textured shape running a canonical
course over a light textured background, with frame rate, size and looks varied per clip, chosen so that
a tiny Hiera learns the set from scratch on a CPU within minutes. `make_action_dataset` writes
PySlowFast-style lists; video i of a split depends only on (seed, split, i).
Details: docs/synthetic.md (hiera_video/synthetic/actions.py).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from .video import run_jobs, write_video

CLASSES = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink", "rotate_clockwise",
           "rotate_counterclockwise")
# Per class: (kind of change, played backwards). The forward class of a pair is the one whose sampled
# trajectory is used as is: x or y increasing, size increasing, angle increasing (clockwise).
_CLASS_KIND = {
    "move_left": ("move_x", True), "move_right": ("move_x", False),
    "move_up": ("move_y", True), "move_down": ("move_y", False),
    "grow": ("scale", False), "shrink": ("scale", True),
    "rotate_clockwise": ("rotate", False), "rotate_counterclockwise": ("rotate", True),
    "move_down_right": ("move_diagonal", False), "move_up_left": ("move_diagonal", True),
    "move_down_left": ("move_antidiagonal", False), "move_up_right": ("move_antidiagonal", True),
    "orbit_clockwise": ("orbit", False), "orbit_counterclockwise": ("orbit", True),
    "speed_up_right": ("accelerate_x", False), "slow_down_left": ("accelerate_x", True),
    "slow_down_right": ("decelerate_x", False), "speed_up_left": ("decelerate_x", True),
    "speed_up_down": ("accelerate_y", False), "slow_down_up": ("accelerate_y", True),
}
# A second set of classes drawn the same way (six, in three time-reversed pairs), for checking that
# a recipe tuned on one set of actions carries over to actions it was not tuned on (the MAE study).
PATH_CLASSES = ("move_down_right", "move_up_left", "move_down_left", "move_up_right", "orbit_clockwise",
                "orbit_counterclockwise")
# And a third, harder one: the same straight crossing run speeding up or slowing down, so that four of
# its classes differ only in how the speed changes (a second-order temporal cue), not in direction.
DYNAMICS_CLASSES = ("speed_up_right", "slow_down_left", "slow_down_right", "speed_up_left", "speed_up_down",
                    "slow_down_up")
CLASS_SETS = {"actions": CLASSES, "paths": PATH_CLASSES, "dynamics": DYNAMICS_CLASSES}
FPS_CHOICES = (12, 15, 24, 25, 30)
SIZE_CHOICES = ((120, 160), (128, 128), (144, 176), (160, 120))  # (H, W)
DURATION_RANGE = (2.2, 2.7)  # seconds: any 2.13 s training window sees most of the action
SHAPES = ("square", "circle", "triangle", "plus")
GENERATOR_VERSION = 2  # bump when the same seed would give different videos
SPLITS = ("train", "val")

_EXTENT = 1.15  # farthest point of any shape (and its anti-aliased edge) from its centre, in radii
_MARGIN = 2.0  # pixels kept free between the shape and the frame's edge
_MARKER_COLORS = (np.array([20, 20, 20]), np.array([235, 235, 235]))


# --------------------------------------------------------------------------------------------------
# Planning and drawing one clip
# --------------------------------------------------------------------------------------------------
@dataclass
class ClipSpec:
    """Everything needed to draw one clip; per-frame arrays have length T (the frame count)."""

    label: int
    fps: int
    shape: str
    color: np.ndarray  # [3] uint8, the shape's colour
    color2: np.ndarray  # [3] uint8, the second colour of the texture painted on the shape
    texture: np.ndarray  # [K, K] float32 in [0, 1]: mixes color and color2 over the shape, in its frame
    marker_color: np.ndarray  # [3] uint8, the dot that makes rotation visible
    center: np.ndarray  # [T, 2] float (x, y) in pixels
    radius: np.ndarray  # [T] float, in pixels
    angle: np.ndarray  # [T] float radians, increasing = clockwise on screen
    background: np.ndarray  # [H, W, 3] uint8, static: texture and distractors

    @property
    def num_frames(self) -> int:
        return len(self.radius)


def _color_far_from(rng: np.random.Generator, others: list[np.ndarray], min_dist: float, low: int = 0,
                    high: int = 256) -> np.ndarray:
    """A random RGB colour with channels in [low, high), at least `min_dist` (Euclidean, 0-255 units)
    from each of `others`."""
    for _ in range(1000):
        c = rng.integers(low, high, 3)
        if all(np.linalg.norm(c - o) >= min_dist for o in others):
            return c
    raise RuntimeError(f"no colour in [{low}, {high}) {min_dist} away from {others}")  # cannot happen here


def _texture(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """[H, W, 3] float in about [-50, 50]: colour blotches at three scales (16, 6 and 3 pixels).

    A strongly textured background matters for learning: a shape moving over it covers and uncovers
    texture in every patch it crosses (measured: the same shapes over a flat background stayed at
    chance for 10 epochs where a finely textured one reached 96%). The finest cells are 3 pixels so
    that the detail survives resizing the frames to 64 pixels; with a light base colour the ground
    stays light."""
    tex = np.zeros((H, W, 3), np.float32)
    for cell, amplitude in ((16, 25.0), (6, 15.0), (3, 10.0)):
        coarse = rng.uniform(-1.0, 1.0, (H // cell + 1, W // cell + 1, 3)).astype(np.float32)
        tex += amplitude * np.kron(coarse, np.ones((cell, cell, 1), np.float32))[:H, :W]
    return tex


def _class_set(classes: str) -> tuple[str, ...]:
    if classes not in CLASS_SETS:
        raise ValueError(f"unknown synthetic class set {classes!r}; expected one of {sorted(CLASS_SETS)}")
    return CLASS_SETS[classes]


def plan_clip(cls_index: int, rng: np.random.Generator, classes: str = "actions") -> ClipSpec:
    """Sample one clip of class `cls_index` of the class set `classes` (`CLASS_SETS`); deterministic
    given the rng state.

    Both classes of a pair draw the same numbers in the same order; the backward one then reverses
    the per-frame arrays, which is what makes a pair indistinguishable without temporal order.
    """
    names = _class_set(classes)
    if not 0 <= cls_index < len(names):
        raise ValueError(f"class index {cls_index} out of range [0, {len(names)})")
    kind, backward = _CLASS_KIND[names[cls_index]]
    fps = int(rng.choice(FPS_CHOICES))
    H, W = SIZE_CHOICES[rng.integers(len(SIZE_CHOICES))]
    T = int(round(rng.uniform(*DURATION_RANGE) * fps))
    t = np.arange(T) / fps  # seconds
    span = t[-1]
    short = min(H, W)
    shape = SHAPES[rng.integers(len(SHAPES))]
    angle0 = rng.uniform(0, 2 * math.pi)

    # Figure and ground differ in brightness: the actor is dark (any hue), the background light. A
    # tiny transformer trained from scratch then finds the actor from each patch alone and learns
    # where it is when; with random colours, where the actor may be lighter or darker than the
    # background, it stayed near chance for 10 epochs (measured; a small CNN learned both).
    bg = rng.integers(160, 256, 3)
    color = rng.integers(0, 90, 3)
    # A second dark colour for the shape's texture, which moves, grows and turns with it.
    color2 = _color_far_from(rng, [color], 40, high=90)
    marker = _MARKER_COLORS[1]  # white on the dark shape: makes rotation visible

    def fit(r_max: float, size: int) -> float:  # a centre coordinate keeping radius r_max inside size
        lo = _EXTENT * r_max + _MARGIN
        return rng.uniform(lo, size - lo)

    # Shapes are large (about half the frame): a small transformer that averages its tokens learns
    # an action within minutes only when many tokens see it (measured: shapes a quarter of the frame
    # wide stayed at chance for 10 epochs, half the frame reached 85%). Large movers and growers may
    # run partly out of the frame, as large objects do in real footage; their centre stays inside.
    # Each action also runs a canonical course over the clip (a mover crosses from about a fifth to
    # four fifths of the frame, a grower goes from small to large, a rotator starts with its marker
    # near the top and turns about half a turn), so that what is where at which moment tells the
    # class; the two classes of a pair still show the same frames, only in opposite orders.
    if kind in ("move_x", "move_y", "accelerate_x", "decelerate_x", "accelerate_y"):
        axis, L = (0, W) if kind.endswith("_x") else (1, H)
        r = rng.uniform(0.26, 0.32) * short
        start, end = rng.uniform(0.15, 0.25) * L, rng.uniform(0.75, 0.85) * L  # >= 0.37 L/s over <= 2.7 s
        center = np.empty((T, 2))
        progress = t / span
        if kind.startswith("accelerate"):  # from rest to twice the mean speed
            progress = progress ** 2
        elif kind.startswith("decelerate"):  # from twice the mean speed to rest
            progress = 1 - (1 - progress) ** 2
        center[:, axis] = start + (end - start) * progress
        center[:, 1 - axis] = fit(r, (H, W)[axis])  # the other axis: y for move_x, x for move_y
        radius, angle = np.full(T, r), np.full(T, angle0)
    elif kind == "scale":
        r0, r1 = rng.uniform(0.1, 0.14) * short, rng.uniform(0.45, 0.55) * short  # >= 3.2x over <= 2.7 s
        radius = r0 * (r1 / r0) ** (t / span)
        center = np.tile([rng.uniform(0.35, 0.65) * W, rng.uniform(0.35, 0.65) * H], (T, 1))
        angle = np.full(T, angle0)
    elif kind in ("move_diagonal", "move_antidiagonal"):
        # Corner to opposite corner: from about a quarter to three quarters of the frame on both axes
        # (down-right, or down-left for the antidiagonal; the backward classes run it up).
        r = rng.uniform(0.2, 0.26) * short
        fx, fy = rng.uniform(0.2, 0.3, 2), rng.uniform(0.7, 0.8, 2)
        if kind == "move_antidiagonal":
            fx, fy = np.array([fy[0], fx[1]]), np.array([fx[0], fy[1]])
        start, end = np.array([fx[0] * W, fx[1] * H]), np.array([fy[0] * W, fy[1] * H])
        center = start + (end - start) * (t / span)[:, None]
        radius, angle = np.full(T, r), np.full(T, angle0)
    elif kind == "orbit":
        # The shape's centre runs three quarters of a circle around a point near the frame's centre,
        # clockwise on screen (angle increasing); the shape itself keeps its orientation.
        r, R = rng.uniform(0.15, 0.19) * short, rng.uniform(0.2, 0.25) * short
        slack = max(0.5 * short - R - _EXTENT * r - _MARGIN, 0.0)  # keeps the whole course inside
        cx, cy = W / 2 + rng.uniform(-slack, slack), H / 2 + rng.uniform(-slack, slack)
        phase = rng.uniform(0, 2 * math.pi) + math.radians(rng.uniform(250, 290)) * t / span
        center = np.stack([cx + R * np.cos(phase), cy + R * np.sin(phase)], axis=1)
        radius, angle = np.full(T, r), np.full(T, angle0)
    else:  # rotate
        r = rng.uniform(0.3, 0.4) * short  # fits inside: 2 x 1.15 x 0.4 < 1
        turn = math.radians(rng.uniform(160, 200))  # >= 118 degrees in 2 s, < 14 per frame at 12 fps
        start = math.radians(rng.uniform(-20, 20))  # marker near the top
        center = np.tile([fit(r, W), fit(r, H)], (T, 1))
        radius, angle = np.full(T, r), start + turn * t / span

    background = np.clip(bg + _texture(rng, H, W), 0, 255)
    for _ in range(rng.integers(0, 3)):  # static distractors: no marker, never the shape's colour
        dc = _color_far_from(rng, [bg, marker], 50, low=130)  # light, like the ground: never an actor
        dr = rng.uniform(0.05, 0.09) * short
        a = _shape_alpha(SHAPES[rng.integers(len(SHAPES))], (fit(dr, W), fit(dr, H)), dr,
                         rng.uniform(0, 2 * math.pi), (0, 0, W, H))[..., None]
        background = background * (1 - a) + dc * a
    background = np.round(background).astype(np.uint8)

    if backward:
        center, radius, angle = center[::-1].copy(), radius[::-1].copy(), angle[::-1].copy()
    return ClipSpec(label=cls_index, fps=fps, shape=shape, color=color.astype(np.uint8),
                    color2=color2.astype(np.uint8), texture=_shape_texture(rng), marker_color=marker.astype(np.uint8), center=center, radius=radius, angle=angle,
                    background=background)


# Marker dot per shape: (offset towards the shape's local top, dot radius), in shape radii; each sits
# well inside its shape.
_MARKERS = {"square": (0.45, 0.25), "circle": (0.55, 0.25), "triangle": (0.35, 0.2), "plus": (0.62, 0.22)}


_TEXTURE_SIZE = 48  # texels across the shape's bounding square


def _shape_texture(rng: np.random.Generator) -> np.ndarray:
    """[K, K] float32 in [0, 1]: random blotches at three scales, down to one texel (a few pixels)."""
    K = _TEXTURE_SIZE
    tex = np.zeros((K, K), np.float32)
    for cell, weight in ((12, 0.45), (4, 0.35), (1, 0.2)):
        coarse = rng.random((K // cell, K // cell)).astype(np.float32)
        tex += weight * np.kron(coarse, np.ones((cell, cell), np.float32))
    return (tex - tex.min()) / (tex.max() - tex.min() + 1e-6)


def _local_coords(center, angle: float, box) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of box (x0, y0, x1, y1) in the shape's frame (origin at its centre, rotated by
    -angle): two [h, w] arrays."""
    x0, y0, x1, y1 = box
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + np.float32(0.5 - center[0])  # [1, w], pixel centres
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + np.float32(0.5 - center[1])  # [h, 1]
    c, s = math.cos(angle), math.sin(angle)
    return c * dx + s * dy, -s * dx + c * dy


def _shape_alpha(shape: str, center, r: float, angle: float, box) -> np.ndarray:
    """Coverage in [0, 1] of `shape` over the pixels of box (x0, y0, x1, y1), anti-aliased over ~1 pixel.

    Each shape is an (approximate) signed distance d in pixels, negative inside; coverage is 0.5 - d
    clipped, which keeps sub-pixel motion visible instead of jumping a whole pixel at a time.
    """
    qx, qy = _local_coords(center, angle, box)
    if shape == "circle":
        d = np.hypot(qx, qy) - r
    elif shape == "square":
        d = np.maximum(np.abs(qx), np.abs(qy)) - 0.8 * r
    elif shape == "triangle":  # equilateral, circumradius 1.1 r, a vertex pointing to local -y
        k = 0.5 * math.sqrt(3)
        d = np.maximum(np.maximum(qy, -k * qx - 0.5 * qy), k * qx - 0.5 * qy) - 0.55 * r
    elif shape == "plus":
        w = 0.32 * r
        d = np.minimum(np.maximum(np.abs(qx) - r, np.abs(qy) - w), np.maximum(np.abs(qx) - w, np.abs(qy) - r))
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return np.clip(0.5 - d, 0.0, 1.0)


def draw_clip(spec: ClipSpec) -> np.ndarray:
    """[T, H, W, 3] uint8 frames of a planned clip."""
    H, W, _ = spec.background.shape
    frames = np.empty((spec.num_frames, H, W, 3), np.uint8)
    frames[:] = spec.background
    color, color2 = spec.color.astype(np.float32), spec.color2.astype(np.float32)
    marker = spec.marker_color.astype(np.float32)
    offset, dot = _MARKERS[spec.shape]
    for i, ((cx, cy), r, a) in enumerate(zip(spec.center, spec.radius, spec.angle)):
        # Only the shape's bounding box changes; the rest of the frame is the background.
        e = _EXTENT * r + 1
        box = (max(int(cx - e), 0), max(int(cy - e), 0), min(int(cx + e) + 2, W), min(int(cy + e) + 2, H))
        alpha = _shape_alpha(spec.shape, (cx, cy), r, a, box)[..., None]
        # The texture is looked up in the shape's own frame, so it moves, scales and turns with it.
        qx, qy = _local_coords((cx, cy), a, box)
        K = spec.texture.shape[0]
        u = np.clip(((qx / (2 * _EXTENT * r) + 0.5) * K).astype(np.int64), 0, K - 1)
        v = np.clip(((qy / (2 * _EXTENT * r) + 0.5) * K).astype(np.int64), 0, K - 1)
        mix = spec.texture[v, u][..., None]
        # local (0, -offset r) in frame coordinates: rotate by the angle
        mc = (cx + offset * r * math.sin(a), cy - offset * r * math.cos(a))
        m_alpha = _shape_alpha("circle", mc, dot * r, 0.0, box)[..., None] * alpha
        x0, y0, x1, y1 = box
        patch = frames[i, y0:y1, x0:x1].astype(np.float32)
        patch += (color + (color2 - color) * mix - patch) * alpha
        patch += (marker - patch) * m_alpha
        frames[i, y0:y1, x0:x1] = np.rint(patch)
    return frames


def render_clip(cls_index: int, rng: np.random.Generator, classes: str = "actions") -> tuple[np.ndarray, int]:
    """One clip of class `cls_index` of the set `classes`: ([T, H, W, 3] uint8 frames, fps);
    deterministic given the rng state."""
    spec = plan_clip(cls_index, rng, classes)
    return draw_clip(spec), spec.fps


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------
def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The rng of video `index` of `split`: a function of (seed, split, index) alone."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), index)))


def video_relpath(split: str, index: int, classes: str = "actions") -> str:
    """Path of a video relative to the dataset folder; its class is index % (number of classes)."""
    names = _class_set(classes)
    return f"{split}/{names[index % len(names)]}/{index:06d}.mp4"


def _write_one(job: tuple[str, int, str, int, str]) -> None:
    """Render and encode one video (runs in worker processes)."""
    out_dir, seed, split, index, classes = job
    frames, fps = render_clip(index % len(_class_set(classes)), video_rng(seed, split, index), classes)
    # A keyframe every second: cheap at this size, and random-window decoding seeks to it.
    write_video(Path(out_dir) / video_relpath(split, index, classes), frames, fps, codec="h264", gop=fps)


def make_action_dataset(out_dir: str | os.PathLike, num_train: int, num_val: int, seed: int = 0,
                 workers: int | None = None, progress: bool = True, classes: str = "actions") -> dict:
    """Write the synthetic dataset (layout in docs/synthetic.md) and return a summary.

    Videos that already exist are kept (writes are atomic, so an existing file is complete), which
    makes an interrupted run resumable; the list files are written last. A folder made with another
    seed, class set or generator version raises ValueError rather than mixing two datasets.
    classes: the class set, a key of `CLASS_SETS` ("actions", the default: 8 classes; "paths": 6).
    workers: processes for rendering and encoding (default: the CPUs this process may use; 1 runs
    in this process). progress: show a tqdm bar.
    Returns {"out_dir", "train", "val", "written", "skipped", "bytes", "seconds", "workers"}.
    """
    start = time.perf_counter()
    for name, n in (("num_train", num_train), ("num_val", num_val), ("seed", seed)):
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _class_set(classes)
    # "generator" keeps the module's old name, which every existing folder records.
    meta = {"generator": "hiera_video.data.synthetic", "version": GENERATOR_VERSION, "seed": int(seed)}
    if classes != "actions":  # recorded only when not the default, so older folders stay valid
        meta["classes"] = classes
    meta_path = out / "synthetic.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old != meta:
            raise ValueError(f"{out} holds a synthetic dataset made with {old} ({meta_path}); this call asks "
                             f"for {meta}: use another folder, or the same seed")
    else:
        atomic_write(meta_path, json.dumps(meta) + "\n")

    jobs = [(str(out), int(seed), split, i, classes) for split, n in zip(SPLITS, (num_train, num_val))
            for i in range(n)]
    todo = [j for j in jobs if not (out / video_relpath(j[2], j[3], classes)).exists()]
    workers = run_jobs(_write_one, todo, workers, f"synthetic videos -> {out}", progress, chunksize=4)

    atomic_write(out / "classes.txt", "".join(f"{c}\n" for c in names))
    for split, n in zip(SPLITS, (num_train, num_val)):
        lines = [f"{video_relpath(split, i, classes)} {i % len(names)}\n" for i in range(n)]
        atomic_write(out / f"{split}.csv", "".join(lines))
    size = sum((out / video_relpath(j[2], j[3], classes)).stat().st_size for j in jobs)
    return {"out_dir": str(out), "train": num_train, "val": num_val, "written": len(todo),
            "skipped": len(jobs) - len(todo), "bytes": size, "seconds": round(time.perf_counter() - start, 2),
            "workers": workers}
