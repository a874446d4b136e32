"""AVA v2.2 action detection data: clips centred on annotated keyframes, with person boxes that follow
every resize, crop and flip of the clip.

Frames come from the official extraction (30 fps JPEGs from 900 s) or the videos of the 15-30 min cut;
the keyframe of second `s` is frame `(s - 900) * 30`. Items carry boxes normalised in the transformed
clip and in the original frame; training items have 80-way multi-hot targets, evaluation items the
person proposals above a score threshold.
Details: docs/ava.md (hiera_video/tasks/ava/dataset.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import Dataset

from ...data import transforms
from ...data.decode import DecodeError, open_video
from ...data.guard import TimeLimit
from .io import Box, Key, frame_path, keyframe_index

NUM_ACTIONS = 80  # AVA action ids 1..80; 60 of them are evaluated


# ------------------------------------------------------------------------------------------------
# Frames
# ------------------------------------------------------------------------------------------------
def clip_frame_indices(keyframe: int, num_frames: int, sampling_rate: int, total: int) -> np.ndarray:
    """`num_frames` indices `sampling_rate` apart centred on `keyframe` (the keyframe is sample
    num_frames // 2), clamped to the video's [0, total - 1]."""
    offsets = (np.arange(num_frames) - num_frames // 2) * sampling_rate
    return np.clip(keyframe + offsets, 0, total - 1)


def decode_jpeg(path: str | os.PathLike) -> np.ndarray:
    """One JPEG as uint8 [H, W, 3] RGB (PyAV: no image library needed)."""
    try:
        with av.open(os.fspath(path)) as container:
            return next(container.decode(video=0)).to_ndarray(format="rgb24")
    except (av.FFmpegError, StopIteration, OSError) as e:
        raise DecodeError(os.fspath(path), "pyav", f"cannot read frame ({e})") from None


class FrameSource:
    """Frames of AVA videos, from extracted JPEGs (`frames_root`) or from the cut videos
    (`video_root`). `get(video_id, indices)` -> uint8 [T, H, W, 3], indices at 30 fps."""

    def __init__(self, frames_root: str | None = None, video_root: str | None = None, fps: int = 30,
                 backend: str = "auto"):
        if (frames_root is None) == (video_root is None):
            raise ValueError("give exactly one of ava.frames_root (extracted frames) and ava.video_root (videos)")
        self.frames_root, self.video_root, self.fps, self.backend = frames_root, video_root, fps, backend
        self._counts: dict[str, int] = {}

    def num_frames(self, video_id: str) -> int:
        """Frames of a video at `fps` (extracted: the files; videos: duration x fps)."""
        if video_id not in self._counts:
            if self.frames_root is not None:
                folder = Path(self.frames_root) / video_id
                if not folder.is_dir():
                    raise DecodeError(str(folder), "frames", "no frame folder for this video")
                self._counts[video_id] = sum(1 for n in os.listdir(folder) if n.endswith(".jpg"))
            else:
                with open_video(self._video(video_id), self.backend) as v:
                    self._counts[video_id] = int(v.num_frames / v.fps * self.fps)
        return self._counts[video_id]

    def _video(self, video_id: str) -> str:
        for ext in (".mp4", ".mkv", ".webm", ".avi"):
            path = Path(self.video_root) / f"{video_id}{ext}"
            if path.exists():
                return str(path)
        raise DecodeError(str(Path(self.video_root) / video_id), "auto", "no video file (.mp4/.mkv/.webm/.avi)")

    def get(self, video_id: str, indices: np.ndarray) -> np.ndarray:
        if self.frames_root is not None:
            unique, inverse = np.unique(indices, return_inverse=True)
            frames = [decode_jpeg(frame_path(self.frames_root, video_id, int(i))) for i in unique]
            return np.stack(frames)[inverse]
        with open_video(self._video(video_id), self.backend) as v:
            # indices at self.fps -> the video's own frame rate (frame-accurate decode)
            native = np.clip(np.round(indices / self.fps * v.fps).astype(np.int64), 0, v.num_frames - 1)
            return v.get_frames(native)


# ------------------------------------------------------------------------------------------------
# Boxes through transforms (pure functions on [K, 4] float tensors, x1 y1 x2 y2)
# ------------------------------------------------------------------------------------------------
def boxes_to_pixels(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    return boxes * boxes.new_tensor([width, height, width, height])


def boxes_to_unit(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    return boxes / boxes.new_tensor([width, height, width, height])


def crop_boxes(boxes: torch.Tensor, left: int, top: int, width: int, height: int) -> torch.Tensor:
    """Pixel boxes into a crop's coordinates, clipped to it (a box may end up empty)."""
    shifted = boxes - boxes.new_tensor([left, top, left, top])
    return torch.stack([shifted[:, 0].clamp(0, width), shifted[:, 1].clamp(0, height),
                        shifted[:, 2].clamp(0, width), shifted[:, 3].clamp(0, height)], dim=1)


def flip_boxes(boxes: torch.Tensor, width: float) -> torch.Tensor:
    """Horizontal flip of pixel (or, with width 1, normalised) boxes."""
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every pair: [N, 4] x [M, 4] -> [N, M]."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp(min=1e-12)


def transform_clip_and_boxes(clip: torch.Tensor, boxes: torch.Tensor, crop_size: int, train: bool,
                             jitter: Sequence[float] = (1.0, 1.25), hflip: bool = True,
                             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 clip [C, T, H, W] and normalised boxes [K, 4] -> clip [C, T, crop, crop] and the boxes
    normalised to it. Training: short side resized to crop x U(jitter), random crop, random flip.
    Evaluation: short side resized to crop, centre crop (the paper's centre-crop testing)."""
    H, W = clip.shape[-2:]
    short = crop_size
    if train:
        lo, hi = jitter
        short = round(crop_size * (lo + (hi - lo) * float(torch.rand((), generator=generator))))
    scale = short / min(H, W)
    h, w = max(crop_size, round(H * scale)), max(crop_size, round(W * scale))
    clip = transforms.resize(clip, (h, w))
    px = boxes_to_pixels(boxes, w, h)  # resizing scales normalised boxes to the new size exactly
    if train:
        top = int(torch.randint(h - crop_size + 1, (), generator=generator))
        left = int(torch.randint(w - crop_size + 1, (), generator=generator))
    else:
        top, left = (h - crop_size + 1) // 2, (w - crop_size + 1) // 2
    clip = transforms.crop(clip, top, left, crop_size, crop_size)
    px = crop_boxes(px, left, top, crop_size, crop_size)
    if train and hflip and float(torch.rand((), generator=generator)) < 0.5:
        clip = transforms.hflip(clip)
        px = flip_boxes(px, crop_size)
    return clip, boxes_to_unit(px, crop_size, crop_size)


# ------------------------------------------------------------------------------------------------
# Dataset
# ------------------------------------------------------------------------------------------------
@dataclass
class Keyframe:
    key: Key
    boxes: list[Box]  # normalised, original frame
    actions: list[list[int]]  # per box; empty for proposals that match no person (background)


class KeyframeTable(Sequence[Keyframe]):
    """Keyframes in flat arrays (video index and second, box and action offsets, boxes, actions), read
    like a list of `Keyframe`: as with `data.lists.EntryList`, forked DataLoader workers then share the
    table instead of copying the pages of ~200k Python objects as they touch them."""

    def __init__(self, keyframes: Iterable[Keyframe] = ()):
        videos: dict[str, int] = {}
        video, sec, box_end, boxes, action_end, actions = [], [], [0], [], [0], []
        for kf in keyframes:
            video.append(videos.setdefault(kf.key[0], len(videos)))
            sec.append(kf.key[1])
            boxes += [list(b) for b in kf.boxes]
            box_end.append(len(boxes))
            for i in range(len(kf.boxes)):
                actions += kf.actions[i] if i < len(kf.actions) else []
                action_end.append(len(actions))
        self.videos = list(videos)  # one string per video (hundreds), not per keyframe
        self.video, self.sec = np.asarray(video, np.int64), np.asarray(sec, np.int64)
        self.box_end = np.asarray(box_end, np.int64)
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)  # float64: boxes come back as they were read
        self.action_end, self.actions = np.asarray(action_end, np.int64), np.asarray(actions, np.int64)

    def __len__(self) -> int:
        return len(self.sec)

    def __getitem__(self, index: int) -> Keyframe:
        if not -len(self) <= index < len(self):
            raise IndexError(f"keyframe {index} of {len(self)}")
        index %= len(self)
        b0, b1 = self.box_end[index], self.box_end[index + 1]
        boxes = [tuple(float(v) for v in box) for box in self.boxes[b0:b1]]
        # One list per box (empty: no action, as for evaluation keyframes, whose boxes carry none)
        actions = [self.actions[self.action_end[i]:self.action_end[i + 1]].tolist() for i in range(b0, b1)]
        return Keyframe((self.videos[self.video[index]], int(self.sec[index])), boxes, actions)


def training_keyframes(annotations: dict[Key, list[tuple[Box, list[int]]]], excluded: set[Key] = frozenset(),
                       proposals: dict[Key, list[tuple[Box, float]]] | None = None,
                       iou: float = 0.5) -> list[Keyframe]:
    """Ground-truth people per keyframe, plus (optionally) proposals, each labelled with the actions of
    the person it overlaps most (IoU >= `iou`), else none."""
    out = []
    for key, people in annotations.items():
        if key in excluded or not people:
            continue
        boxes = [b for b, _ in people]
        actions = [list(a) for _, a in people]
        if proposals and proposals.get(key):
            gt = torch.tensor(boxes)
            for box, _score in proposals[key]:
                overlap = box_iou(torch.tensor([box]), gt)[0]
                best = int(overlap.argmax())
                boxes.append(box)
                actions.append(list(people[best][1]) if float(overlap[best]) >= iou else [])
        out.append(Keyframe(key, boxes, actions))
    return out


def evaluation_keyframes(keys: Sequence[Key], proposals: dict[Key, list[tuple[Box, float]]],
                         excluded: set[Key] = frozenset()) -> list[Keyframe]:
    """Every keyframe to score that has proposals (already thresholded), with them; the others could
    only produce no detections, so they are not decoded at all."""
    return [Keyframe(k, [b for b, _ in proposals[k]], []) for k in keys if k not in excluded and proposals.get(k)]


class AVADataset(Dataset):
    """Clips around keyframes with their boxes. Item:
    {"video": uint8 [C, T, crop, crop], "boxes": [K, 4] normalised to the clip, "orig_boxes": [K, 4]
    normalised to the original frame, "labels": [K, 80] multi-hot, "index": int, "key": (video_id, sec)}.
    A keyframe whose frames cannot be read raises `DecodeError` (evaluation) or is replaced by another
    random one (training, reported in "bad")."""

    def __init__(self, keyframes: Sequence[Keyframe], source: FrameSource, *, num_frames: int = 16,
                 sampling_rate: int = 4, crop_size: int = 224, train: bool = True,
                 jitter: Sequence[float] = (1.0, 1.25), hflip: bool = True, max_retries: int = 10,
                 decode_timeout: float = 0.0):
        if not keyframes:
            raise ValueError("AVADataset needs at least one keyframe")
        self.keyframes = keyframes if isinstance(keyframes, KeyframeTable) else KeyframeTable(keyframes)
        self.source = source
        self.num_frames, self.sampling_rate, self.crop_size = num_frames, sampling_rate, crop_size
        self.train, self.jitter, self.hflip, self.max_retries = train, tuple(jitter), hflip, max_retries
        self.time_limit = TimeLimit(self, decode_timeout)  # data.decode_timeout, as for videos

    def __len__(self) -> int:
        return len(self.keyframes)

    def clip(self, kf: Keyframe) -> torch.Tensor:
        """uint8 [C, T, H, W]: the keyframe's clip, read within the time limit."""
        frames = self.time_limit.call(f"{kf.key[0]},{kf.key[1]}", "frames", kf)
        return torch.from_numpy(frames).permute(3, 0, 1, 2)  # [T, H, W, 3] -> [C, T, H, W]

    def frames(self, kf: Keyframe) -> np.ndarray:
        video_id, sec = kf.key
        total = self.source.num_frames(video_id)
        center = keyframe_index(sec, self.source.fps)
        if not 0 <= center < total:
            raise DecodeError(video_id, "frames", f"keyframe {sec} s is frame {center}, outside the video's "
                                                  f"{total} frames")
        return self.source.get(video_id, clip_frame_indices(center, self.num_frames, self.sampling_rate, total))

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """`key`: an index, or `(index, seed)` for draws that do not depend on the worker (exact resume)."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        bad: list[tuple[str, str]] = []
        for _ in range(self.max_retries + 1):
            kf = self.keyframes[index]
            try:
                clip = self.clip(kf)
                break
            except DecodeError as e:
                if not self.train:
                    raise
                bad.append((f"{kf.key[0]},{kf.key[1]}", e.reason))
                index = int(torch.randint(len(self.keyframes), (), generator=generator))
        else:
            raise RuntimeError(f"{len(bad)} keyframes in a row could not be read (last: {bad[-1]}); check "
                               f"ava.frames_root / ava.video_root")
        orig = torch.tensor(kf.boxes, dtype=torch.float32).view(-1, 4)
        video, boxes = transform_clip_and_boxes(clip, orig, self.crop_size, self.train, self.jitter, self.hflip,
                                                generator)
        labels = torch.zeros(len(orig), NUM_ACTIONS)
        for i, actions in enumerate(kf.actions):
            for a in actions:
                if 1 <= a <= NUM_ACTIONS:
                    labels[i, a - 1] = 1.0
        return {"video": video, "boxes": boxes, "orig_boxes": orig, "labels": labels, "index": index,
                "key": kf.key, "bad": bad}


def collate_ava(items: list[dict]) -> dict:
    """Clips stacked [B, C, T, S, S]; boxes of all clips concatenated [K, 4] with `box_batch` [K]
    (which clip each box belongs to), `labels` [K, 80], and per-box `box_index` [K] (its position in
    its keyframe) and `keyframe` [K] (dataset index), so that results can be gathered exactly."""
    boxes = [it["boxes"] for it in items]
    return {
        "video": torch.stack([it["video"] for it in items]),
        "boxes": torch.cat(boxes) if boxes else torch.zeros(0, 4),
        "orig_boxes": torch.cat([it["orig_boxes"] for it in items]),
        "labels": torch.cat([it["labels"] for it in items]),
        "box_batch": torch.cat([torch.full((len(b),), i, dtype=torch.long) for i, b in enumerate(boxes)]),
        "box_index": torch.cat([torch.arange(len(b)) for b in boxes]),
        "keyframe": torch.cat([torch.full((len(b),), it["index"], dtype=torch.long) for b, it in zip(boxes, items)]),
        "keys": [it["key"] for it in items],
        "bad": [b for it in items for b in it["bad"]],
    }

