"""Frames folders: a video stored as one image per frame (mmaction2's rawframes, VideoMAE's SSv2 frames),
read through the same `VideoReader` interface as a video file, so sampling, views and augmentation are
the same; and `extract_frames`, which makes such folders from videos (resumable, in parallel).

A folder holds `img_00001.jpg`, `img_00002.jpg`, ... (or .png), in frame order from 1, and, when this
module wrote it, `frames.json` with the source's frame rate; without it the rate is 30 fps
(segment sampling, SSv2's, does not use it). Lists name the folder like a video (`dir label`) or in
mmaction2's rawframes form (`dir total_frames label`). Details: docs/data.md (hiera_video/data/frames.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..fileio import atomic_path, atomic_write
from ..synthetic.video import run_jobs
from .decode import FRAMES_META as META
from .decode import open_video

def extract_one(job: tuple[str, str, str, int]) -> int:
    """Decode video `src` into folder `dst` (img_00001.<fmt>, ..., frames.json); returns its frame count.
    A folder whose frames.json exists is complete (it is written last) and is kept as it is."""
    src, dst, fmt, quality = job
    dst_path = Path(dst)
    if (dst_path / META).exists():
        return json.loads((dst_path / META).read_text())["num_frames"]
    dst_path.mkdir(parents=True, exist_ok=True)
    with open_video(src) as video:
        n, fps = video.num_frames, video.fps
        for start in range(0, n, 64):  # a chunk at a time: long videos do not fill memory
            frames = video.get_frames(np.arange(start, min(start + 64, n)))
            for k, frame in enumerate(frames):
                with atomic_path(dst_path / f"img_{start + k + 1:05d}.{fmt}") as tmp:
                    Image.fromarray(frame).save(tmp, format="PNG" if fmt == "png" else "JPEG",
                                                **({} if fmt == "png" else {"quality": quality}))
    atomic_write(dst_path / META, json.dumps({"fps": fps, "num_frames": n, "source": src}) + "\n")
    return n


def extract_frames(entries, root: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "jpg",
                   quality: int = 95, workers: int | None = None, progress: bool = True) -> list[tuple[str, int, int]]:
    """Frames folders for every entry (its path relative to `root`, without the suffix, under `out_dir`);
    returns (folder relative to out_dir, frames, label) per entry. Unreadable videos raise `DecodeError`
    naming them (check a list first: `hiera-video check-videos`)."""
    if fmt not in ("jpg", "png"):
        raise ValueError(f"frame format must be 'jpg' or 'png', got {fmt!r}")
    root, out = Path(root), Path(out_dir)
    jobs, rows = [], []
    for e in entries:
        rel = os.path.relpath(e.path, root)
        folder = os.path.splitext(rel)[0]
        if folder.startswith(".."):
            raise ValueError(f"{e.path} is outside the root {root}; give --root")
        jobs.append((e.path, str(out / folder), fmt, quality))
        rows.append((folder, e.label))
    run_jobs(extract_one, jobs, workers, f"frames -> {out}", progress)
    return [(folder, extract_one(job), label) for (folder, label), job in zip(rows, jobs)]
