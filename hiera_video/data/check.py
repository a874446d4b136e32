"""Finding the bad entries of a data list before a run finds them: missing, empty, non-video,
truncated or undecodable files.

`check_video` opens the file with the training backend and reads its first, middle and last frames,
then (full check) decodes every frame with PyAV and compares the count with what the container
declares: a WebM cut short still opens and decodes, but holds fewer frames than its header's duration.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator, Sequence

from .decode import DecodeError, open_video
from .lists import Entry


def _declared_and_decoded(path: str, full: bool) -> tuple[int, int]:
    import av
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 30.0
        declared = stream.frames or (round(container.duration / 1e6 * fps) if container.duration else 0)
        if full:
            decoded = sum(1 for _ in container.decode(stream))
        else:
            decoded = sum(1 for packet in container.demux(stream) if packet.size > 0)
    return declared, decoded


def check_video(path: str, backend: str = "auto", full: bool = True) -> str | None:
    """None if the video is good, else the reason it is not."""
    try:
        with open_video(path, backend) as video:
            n = video.num_frames
            video.get_frames(sorted({0, n // 2, n - 1}))
    except DecodeError as e:
        return e.reason
    try:
        declared, decoded = _declared_and_decoded(path, full)
    except Exception as e:  # av.error.*: corrupt data found while decoding everything
        return f"pyav: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    if decoded == 0:
        return "no decodable frames"
    # Allow rounding in duration-based counts; a real truncation loses far more.
    if declared and decoded < declared - max(2, 0.02 * declared):
        return f"truncated: {decoded} of {declared} declared frames decodable"
    return None


def _check_one(args: tuple[str, str, bool]) -> tuple[str, str | None]:
    path, backend, full = args
    return path, check_video(path, backend, full)


def check_entries(entries: Sequence[Entry], backend: str = "auto", full: bool = True,
                  workers: int = 1) -> Iterator[tuple[Entry, str | None]]:
    """(entry, reason or None) for every entry, in list order; `workers` processes in parallel."""
    jobs = [(e.path, backend, full) for e in entries]
    if workers <= 1:
        for entry, job in zip(entries, jobs):
            yield entry, _check_one(job)[1]
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for entry, (_, reason) in zip(entries, pool.map(_check_one, jobs, chunksize=8)):
            yield entry, reason


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
