"""Finding the bad entries of a data list before a run finds them: missing, empty, non-video,
truncated or undecodable files; and the odd-but-readable ones, as warnings.

`inspect_video` opens the file with the training backend and reads its first, middle and last frames
(a file whose data ends before its index does fails here), then (full check) decodes every frame with
PyAV and compares the count with what the container declares: a WebM cut short still opens and
decodes, but holds fewer frames than its header's duration.

Warnings never make a video bad: rotation metadata (frames are decoded upright, but it is worth
knowing), variable frame rate (sampled by presentation time), a single still image under a video's
name, and files only PyAV can read (slower, and decord's failure may hide damage).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import av

from .decode import _DECORD_FAILED, DecodeError, available_backends, open_video, probe_rotation
from .guard import DEFAULT_SECONDS, TimeLimit
from .lists import Entry

# FFmpeg demuxers of single pictures: a PNG renamed .mp4 opens as a 1-frame "video".
IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif", "mjpeg"}


def _declared_and_decoded(path: str, full: bool) -> tuple[int, int, str]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 30.0
        declared = stream.frames or (round(container.duration / 1e6 * fps) if container.duration else 0)
        if full:
            decoded = sum(1 for _ in container.decode(stream))
        else:
            decoded = sum(1 for packet in container.demux(stream) if packet.size > 0)
        return declared, decoded, container.format.name


def _warnings(path: str, video, backend: str, fmt: str, decoded: int) -> list[str]:
    out = []
    if fmt in IMAGE_FORMATS or decoded == 1:
        out.append(f"a single still image ({fmt}), not a video")
    if video.is_vfr:
        gaps = video.frame_times[1:] - video.frame_times[:-1]
        gaps = gaps[gaps > 0]
        out.append(f"variable frame rate: {len(video.frame_times)} frames at {1 / gaps.max():.1f}-{1 / gaps.min():.1f} "
                   f"fps (average {video.fps:.2f}); sampled by presentation time")
    try:
        rotation = probe_rotation(path)
    except Exception:  # only a warning: a file that decoded above but not here is not worse for it
        rotation = 0
    if rotation % 360:
        out.append(f"rotation metadata: displayed turned {-rotation % 360} degrees clockwise "
                   f"(decoded upright by every backend)")
    if backend == "auto" and video.backend == "pyav" and "decord" in available_backends():
        why = _DECORD_FAILED.get(path)
        out.append(f"only PyAV can read it (decord: {why})" if why else
                   "read with PyAV only (decord misreads MPEG-TS)" if fmt == "mpegts" else "read with PyAV only")
    return out


def inspect_video(path: str, backend: str = "auto", full: bool = True) -> tuple[str | None, list[str]]:
    """(None if the video is good, else the reason it is not; warnings)."""
    if os.path.isdir(path):  # a frames folder: every frame (full) or first, middle, last must read
        try:
            with open_video(path, backend) as video:
                n = video.num_frames
                video.get_frames(range(n) if full else sorted({0, n // 2, n - 1}))
        except DecodeError as e:
            return e.reason, []
        return None, []
    try:
        with open_video(path, backend) as video:
            n = video.num_frames
            video.get_frames(sorted({0, n // 2, n - 1}))
            try:
                declared, decoded, fmt = _declared_and_decoded(path, full)
            except Exception as e:  # av.error.*: corrupt data found while decoding everything
                return f"pyav: {str(e).splitlines()[0] if str(e) else type(e).__name__}", []
            warnings = _warnings(path, video, backend, fmt, decoded)
    except DecodeError as e:
        return e.reason, []
    if decoded == 0:
        return "no decodable frames", warnings
    # Allow rounding in duration-based counts; a real truncation loses far more.
    if declared and decoded < declared - max(2, 0.02 * declared):
        return f"truncated: {decoded} of {declared} declared frames decodable", warnings
    return None, warnings


def check_video(path: str, backend: str = "auto", full: bool = True) -> str | None:
    """None if the video is good, else the reason it is not."""
    return inspect_video(path, backend, full)[0]


class _Inspector:
    """What the time limit's helper process runs."""

    def inspect(self, path: str, backend: str, full: bool) -> tuple[str | None, list[str]]:
        return inspect_video(path, backend, full)


_limits: dict[float, TimeLimit] = {}  # one helper per checking process and time limit


def _inspect_one(args: tuple[str, str, bool, float]) -> tuple[str | None, list[str]]:
    path, backend, full, timeout = args
    if timeout <= 0:
        return inspect_video(path, backend, full)
    limit = _limits.setdefault(timeout, TimeLimit(_Inspector(), timeout))
    try:
        return limit.call(path, "inspect", path, backend, full)
    except DecodeError as e:  # the time limit: a stalled read, a decoder in a loop
        return e.reason, []


def inspect_entries(entries: Sequence[Entry], backend: str = "auto", full: bool = True,
                    workers: int = 1, timeout: float = DEFAULT_SECONDS) -> Iterator[tuple[Entry, str | None, list[str]]]:
    """(entry, reason or None, warnings) for every entry, in list order; `workers` processes. A video
    that takes more than `timeout` seconds (0: no limit) is reported as bad, and the check goes on."""
    jobs = [(e.path, backend, full, timeout) for e in entries]
    _close_limits()  # a helper forked for an earlier check would run that check's code
    try:
        if workers <= 1:
            for entry, job in zip(entries, jobs):
                yield (entry, *_inspect_one(job))
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for entry, (reason, warnings) in zip(entries, pool.map(_inspect_one, jobs, chunksize=8)):
                yield entry, reason, warnings
    finally:
        _close_limits()


def _close_limits() -> None:
    for limit in _limits.values():
        limit.close()
    _limits.clear()


def check_entries(entries: Sequence[Entry], backend: str = "auto", full: bool = True,
                  workers: int = 1) -> Iterator[tuple[Entry, str | None]]:
    """(entry, reason or None) for every entry, in list order; `workers` processes in parallel."""
    for entry, reason, _ in inspect_entries(entries, backend, full, workers):
        yield entry, reason


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class CheckJournal:
    """The results of a check so far, one line per entry in list order, so that a check killed at any
    point (even kill -9) continues where it stopped. Line: `index<TAB>reason<TAB>warning|warning...`
    (empty reason: good). The first line names what is checked; a journal of another list or other
    options is refused. A last line cut short by the kill is dropped."""

    def __init__(self, path: Path, header: str):
        self.path, self.header = Path(path), header
        self.results: list[tuple[str | None, list[str]]] = []
        if self.path.exists():
            lines = self.path.read_text(encoding="utf-8", errors="replace").split("\n")
            if lines[0] != header:
                raise ValueError(f"{self.path} holds the progress of another check ({lines[0]!r}); delete it or "
                                 f"check with the same list and options")
            for n, line in enumerate(lines[1:-1]):  # the last piece has no newline yet: incomplete
                index, reason, warnings = line.split("\t")
                if int(index) != n:
                    raise ValueError(f"{self.path}:{n + 2}: expected entry {n}, found {index}")
                self.results.append((reason or None, [w for w in warnings.split("|") if w]))
            with open(self.path, "r+", encoding="utf-8") as f:  # drop a line cut short
                f.truncate(len(("\n".join([header, *lines[1:-1]]) + "\n").encode("utf-8")))
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(header + "\n", encoding="utf-8")
        self._file = open(self.path, "a", encoding="utf-8")

    def add(self, reason: str | None, warnings: list[str]) -> None:
        clean = [w.replace("\t", " ").replace("\n", " ").replace("|", "/") for w in warnings]
        reason = (reason or "").replace("\t", " ").replace("\n", " ")
        self._file.write(f"{len(self.results)}\t{reason}\t{'|'.join(clean)}\n")
        self._file.flush()
        self.results.append((reason or None, clean))

    def close(self, remove: bool = False) -> None:
        self._file.close()
        if remove:
            self.path.unlink()
