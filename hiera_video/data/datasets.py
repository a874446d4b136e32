"""Datasets for video classification, their collate functions, and bad-video bookkeeping.

Items hold uint8 clips `[C, T, H, W]`: workers decode, crop, flip and RandAugment, while normalisation,
random erasing and mixup/cutmix run batch-wise on the training device (`BatchAugment`). `ClipDataset`
(training) replaces an unreadable video by another and reports it with the batch; `MultiViewDataset`
(evaluation) labels every view so that evaluation aggregates exactly, and never replaces a video.
Details: docs/data.md (hiera_video/data/datasets.py).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from . import sampling, transforms
from .decode import DecodeError, open_video
from .guard import TimeLimit
from .lists import Entry, EntryList
from ..errors import TooManyBadVideos  # noqa: F401  (defined there; raised here)

logger = logging.getLogger("hiera_video")


def _to_clip(frames: np.ndarray) -> torch.Tensor:
    """Decoded frames [T, H, W, 3] (numpy uint8) -> clip [C, T, H, W] (torch uint8), a view: the
    first resize reads this channels-last memory directly, and its output is compact anyway."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2)


class ClipDataset(Dataset):
    """Training clips. `sampling="stride"`: Kinetics 16x4 (`num_frames` samples `sampling_rate` apart
    at `target_fps`); `sampling="segment"`: SSv2 (one random frame in each of `num_frames` segments).
    Augmentation per clip: optional RandAugment, random resized crop to `crop_size` (area `scale`,
    aspect `ratio`), optional horizontal flip (off for SSv2, whose labels say left and right).
    `randaug_order="before_crop"` is the reference's (MAE-ST runs RandAugment on the decoded frames,
    then crops); `"after_crop"` runs it on the crop instead, cheaper on frames larger than the crop.
    `short_side`: first resize the decoded frames to this short side, once per decode (MAE-ST's
    decoder hands its training frames over at short side 256); None keeps the file's size.

    Item: {"video": uint8 [num_repeats, C, T, crop, crop], "label": int, "index": int,
           "bad": [(path, reason), ...] videos skipped to produce this item}.
    """

    def __init__(self, entries: Sequence[Entry], *, num_frames: int = 16, sampling_rate: int = 4,
                 target_fps: float = 30.0, sampling_mode: str = "stride", crop_size: int = 224,
                 scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 hflip: bool = True, randaug: transforms.RandAugment | None = None,
                 randaug_order: str = "before_crop", short_side: int | None = None, num_repeats: int = 1,
                 backend: str = "auto", max_retries: int = 10, decode_timeout: float = 0.0):
        if sampling_mode not in ("stride", "segment"):
            raise ValueError(f"sampling_mode must be 'stride' or 'segment', got {sampling_mode!r}")
        if randaug_order not in ("before_crop", "after_crop"):
            raise ValueError(f"randaug_order must be 'before_crop' or 'after_crop', got {randaug_order!r}")
        if num_repeats < 1:
            raise ValueError(f"num_repeats must be >= 1, got {num_repeats}")
        if not entries:
            raise ValueError("ClipDataset needs at least one video")
        self.entries = entries if isinstance(entries, EntryList) else EntryList(entries)  # flat: see lists.py
        self.num_frames, self.sampling_rate, self.target_fps = num_frames, sampling_rate, target_fps
        self.sampling_mode = sampling_mode
        self.crop_size, self.scale, self.ratio = crop_size, scale, ratio
        self.hflip, self.randaug, self.randaug_order, self.num_repeats = hflip, randaug, randaug_order, num_repeats
        self.short_side = short_side
        self.backend, self.max_retries = backend, max_retries
        # decode_timeout > 0: each video is decoded in a helper process and abandoned after that many seconds
        self.time_limit = TimeLimit(self, decode_timeout)

    def __len__(self) -> int:
        return len(self.entries)

    def _indices(self, num_frames: int, fps: float, generator: torch.Generator | None) -> np.ndarray:
        if self.sampling_mode == "segment":
            return sampling.segment_clip(num_frames, self.num_frames, generator)
        return sampling.train_clip(num_frames, fps, self.num_frames, self.sampling_rate, self.target_fps, generator)

    def _decode(self, entry: Entry, generator: torch.Generator | None = None) -> torch.Tensor:
        with open_video(entry.path, self.backend) as video:
            clip = _to_clip(video.get_frames(self._indices(video.num_frames, video.fps, generator)))
        # [C, T, H, W] -> [C, T, H', W'] with min(H', W') = short_side
        return clip if self.short_side is None else transforms.resize_short_side(clip, self.short_side)

    def _decode_in_helper(self, entry: Entry, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """`_decode` in the time limit's helper process: the generator travels as its state (a uint8
        array), both ways, so the clip and every later draw are the same as without a time limit."""
        generator = None if state is None else torch.Generator().set_state(torch.from_numpy(state))
        clip = self._decode(entry, generator).numpy()
        return clip, None if generator is None else generator.get_state().numpy()

    def _decode_limited(self, entry: Entry, generator: torch.Generator | None) -> torch.Tensor:
        if self.time_limit.seconds <= 0:
            return self._decode(entry, generator)
        state = None if generator is None else generator.get_state().numpy()
        clip, state = self.time_limit.call(entry.path, "_decode_in_helper", entry, state)
        if generator is not None:
            generator.set_state(torch.from_numpy(state))
        return torch.from_numpy(clip)

    def augment(self, clip: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 [C, T, H, W] -> uint8 [C, T, crop, crop] with fresh random parameters."""
        if self.randaug is not None and self.randaug_order == "before_crop":
            clip = self.randaug(clip, generator=generator)  # on the full decoded frames [C, T, H, W]
        clip = transforms.random_resized_crop(clip, self.crop_size, self.scale, self.ratio, generator=generator)
        if self.hflip:
            clip = transforms.random_hflip(clip, generator=generator)
        if self.randaug is not None and self.randaug_order == "after_crop":
            clip = self.randaug(clip, generator=generator)
        return clip

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """`key` is an index, or `(index, seed)`: then every random draw for this item (clip position,
        crops, RandAugment, replacement of a bad video) comes from that seed, so the item does not
        depend on which worker makes it or what that worker made before (exact resumption)."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        bad: list[tuple[str, str]] = []
        for _ in range(self.max_retries + 1):
            entry = self.entries[index]
            try:
                clip = self._decode_limited(entry, generator)
                break
            except DecodeError as e:
                bad.append((entry.path, e.reason))
                index = int(torch.randint(len(self.entries), (), generator=generator))
        else:
            listed = "; ".join(f"{p}: {r}" for p, r in bad[-3:])
            raise TooManyBadVideos(f"{len(bad)} videos in a row could not be decoded (last: {listed}). Is the "
                                   f"data root right? `hiera-video check-videos` (tools/check_videos.py) lists every bad entry of a list.")
        video = torch.stack([self.augment(clip, generator) for _ in range(self.num_repeats)])
        return {"video": video, "label": self.entries[index].label, "index": index, "bad": bad}


class MultiViewDataset(Dataset):
    """Every test view of each video: `num_temporal_clips` clips (sampling.eval_clips or
    sampling.segment_eval_clips) x `num_spatial_crops` crops, as the reference's test loader makes them:
    3 crops: short side resized to `crop_size`, then left/centre/right (top/centre/bottom) squares;
    1 crop: short side resized to `test_short_side` (default round(crop_size * 256 / 224), the train
    jitter's lower bound: 256 for 224 crops), then the centre `crop_size` square.

    Item: {"video": uint8 [V, C, T, crop, crop], "views": long [V, 3] (video, temporal, spatial),
           "label": int, "index": int, "path": str, "error": None or why the video is unreadable}.
    """

    def __init__(self, entries: Sequence[Entry], *, num_frames: int = 16, sampling_rate: int = 4,
                 target_fps: float = 30.0, sampling_mode: str = "stride", crop_size: int = 224,
                 num_temporal_clips: int = 5, num_spatial_crops: int = 3, test_short_side: int | None = None,
                 backend: str = "auto", decode_timeout: float = 0.0):
        if sampling_mode not in ("stride", "segment"):
            raise ValueError(f"sampling_mode must be 'stride' or 'segment', got {sampling_mode!r}")
        if num_spatial_crops not in (1, 3):
            raise ValueError(f"num_spatial_crops must be 1 or 3, got {num_spatial_crops}")
        if test_short_side is None:
            test_short_side = round(crop_size * 256 / 224)
        if test_short_side < crop_size:
            raise ValueError(f"test_short_side ({test_short_side}) must be >= crop_size ({crop_size})")
        self.test_short_side = test_short_side
        self.entries = entries if isinstance(entries, EntryList) else EntryList(entries)  # flat: see lists.py
        self.num_frames, self.sampling_rate, self.target_fps = num_frames, sampling_rate, target_fps
        self.sampling_mode, self.crop_size = sampling_mode, crop_size
        self.num_temporal_clips, self.num_spatial_crops = num_temporal_clips, num_spatial_crops
        self.backend = backend
        self.time_limit = TimeLimit(self, decode_timeout)

    @property
    def views_per_video(self) -> int:
        return self.num_temporal_clips * self.num_spatial_crops

    def __len__(self) -> int:
        return len(self.entries)

    def _clips(self, num_frames: int, fps: float) -> list[np.ndarray]:
        if self.sampling_mode == "segment":
            return sampling.segment_eval_clips(num_frames, self.num_temporal_clips, self.num_frames)
        return sampling.eval_clips(num_frames, fps, self.num_temporal_clips, self.num_frames,
                                   self.sampling_rate, self.target_fps)

    def _frames(self, entry: Entry) -> np.ndarray:
        """Every temporal view of the video in one decode: [V_t * T, H, W, 3]."""
        with open_video(entry.path, self.backend) as video:
            return video.get_frames(np.concatenate(self._clips(video.num_frames, video.fps)))

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        item = {"label": entry.label, "index": index, "path": entry.path, "error": None}
        try:
            frames = self.time_limit.call(entry.path, "_frames", entry)
        except DecodeError as e:
            item["error"] = e.reason
            item["video"] = torch.empty(0, 3, self.num_frames, self.crop_size, self.crop_size, dtype=torch.uint8)
            item["views"] = torch.empty(0, 3, dtype=torch.long)
            return item
        views, ids = [], []
        short_side = self.crop_size if self.num_spatial_crops == 3 else self.test_short_side
        for t, clip in enumerate(_to_clip(frames).split(self.num_frames, dim=1)):
            clip = transforms.resize_short_side(clip, short_side)
            for s, crop in enumerate(transforms.spatial_crops(clip, self.crop_size, self.num_spatial_crops)):
                views.append(crop)
                ids.append((index, t, s))
        item["video"] = torch.stack(views)  # [V, C, T, crop, crop]
        item["views"] = torch.tensor(ids, dtype=torch.long)
        return item


def collate_clips(items: list[dict]) -> dict:
    """ClipDataset items -> batch; repeated clips become batch rows: video uint8 [B*K, C, T, H, W]."""
    video = torch.cat([it["video"] for it in items])
    repeats = [len(it["video"]) for it in items]
    label = torch.tensor([it["label"] for it in items]).repeat_interleave(torch.tensor(repeats))
    index = torch.tensor([it["index"] for it in items]).repeat_interleave(torch.tensor(repeats))
    return {"video": video, "label": label, "index": index, "bad": [b for it in items for b in it["bad"]]}


def collate_views(items: list[dict]) -> dict:
    """MultiViewDataset items -> batch of views: video uint8 [V_total, C, T, H, W], views [V_total, 3],
    label [V_total]; unreadable videos are listed as (index, path, error), never dropped silently."""
    video = torch.cat([it["video"] for it in items])
    views = torch.cat([it["views"] for it in items])
    label = torch.cat([torch.full((len(it["views"]),), it["label"], dtype=torch.long) for it in items])
    unreadable = [(it["index"], it["path"], it["error"]) for it in items if it["error"] is not None]
    return {"video": video, "views": views, "label": label, "unreadable": unreadable}


class BadVideos:
    """Main-process record of videos skipped in training: each is logged once, counted per epoch."""

    def __init__(self):
        self.seen: dict[str, str] = {}
        self.count = 0  # skips this epoch (a file skipped twice counts twice)

    def update(self, bad: list[tuple[str, str]]) -> None:
        for path, reason in bad:
            self.count += 1
            if path not in self.seen:
                self.seen[path] = reason
                logger.warning("skipping unreadable video %s (%s)", path, reason)

    def end_epoch(self) -> int:
        """Skips counted since the last call."""
        count, self.count = self.count, 0
        return count


class BatchAugment:
    """The device-side half of the pipeline, on a uint8 batch [B, C, T, H, W]: normalise, then (in
    training) random erasing and mixup/cutmix with label smoothing. Returns (float clips, targets):
    soft targets [B, classes] when mixing or smoothing, else the integer labels."""

    def __init__(self, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), erase_prob: float = 0.0,
                 mixup=None):
        self.mean, self.std, self.erase_prob, self.mixup = mean, std, erase_prob, mixup

    def __call__(self, video: torch.Tensor, label: torch.Tensor, train: bool = True):
        x = transforms.normalize(video, self.mean, self.std)
        if train and self.erase_prob > 0:
            x = transforms.random_erasing(x, prob=self.erase_prob)
        if train and self.mixup is not None:
            return self.mixup(x, label)
        return x, label
