"""Frames folders give the same clips as the video they came from: training clips (every random draw)
and every test view, through `hiera-video extract-frames --format png` (lossless, so the folder holds
exactly the decoded pixels) and the rawframes list it writes."""

import json

import pytest
import torch

from hiera_video.data.datasets import ClipDataset, MultiViewDataset
from hiera_video.data.decode import DecodeError, open_video
from hiera_video.data.lists import Entry, parse_line, read_list
from videos import make_video


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    from hiera_video.commands import extract_frames
    d = tmp_path_factory.mktemp("frames")
    videos = [make_video(d / "videos" / f"c{i}" / f"v{i}.mp4", 70 + 9 * i, fps=24 + 6 * i, height=48, width=64)
              for i in range(2)]
    lst = d / "videos" / "train.csv"
    lst.write_text("c0/v0.mp4 3\nc1/v1.mp4 1\n")
    assert extract_frames.main([str(lst), "--out", str(d / "frames"), "--format", "png", "--workers", "1"]) == 0
    return videos, d / "frames"


def test_the_rawframes_list_names_each_folder_with_its_frame_count(extracted):
    videos, out = extracted
    assert (out / "train.csv").read_text() == "c0/v0 70 3\nc1/v1 79 1\n"
    assert parse_line("c0/v0 70 3") == ("c0/v0", 3) and parse_line("a b.mp4 3") == ("a b.mp4", 3)
    entries = read_list(out / "train.csv")
    assert [(e.path, e.label) for e in entries] == [(str(out / "c0/v0"), 3), (str(out / "c1/v1"), 1)]
    meta = json.loads((out / "c1/v1/frames.json").read_text())
    assert meta["num_frames"] == 79 and meta["fps"] == pytest.approx(30)


def test_a_frames_folder_reads_like_its_video(extracted):
    videos, out = extracted
    with open_video(videos[1]) as video, open_video(out / "c1/v1") as frames:
        assert (frames.num_frames, frames.fps) == (video.num_frames, pytest.approx(video.fps))
        idx = [0, 5, 5, 78, 40]
        assert (frames.get_frames(idx) == video.get_frames(idx)).all()


@pytest.mark.parametrize("mode", ["stride", "segment"])
def test_training_clips_are_the_same_from_frames_and_from_video(extracted, mode):
    videos, out = extracted
    kw = dict(num_frames=8, sampling_rate=3, sampling_mode=mode, crop_size=32, scale=(0.3, 1.0))
    from_video = ClipDataset([Entry(v, 0, i + 1) for i, v in enumerate(videos)], **kw)
    from_frames = ClipDataset(read_list(out / "train.csv"), **kw)
    for key in [(0, 1), (1, 2), (1, 3)]:
        assert torch.equal(from_video[key]["video"], from_frames[key]["video"])


@pytest.mark.parametrize("views", [(1, 1), (2, 3), (5, 3)])
def test_every_test_view_is_the_same_from_frames_and_from_video(extracted, views):
    videos, out = extracted
    kw = dict(num_frames=8, sampling_rate=3, crop_size=32, num_temporal_clips=views[0], num_spatial_crops=views[1])
    from_video = MultiViewDataset([Entry(v, 0, i + 1) for i, v in enumerate(videos)], **kw)
    from_frames = MultiViewDataset(read_list(out / "train.csv"), **kw)
    for i in range(2):
        a, b = from_video[i], from_frames[i]
        assert a["error"] is None and b["error"] is None
        assert torch.equal(a["video"], b["video"]) and torch.equal(a["views"], b["views"])


def test_a_broken_frames_folder_is_an_unreadable_video(tmp_path, extracted):
    _, out = extracted
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "img_00001.png").write_bytes((out / "c0/v0/img_00001.png").read_bytes())
    (broken / "img_00003.png").write_bytes((out / "c0/v0/img_00003.png").read_bytes())
    with pytest.raises(DecodeError, match=r"not numbered 1..2 \(missing \[2\]\)"):
        open_video(broken)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DecodeError, match="without img_NNNNN"):
        open_video(tmp_path / "empty")


def test_extraction_continues_where_it_stopped(extracted, tmp_path):
    """A folder with frames.json is complete and is not written again."""
    from hiera_video.data.frames import extract_one
    videos, out = extracted
    stamp = (out / "c0/v0/img_00001.png").stat().st_mtime_ns
    assert extract_one((videos[0], str(out / "c0/v0"), "png", 95)) == 70
    assert (out / "c0/v0/img_00001.png").stat().st_mtime_ns == stamp


def test_check_videos_reads_frames_folders(extracted, tmp_path):
    from hiera_video.data.check import inspect_video
    _, out = extracted
    assert inspect_video(str(out / "c0/v0")) == (None, [])
    broken = tmp_path / "cut"
    broken.mkdir()
    (broken / "img_00001.png").write_bytes(b"not a picture")
    reason, _ = inspect_video(str(broken))
    assert reason is not None and "img_00001.png" in reason
