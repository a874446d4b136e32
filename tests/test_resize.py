"""tools/resize_videos.py: short side, keyframe interval, resumability, failures reported."""

import av
import pytest

from hiera_video.data.resize import resize_tree, resize_video, scaled_size
from videos import make_video, read_index


@pytest.mark.parametrize("w,h,short,expected", [(640, 480, 320, (426, 320)), (480, 640, 320, (320, 426)),
                                                (64, 32, 16, (32, 16)), (171, 128, 64, (86, 64))])
def test_scaled_size_keeps_aspect_and_even_sides(w, h, short, expected):
    assert scaled_size(w, h, short) == expected


def test_resize_video_short_side_gop_and_frames(tmp_path):
    src = make_video(tmp_path / "in.webm", 40, fps=25, codec="vp9", height=64, width=128)
    assert resize_video(src, tmp_path / "out" / "in.mp4", short_side=32, gop=8) == (64, 32)
    with av.open(str(tmp_path / "out" / "in.mp4")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (64, 32)
        assert s.frames == 40 and float(s.average_rate) == 25
        keyframes = [i for i, p in enumerate(c.demux(s)) if p.size and p.is_keyframe]
    assert keyframes == [0, 8, 16, 24, 32]


def test_resize_tree_resumes_and_reports_failures(tmp_path):
    src = tmp_path / "src"
    make_video(src / "a" / "x.mp4", 20, height=64, width=128)
    make_video(src / "y.webm", 20, codec="vp9", height=64, width=128)
    (src / "broken.mp4").write_text("not a video")
    first = resize_tree(src, tmp_path / "dst", short_side=32, workers=2, progress=False)
    assert first.done == 2 and first.skipped == 0
    assert [p for p, _ in first.failed] == [str(src / "broken.mp4")]
    assert (tmp_path / "dst" / "a" / "x.mp4").exists() and (tmp_path / "dst" / "y.mp4").exists()
    assert not list((tmp_path / "dst").rglob("*.tmp*"))  # no partial files left
    second = resize_tree(src, tmp_path / "dst", short_side=32, workers=1, progress=False)
    assert second.done == 0 and second.skipped == 2


def test_resized_frames_keep_their_order(tmp_path):
    src = make_video(tmp_path / "in.mp4", 24, height=64, width=128)
    resize_video(src, tmp_path / "out.mp4", short_side=64, gop=4)
    with av.open(str(tmp_path / "out.mp4")) as c:
        ids = [read_index(f.to_ndarray(format="rgb24")) for f in c.decode(c.streams.video[0])]
    assert ids == list(range(24))
