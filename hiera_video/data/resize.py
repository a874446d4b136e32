"""Re-encoding a dataset to a short side of 320 (or N) with short GOPs, the standard preprocessing that
makes training-time decoding fast: fewer pixels per frame, and a keyframe every few frames so that
seeking to a clip decodes little. H.264 in mp4; audio is dropped; the frame rate is kept.

Each output is written under a temporary name and renamed when complete, so an interrupted run leaves
no half-written video that a rerun would mistake for done.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from tqdm import tqdm

from ..fileio import atomic_path
from .prepare import VIDEO_EXTENSIONS


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side at `short_side`, aspect kept, both even (yuv420p needs even sizes)."""
    def even(x: float) -> int:
        return max(2, 2 * round(x / 2))

    if width <= height:
        return even(short_side), even(height * short_side / width)
    return even(width * short_side / height), even(short_side)


def resize_video(src: str | os.PathLike, dst: str | os.PathLike, short_side: int = 320, gop: int = 16,
                 crf: int = 23) -> tuple[int, int]:
    """Re-encode `src` to `dst` (H.264 mp4). Returns the output size (w, h)."""
    with atomic_path(dst) as tmp, av.open(str(src)) as inp:
        if not inp.streams.video:
            raise ValueError("no video stream")
        istream = inp.streams.video[0]
        istream.thread_type = "AUTO"
        rate = istream.average_rate or istream.guessed_rate or Fraction(30)
        size = scaled_size(istream.codec_context.width, istream.codec_context.height, short_side)
        with av.open(str(tmp), "w", format="mp4") as out:
            ostream = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001))
            ostream.width, ostream.height = size
            ostream.pix_fmt = "yuv420p"
            ostream.codec_context.gop_size = gop
            ostream.options = {"crf": str(crf), "preset": "veryfast", "bf": "0",
                               "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
            n = 0
            for frame in inp.decode(istream):
                frame = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                frame.pts, frame.time_base = n, Fraction(1) / Fraction(rate)
                for packet in ostream.encode(frame):
                    out.mux(packet)
                n += 1
            for packet in ostream.encode():
                out.mux(packet)
        if n == 0:
            raise ValueError("no frames decoded")
    return size


@dataclass
class ResizeSummary:
    done: int = 0
    skipped: int = 0  # already present in the destination
    failed: list[tuple[str, str]] = field(default_factory=list)


def _job(args: tuple[str, str, int, int]) -> tuple[str, str | None]:
    src, dst, short_side, gop = args
    try:
        resize_video(src, dst, short_side, gop)
        return src, None
    except Exception as e:  # av errors, OSError, ValueError: reported per file, the run goes on
        return src, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def plan(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(source, destination) pairs mirroring the tree; every output is `.mp4`."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    pairs = []
    for dirpath, _, files in os.walk(src_dir):
        for f in sorted(files):
            if f.lower().endswith(VIDEO_EXTENSIONS):
                src = Path(dirpath) / f
                pairs.append((src, (dst_dir / src.relative_to(src_dir)).with_suffix(".mp4")))
    return sorted(pairs)


def resize_tree(src_dir: str | os.PathLike, dst_dir: str | os.PathLike, short_side: int = 320, gop: int = 16,
                workers: int = 1, progress: bool = True) -> ResizeSummary:
    """Resize every video under `src_dir` into the same layout under `dst_dir`; files already there
    are skipped, so a rerun resumes an interrupted one."""
    summary = ResizeSummary()
    todo = []
    for src, dst in plan(src_dir, dst_dir):
        if dst.exists():
            summary.skipped += 1
        else:
            todo.append((str(src), str(dst), short_side, gop))
    bar = tqdm(total=len(todo), desc="resizing", unit="video", disable=not progress)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for fut in as_completed([pool.submit(_job, job) for job in todo]):
            src, error = fut.result()
            if error is None:
                summary.done += 1
            else:
                summary.failed.append((src, error))
            bar.update()
    bar.close()
    return summary
