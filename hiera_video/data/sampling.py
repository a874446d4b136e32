"""Which frames make a clip: pure functions of the video's frame count and frame rate.

Stride ("16x4") sampling gives exactly the frame indices of the PySlowFast / MAE-ST Kinetics loader that
the official Hiera checkpoints were finetuned and tested with: a clip span that is never rounded and
float32 linspace indices, so the step at 30 fps is 4.2 frames, not 4. Something-Something-v2 uses
PySlowFast's segment sampling, with VideoMAE's test views. Randomness comes from an optional
`torch.Generator`, so seeding torch makes sampling reproducible.
Details: docs/data.md (hiera_video/data/sampling.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def clip_size(fps: float, num_samples: int = 16, stride: int = 4, target_fps: float = 30.0) -> float:
    """Frames of the file that one clip spans: `num_samples` samples `stride` apart at `target_fps`."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return stride * num_samples / target_fps * fps


def clip_indices(start: float, size: float, num_samples: int, num_frames: int) -> np.ndarray:
    """`num_samples` indices from `start` to `start + size - 1`, evenly spaced, clamped to the video and
    truncated: int64 [num_samples]."""
    # float32 on purpose: the reference computes these points with torch.linspace's default dtype, and
    # a float64 point such as 20.999999 vs 21.0 would truncate to another frame.
    idx = torch.linspace(start, start + size - 1, num_samples, dtype=torch.float32)
    return torch.clamp(idx, 0, num_frames - 1).long().numpy()


def train_clip(num_frames: int, fps: float, num_samples: int = 16, stride: int = 4, target_fps: float = 30.0,
               generator: torch.Generator | None = None) -> np.ndarray:
    """One clip starting uniformly at random in [0, delta] (Kinetics training)."""
    size = clip_size(fps, num_samples, stride, target_fps)
    delta = max(num_frames - size, 0.0)
    start = float(torch.rand((), generator=generator, dtype=torch.float64)) * delta
    return clip_indices(start, size, num_samples, num_frames)


def eval_clip_starts(num_frames: int, size: float, num_clips: int) -> list[int]:
    """Start frames of the `num_clips` test views of clips spanning `size` frames (offset sampling):
    view i starts at i * floor(delta / (num_clips - 1)), a single view at floor(delta / 2)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    delta = max(num_frames - size, 0.0)
    if num_clips == 1:
        return [math.floor(delta / 2)]
    gap = math.floor(delta / (num_clips - 1))
    return [i * gap for i in range(num_clips)]


def eval_clips(num_frames: int, fps: float, num_clips: int, num_samples: int = 16, stride: int = 4,
               target_fps: float = 30.0) -> list[np.ndarray]:
    """The temporal views of multi-view testing (Kinetics: 5), each int64 [num_samples]."""
    size = clip_size(fps, num_samples, stride, target_fps)
    return [clip_indices(s, size, num_samples, num_frames) for s in eval_clip_starts(num_frames, size, num_clips)]


def segment_bounds(num_frames: int, num_segments: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """First and last frame (both included) of each SSv2 segment, int64 [num_segments] each."""
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames >= 1 and num_segments >= 1, got {num_frames}, {num_segments}")
    seg = (num_frames - 1) / num_segments
    # np.round is round-half-to-even, as the reference's
    bounds = np.round(seg * np.arange(num_segments + 1)).astype(np.int64)
    return bounds[:-1], bounds[1:]


def segment_clip(num_frames: int, num_segments: int = 16, generator: torch.Generator | None = None) -> np.ndarray:
    """One uniformly random frame of each segment's closed interval (SSv2 training)."""
    lo, hi = segment_bounds(num_frames, num_segments)
    u = torch.rand(num_segments, generator=generator, dtype=torch.float64).numpy()
    # integer uniform in [lo, hi]: hi - lo + 1 equally likely values
    return np.minimum(lo + np.floor(u * (hi - lo + 1)).astype(np.int64), hi)


def segment_eval_clips(num_frames: int, num_clips: int = 2, num_segments: int = 16) -> list[np.ndarray]:
    """SSv2 temporal test views. One view: the midpoint of each segment (PySlowFast). Several: view v
    of V takes floor((k + v / V) * num_frames / num_segments) in segment k (VideoMAE's 2 views)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if num_clips == 1:
        lo, hi = segment_bounds(num_frames, num_segments)
        return [(lo + hi) // 2]
    tick = num_frames / num_segments
    base = np.arange(num_segments)
    # tick * k + tick * v / V in this order: VideoMAE's int(tick / 2 + tick * k), bit for bit at V = 2
    return [np.clip(np.floor(tick * base + tick * v / num_clips).astype(np.int64), 0, num_frames - 1)
            for v in range(num_clips)]
