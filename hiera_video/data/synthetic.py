"""Synthetic action videos: the embedded default dataset, and the video writer that tests use.

Eight classes in four time-reversed pairs (`CLASSES`): move left/right, move up/down, grow/shrink,
rotate clockwise/counterclockwise. One clip of a pair is the other played backwards, so a single frame,
or any unordered bag of frames, cannot tell the pair apart; only temporal order can. This holds exactly,
not just in distribution: `plan_clip` draws the same random numbers for both classes of a pair and
reverses the trajectory in time for the second one, so `render_clip(move_left, rng)` is
`render_clip(move_right, rng)[::-1]` for equal rng states.

A clip shows one foreground shape (square, circle, triangle or plus, each with a black or white marker
dot so that rotation is visible even on the circle) over a static textured background with 0-2 static
distractor shapes. The shape changes steadily over the whole clip (constant velocity, constant growth
rate, constant angular speed), so every 2-second window shows the action. Geometry varies per clip:
fps in {12, 15, 24, 25, 30}, W x H in {160x120, 128x128, 176x144, 120x160}, 2.4-4 s (the lower bound
is above the 2.13 s that 16 frames at stride 4 @30 fps span, so a training window never runs off the
end). Magnitudes are large enough to survive resizing the short side to 128: over 2 s a mover crosses
>= 30% of the frame, a grower grows >= 1.75x in size, a rotator turns >= 120 degrees.

On disk (`make_dataset`), PySlowFast-style lists:
    out_dir/classes.txt            one class name per line; line index = label
    out_dir/train.csv, val.csv     `train/move_left/000000.mp4 0` per line: path relative to the list's
                                   folder, one space, label; no header
    out_dir/train/<class>/NNNNNN.mp4, out_dir/val/<class>/NNNNNN.mp4
    out_dir/synthetic.json         the seed and generator version, so a resumed run cannot mix datasets
Video i of a split has class i % 8 and its own rng from (seed, split, i), so the content depends on
neither the worker count nor the dataset size: growing a dataset keeps its first videos.

Frames are `[T, H, W, 3]` uint8 RGB. Pixel coordinates are (x, y) with y pointing down, so an angle
that increases turns clockwise on screen.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

CLASSES = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink", "rotate_clockwise",
           "rotate_counterclockwise")
# Per class: (kind of change, played backwards). The forward class of a pair is the one whose sampled
# trajectory is used as is: x or y increasing, size increasing, angle increasing (clockwise).
_CLASS_KIND = {
    "move_left": ("move_x", True), "move_right": ("move_x", False),
    "move_up": ("move_y", True), "move_down": ("move_y", False),
    "grow": ("scale", False), "shrink": ("scale", True),
    "rotate_clockwise": ("rotate", False), "rotate_counterclockwise": ("rotate", True),
}
FPS_CHOICES = (12, 15, 24, 25, 30)
SIZE_CHOICES = ((120, 160), (128, 128), (144, 176), (160, 120))  # (H, W)
DURATION_RANGE = (2.4, 4.0)  # seconds
SHAPES = ("square", "circle", "triangle", "plus")
GENERATOR_VERSION = 1  # bump when the same seed would give different videos
SPLITS = ("train", "val")

_EXTENT = 1.15  # farthest point of any shape (and its anti-aliased edge) from its centre, in radii
_MARGIN = 2.0  # pixels kept free between the shape and the frame's edge
_MARKER_COLORS = (np.array([20, 20, 20]), np.array([235, 235, 235]))

# codec name -> (encoder, options for speed, default crf, containers it may go in)
_CODECS = {
    "h264": ("libx264", {"preset": "ultrafast"}, 18, ("mp4", "matroska")),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}, 30, ("webm", "matroska", "mp4")),
    "vp8": ("libvpx", {"deadline": "realtime", "cpu-used": "16"}, 10, ("webm", "matroska")),
}
_CONTAINERS = {".mp4": "mp4", ".webm": "webm", ".mkv": "matroska"}
_CRF_MAX = {"h264": 51, "vp9": 63, "vp8": 63}


# --------------------------------------------------------------------------------------------------
# Writing videos
# --------------------------------------------------------------------------------------------------
def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int | Fraction, codec: str = "h264",
                gop: int | None = None, crf: int | None = None) -> Path:
    """Encode `frames` ([T, H, W, 3] uint8 RGB) into a video file with PyAV; returns the path.

    codec: "h264" (libx264; .mp4 or .mkv), "vp9" (libvpx-vp9; .webm, .mkv or .mp4) or "vp8" (libvpx;
    .webm or .mkv). The container follows the path's suffix. Pixels are stored as yuv420p, the format
    every decoder reads; H.264 then needs even H and W, and an odd size raises ValueError (no silent
    padding: a test that writes a size should read back that size). VP8/VP9 take odd sizes.
    gop: the keyframe interval in frames (short GOPs make seeking fast; None: the encoder's default).
    crf: the quality (lower is better; None: 18 for h264, 30 for vp9, 10 for vp8).
    Encoders run at their fastest settings on one thread, which also makes the output bytes
    independent of the machine's core count. The file is written under a temporary name in the same
    folder and renamed when complete, so a reader never sees half a video; parent folders are created.
    """
    import av  # imported here: PyAV loads FFmpeg's libraries, which only writers need

    path = Path(path)
    if codec not in _CODECS:
        raise ValueError(f"unknown codec {codec!r} for {path}; expected one of {sorted(_CODECS)}")
    encoder, options, default_crf, containers = _CODECS[codec]
    container = _CONTAINERS.get(path.suffix.lower())
    if container not in containers:
        allowed = [s for s, c in _CONTAINERS.items() if c in containers]
        raise ValueError(f"cannot write codec {codec!r} to {path}: its suffix must be one of {allowed}")
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames for {path} must be uint8 [T, H, W, 3] with T >= 1, "
                         f"got {frames.dtype} {list(frames.shape)}")
    T, H, W, _ = frames.shape
    if codec == "h264" and (H % 2 or W % 2):
        raise ValueError(f"h264 in yuv420p needs an even width and height; {path} has {W}x{H} (W x H)")
    rate = Fraction(fps).limit_denominator(1001)  # ints stay exact; a float becomes a nearby fraction
    if rate <= 0:
        raise ValueError(f"fps must be positive for {path}, got {fps}")
    if gop is not None and gop < 1:
        raise ValueError(f"gop must be >= 1 frame for {path}, got {gop}")
    crf = default_crf if crf is None else crf
    if not 0 <= crf <= _CRF_MAX[codec]:
        raise ValueError(f"crf for {codec} must be in [0, {_CRF_MAX[codec]}] for {path}, got {crf}")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")  # same folder: os.replace stays atomic
    try:
        with av.open(str(tmp), "w", format=container) as out:
            stream = out.add_stream(encoder, rate=rate)
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            ctx = stream.codec_context
            ctx.thread_count = 1
            if gop is not None:
                ctx.gop_size = gop
            if codec == "vp9":
                ctx.bit_rate = 0  # with crf: constant quality, no bitrate target
            elif codec == "vp8":
                ctx.bit_rate = 4_000_000  # libvpx's VP8 needs a ceiling next to crf; this one never binds
            stream.options = {**options, "crf": str(crf)}
            for i, frame in enumerate(frames):
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                f.pts, f.time_base = i, 1 / rate
                out.mux(stream.encode(f))
            out.mux(stream.encode())  # flush the encoder's delayed frames
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
    marker_color: np.ndarray  # [3] uint8, the dot that makes rotation visible
    center: np.ndarray  # [T, 2] float (x, y) in pixels
    radius: np.ndarray  # [T] float, in pixels
    angle: np.ndarray  # [T] float radians, increasing = clockwise on screen
    background: np.ndarray  # [H, W, 3] uint8, static: texture and distractors

    @property
    def num_frames(self) -> int:
        return len(self.radius)


def _color_far_from(rng: np.random.Generator, others: list[np.ndarray], min_dist: float) -> np.ndarray:
    """A random RGB colour at least `min_dist` (Euclidean, 0-255 units) from each of `others`."""
    for _ in range(1000):
        c = rng.integers(0, 256, 3)
        if all(np.linalg.norm(c - o) >= min_dist for o in others):
            return c
    raise RuntimeError(f"no colour {min_dist} away from {others}")  # cannot happen for <= 4 colours


def _texture(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """[H, W, 1] float: smooth blotches (a bilinearly upsampled coarse grid) plus mild pixel noise."""
    coarse = rng.uniform(-1.0, 1.0, (5, 5))
    ys, xs = np.linspace(0, 4, H), np.linspace(0, 4, W)
    y0, x0 = np.minimum(ys.astype(int), 3), np.minimum(xs.astype(int), 3)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    c = coarse  # [5, 5]; c[y0][:, x0] is [H, W]
    smooth = ((1 - fy) * (1 - fx) * c[y0][:, x0] + (1 - fy) * fx * c[y0][:, x0 + 1]
              + fy * (1 - fx) * c[y0 + 1][:, x0] + fy * fx * c[y0 + 1][:, x0 + 1])
    return (14.0 * smooth + rng.normal(0.0, 4.0, (H, W)))[..., None]


def plan_clip(cls_index: int, rng: np.random.Generator) -> ClipSpec:
    """Sample one clip of class `cls_index`; deterministic given the rng state.

    Both classes of a pair draw the same numbers in the same order; the backward one then reverses
    the per-frame arrays, which is what makes a pair indistinguishable without temporal order.
    """
    if not 0 <= cls_index < len(CLASSES):
        raise ValueError(f"class index {cls_index} out of range [0, {len(CLASSES)})")
    kind, backward = _CLASS_KIND[CLASSES[cls_index]]
    fps = int(rng.choice(FPS_CHOICES))
    H, W = SIZE_CHOICES[rng.integers(len(SIZE_CHOICES))]
    T = int(round(rng.uniform(*DURATION_RANGE) * fps))
    t = np.arange(T) / fps  # seconds
    span = t[-1]
    short = min(H, W)
    shape = SHAPES[rng.integers(len(SHAPES))]
    angle0 = rng.uniform(0, 2 * math.pi)

    bg = rng.integers(0, 256, 3)
    while True:
        color = _color_far_from(rng, [bg], 160)
        # The marker is black or white, whichever stands out on the shape; it must also stand out
        # from the background, or a small shape's marker would read as a hole.
        marker = max(_MARKER_COLORS, key=lambda m: np.linalg.norm(m - color))
        if np.linalg.norm(marker - bg) >= 100:
            break

    def fit(r_max: float, size: int) -> float:  # a centre coordinate keeping radius r_max inside size
        lo = _EXTENT * r_max + _MARGIN
        return rng.uniform(lo, size - lo)

    if kind in ("move_x", "move_y"):
        axis, L = (0, W) if kind == "move_x" else (1, H)
        r = rng.uniform(0.09, 0.15) * short
        lo = _EXTENT * r + _MARGIN
        room = L - 2 * lo
        # >= 0.15 L/s (32% of the frame in 2.13 s). With r <= 0.15 short there is always room for it:
        # the tightest case, 4 s across the 120 px of a portrait frame, allows 0.155 L/s.
        v = rng.uniform(0.15 * L, max(0.15 * L, min(0.25 * L, room / span)))
        travel = min(v * span, room)
        start = rng.uniform(lo, lo + room - travel)
        center = np.empty((T, 2))
        center[:, axis] = start + travel * t / span
        center[:, 1 - axis] = fit(r, (H, W)[axis])  # the other axis: y for move_x, x for move_y
        radius, angle = np.full(T, r), np.full(T, angle0)
    elif kind == "scale":
        r_lo, r_hi = 0.06 * short, 0.38 * short  # ln(r_hi / r_lo) > 0.45 * 4 s: every growth rate fits
        k = rng.uniform(0.28, 0.45)  # size grows by e^k per second: >= 1.75x in 2 s
        r0 = rng.uniform(r_lo, r_hi * math.exp(-k * span))
        radius = r0 * np.exp(k * t)
        center = np.tile([fit(radius[-1], W), fit(radius[-1], H)], (T, 1))
        angle = np.full(T, angle0)
    else:  # rotate
        r = rng.uniform(0.14, 0.24) * short
        omega = math.radians(rng.uniform(60, 120))  # >= 120 degrees in 2 s, < 16 per frame at 7.5 fps
        center = np.tile([fit(r, W), fit(r, H)], (T, 1))
        radius, angle = np.full(T, r), angle0 + omega * t

    background = np.clip(bg + _texture(rng, H, W), 0, 255)
    for _ in range(rng.integers(0, 3)):  # static distractors: no marker, never the shape's colour
        dc = _color_far_from(rng, [bg, color, marker], 90)
        dr = rng.uniform(0.05, 0.09) * short
        a = _shape_alpha(SHAPES[rng.integers(len(SHAPES))], (fit(dr, W), fit(dr, H)), dr,
                         rng.uniform(0, 2 * math.pi), (0, 0, W, H))[..., None]
        background = background * (1 - a) + dc * a
    background = np.round(background).astype(np.uint8)

    if backward:
        center, radius, angle = center[::-1].copy(), radius[::-1].copy(), angle[::-1].copy()
    return ClipSpec(label=cls_index, fps=fps, shape=shape, color=color.astype(np.uint8),
                    marker_color=marker.astype(np.uint8), center=center, radius=radius, angle=angle,
                    background=background)


# Marker dot per shape: (offset towards the shape's local top, dot radius), in shape radii; each sits
# well inside its shape.
_MARKERS = {"square": (0.45, 0.25), "circle": (0.55, 0.25), "triangle": (0.35, 0.2), "plus": (0.62, 0.22)}


def _shape_alpha(shape: str, center, r: float, angle: float, box) -> np.ndarray:
    """Coverage in [0, 1] of `shape` over the pixels of box (x0, y0, x1, y1), anti-aliased over ~1 pixel.

    Each shape is an (approximate) signed distance d in pixels, negative inside; coverage is 0.5 - d
    clipped, which keeps sub-pixel motion visible instead of jumping a whole pixel at a time.
    """
    x0, y0, x1, y1 = box
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + np.float32(0.5 - center[0])  # [1, w], pixel centres
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + np.float32(0.5 - center[1])  # [h, 1]
    c, s = math.cos(angle), math.sin(angle)
    qx, qy = c * dx + s * dy, -s * dx + c * dy  # into the shape's frame (rotate by -angle)
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
    color, marker = spec.color.astype(np.float32), spec.marker_color.astype(np.float32)
    offset, dot = _MARKERS[spec.shape]
    for i, ((cx, cy), r, a) in enumerate(zip(spec.center, spec.radius, spec.angle)):
        # Only the shape's bounding box changes; the rest of the frame is the background.
        e = _EXTENT * r + 1
        box = (max(int(cx - e), 0), max(int(cy - e), 0), min(int(cx + e) + 2, W), min(int(cy + e) + 2, H))
        alpha = _shape_alpha(spec.shape, (cx, cy), r, a, box)[..., None]
        # local (0, -offset r) in frame coordinates: rotate by the angle
        mc = (cx + offset * r * math.sin(a), cy - offset * r * math.cos(a))
        m_alpha = _shape_alpha("circle", mc, dot * r, 0.0, box)[..., None] * alpha
        x0, y0, x1, y1 = box
        patch = frames[i, y0:y1, x0:x1].astype(np.float32)
        patch += (color - patch) * alpha
        patch += (marker - patch) * m_alpha
        frames[i, y0:y1, x0:x1] = np.rint(patch)
    return frames


def render_clip(cls_index: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One clip of class `cls_index`: ([T, H, W, 3] uint8 frames, fps); deterministic given the rng state."""
    spec = plan_clip(cls_index, rng)
    return draw_clip(spec), spec.fps


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------
def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The rng of video `index` of `split`: a function of (seed, split, index) alone."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), index)))


def video_relpath(split: str, index: int) -> str:
    """Path of a video relative to the dataset folder; its class is index % len(CLASSES)."""
    return f"{split}/{CLASSES[index % len(CLASSES)]}/{index:06d}.mp4"


def _write_one(job: tuple[str, int, str, int]) -> None:
    """Render and encode one video (runs in worker processes)."""
    out_dir, seed, split, index = job
    frames, fps = render_clip(index % len(CLASSES), video_rng(seed, split, index))
    # A keyframe every second: cheap at this size, and random-window decoding seeks to it.
    write_video(Path(out_dir) / video_relpath(split, index), frames, fps, codec="h264", gop=fps)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def make_dataset(out_dir: str | os.PathLike, num_train: int, num_val: int, seed: int = 0,
                 workers: int | None = None, progress: bool = True) -> dict:
    """Write the synthetic dataset (layout in the module docstring) and return a summary.

    Videos that already exist are kept (writes are atomic, so an existing file is complete), which
    makes an interrupted run resumable; the list files are written last. A folder made with another
    seed or generator version raises ValueError rather than mixing two datasets.
    workers: processes for rendering and encoding (default: the CPUs this process may use; 1 runs
    in this process). progress: show a tqdm bar.
    Returns {"out_dir", "train", "val", "written", "skipped", "bytes", "seconds", "workers"}.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    for name, n in (("num_train", num_train), ("num_val", num_val), ("seed", seed)):
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"generator": "hiera_video.data.synthetic", "version": GENERATOR_VERSION, "seed": int(seed)}
    meta_path = out / "synthetic.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old != meta:
            raise ValueError(f"{out} holds a synthetic dataset made with {old} ({meta_path}); this call asks "
                             f"for {meta}: use another folder, or the same seed")
    else:
        _atomic_write_text(meta_path, json.dumps(meta) + "\n")

    jobs = [(str(out), int(seed), split, i) for split, n in zip(SPLITS, (num_train, num_val)) for i in range(n)]
    todo = [j for j in jobs if not (out / video_relpath(j[2], j[3])).exists()]
    workers = _available_cpus() if workers is None else max(int(workers), 1)
    workers = min(workers, len(todo)) or 1
    with tqdm(total=len(todo), desc=f"synthetic videos -> {out}", unit="video", disable=not progress) as bar:
        if workers == 1:
            for job in todo:
                _write_one(job)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(_write_one, todo, chunksize=4):
                    bar.update()

    _atomic_write_text(out / "classes.txt", "".join(f"{c}\n" for c in CLASSES))
    for split, n in zip(SPLITS, (num_train, num_val)):
        lines = [f"{video_relpath(split, i)} {i % len(CLASSES)}\n" for i in range(n)]
        _atomic_write_text(out / f"{split}.csv", "".join(lines))
    size = sum((out / video_relpath(j[2], j[3])).stat().st_size for j in jobs)
    return {"out_dir": str(out), "train": num_train, "val": num_val, "written": len(todo),
            "skipped": len(jobs) - len(todo), "bytes": size, "seconds": round(time.perf_counter() - start, 2),
            "workers": workers}
