"""Test videos whose frames say which frame they are, and broken files of every kind."""

from pathlib import Path

import numpy as np

from hiera_video.synthetic.video import write_video

BITS = 8


def index_frame(i: int, height: int = 32, width: int = 64) -> np.ndarray:
    """A frame showing `i` in binary: BITS vertical bands, white for a set bit. Survives lossy coding.
    (64 wide by default: decord 0.6 fails to read frames 48 pixels wide.)"""
    frame = np.zeros((height, width, 3), np.uint8)
    band = width // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            frame[:, b * band:(b + 1) * band] = 255
    return frame


def read_index(frame: np.ndarray) -> int:
    band = frame.shape[1] // BITS
    return sum(1 << b for b in range(BITS) if frame[:, b * band:(b + 1) * band].mean() > 127)


def make_video(path, num_frames: int = 40, fps: int = 30, codec: str = "h264", height: int = 32,
               width: int = 64, gop: int | None = 8) -> str:
    frames = np.stack([index_frame(i, height, width) for i in range(num_frames)])
    return str(write_video(path, frames, fps, codec=codec, gop=gop))


def make_bad_videos(folder: Path) -> dict[str, str]:
    """One file of each bad kind: {kind: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    good_mp4 = Path(make_video(folder / "src.mp4", 60))
    good_webm = Path(make_video(folder / "src.webm", 60, codec="vp9"))
    bad = {"missing": str(folder / "missing.mp4"), "empty": str(folder / "empty.mp4"),
           "not_video": str(folder / "notes.mp4"), "truncated_mp4": str(folder / "cut.mp4"),
           "truncated_webm": str(folder / "cut.webm")}
    Path(bad["empty"]).write_bytes(b"")
    Path(bad["not_video"]).write_text("this is not a video\n" * 50)
    Path(bad["truncated_mp4"]).write_bytes(good_mp4.read_bytes()[: good_mp4.stat().st_size * 6 // 10])
    Path(bad["truncated_webm"]).write_bytes(good_webm.read_bytes()[: good_webm.stat().st_size * 6 // 10])
    good_mp4.unlink()
    good_webm.unlink()
    return bad
