"""Video decoding behind one small interface, with two backends.

* `decord` (default): builds a frame index when the file is opened, then seeks to the keyframe before
  each requested frame and decodes only what it needs. Fast, especially on short-GOP files
  (tools/resize_videos.py writes those).
* `pyav` (fallback, and the choice for WebM/VP8/VP9 as in SSv2, which decord has mishandled): decodes
  sequentially from the start up to the last requested frame.

Both return frames by their index in presentation order, so the same indices give the same frames
(up to colour-conversion rounding). Any failure raises `DecodeError`, which names the file and the
backend, so that datasets can skip or report the video.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from typing import Sequence

# PyAV must load its FFmpeg libraries before decord does: decord 0.6 bundles an older libvpx that
# otherwise shadows PyAV's and breaks its VP9 encoder (decoding is unaffected).
import av
import numpy as np

logger = logging.getLogger("hiera_video")

# Containers decord has been seen to mishandle (frame-inaccurate seeking in VP8/VP9 WebM).
PYAV_EXTENSIONS = {".webm", ".mkv"}


class DecodeError(RuntimeError):
    """A video that cannot be decoded. `path`, `backend` and `reason` say which, how and why."""

    def __init__(self, path: str, backend: str, reason: str):
        super().__init__(f"{path}: cannot decode with {backend}: {reason}")
        self.path, self.backend, self.reason = path, backend, reason


def available_backends() -> list[str]:
    found = []
    for name, module in (("pyav", "av"), ("decord", "decord")):
        try:
            __import__(module)
            found.append(name)
        except ImportError:
            pass
    return found


def _unique_sorted(indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique indices, and where each requested index sits among them."""
    indices = np.asarray(indices, dtype=np.int64)
    unique, inverse = np.unique(indices, return_inverse=True)
    return unique, inverse


class VideoReader(ABC):
    """An open video. `num_frames` and `fps` are known on open; `get_frames(indices)` returns
    uint8 `[len(indices), H, W, 3]` RGB in the order asked (indices may repeat)."""

    backend = "none"

    def __init__(self, path: str):
        self.path = path
        self.num_frames = 0
        self.fps = 0.0

    @abstractmethod
    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 [len(indices), H, W, 3] RGB frames, in the order of `indices`."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self, indices: np.ndarray) -> None:
        if len(indices) == 0:
            raise ValueError("no frame indices requested")
        if indices.min() < 0 or indices.max() >= self.num_frames:
            raise DecodeError(self.path, self.backend, f"frame indices {indices.min()}..{indices.max()} outside "
                                                       f"the video's {self.num_frames} frames")

    def _fail(self, reason: object) -> DecodeError:
        return DecodeError(self.path, self.backend, str(reason).strip().splitlines()[0] if str(reason) else
                           type(reason).__name__)


def _valid_fps(fps: float | None) -> float:
    # Broken metadata gives 0, NaN or absurd rates; 30 is the Kinetics norm and keeps sampling sane.
    if fps is None or not np.isfinite(fps) or fps <= 0 or fps > 1000:
        return 30.0
    return float(fps)


class DecordReader(VideoReader):
    backend = "decord"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        import decord
        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
            self.num_frames = len(self._vr)
            self.fps = _valid_fps(self._vr.get_avg_fps())
        except Exception as e:  # decord raises its own DECORDError and plain RuntimeErrors
            raise self._fail(e) from None
        if self.num_frames <= 0:
            raise self._fail("no video frames")

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        unique, inverse = _unique_sorted(indices)
        self._check(unique)
        try:
            frames = self._vr.get_batch(unique.tolist()).asnumpy()  # [n, H, W, 3]
        except Exception as e:
            raise self._fail(e) from None
        return frames[inverse]

    def close(self) -> None:
        self._vr = None


class PyAVReader(VideoReader):
    backend = "pyav"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        self._av = av
        try:
            self._container = av.open(path)
            if not self._container.streams.video:
                raise self._fail("no video stream")
            stream = self._container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.fps = _valid_fps(float(rate) if rate else None)
            # mp4 states its frame count; WebM does not, so count packets (demuxing, not decoding).
            self.num_frames = stream.frames or self._count_packets()
        except DecodeError:
            self.close()
            raise
        except Exception as e:  # av.error.* (InvalidDataError, ...), OSError
            self.close()
            raise self._fail(e) from None
        if self.num_frames <= 0:
            self.close()
            raise self._fail("no video frames")
        self._threads = num_threads

    def _count_packets(self) -> int:
        stream = self._container.streams.video[0]
        n = sum(1 for packet in self._container.demux(stream) if packet.size > 0)
        self._container.seek(0)
        return n

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        unique, inverse = _unique_sorted(indices)
        self._check(unique)
        wanted = {int(i): k for k, i in enumerate(unique)}
        last = int(unique[-1])
        out: list[np.ndarray | None] = [None] * len(unique)
        frame = None
        try:
            self._container.seek(0)
            stream = self._container.streams.video[0]
            # One thread by default: DataLoader workers already use every core.
            stream.codec_context.thread_count = self._threads
            stream.thread_type = "AUTO" if self._threads > 1 else "SLICE"
            for i, frame in enumerate(self._container.decode(stream)):
                k = wanted.get(i)
                if k is not None:
                    out[k] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        except Exception as e:
            raise self._fail(e) from None
        if out[0] is None:
            raise self._fail("no frame could be decoded")
        if out[-1] is None:
            # The container promised more frames than it holds (a cut file, or metadata off by one):
            # repeat the last decoded frame, as sampling does for short videos.
            decoded = sum(o is not None for o in out)
            logger.debug("%s: %d of %d requested frames exist; repeating the last", self.path, decoded, len(out))
            for k in range(len(out)):
                if out[k] is None:
                    out[k] = out[k - 1]
        return np.stack(out)[inverse]

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


class _FallbackReader(VideoReader):
    """decord first; if decord fails to read frames of a file it opened (it has failed on valid files,
    e.g. some very narrow ones), the same request goes to PyAV before the video is called bad."""

    def __init__(self, primary: VideoReader, num_threads: int):
        super().__init__(primary.path)
        self._primary, self._fallback, self._threads = primary, None, num_threads
        self.num_frames, self.fps = primary.num_frames, primary.fps
        self.backend = primary.backend

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        if self._fallback is None:
            try:
                return self._primary.get_frames(indices)
            except DecodeError as first:
                try:
                    self._fallback = PyAVReader(self.path, self._threads)
                except DecodeError as second:
                    raise DecodeError(self.path, "decord+pyav", f"decord: {first.reason}; pyav: {second.reason}") from None
                logger.debug("%s: decord failed (%s); reading with PyAV", self.path, first.reason)
                self.backend = "pyav"
        return self._fallback.get_frames(indices)

    def close(self) -> None:
        self._primary.close()
        if self._fallback is not None:
            self._fallback.close()


def open_video(path: str | os.PathLike, backend: str = "auto", num_threads: int = 1) -> VideoReader:
    """Open a video with `backend` in {"auto", "decord", "pyav"}.

    "auto" uses PyAV for WebM/MKV and decord otherwise (PyAV where decord is not installed); whenever
    decord fails to open or read a file, PyAV tries before the video is called bad. Raises
    `DecodeError` (file and backend).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DecodeError(path, backend, "file not found")
    if os.path.getsize(path) == 0:
        raise DecodeError(path, backend, "empty file")
    have = available_backends()
    if backend == "auto":
        ext = os.path.splitext(path)[1].lower()
        order = ["pyav"] if ext in PYAV_EXTENSIONS or "decord" not in have else ["decord", "pyav"]
    elif backend in ("decord", "pyav"):
        if backend not in have:
            raise ImportError(f"video backend {backend!r} is not installed (installed: {have})")
        order = [backend]
    else:
        raise ValueError(f"unknown video backend {backend!r}; choose 'auto', 'decord' or 'pyav'")
    errors = []
    for name in order:
        try:
            reader = (DecordReader if name == "decord" else PyAVReader)(path, num_threads)
        except DecodeError as e:
            errors.append(e)
            continue
        return _FallbackReader(reader, num_threads) if name == "decord" and len(order) > 1 else reader
    if len(errors) == 1:
        raise errors[0]
    raise DecodeError(path, "+".join(order), "; ".join(f"{e.backend}: {e.reason}" for e in errors))


def read_frames(path: str | os.PathLike, indices: Sequence[int], backend: str = "auto") -> np.ndarray:
    """Open, read `indices`, close: uint8 [len(indices), H, W, 3]."""
    with open_video(path, backend) as video:
        return video.get_frames(indices)
