"""Which frames make a clip: pure functions of the video's length and frame rate.

Kinetics-style "16x4" sampling takes `num_samples` frames `stride` apart *at a target rate* (30 fps),
so a clip always covers num_samples * stride / target_fps seconds (64/30 s) whatever the file's frame
rate; in the file's frames one sample is `stride * fps / target_fps` frames apart, and a clip spans
`num_samples` such steps. Sample k of a clip starting at frame s is floor(s + k * step). Videos shorter
than a clip start at 0 and repeat their last frame.

Something-Something-v2 uses segment sampling instead: the video is cut into `num_segments` equal
segments and one frame is taken from each (a random one in training; at test time view v of V takes
the frame at (v + 1/2) / V of every segment, so the V views interleave).

Randomness comes from an optional `torch.Generator` (the global torch RNG by default), so that seeding
torch, as DataLoader workers do, makes sampling reproducible.
"""

from __future__ import annotations

import numpy as np
import torch


def _uniform(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator))


def clip_step(fps: float, stride: int, target_fps: float = 30.0) -> float:
    """Distance in the file's frames between two samples of a clip."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return stride * fps / target_fps


def clip_indices(start: float, num_samples: int, step: float, num_frames: int) -> np.ndarray:
    """Frame indices floor(start + k * step), k < num_samples, clamped to the video (the last frame
    repeats when the clip runs past the end)."""
    idx = np.floor(start + np.arange(num_samples) * step).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def train_clip(num_frames: int, fps: float, num_samples: int = 16, stride: int = 4, target_fps: float = 30.0,
               generator: torch.Generator | None = None) -> np.ndarray:
    """One clip at a uniformly random position (Kinetics training)."""
    step = clip_step(fps, stride, target_fps)
    room = max(num_frames - num_samples * step, 0.0)
    return clip_indices(_uniform(generator) * room, num_samples, step, num_frames)


def eval_clip_starts(num_frames: int, span: float, num_clips: int) -> list[float]:
    """Start frames of `num_clips` clips of `span` frames spread uniformly over the video: the first
    starts at 0 and the last ends at the video's end (one clip is centred)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    room = max(num_frames - span, 0.0)
    if num_clips == 1:
        return [room / 2]
    return [room * i / (num_clips - 1) for i in range(num_clips)]


def eval_clips(num_frames: int, fps: float, num_clips: int, num_samples: int = 16, stride: int = 4,
               target_fps: float = 30.0) -> list[np.ndarray]:
    """The temporal views of multi-view testing (Kinetics: 5)."""
    step = clip_step(fps, stride, target_fps)
    return [clip_indices(s, num_samples, step, num_frames)
            for s in eval_clip_starts(num_frames, num_samples * step, num_clips)]


def segment_clip(num_frames: int, num_segments: int = 16, generator: torch.Generator | None = None) -> np.ndarray:
    """One random frame from each of `num_segments` equal segments (SSv2 training)."""
    seg = num_frames / num_segments
    offsets = torch.rand(num_segments, generator=generator).numpy().astype(np.float64)
    idx = np.floor((np.arange(num_segments) + offsets) * seg).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def segment_eval_clips(num_frames: int, num_clips: int = 2, num_segments: int = 16) -> list[np.ndarray]:
    """SSv2 temporal views: view v takes the frame at (v + 1/2) / num_clips of each segment."""
    seg = num_frames / num_segments
    base = np.arange(num_segments)
    return [np.clip(np.floor((base + (v + 0.5) / num_clips) * seg).astype(np.int64), 0, num_frames - 1)
            for v in range(num_clips)]
