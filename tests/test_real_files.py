"""Real-world files through the decoding layer, on the FFmpeg-made fixtures of tests/fixtures/videos/
(tests/fixtures/make_videos.sh): rotated phone clips, index-first mp4s cut short, variable frame rate,
VP9 WebM/MKV, MPEG-TS, AV1. Expectations come from the pixels designed into every frame (a white block
in the top-left corner, the frame's index in binary below it) and from FFmpeg's own display of them."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hiera_video
from hiera_video.data import decode, sampling
from hiera_video.data.datasets import ClipDataset, MultiViewDataset
from hiera_video.data.decode import DecodeError, PyAVReader, available_backends, open_video, read_frames
from hiera_video.data.lists import Entry, write_list
from conftest import load_tool
from videos import make_video

VIDEOS = Path(__file__).parent / "fixtures" / "videos"
BACKENDS = [b for b in ("decord", "pyav") if b in available_backends()]
# torchcodec is optional: tested where installed, never needed.
READERS = BACKENDS + (["torchcodec"] if importlib.util.find_spec("torchcodec") else [])
needs_decord = pytest.mark.skipif("decord" not in BACKENDS, reason="needs decord")


def fixture(name: str) -> str:
    return str(VIDEOS / name)


def frame_index(frame: np.ndarray) -> int:
    """The index drawn into an upright 96x64 fixture frame: 8 bands of 12 columns in rows 32-63."""
    grey = frame.astype(float).mean(-1)
    return sum(1 << b for b in range(8) if grey[32:, b * 12:(b + 1) * 12].mean() > 127)


def white_corner(frame: np.ndarray) -> str:
    """Which corner of frame 0 of a fixture holds the white block."""
    grey = frame.astype(float).mean(-1)
    h, w = grey.shape
    corners = {"top-left": grey[:8, :8], "top-right": grey[:8, w - 8:], "bottom-left": grey[h - 8:, :8],
               "bottom-right": grey[h - 8:, w - 8:]}
    white = [k for k, v in corners.items() if v.mean() > 200]
    assert len(white) == 1, {k: v.mean() for k, v in corners.items()}
    return white[0]


@pytest.fixture(autouse=True)
def _forget_decord_failures():
    decode._DECORD_FAILED.clear()
    yield
    decode._DECORD_FAILED.clear()


# ------------------------------------------------------------------------------------------------
# Rotation: display orientation with every backend
# ------------------------------------------------------------------------------------------------
# (file, where FFmpeg's display puts the corner block, np.rot90 turns that undo the display rotation).
# make_videos.sh checks the corner against FFmpeg's own decode when it writes the files.
ROTATED = [("rotate_cw90.mp4", "top-right", 1), ("rotate_180.mp4", "bottom-right", 2),
           ("rotate_ccw90.mp4", "bottom-left", -1)]


@pytest.mark.parametrize("backend", READERS)
@pytest.mark.parametrize("name,corner,undo", ROTATED)
def test_rotated_files_come_out_in_display_orientation(backend, name, corner, undo):
    frames = read_frames(fixture(name), [0, 7, 3], backend)
    quarter = undo in (1, -1)
    assert frames.shape == ((3, 96, 64, 3) if quarter else (3, 64, 96, 3))
    assert white_corner(frames[0]) == corner  # frame 0 has no index bits set: the block is alone
    assert [frame_index(np.rot90(f, undo)) for f in frames] == [0, 7, 3]


@pytest.mark.skipif(len(READERS) < 2, reason="needs two backends")
@pytest.mark.parametrize("name", [r[0] for r in ROTATED])
def test_rotated_files_give_the_same_pixels_through_every_backend(name):
    a = read_frames(fixture(name), range(12), READERS[0]).astype(int)
    for other in READERS[1:]:
        b = read_frames(fixture(name), range(12), other).astype(int)
        assert a.shape == b.shape and np.abs(a - b).mean() < 1.0, other  # measured: identical


# ------------------------------------------------------------------------------------------------
# Truncated files: never padded
# ------------------------------------------------------------------------------------------------
CUT = ["cut_faststart.mp4", "cut_faststart_at_packet.mp4"]  # index of 60 frames, data up to frame 29


@pytest.mark.parametrize("backend", ["auto"] + READERS)
@pytest.mark.parametrize("name", CUT)
def test_a_cut_file_reads_what_it_holds_and_raises_past_it(backend, name):
    try:
        video = open_video(fixture(name), backend)
    except DecodeError:
        assert backend == "decord" and name == "cut_faststart.mp4"  # decord cannot open this one at all
        return
    with video:
        assert video.num_frames == 60
        assert [frame_index(f) for f in video.get_frames([29, 0, 15])] == [29, 0, 15]
        for wanted in ([30], [59], [0, 45]):
            with pytest.raises(DecodeError, match=r"frame \d+ of 60 requested but the data ends after frame 29"):
                video.get_frames(wanted)


def test_pyav_reports_the_cut_even_when_it_finds_it_while_decoding(monkeypatch):
    # Without the demuxer's count (data_frames), the hole shows up only as the decoder runs dry.
    video = PyAVReader(fixture("cut_faststart.mp4"))
    video.data_frames = video.num_frames
    with video, pytest.raises(DecodeError, match="frame 40 of 60 requested but the data ends after frame 29"):
        video.get_frames([2, 40])


TINY = dict(num_frames=8, sampling_rate=2, target_fps=30.0, sampling_mode="stride", crop_size=64,
            mean=[0.45] * 3, std=[0.225] * 3)


def test_evaluation_reports_cut_files_as_unreadable(tmp_path):
    torch.manual_seed(0)
    hiera_video.save_model(hiera_video.create_model("hiera_test_8x64", num_classes=2), tmp_path / "model.pt",
                           data=TINY, classes=["a", "b"])
    make_video(tmp_path / "good.mp4", 40, height=32, width=64)
    for name in CUT:
        shutil.copy(fixture(name), tmp_path / name)
    write_list(tmp_path / "val.csv", [("good.mp4", 0)] + [(name, 1) for name in CUT])
    (tmp_path / "cfg.yaml").write_text(
        f"model: {{name: hiera_test_8x64, num_classes: 2}}\n"
        f"data: {{val_list: {tmp_path / 'val.csv'}, num_frames: 8, sampling_rate: 2, crop_size: 64, num_workers: 0}}\n"
        f"eval: {{num_temporal_clips: 2, num_spatial_crops: 1, batch_size: 2}}\noutput_dir: {tmp_path / 'out'}\n")
    code = load_tool("evaluate").main(["--cfg", str(tmp_path / "cfg.yaml"), "--ckpt", str(tmp_path / "model.pt"),
                                       "--out", str(tmp_path / "r")])
    assert code == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["num_videos"] == 3 and metrics["num_unreadable"] == 2 and metrics["num_views"] == 2
    assert sorted(Path(u["path"]).name for u in metrics["unreadable"]) == sorted(CUT)
    for u in metrics["unreadable"]:
        assert "requested but the data ends after frame 29" in u["error"]


def test_multiview_item_of_a_cut_file_has_no_views_and_an_error():
    item = MultiViewDataset([Entry(fixture(CUT[1]), 0, 1)], num_frames=8, sampling_rate=2, crop_size=32,
                            num_temporal_clips=3, num_spatial_crops=1)[0]
    assert len(item["video"]) == 0 and "data ends after frame 29" in item["error"]


@pytest.mark.parametrize("name", CUT)
def test_training_skips_a_cut_file_and_counts_it(tmp_path, name):
    good = make_video(tmp_path / "good.mp4", 40, height=32, width=64)
    # 16x4 at 30 fps spans 64 frames: a clip of the cut file always asks for frames past its data.
    ds = ClipDataset([Entry(fixture(name), 0, 1), Entry(good, 1, 2)], num_frames=16, sampling_rate=4,
                     crop_size=32, max_retries=50)
    item = ds[(0, 0)]
    assert item["bad"] and {p for p, _ in item["bad"]} == {fixture(name)}
    assert all("data ends after frame 29" in reason for _, reason in item["bad"])
    assert item["index"] == 1 and item["video"].shape == (1, 3, 16, 32, 32)


# ------------------------------------------------------------------------------------------------
# Variable frame rate: views span the right time
# ------------------------------------------------------------------------------------------------
def vfr_time(i: int) -> float:
    """When frame i of vfr.mp4 is shown (make_videos.sh): 10 fps for 1.5 s, then 50 fps."""
    return i / 10 if i < 15 else 1.5 + (i - 15) / 50


@pytest.mark.parametrize("backend", ["auto"] + READERS)
def test_vfr_is_detected_with_its_frame_times(backend):
    with open_video(fixture("vfr.mp4"), backend) as video:
        assert video.is_vfr and video.num_frames == 90
        assert video.fps == pytest.approx(30.0)  # 90 frames in 3 s
        np.testing.assert_allclose(video.frame_times, [vfr_time(i) for i in range(90)], atol=1e-6)


@pytest.mark.parametrize("backend", READERS)
def test_vfr_views_span_the_clip_duration(backend):
    with open_video(fixture("vfr.mp4"), backend) as video:
        clips = sampling.eval_clips(video.num_frames, video.fps, 5, num_samples=16, stride=4)
        spans, wanted = [], []
        for clip in clips:
            shown = [vfr_time(frame_index(f)) for f in video.get_frames(clip)]
            assert shown == sorted(shown)
            spans.append(shown[-1] - shown[0])
            wanted.append((clip[-1] - clip[0]) / video.fps)  # sampling's span in seconds
    # One frame of the 10 fps part (0.1 s) of slack. Indexing by frame count instead spans 1.3 to 2.5 s.
    assert wanted == pytest.approx([2.1] * 5, abs=0.01)
    assert spans == pytest.approx(wanted, abs=0.1), spans


@pytest.mark.parametrize("backend,name,n", [(b, name, 40) for b in READERS for name in ("vp9.webm", "vp9.mkv")]
                         + [("auto", "h264.ts", 40)])
def test_constant_rate_files_map_nominal_indices_to_themselves(backend, name, n):
    with open_video(fixture(name), backend) as video:
        assert not video.is_vfr
        assert video.frame_at_nominal(np.arange(n)).tolist() == list(range(n))
        assert [frame_index(f) for f in video.get_frames(range(n))] == list(range(n))


def test_a_jittery_constant_rate_is_not_vfr():
    video = PyAVReader(fixture("vp9.webm"))
    with video:
        jitter = np.where(np.arange(40) % 2, 0.004, -0.004)  # +-4 ms on 40 ms frames
        video._set_times(np.arange(40) / 25 + jitter)
        assert not video.is_vfr and video.fps == pytest.approx(25.0)


# ------------------------------------------------------------------------------------------------
# Backend choice
# ------------------------------------------------------------------------------------------------
@needs_decord
@pytest.mark.parametrize("name", ["vp9.webm", "vp9.mkv"])
def test_webm_and_mkv_go_to_decord_and_match_pyav_exactly(name):
    with open_video(fixture(name)) as video:
        assert video.backend == "decord"
        a = video.get_frames(range(40))
    assert [frame_index(f) for f in a] == list(range(40))
    assert np.array_equal(a, read_frames(fixture(name), range(40), "pyav"))


class CountingDecord(decode.DecordReader):
    opened = 0

    def __init__(self, *args, **kwargs):
        type(self).opened += 1
        super().__init__(*args, **kwargs)


@needs_decord
def test_decord_misreads_mpegts_which_is_why_it_never_gets_it():
    # decord 0.6 opens the file and returns other frames than asked, without an error (measured: 10
    # positions later). If this starts failing, decord reads MPEG-TS right and PYAV_EXTENSIONS can shrink.
    frames = read_frames(fixture("h264.ts"), [0, 5, 25], "decord")
    assert [frame_index(f) for f in frames] != [0, 5, 25]


@pytest.mark.parametrize("copy_as", ["h264.ts", "h264_renamed.mp4"])
def test_mpegts_goes_to_pyav_without_trying_decord(tmp_path, monkeypatch, copy_as):
    path = tmp_path / copy_as
    shutil.copy(fixture("h264.ts"), path)  # recognised by its sync bytes, whatever its name
    CountingDecord.opened = 0
    monkeypatch.setattr(decode, "DecordReader", CountingDecord)
    for _ in range(2):
        with open_video(path) as video:
            assert video.backend == "pyav"
            assert [frame_index(f) for f in video.get_frames([39, 0, 20])] == [39, 0, 20]
    assert CountingDecord.opened == 0


@needs_decord
def test_a_file_decord_cannot_open_switches_to_pyav_once(monkeypatch):
    CountingDecord.opened = 0
    monkeypatch.setattr(decode, "DecordReader", CountingDecord)
    for _ in range(3):
        with open_video(fixture("av1.mp4")) as video:  # decord 0.6 cannot open AV1
            assert video.backend == "pyav"
            assert [frame_index(f) for f in video.get_frames([19, 4])] == [19, 4]
    assert CountingDecord.opened == 1


@needs_decord
def test_a_file_decord_cannot_read_switches_to_pyav_once(tmp_path, monkeypatch):
    narrow = make_video(tmp_path / "narrow.mp4", 12, width=48)  # decord 0.6 opens it, then fails to read
    CountingDecord.opened = 0
    monkeypatch.setattr(decode, "DecordReader", CountingDecord)
    for _ in range(3):
        with open_video(narrow) as video:
            video.get_frames([3])
            assert video.backend == "pyav"
    assert CountingDecord.opened == 1


@pytest.mark.parametrize("name", ["vp9.webm", "rotate_cw90.mp4", "av1.mp4", "h264.ts"])
def test_a_pyav_reader_serves_many_reads(name):
    undo = 1 if name == "rotate_cw90.mp4" else 0
    with PyAVReader(fixture(name), num_threads=2) as video:
        for wanted in ([5, 1], [0, 9, 2], [11]):
            assert [frame_index(np.rot90(f, undo)) for f in video.get_frames(wanted)] == wanted


def test_torchcodec_is_used_only_when_asked_for(monkeypatch):
    assert "torchcodec" not in available_backends()  # so "auto" and the tools' defaults never pick it
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # as if not installed
    with pytest.raises(ImportError, match="'torchcodec' is not installed: it is optional"):
        open_video(fixture("vp9.webm"), "torchcodec")
