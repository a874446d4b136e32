"""Decoding: both backends return the requested frames, agree with each other, and fail on bad files
with one exception type naming the file and the backend."""

from pathlib import Path

import numpy as np
import pytest

from hiera_video.data.decode import DecodeError, available_backends, open_video, read_frames
from videos import make_bad_videos, make_video, read_index

FIXTURE_VIDEOS = Path(__file__).parent / "fixtures" / "videos"

BACKENDS = [b for b in ("decord", "pyav") if b in available_backends()]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("decode")
    return {"mp4": make_video(d / "a.mp4", 40, fps=30), "webm": make_video(d / "a.webm", 40, fps=25, codec="vp9"),
            "mp4_12fps": make_video(d / "b.mp4", 30, fps=12)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["mp4", "webm"])
def test_requested_frames_in_requested_order(clips, backend, kind):
    wanted = [37, 0, 5, 5, 12, 39]  # unsorted, repeated, including both ends
    frames = read_frames(clips[kind], wanted, backend)
    assert frames.shape == (6, 32, 64, 3) and frames.dtype == np.uint8
    assert [read_index(f) for f in frames] == wanted


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind,frames,fps", [("mp4", 40, 30), ("webm", 40, 25), ("mp4_12fps", 30, 12)])
def test_frame_count_and_rate(clips, backend, kind, frames, fps):
    with open_video(clips[kind], backend) as video:
        assert video.num_frames == frames
        assert video.fps == pytest.approx(fps)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both decord and PyAV")
@pytest.mark.parametrize("kind", ["mp4", "webm"])
def test_backends_agree_on_pixels(clips, kind):
    idx = list(range(0, 40, 3))
    a = read_frames(clips[kind], idx, "decord").astype(int)
    b = read_frames(clips[kind], idx, "pyav").astype(int)
    assert np.abs(a - b).mean() < 1.0


def test_auto_uses_decord_for_webm_and_mp4(clips):
    for kind in ("webm", "mp4"):
        with open_video(clips[kind]) as v:
            assert v.backend == ("decord" if "decord" in BACKENDS else "pyav")


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return make_bad_videos(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("backend", ["auto"] + BACKENDS)
@pytest.mark.parametrize("kind,reason", [("missing", "file not found"), ("empty", "empty file"),
                                         ("not_video", ""), ("truncated_mp4", "")])
def test_bad_files_raise_decode_error_naming_file_and_backend(bad, backend, kind, reason):
    with pytest.raises(DecodeError) as e:
        with open_video(bad[kind], backend) as video:
            video.get_frames([0])
    assert e.value.path == bad[kind] and str(e.value).startswith(f"{bad[kind]}: cannot decode with ")
    assert reason in e.value.reason


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_webm_decodes_what_it_holds(bad, backend):
    with open_video(bad["truncated_webm"], backend) as video:
        assert 0 < video.num_frames < 60
        last = video.get_frames([video.num_frames - 1])
    assert last.shape[0] == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_indices(clips, backend):
    with open_video(clips["mp4"], backend) as video:
        with pytest.raises(DecodeError, match="outside the video's 40 frames"):
            video.get_frames([10, 40])


def test_auto_falls_back_to_pyav_when_decord_cannot_read(tmp_path):
    if "decord" not in BACKENDS:
        pytest.skip("needs decord")
    narrow = make_video(tmp_path / "narrow.mp4", 12, width=48)  # decord 0.6 opens it, then fails to read
    with pytest.raises(DecodeError):
        read_frames(narrow, [3], "decord")
    with open_video(narrow) as video:
        assert [read_index(f) for f in video.get_frames([3, 1])] == [3, 1]
        assert video.backend == "pyav"


def test_unknown_backend(clips):
    with pytest.raises(ValueError, match="unknown video backend 'opencv'"):
        open_video(clips["mp4"], "opencv")


def test_junk_under_a_video_name_never_reaches_decord(tmp_path, monkeypatch):
    """decord can abort the process on a non-video file (a C++ terminate, not an exception): files whose
    first bytes are no container it reads go to PyAV, which raises; real containers still go to decord."""
    from hiera_video.data import decode

    if "decord" not in available_backends():
        pytest.skip("decord is not installed here")
    opened = []

    class Spy(decode.DecordReader):
        def __init__(self, path, num_threads=1):
            opened.append(path)
            super().__init__(path, num_threads)

    monkeypatch.setattr(decode, "DecordReader", Spy)
    for name, data in (("page.mp4", b"<html><body>404</body></html>"), ("text.mp4", b"not a video"),
                       ("zeros.webm", bytes(4096))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(decode.DecodeError) as e:
            decode.open_video(tmp_path / name)
        assert e.value.backend == "pyav", (name, e.value.backend)
    assert opened == []
    for fixture in ("rotate_180.mp4", "vp9.webm"):
        decode.open_video(FIXTURE_VIDEOS / fixture).close()
    assert [Path(p).name for p in opened] == ["rotate_180.mp4", "vp9.webm"]
