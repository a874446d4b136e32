"""Writing generated videos: `write_video` (frames -> an H.264/VP9/VP8 file, atomically, byte-identical
on any machine) and `run_jobs` (a process pool with a progress bar), shared by the synthetic generators,
the data benchmark and the tests' fixtures."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from ..fileio import atomic_path

# codec name -> (encoder, options for speed, default crf, containers it may go in)
_CODECS = {
    "h264": ("libx264", {"preset": "ultrafast"}, 18, ("mp4", "matroska")),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}, 30, ("webm", "matroska", "mp4")),
    "vp8": ("libvpx", {"deadline": "realtime", "cpu-used": "16"}, 10, ("webm", "matroska")),
}

_CONTAINERS = {".mp4": "mp4", ".webm": "webm", ".mkv": "matroska"}

_CRF_MAX = {"h264": 51, "vp9": 63, "vp8": 63}

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

    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=container) as out:
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
    return path

def _available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

def run_jobs(fn, jobs: list, workers: int | None, desc: str, progress: bool = True, chunksize: int = 1) -> int:
    """`fn(job)` for every job, in `workers` processes (default: the CPUs available; 1: in this
    process), with a progress bar. Shared by the synthetic generators. Returns the processes used."""
    workers = _available_cpus() if workers is None else max(int(workers), 1)
    workers = min(workers, len(jobs)) or 1
    with tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress) as bar:
        if workers == 1:
            for job in jobs:
                fn(job)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(fn, jobs, chunksize=chunksize):
                    bar.update()
    return workers
