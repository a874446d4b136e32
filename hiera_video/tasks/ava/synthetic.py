"""Synthetic AVA v2.2: a small, generated action-detection dataset in the exact official layout.

It lets the whole AVA pipeline (readers, RoI head, frame-mAP with exclusions and proposals) train and
score on a CPU in minutes, with files that official readers accept unchanged. Each video shows 1-3
"people" who stand, walk, jump or wave, and watch another person they face; the movements are visible
only over time. `make_ava_dataset` writes frames, annotations, exclusions, person proposals (with false
positives) and frame lists; video `index` depends only on (seed, split, index).
Details: docs/synthetic.md (hiera_video/tasks/ava/synthetic.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ...fileio import atomic_write
from ...synthetic.video import run_jobs

# Imported first, at module level: PyAV must load its FFmpeg libraries before decord does (see
# hiera_video/data/decode.py).


FPS = 30
START_SECOND = 900  # AVA's frames start at the 15-minute mark: file 000001 is t = 900.0 s
GENERATOR_VERSION = 1  # bump when the same arguments would give different files
SPLITS = ("train", "val")
ACTIONS = {7: "jump/leap", 12: "stand", 14: "walk", 69: "hand wave", 80: "watch (a person)"}  # AVA v2.2 ids
MOTIONS = ("stand", "walk", "jump", "wave")
MOTION_LABELS = {"stand": (12,), "walk": (14,), "jump": (7,), "wave": (12, 69)}
WATCH = 80
MIN_SECONDS = 4  # the first keyframe is 902 and the last one 900 + seconds - 2
MAX_VIDEOS = 1000  # per split: the index is 3 digits of the 11-character id
JPEG_QSCALE = 3  # MJPEG quantiser (2-31, lower is better): ~4-8 KB per 160x120 frame

_MARGIN = 2.0  # pixels kept free between a person and the frame's edge
_TEXTURE_SIZE = 24  # texels across a body
_JUMP_PERIOD = (0.6, 0.9)  # seconds per bounce
_WAVE_PERIOD = (0.65, 0.95)  # seconds per up-and-down of the arm
_ARM_RANGE = (0.1, 0.6)  # where the arm's top sits, in body heights below the body's top
_SEGMENT = (3.0, 6.0)  # an action lasts 3-6 s, rounded to end at a half second


# --------------------------------------------------------------------------------------------------
# Names and times
# --------------------------------------------------------------------------------------------------
def video_id(seed: int, split: str, index: int) -> str:
    """The 11-character id of video `index` of `split`, e.g. 'synAbC-T000'."""
    if not 0 <= index < MAX_VIDEOS:
        raise ValueError(f"video index must be in [0, {MAX_VIDEOS}), got {index}")
    tag = base64.urlsafe_b64encode(hashlib.sha256(f"synthetic_ava/{seed}".encode()).digest())[:4].decode()
    return f"syn{tag}{'TV'[SPLITS.index(split)]}{index:03d}"


def frame_relpath(vid: str, frame: int) -> str:
    """Path of 0-based frame `frame` relative to the frames folder (AVA numbers files from 1)."""
    return f"{vid}/{vid}_{frame + 1:06d}.jpg"


def keyframe_seconds(seconds: int) -> list[int]:
    """AVA keyframe timestamps of a video lasting `seconds` (902 .. 900 + seconds - 2)."""
    return list(range(START_SECOND + 2, START_SECOND + seconds - 1))


def keyframe_index(sec: int) -> int:
    """0-based frame index of keyframe `sec`, as PySlowFast computes it."""
    return (sec - START_SECOND) * FPS


def excluded_keyframes(split: str, index: int, seconds: int) -> list[int]:
    """Keyframes left unannotated and listed as excluded: the last one of val videos 0 and 1."""
    keys = keyframe_seconds(seconds)
    return [keys[-1]] if split == "val" and index < 2 and len(keys) >= 2 else []


def video_rng(seed: int, split: str, index: int, stream: int = 0) -> np.random.Generator:
    """The rng of video `index` of `split` (stream 0: the video, 1: its proposals)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), index, stream)))


# --------------------------------------------------------------------------------------------------
# Planning: where every person is, and what it does, in every frame
# --------------------------------------------------------------------------------------------------
@dataclass
class Person:
    """One person of a video; per-frame arrays have length T. Rectangles are (x0, y0, x1, y1) floats
    in pixels, y down; a rectangle covers pixel columns x0..x1 exactly (anti-aliased at its edges)."""

    person_id: int
    color: np.ndarray  # [3] uint8, dark
    color2: np.ndarray  # [3] uint8, the second dark colour of the body's texture
    texture: np.ndarray  # [K, K] float32 in [0, 1], in the body's own frame: it moves with the body
    body: np.ndarray  # [T, 4]
    arm: np.ndarray  # [T, 4]
    eye: np.ndarray  # [T, 4]
    motion: np.ndarray  # [T] int, index into MOTIONS
    facing: np.ndarray  # [T] int, -1 left or +1 right
    ground: float  # the body's bottom when not jumping: people lower in the frame are drawn later

    @property
    def box(self) -> np.ndarray:
        """[T, 4] the person's box: body and arm together (the eye lies inside the body)."""
        return np.concatenate([np.minimum(self.body[:, :2], self.arm[:, :2]),
                               np.maximum(self.body[:, 2:], self.arm[:, 2:])], axis=1)


@dataclass
class VideoPlan:
    video_id: str
    split: str
    index: int
    seconds: int
    background: np.ndarray  # [H, W, 3] uint8, static
    persons: list[Person]

    @property
    def height(self) -> int:
        return self.background.shape[0]

    @property
    def width(self) -> int:
        return self.background.shape[1]

    @property
    def num_frames(self) -> int:
        return self.seconds * FPS

    def actions(self, frame: int) -> list[tuple[int, np.ndarray, tuple[int, ...]]]:
        """(person_id, box normalised to [0, 1], sorted AVA action ids) of each person at `frame`."""
        scale = np.array([self.width, self.height] * 2, np.float64)
        out = []
        for p in self.persons:
            labels = set(MOTION_LABELS[MOTIONS[p.motion[frame]]])
            cx = 0.5 * (p.box[frame, 0] + p.box[frame, 2])
            others = [0.5 * (q.box[frame, 0] + q.box[frame, 2]) for q in self.persons if q is not p]
            if any((ox - cx) * p.facing[frame] > 0 for ox in others):  # someone on the side it faces
                labels.add(WATCH)
            out.append((p.person_id, np.clip(p.box[frame] / scale, 0.0, 1.0), tuple(sorted(labels))))
        return out


def _background(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """[H, W, 3] uint8 light ground (>= 130) with colour blotches at 16, 6 and 3 pixels.

    Fine texture is what makes motion visible to a small transformer: a moving person covers and
    uncovers it in every patch it crosses (measured on the classification set, hiera_video/data/
    synthetic.py). Persons stay below 80 + texture, so brightness alone separates figure and ground."""
    img = np.zeros((H, W, 3), np.float32) + rng.integers(170, 256, 3)
    for cell, amplitude in ((16, 20.0), (6, 12.0), (3, 8.0)):
        coarse = rng.uniform(-1.0, 1.0, (H // cell + 1, W // cell + 1, 3)).astype(np.float32)
        img += amplitude * np.kron(coarse, np.ones((cell, cell, 1), np.float32))[:H, :W]
    return np.round(np.clip(img, 0, 255)).astype(np.uint8)


def _body_texture(rng: np.random.Generator) -> np.ndarray:
    K = _TEXTURE_SIZE
    tex = np.zeros((K, K), np.float32)
    for cell, weight in ((8, 0.5), (3, 0.3), (1, 0.2)):
        coarse = rng.random((K // cell + 1, K // cell + 1)).astype(np.float32)
        tex += weight * np.kron(coarse, np.ones((cell, cell), np.float32))[:K, :K]
    return (tex - tex.min()) / (tex.max() - tex.min() + 1e-6)


def _overlap(a, b) -> float:
    """Intersection of boxes a and b over the smaller one's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _plan_person(rng: np.random.Generator, person_id: int, T: int, W: int, H: int,
                 others: list[np.ndarray]) -> Person:
    """Sample one person and simulate it frame by frame; deterministic given the rng state.
    others: the first-frame boxes of the people already placed."""
    w = rng.uniform(0.11, 0.19) * W  # body; with the arm the box is 0.15-0.27 of the frame wide
    h = rng.uniform(0.3, 0.6) * H
    arm_len, arm_th = 0.4 * w, max(2.0, 0.035 * H)
    arm_side = int(rng.choice([-1, 1]))
    box_w = w + arm_len
    jump_amp = rng.uniform(0.12, 0.2) * H  # one per person, so that any of its jumps fits the frame
    xlo, xhi = _MARGIN, W - _MARGIN - box_w  # range of the box's left edge
    # Start apart from the people already placed (walkers may cross later, as people do): heavily
    # overlapping starts made some people mostly hidden for the whole video.
    for _ in range(30):
        ground = rng.uniform(_MARGIN + jump_amp + h, H - _MARGIN)
        x = rng.uniform(xlo, xhi)
        if all(_overlap((x, ground - h, x + box_w, ground), b) < 0.15 for b in others):
            break
    arm = rng.uniform(*_ARM_RANGE)  # the arm keeps its height, except while waving
    color = rng.integers(0, 80, 3)
    color2 = rng.integers(0, 80, 3)
    jit_f, jit_ph = rng.uniform(0.8, 3.0, 2), rng.uniform(0, 2 * math.pi, 2)

    # Segments of 3-6 s that end at a half second, so that no action switches at a keyframe.
    ends = []
    while not ends or ends[-1] < T / FPS:
        start = ends[-1] if ends else 0.0
        ends.append(math.floor(start + rng.uniform(*_SEGMENT)) + 0.5)
    box, arm_top = np.empty((T, 4)), np.empty(T)
    motion, facing = np.empty(T, np.int64), np.empty(T, np.int64)
    prev = None
    for k, end in enumerate(ends):
        f0, f1 = round((ends[k - 1] if k else 0.0) * FPS), min(round(end * FPS), T)
        m = MOTIONS[rng.choice([i for i in range(len(MOTIONS)) if MOTIONS[i] != prev])]
        prev = m
        face = int(rng.choice([-1, 1]))
        speed = rng.uniform(0.15, 0.3) * W
        # A whole number of bounces, so that a jumper lands when its segment ends.
        n_bounces = max(1, round((end - f0 / FPS) / rng.uniform(*_JUMP_PERIOD)))
        bounce = (end - f0 / FPS) / n_bounces
        wave_p = rng.uniform(*_WAVE_PERIOD)
        mid, amp = sum(_ARM_RANGE) / 2, (_ARM_RANGE[1] - _ARM_RANGE[0]) / 2
        wave_ph = math.asin(np.clip((arm - mid) / amp, -1, 1))  # the wave starts where the arm is
        for f in range(f0, f1):
            tau = (f - f0) / FPS
            dx = dy = 0.0
            if m == "walk":
                x += face * speed / FPS
                if x > xhi:  # turn round at the edge
                    x, face = 2 * xhi - x, -1
                elif x < xlo:
                    x, face = 2 * xlo - x, 1
            elif m in ("stand", "wave"):  # a still person still jitters a little (< 0.5 px)
                t = f / FPS
                dx = 0.3 * math.sin(2 * math.pi * jit_f[0] * t + jit_ph[0])
                dy = 0.2 * math.sin(2 * math.pi * jit_f[1] * t + jit_ph[1])
            if m == "jump":
                dy = -jump_amp * abs(math.sin(math.pi * tau / bounce))
            if m == "wave":
                arm = mid + amp * math.sin(2 * math.pi * tau / wave_p + wave_ph)  # stays there after
            box[f] = (x + dx, ground + dy - h, x + dx + box_w, ground + dy)
            arm_top[f], motion[f], facing[f] = arm, MOTIONS.index(m), face

    body = box.copy()
    if arm_side < 0:
        body[:, 0] += arm_len
    else:
        body[:, 2] -= arm_len
    arm_x0 = body[:, 0] - arm_len if arm_side < 0 else body[:, 2]
    arm_y0 = body[:, 1] + arm_top * h
    arms = np.stack([arm_x0, arm_y0, arm_x0 + arm_len, arm_y0 + arm_th], 1)
    e = max(1.5, 0.1 * w)
    ex = 0.5 * (body[:, 0] + body[:, 2]) + facing * 0.22 * w - e / 2
    ey = body[:, 1] + 0.1 * h
    eyes = np.stack([ex, ey, ex + e, ey + e], 1)
    return Person(person_id=person_id, color=color.astype(np.uint8), color2=color2.astype(np.uint8),
                  texture=_body_texture(rng), body=body, arm=arms, eye=eyes, motion=motion, facing=facing,
                  ground=ground)


def plan_video(seed: int, split: str, index: int, seconds: int = 10, width: int = 160,
               height: int = 120) -> VideoPlan:
    """Everything about video `index` of `split`, without drawing it (cheap: annotations come from here)."""
    if seconds < MIN_SECONDS:
        raise ValueError(f"seconds must be >= {MIN_SECONDS} (keyframes run from 902 to 900 + seconds - 2), "
                         f"got {seconds}")
    if width < 32 or height < 32:
        raise ValueError(f"frames must be at least 32x32, got {width}x{height} (W x H)")
    rng = video_rng(seed, split, index)
    T = seconds * FPS
    background = _background(rng, height, width)
    n = int(rng.choice([1, 2, 3], p=[0.2, 0.4, 0.4]))  # most videos have someone to watch
    persons: list[Person] = []
    for i in range(n):
        persons.append(_plan_person(rng, i, T, width, height, [p.box[0] for p in persons]))
    return VideoPlan(video_id=video_id(seed, split, index), split=split, index=index, seconds=seconds,
                     background=background, persons=persons)


# --------------------------------------------------------------------------------------------------
# Drawing and JPEG files
# --------------------------------------------------------------------------------------------------
def _coverage(lo: float, hi: float, n0: int, n1: int) -> np.ndarray:
    """How much of each pixel n0..n1-1 the interval [lo, hi) covers: sub-pixel motion stays visible."""
    p = np.arange(n0, n1, dtype=np.float32)
    return np.clip(np.minimum(p + 1, hi) - np.maximum(p, lo), 0.0, 1.0)


def _paint(img: np.ndarray, rect, color: np.ndarray, texture: np.ndarray | None = None,
           color2: np.ndarray | None = None) -> None:
    H, W, _ = img.shape
    x0, y0, x1, y1 = (float(v) for v in rect)
    ix0, iy0, ix1, iy1 = max(int(x0), 0), max(int(y0), 0), min(math.ceil(x1), W), min(math.ceil(y1), H)
    if ix1 <= ix0 or iy1 <= iy0:
        return
    alpha = (_coverage(y0, y1, iy0, iy1)[:, None] * _coverage(x0, x1, ix0, ix1)[None, :])[..., None]
    fill = color.astype(np.float32)
    if texture is not None:  # looked up in the body's own frame, so it moves with the body
        K = texture.shape[0]
        u = np.clip(((np.arange(ix0, ix1) + 0.5 - x0) / (x1 - x0) * K).astype(np.int64), 0, K - 1)
        v = np.clip(((np.arange(iy0, iy1) + 0.5 - y0) / (y1 - y0) * K).astype(np.int64), 0, K - 1)
        fill = fill + (color2.astype(np.float32) - fill) * texture[v[:, None], u[None, :]][..., None]
    patch = img[iy0:iy1, ix0:ix1]
    patch += (fill - patch) * alpha


_EYE = np.array([235, 235, 235], np.uint8)


def draw_frame(plan: VideoPlan, frame: int) -> np.ndarray:
    """[H, W, 3] uint8 RGB of 0-based frame `frame`."""
    img = plan.background.astype(np.float32)
    for p in sorted(plan.persons, key=lambda p: p.ground):  # lower in the frame = nearer = on top
        _paint(img, p.arm[frame], p.color)
        _paint(img, p.body[frame], p.color, p.texture, p.color2)
        _paint(img, p.eye[frame], _EYE)
    return np.rint(img).astype(np.uint8)


def encode_jpeg(rgb: np.ndarray, qscale: int = JPEG_QSCALE) -> bytes:
    """A complete JPEG file of `rgb` ([H, W, 3] uint8), encoded by FFmpeg's MJPEG encoder.

    A fresh encoder per image: a reused one drifts its quality from frame to frame (its rate control
    keeps state; measured), and a fresh one costs ~0.4 ms."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "yuvj420p"
    codec.options = {"qscale": str(qscale)}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))


def read_jpeg(path: str | os.PathLike) -> np.ndarray:
    """[H, W, 3] uint8 RGB of a JPEG file."""
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def _frames_done(frame_dir: Path, plan_id: str, num_frames: int) -> bool:
    try:
        names = set(os.listdir(frame_dir / plan_id))
    except FileNotFoundError:
        return False
    return all(frame_relpath(plan_id, i).rsplit("/", 1)[1] in names for i in range(num_frames))


def _write_video(job: tuple) -> int:
    """Draw and write the missing frames of one video (runs in worker processes); returns how many."""
    frame_dir, seed, split, index, seconds, width, height = job
    plan = plan_video(seed, split, index, seconds, width, height)
    d = Path(frame_dir) / plan.video_id
    d.mkdir(parents=True, exist_ok=True)
    names = set(os.listdir(d))
    for name in names:  # left by an interrupted run: never complete files
        if ".tmp-" in name:
            (d / name).unlink(missing_ok=True)
    written = 0
    for f in range(plan.num_frames):
        path = Path(frame_dir) / frame_relpath(plan.video_id, f)
        if path.name in names:  # frames are drawn independently, so a partial video resumes exactly
            continue
        atomic_write(path, encode_jpeg(draw_frame(plan, f)))
        written += 1
    return written


# --------------------------------------------------------------------------------------------------
# Annotation files
# --------------------------------------------------------------------------------------------------
def _fmt_box(b) -> str:
    return ",".join(f"{v:.3f}" for v in b)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _annotation_rows(plan: VideoPlan, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(GT rows, excluded rows, proposal rows) of one video, each a CSV line without newline."""
    gt, excluded, proposals = [], [], []
    rng = video_rng(seed, plan.split, plan.index, stream=1)
    skip = set(excluded_keyframes(plan.split, plan.index, plan.seconds))
    for sec in keyframe_seconds(plan.seconds):
        people = plan.actions(keyframe_index(sec))
        if sec in skip:
            excluded.append(f"{plan.video_id},{sec:04d}")
        else:
            gt += [f"{plan.video_id},{sec:04d},{_fmt_box(box)},{a},{pid}"  # one row per box and action
                   for pid, box, acts in people for a in acts]
        boxes = []
        for _, box, _ in people:  # a good detector: every person, a little off, scored high
            size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
            jit = np.clip(rng.normal(0.0, 0.02, 4), -0.04, 0.04) * size
            boxes.append((np.clip(box + jit, 0.0, 1.0), rng.uniform(0.85, 0.99)))
        for _ in range(int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2]))):  # and some clutter, scored low
            for _try in range(20):
                bw, bh = rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.6)
                x0, y0 = rng.uniform(0, 1 - bw), rng.uniform(0, 1 - bh)
                fp = np.array([x0, y0, x0 + bw, y0 + bh])
                if all(_iou(fp, b) < 0.3 for _, b, _ in people):
                    boxes.append((fp, rng.uniform(0.1, 0.7)))
                    break
        for box, score in sorted(boxes, key=lambda bs: -bs[1]):
            proposals.append(f"{plan.video_id},{sec:04d},{_fmt_box(box)},,{score:.6f}")
    return gt, excluded, proposals


def _pbtxt() -> str:
    return "".join(f'item {{\n  name: "{name}"\n  id: {i}\n}}\n' for i, name in sorted(ACTIONS.items()))


def _lines(rows: list[str]) -> str:
    return "".join(f"{r}\n" for r in rows)


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------

def make_ava_dataset(out_dir: str | os.PathLike, num_train: int = 8, num_val: int = 4, seconds: int = 10,
                 seed: int = 0, width: int = 160, height: int = 120, workers: int | None = None,
                 progress: bool = True) -> dict:
    """Write the synthetic AVA dataset (layout in docs/synthetic.md) and return a summary.

    Videos whose frames all exist are skipped and a partly written one resumes at its missing frames
    (each JPEG is written atomically, so an existing file is complete); the annotation files, frame
    lists and synthetic_ava.json are rewritten every time, last. A folder made with another seed,
    generator version, duration or frame size raises ValueError rather than mixing two datasets; more
    or fewer videos with the same settings are fine (video i is the same either way).
    workers: processes drawing and encoding videos (default: the CPUs this process may use; 1 runs in
    this process). progress: show a tqdm bar.
    Returns {"out_dir", "train", "val", "written", "skipped", "frames", "keyframes", "boxes",
    "bytes", "seconds", "workers"}.
    """
    start = time.perf_counter()
    for name, n in (("num_train", num_train), ("num_val", num_val), ("seed", seed)):
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    for name, n in (("num_train", num_train), ("num_val", num_val)):
        if n > MAX_VIDEOS:
            raise ValueError(f"{name} must be at most {MAX_VIDEOS}, got {n}")
    counts = {"train": int(num_train), "val": int(num_val)}
    plans = {s: [plan_video(seed, s, i, seconds, width, height) for i in range(counts[s])] for s in SPLITS}

    out = Path(out_dir)
    frame_dir, ann_dir, list_dir = out / "frames", out / "annotations", out / "frame_lists"
    for d in (frame_dir, ann_dir, list_dir):
        d.mkdir(parents=True, exist_ok=True)
    # "generator" keeps the module's old name, which every existing folder records.
    config = {"generator": "hiera_video.data.synthetic_ava", "version": GENERATOR_VERSION, "seed": int(seed),
              "fps": FPS, "seconds": int(seconds), "width": int(width), "height": int(height)}
    meta_path = out / "synthetic_ava.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        old_config = {k: old.get(k) for k in config}
        if old_config != config:
            raise ValueError(f"{out} holds a synthetic AVA dataset made with {old_config} ({meta_path}); this "
                             f"call asks for {config}: use another folder, or the same settings")
    else:  # written first, so that an interrupted run cannot be resumed with other settings
        atomic_write(meta_path, json.dumps(config) + "\n")

    jobs = [(str(frame_dir), int(seed), s, p.index, int(seconds), int(width), int(height))
            for s in SPLITS for p in plans[s]]
    todo = [j for j in jobs if not _frames_done(frame_dir, video_id(seed, j[2], j[3]), seconds * FPS)]
    workers = run_jobs(_write_video, todo, workers, f"synthetic AVA videos -> {out}", progress)

    keyframes, boxes = {}, {}
    for s in SPLITS:
        gt, excluded, proposals = [], [], []
        for p in plans[s]:
            g, e, r = _annotation_rows(p, seed)
            gt.extend(g), excluded.extend(e), proposals.extend(r)
        atomic_write(ann_dir / f"ava_{s}_v2.2.csv", _lines(gt))
        atomic_write(ann_dir / f"ava_{s}_excluded_timestamps_v2.2.csv", _lines(excluded))
        atomic_write(ann_dir / f"person_proposals_{s}.csv", _lines(proposals))
        frame_list = ["original_vido_id video_idx frame_id path labels"]  # sic: PySlowFast's header
        frame_list += [f'{p.video_id} {i} {f} {frame_relpath(p.video_id, f)} ""'
                       for i, p in enumerate(plans[s]) for f in range(p.num_frames)]
        atomic_write(list_dir / f"{s}.csv", _lines(frame_list))
        keyframes[s] = len(plans[s]) * len(keyframe_seconds(seconds)) - len(excluded)
        boxes[s] = len({tuple(r.split(",")[:6]) for r in gt})  # distinct (keyframe, box) pairs
    atomic_write(ann_dir / "ava_action_list_v2.2_for_activitynet_2019.pbtxt", _pbtxt())

    meta = {**config, "actions": {str(i): n for i, n in sorted(ACTIONS.items())},
            "videos": {s: [p.video_id for p in plans[s]] for s in SPLITS},
            "keyframes": keyframe_seconds(seconds),
            "excluded": {s: [[p.video_id, k] for p in plans[s] for k in excluded_keyframes(s, p.index, seconds)]
                         for s in SPLITS},
            "annotated_keyframes": keyframes, "boxes": boxes}
    atomic_write(meta_path, json.dumps(meta, indent=1) + "\n")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"out_dir": str(out), "train": counts["train"], "val": counts["val"], "written": len(todo),
            "skipped": len(jobs) - len(todo), "frames": len(jobs) * seconds * FPS, "keyframes": keyframes,
            "boxes": boxes, "bytes": size, "seconds": round(time.perf_counter() - start, 2), "workers": workers}
