"""Video decoding behind one small interface, with two backends (and an optional third): `decord` (the
default; seeks to keyframes), `pyav` (sequential; for MPEG-TS and whatever decord cannot read) and,
only when chosen by name, `torchcodec`.

Every reader gives frames in display orientation, raises `DecodeError` (naming the file and backend)
rather than return a copy of another frame, and uses nominal indices (frame i is time t0 + i / fps), so
that sampling stays right on variable-frame-rate files.
Details: docs/data.md (hiera_video/data/decode.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

# PyAV must load its FFmpeg libraries before decord does: decord 0.6 bundles an older libvpx that
# otherwise shadows PyAV's and breaks its VP9 encoder (decoding is unaffected).
import av
import numpy as np
from PIL import Image

logger = logging.getLogger("hiera_video")

# MPEG transport streams: decord 0.6 opens them and returns frames about 10 positions off (measured),
# with no error, so they never go to decord (nor does any file not starting like a container decord
# reads right: `_decord_container`, which also keeps TS under another name away from it).
PYAV_EXTENSIONS = {".ts", ".m2ts", ".mts"}
# Containers with a frame index up front, whose declared frame count can reveal missing data.
INDEXED_EXTENSIONS = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}

# Files decord failed to open or read in this process (path -> reason): later opens go straight to
# PyAV instead of failing once more per read. Bounded so that a huge bad list cannot grow it forever.
_DECORD_FAILED: dict[str, str] = {}
_DECORD_FAILED_MAX = 100_000


class DecodeError(RuntimeError):
    """A video that cannot be decoded. `path`, `backend` and `reason` say which, how and why;
    `missing_data` is True when the file holds less data than its index promises."""

    def __init__(self, path: str, backend: str, reason: str, missing_data: bool = False):
        super().__init__(f"{path}: cannot decode with {backend}: {reason}")
        self.path, self.backend, self.reason, self.missing_data = path, backend, reason, missing_data


def available_backends() -> list[str]:
    found = []
    for name, module in (("pyav", "av"), ("decord", "decord")):
        try:
            __import__(module)
            found.append(name)
        except ImportError:
            pass
    return found


def _valid_fps(fps: float | None) -> float:
    # Broken metadata gives 0, NaN or absurd rates; 30 is the Kinetics norm and keeps sampling sane.
    if fps is None or not np.isfinite(fps) or fps <= 0 or fps > 1000:
        return 30.0
    return float(fps)


def _first_line(reason: object) -> str:
    text = str(reason).strip()
    return text.splitlines()[0] if text else type(reason).__name__


class VideoReader(ABC):
    """An open video. `num_frames` and `fps` are known on open; `get_frames(indices)` returns
    uint8 `[len(indices), H, W, 3]` RGB in display orientation, in the order asked (indices may
    repeat). `data_frames` < `num_frames` when the data ends before the index does."""

    backend = "none"

    def __init__(self, path: str):
        self.path = path
        self.num_frames = 0
        self.data_frames = 0
        self.fps = 0.0
        self.frame_times = np.zeros(0)  # presentation times in seconds of the frames with data
        self.is_vfr = False
        self._t0, self._avg_fps = 0.0, 0.0

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 [len(indices), H, W, 3] RGB frames, in the order of `indices` (nominal indices)."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            raise ValueError("no frame indices requested")
        if indices.min() < 0 or indices.max() >= self.num_frames:
            raise DecodeError(self.path, self.backend, f"frame indices {indices.min()}..{indices.max()} outside "
                                                       f"the video's {self.num_frames} frames")
        if indices.max() >= self.data_frames:
            raise self._missing(int(indices.max()), self.data_frames - 1)
        unique, inverse = np.unique(self.frame_at_nominal(indices), return_inverse=True)
        return self._read(unique)[inverse]

    @abstractmethod
    def _read(self, unique: np.ndarray) -> np.ndarray:
        """uint8 [len(unique), H, W, 3] for sorted unique real frame indices."""

    def frame_at_nominal(self, indices: np.ndarray) -> np.ndarray:
        """Real frame indices for nominal ones: identity at constant rate; for VFR, the frame shown at
        t0 + i / fps (the last whose presentation time is <= t)."""
        if not self.is_vfr:
            return indices
        t = self._t0 + indices / self._avg_fps
        # 1 us of slack: a frame starting exactly at t must win over float rounding of t.
        j = np.searchsorted(self.frame_times, t + 1e-6, side="right") - 1
        return np.clip(j, 0, len(self.frame_times) - 1)

    def _set_times(self, times: np.ndarray) -> None:
        """Record presentation times (seconds) of the frames with data and decide whether the file is
        VFR: some frame more than half a frame from where a constant rate would put it."""
        times = np.sort(np.asarray(times, dtype=np.float64))
        self.frame_times = times
        n = len(times)
        if n < 3:
            return
        duration = times[-1] - times[0] + (times[-1] - times[-2])  # the last frame lasts as the one before
        if duration <= 0:
            return
        avg = n / duration
        drift = np.abs(times - (times[0] + np.arange(n) / avg)).max()
        if drift > 0.5 / avg:
            self.is_vfr, self._t0, self._avg_fps = True, float(times[0]), float(avg)
            self.fps = float(avg)  # sampling's steps are then in nominal frames of the average rate

    def _missing(self, wanted: int, last: int) -> DecodeError:
        ends = f"after frame {last}" if last >= 0 else "before the first frame"
        return DecodeError(self.path, self.backend, f"frame {wanted} of {self.num_frames} requested but the data "
                                                    f"ends {ends}", missing_data=True)

    def close(self) -> None:
        pass

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, reason: object) -> DecodeError:
        return DecodeError(self.path, self.backend, _first_line(reason))


def _mp4_cut_short(path: str) -> bool:
    """Whether an mp4/mov file's top-level boxes run past its end (a cut download): box headers only,
    microseconds, so that complete files skip the slower index check below."""
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            pos = 0
            while pos + 8 <= size:
                f.seek(pos)
                head = f.read(16)
                box = int.from_bytes(head[:4], "big")
                if box == 1 and len(head) == 16:  # 64-bit size follows the type
                    box = int.from_bytes(head[8:16], "big")
                elif box == 0:  # the box runs to the end of the file
                    return False
                if box < 8:
                    return False  # not box structure after all: leave it to the decoders
                pos += box
            return pos > size
    except OSError:
        return False


def _declared_frames(path: str) -> int:
    """The frame count an mp4/mov index declares (0 if unknown): metadata only, ~2 ms."""
    try:
        with av.open(path) as container:
            return container.streams.video[0].frames if container.streams.video else 0
    except Exception:  # decord opened it; whether PyAV can is not this check's business
        return 0


class DecordReader(VideoReader):
    backend = "decord"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        import decord  # optional (x86-64 wheels only), and only after PyAV: see docs/data.md
        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
            self.data_frames = len(self._vr)
            self.fps = _valid_fps(self._vr.get_avg_fps())
            times = self._vr.get_frame_timestamp(range(self.data_frames))[:, 0] if self.data_frames else []
        except Exception as e:  # decord raises its own DECORDError and plain RuntimeErrors
            raise self._fail(e) from None
        if self.data_frames <= 0:
            raise self._fail("no video frames")
        # decord counts the packets it can read: an mp4 cut at a packet boundary opens as a shorter
        # video. Its index still declares the full count, which makes the cut visible.
        indexed = os.path.splitext(path)[1].lower() in INDEXED_EXTENSIONS
        declared = _declared_frames(path) if indexed and _mp4_cut_short(path) else 0
        self.num_frames = max(self.data_frames, declared)
        self._set_times(times)

    def _read(self, unique: np.ndarray) -> np.ndarray:
        try:
            return self._vr.get_batch(unique.tolist()).asnumpy()  # [n, H, W, 3]
        except Exception as e:
            raise self._fail(e) from None

    def close(self) -> None:
        self._vr = None


def _packet_times(container, stream, fps: float) -> np.ndarray:
    """Presentation times (seconds from the stream's start) of the packets whose data exist, by
    demuxing (not decoding) the whole stream; the container is left at its start."""
    pts = []
    try:
        for packet in container.demux(stream):
            # A packet cut short by the end of the file comes flagged corrupt: its frame is lost.
            if packet.size > 0 and not packet.is_corrupt:
                pts.append(packet.pts if packet.pts is not None else packet.dts)
    except av.error.FFmpegError:
        pass  # data cut short: the packets read so far are what exists
    container.seek(0)
    base = stream.start_time or 0
    tb = float(stream.time_base) if stream.time_base else 1 / fps
    if any(p is None for p in pts):  # no timestamps at all: a constant rate is the best guess
        return np.arange(len(pts)) / fps
    return (np.asarray(pts, dtype=np.float64) - base) * tb


class PyAVReader(VideoReader):
    backend = "pyav"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        try:
            self._container = av.open(path)
            if not self._container.streams.video:
                raise self._fail("no video stream")
            stream = self._container.streams.video[0]
            # Threading is fixed before the first decode: PyAV 18 refuses to change it once the codec
            # is open ("Cannot change thread_count after codec is open"), i.e. on a second read. One
            # thread by default: DataLoader workers already use every core.
            stream.codec_context.thread_count = num_threads
            stream.thread_type = "AUTO" if num_threads > 1 else "SLICE"
            rate = stream.average_rate or stream.guessed_rate
            self.fps = _valid_fps(float(rate) if rate else None)
            self.format = self._container.format.name
            # Demuxing (not decoding) every packet gives the frames whose data exist and their times;
            # the index's count (mp4) may promise more.
            times = _packet_times(self._container, stream, self.fps)
            self.data_frames = len(times)
            self.num_frames = max(stream.frames, self.data_frames)
        except DecodeError:
            self.close()
            raise
        except Exception as e:  # av.error.* (InvalidDataError, ...), OSError
            self.close()
            raise self._fail(e) from None
        if self.data_frames <= 0:
            self.close()
            raise self._fail("no video frames")
        self._set_times(times)
        self.rotation = 0  # degrees counter-clockwise, as FFmpeg's display matrix; known after a read

    def _read(self, unique: np.ndarray) -> np.ndarray:
        wanted = {int(i): k for k, i in enumerate(unique)}
        last = int(unique[-1])
        out: list[np.ndarray | None] = [None] * len(unique)
        decoded = -1
        error = None
        try:
            self._container.seek(0)
            stream = self._container.streams.video[0]
            for decoded, frame in enumerate(self._container.decode(stream)):
                k = wanted.get(decoded)
                if k is not None:
                    self.rotation = int(round(frame.rotation or 0))
                    out[k] = self._upright(frame.to_ndarray(format="rgb24"))
                if decoded >= last:
                    break
        except Exception as e:
            error = e
        if decoded < last:
            if error is not None and decoded < 0:
                raise self._fail(error)
            missing = self._missing(next(int(i) for i in unique if out[wanted[int(i)]] is None), decoded)
            if error is not None:
                missing = DecodeError(self.path, self.backend, f"{missing.reason} ({_first_line(error)})", True)
            raise missing
        return np.stack(out)

    def _upright(self, image: np.ndarray) -> np.ndarray:
        # FFmpeg's rotation is counter-clockwise degrees, as np.rot90's k; FFmpeg displays the same.
        k = (self.rotation // 90) % 4
        return np.ascontiguousarray(np.rot90(image, k)) if k else image

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


class TorchCodecReader(VideoReader):
    """torchcodec (PyTorch's FFmpeg decoder), only when installed and asked for by name: not a
    dependency. It seeks exactly and turns rotated frames itself; frame times, the count of frames
    with data and the declared count come from a PyAV demux, as for PyAVReader, so that cut files
    and VFR behave the same with every backend. It cannot read MPEG-TS (0.13: "no more frames")."""

    backend = "torchcodec"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        from torchcodec.decoders import VideoDecoder  # optional: needs FFmpeg's shared libraries
        try:
            self._decoder = VideoDecoder(path, dimension_order="NHWC", num_ffmpeg_threads=num_threads,
                                         seek_mode="exact")
            meta = self._decoder.metadata
            self.fps = _valid_fps(meta.average_fps)
            with av.open(path) as container:
                stream = container.streams.video[0]
                times = _packet_times(container, stream, self.fps)
                declared = stream.frames
        except Exception as e:  # torchcodec raises RuntimeError/ValueError, PyAV av.error.*
            raise self._fail(e) from None
        self.data_frames = min(len(times), meta.num_frames or len(times))
        self.num_frames = max(declared, self.data_frames)
        if self.data_frames <= 0:
            raise self._fail("no video frames")
        self._set_times(times[: self.data_frames])

    def _read(self, unique: np.ndarray) -> np.ndarray:
        try:
            return self._decoder.get_frames_at(unique.tolist()).data.numpy()  # [n, H, W, 3]
        except Exception as e:
            raise self._fail(e) from None

    def close(self) -> None:
        self._decoder = None


def probe_rotation(path: str) -> int:
    """The display rotation of a file's first frame, counter-clockwise degrees (0, 90, 180, -90...)."""
    with av.open(path) as container:
        for frame in container.decode(container.streams.video[0]):
            return int(round(frame.rotation or 0))
    return 0


def _remember_decord_failure(path: str, reason: str) -> None:
    if len(_DECORD_FAILED) >= _DECORD_FAILED_MAX:
        _DECORD_FAILED.pop(next(iter(_DECORD_FAILED)))
    _DECORD_FAILED[path] = reason


class _FallbackReader(VideoReader):
    """decord first; if decord fails to read frames of a file it opened (it has failed on valid files,
    e.g. some very narrow ones), the same request goes to PyAV before the video is called bad, and the
    file is remembered so that later opens go straight to PyAV. Missing data is not a decord failure:
    PyAV would find the same hole, so that error is raised as it is."""

    def __init__(self, primary: VideoReader, num_threads: int):
        super().__init__(primary.path)
        self._primary, self._fallback, self._threads = primary, None, num_threads
        self._copy_from(primary)

    def _copy_from(self, reader: VideoReader) -> None:
        self.backend = reader.backend
        self.num_frames, self.data_frames, self.fps = reader.num_frames, reader.data_frames, reader.fps
        self.frame_times, self.is_vfr = reader.frame_times, reader.is_vfr

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        if self._fallback is None:
            try:
                return self._primary.get_frames(indices)
            except DecodeError as first:
                if first.missing_data:
                    raise
                try:
                    self._fallback = PyAVReader(self.path, self._threads)
                except DecodeError as second:
                    raise DecodeError(self.path, "decord+pyav", f"decord: {first.reason}; pyav: {second.reason}") from None
                logger.debug("%s: decord failed (%s); reading with PyAV", self.path, first.reason)
                _remember_decord_failure(self.path, first.reason)
                self._primary.close()
                self._copy_from(self._fallback)
        return self._fallback.get_frames(indices)

    def _read(self, unique: np.ndarray) -> np.ndarray:  # never called: get_frames delegates
        raise NotImplementedError

    def close(self) -> None:
        self._primary.close()
        if self._fallback is not None:
            self._fallback.close()


# What decord is given, by the file's first bytes: ISO BMFF (mp4, mov, m4v: a box type at offset 4),
# Matroska/WebM (EBML), AVI (RIFF....AVI ) and FLV. Anything else goes to PyAV, which raises on what it
# cannot read: decord 0.6 can abort the whole process (a C++ std::terminate, seen under load on a text
# file named .mp4) instead of raising, and the HTML error pages and junk that video downloads leave
# behind are among such files. MPEG-TS (0x47 sync bytes) is not on the list either, whatever its name.
_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}


def _decord_container(path: str) -> bool:
    """Whether the file starts like a container decord reads right (one 12-byte read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return (head[4:8] in _BMFF_BOXES or head[:4] == b"\x1a\x45\xdf\xa3"
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI ") or head[:3] == b"FLV")


# Frames folders (data/frames.py writes them)
FRAMES_META = "frames.json"
FRAMES_FPS = 30.0
_FRAME_FILE = re.compile(r"img_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


class FramesReader(VideoReader):
    """A frames folder (`img_00001.jpg`, ... from 1; see data/frames.py) read like a video: the frame
    rate from its `frames.json`, else `FRAMES_FPS`."""
    backend = "frames"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        files = sorted((int(m.group(1)), name) for name in os.listdir(path) if (m := _FRAME_FILE.match(name)))
        if not files:
            raise DecodeError(path, self.backend, "a folder without img_NNNNN.jpg/.png frames")
        if [n for n, _ in files] != list(range(1, len(files) + 1)):
            missing = sorted(set(range(1, files[-1][0] + 1)) - {n for n, _ in files})[:5]
            raise DecodeError(path, self.backend, f"frames are not numbered 1..{len(files)} (missing {missing})")
        self._files = [os.path.join(path, name) for _, name in files]
        meta_path = os.path.join(path, FRAMES_META)
        fps = FRAMES_FPS
        if os.path.exists(meta_path):
            try:
                fps = float(json.loads(Path(meta_path).read_text())["fps"])
            except (ValueError, KeyError, TypeError) as e:
                raise DecodeError(path, self.backend, f"{FRAMES_META} is not readable ({e})") from None
        self.num_frames = self.data_frames = len(files)
        self.fps = self._avg_fps = fps
        self.frame_times = np.arange(len(files)) / fps

    def _read(self, unique: np.ndarray) -> np.ndarray:
        frames = []
        for i in unique.tolist():
            try:
                with Image.open(self._files[i]) as image:
                    frames.append(np.asarray(image.convert("RGB")))
            except OSError as e:
                raise DecodeError(self.path, self.backend, f"{self._files[i]}: {e}") from None
        if len({f.shape for f in frames}) > 1:
            raise DecodeError(self.path, self.backend, "frames of different sizes")
        return np.stack(frames)



def open_video(path: str | os.PathLike, backend: str = "auto", num_threads: int = 1) -> VideoReader:
    """Open a video with `backend` in {"auto", "decord", "pyav", "torchcodec"} (the last only when
    installed; never chosen by "auto").

    "auto" uses decord (PyAV where decord is not installed, for MPEG-TS, for files whose first bytes are
    no container decord reads, and for files decord already failed on in this process); whenever
    decord fails to open or read a file, PyAV tries before the video is called bad. Raises
    `DecodeError` (file and backend).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DecodeError(path, backend, "file not found")
    if os.path.isdir(path):  # a frames folder, whatever the backend
        return FramesReader(path)
    if os.path.getsize(path) == 0:
        raise DecodeError(path, backend, "empty file")
    have = available_backends()
    if backend == "auto":
        ext = os.path.splitext(path)[1].lower()
        pyav_only = ("decord" not in have or path in _DECORD_FAILED or ext in PYAV_EXTENSIONS
                     or not _decord_container(path))
        order = ["pyav"] if pyav_only else ["decord", "pyav"]
    elif backend in ("decord", "pyav"):
        if backend not in have:
            raise ImportError(f"video backend {backend!r} is not installed (installed: {have})")
        order = [backend]
    elif backend == "torchcodec":
        try:
            import torchcodec.decoders  # noqa: F401
        except ImportError:
            raise ImportError("video backend 'torchcodec' is not installed: it is optional "
                              "(pip install torchcodec, which needs FFmpeg's libraries)") from None
        order = [backend]
    else:
        raise ValueError(f"unknown video backend {backend!r}; choose 'auto', 'decord', 'pyav' or 'torchcodec'")
    errors = []
    readers = {"decord": DecordReader, "pyav": PyAVReader, "torchcodec": TorchCodecReader}
    for name in order:
        try:
            reader = readers[name](path, num_threads)
        except DecodeError as e:
            errors.append(e)
            if name == "decord" and len(order) > 1:
                _remember_decord_failure(path, e.reason)
            continue
        return _FallbackReader(reader, num_threads) if name == "decord" and len(order) > 1 else reader
    if len(errors) == 1:
        raise errors[0]
    raise DecodeError(path, "+".join(order), "; ".join(f"{e.backend}: {e.reason}" for e in errors))


def read_frames(path: str | os.PathLike, indices: Sequence[int], backend: str = "auto") -> np.ndarray:
    """Open, read `indices`, close: uint8 [len(indices), H, W, 3]."""
    with open_video(path, backend) as video:
        return video.get_frames(indices)
