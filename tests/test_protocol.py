"""End to end: the datasets give exactly the reference loader's frames and views.

Two kinds of input:
* real H.264 files whose frames show their own number as 9 horizontal bands (white = bit set), read
  back through decode.py, so that the frame count and rate the decoder reports take part;
* a reader stub whose frames carry exact ramps (R = x, G = y, B = frame number), for the spatial
  geometry of the test views, where codec noise would hide a one-pixel offset.
Expected frame indices come from the hand-computed table in test_sampling.py.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from hiera_video.data import datasets
from hiera_video.data.datasets import ClipDataset, MultiViewDataset
from hiera_video.data.lists import Entry
from hiera_video.synthetic.video import write_video
from test_sampling import LONG_VIDEOS, SHORT_VIDEOS

BITS, H, W, TOP, BAND_ROWS = 9, 144, 256, 16, 112  # bands fill rows 16..127; margins survive the 1-crop


def band_frame(i: int) -> np.ndarray:
    frame = np.zeros((H, W, 3), np.uint8)
    for b in range(BITS):
        if (i >> b) & 1:
            frame[TOP + b * BAND_ROWS // BITS:TOP + (b + 1) * BAND_ROWS // BITS] = 255
    return frame


def read_bands(view: torch.Tensor, scale: float, offset: int) -> list[int]:
    """Frame numbers of a uint8 view [C, T, h, w] whose rows are frame rows * `scale` - `offset`."""
    ids = []
    for t in range(view.shape[1]):
        value = 0
        for b in range(BITS):
            centre = TOP + (b + 0.5) * BAND_ROWS / BITS
            row = int((centre + 0.5) * scale - 0.5 - offset + 0.5)
            if view[:, t, row].float().mean() > 127:
                value |= 1 << b
        ids.append(value)
    return ids


@pytest.fixture(scope="module")
def band_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("protocol")
    out = {}
    for n, fps in [(300, 30), (300, Fraction(30000, 1001)), (250, 25), (40, 30)]:
        frames = np.stack([band_frame(i) for i in range(n)])
        out[(n, round(float(fps), 2))] = str(write_video(d / f"v{n}_{float(fps):.2f}.mp4", frames, fps, gop=8))
    return out


def expected_views(n, fps, views):
    for row in LONG_VIDEOS:
        if row[:3] == (n, fps, views):
            return [[s + o for o in row[4]] for s in row[3]]
    for m, f, frames in SHORT_VIDEOS:
        if (m, f) == (n, fps):
            return [frames] * views
    raise KeyError((n, fps, views))


@pytest.mark.parametrize("n,fps,views,crops", [(300, 30, 5, 3), (300, 29.97, 5, 1), (250, 25, 1, 1),
                                               (40, 30, 3, 3)])
def test_multi_view_frames_from_real_files(band_videos, n, fps, views, crops):
    ds = MultiViewDataset([Entry(band_videos[(n, fps)], 0, 1)], num_frames=16, sampling_rate=4, crop_size=64,
                          num_temporal_clips=views, num_spatial_crops=crops)
    item = ds[0]
    assert item["error"] is None and item["video"].shape == (views * crops, 3, 16, 64, 64)
    # 3 crops: short side 144 -> 64; 1 crop: 144 -> round(64 * 256 / 224) = 73, centre rows from ceil(9 / 2)
    scale, offset = (64 / 144, 0) if crops == 3 else (73 / 144, 5)
    got = [read_bands(v, scale, offset) for v in item["video"]]
    want = [clip for clip in expected_views(n, fps, views) for _ in range(crops)]
    assert got == want


@pytest.mark.parametrize("n,fps", [(300, 29.97), (250, 25), (40, 30)])
def test_training_frames_from_real_files_are_the_formula_at_the_drawn_start(band_videos, n, fps):
    # Whole frame kept (scale 1, the frame's own aspect), squeezed to 64 x 64: rows scale by 64 / 144.
    ds = ClipDataset([Entry(band_videos[(n, fps)], 0, 1)], num_frames=16, sampling_rate=4, crop_size=64,
                     scale=(1.0, 1.0), ratio=(W / H, W / H), hflip=True)
    size = 4 * 16 / 30 * fps
    delta = max(n - size, 0)
    for seed in range(4):
        # the item's first draw is the clip start: uniform(0, delta)
        start = float(torch.rand((), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)) * delta
        want = [min(math.floor(start + k * (size - 1) / 15 + 1e-9), n - 1) for k in range(16)]
        assert read_bands(ds[(0, seed)]["video"][0], 64 / 144, 0) == want


class RampReader:
    """Stands in for decode.open_video: frame t is R = x, G = y, B = t, modulo 256 (exact, no codec)."""

    def __init__(self, num_frames, fps, height, width):
        self.num_frames, self.fps, self.height, self.width = num_frames, fps, height, width

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def get_frames(self, indices):
        idx = np.asarray(indices)
        frames = np.empty((len(idx), self.height, self.width, 3), np.uint8)  # [T, H, W, 3]
        frames[..., 0] = (np.arange(self.width) % 256)[None, None, :]
        frames[..., 1] = (np.arange(self.height) % 256)[None, :, None]
        frames[..., 2] = (idx % 256)[:, None, None]
        return frames


@pytest.fixture
def ramp(monkeypatch):
    def use(num_frames, fps, height, width):
        monkeypatch.setattr(datasets, "open_video", lambda path, backend: RampReader(num_frames, fps, height, width))
    return use


@pytest.mark.parametrize("n,fps,views", [(row[0], row[1], row[2]) for row in LONG_VIDEOS if row[0] <= 256])
def test_multi_view_frames_with_a_stub_reader(ramp, n, fps, views):
    ramp(n, fps, 64, 96)
    item = MultiViewDataset([Entry("x.mp4", 0, 1)], crop_size=32, num_temporal_clips=views,
                            num_spatial_crops=3)[0]
    got = [v[2, :, 0, 0].tolist() for v in item["video"]]
    assert got == [clip for clip in expected_views(n, fps, views) for _ in range(3)]


def test_one_crop_view_is_the_centre_of_the_256_short_side(ramp):
    # 240 x 320 frames, crop 224: short side -> 256, long side 320 * 256 / 240 = 341.33 -> 341;
    # centre box rows ceil(32 / 2) = 16.., columns ceil(117 / 2) = 59..
    ramp(64, 30, 240, 320)
    (view,) = MultiViewDataset([Entry("x.mp4", 0, 1)], crop_size=224, num_temporal_clips=1,
                               num_spatial_crops=1)[0]["video"]
    assert view.shape == (3, 16, 224, 224)
    # a linear ramp stays linear through the resize: view pixel j holds frame coordinate
    # (j + offset + 0.5) * old / new - 0.5 (away from the borders)
    cols = view[0, 0, 100, 20:200].double()
    rows = view[1, 0, 20:200, 100].double()
    j = torch.arange(20, 200, dtype=torch.float64)
    assert torch.allclose(cols, (j + 59 + 0.5) * 320 / 341 - 0.5, atol=0.6)
    assert torch.allclose(rows, (j + 16 + 0.5) * 240 / 256 - 0.5, atol=0.6)


def test_one_crop_short_side_is_configurable(ramp):
    # test_short_side = crop: the old behaviour, the whole short side kept
    ramp(64, 30, 240, 320)
    (view,) = MultiViewDataset([Entry("x.mp4", 0, 1)], crop_size=224, num_temporal_clips=1, num_spatial_crops=1,
                               test_short_side=224)[0]["video"]
    rows = view[1, 0, 20:200, 100].double()
    j = torch.arange(20, 200, dtype=torch.float64)
    assert torch.allclose(rows, (j + 0.5) * 240 / 224 - 0.5, atol=0.6)


def test_three_crop_views_are_left_centre_right_of_the_crop_sized_short_side(ramp):
    # short side 240 -> 224, long side 320 * 224 / 240 = 298.67 -> 299; left offsets 0, ceil(75 / 2) = 38, 75
    ramp(64, 30, 240, 320)
    views = MultiViewDataset([Entry("x.mp4", 0, 1)], crop_size=224, num_temporal_clips=1,
                             num_spatial_crops=3)[0]["video"]
    j = torch.arange(20, 150, dtype=torch.float64)  # R = x only up to x = 255 (uint8)
    for view, left in zip(views, (0, 38, 75)):
        assert torch.allclose(view[0, 0, 100, 20:150].double(), (j + left + 0.5) * 320 / 299 - 0.5, atol=0.6)
        assert torch.allclose(view[1, 0, 20:150, 100].double(), (j + 0.5) * 240 / 224 - 0.5, atol=0.6)


@pytest.mark.parametrize("order", ["before_crop", "after_crop"])
def test_randaugment_order(ramp, order):
    # A RandAugment stand-in that records the size it sees: the decoded frames before the crop, the
    # crop after it.
    seen = []

    def record(clip, generator=None):
        seen.append(tuple(clip.shape[-2:]))
        return clip

    ramp(100, 30, 120, 160)
    ds = ClipDataset([Entry("x.mp4", 0, 1)], crop_size=32, randaug=record, randaug_order=order, num_repeats=2)
    assert ds[(0, 5)]["video"].shape == (2, 3, 16, 32, 32)
    assert seen == ([(120, 160)] * 2 if order == "before_crop" else [(32, 32)] * 2)


def test_training_frames_resized_to_the_train_short_side_before_randaugment(ramp):
    seen = []
    ramp(100, 30, 240, 320)
    ds = ClipDataset([Entry("x.mp4", 0, 1)], crop_size=32, short_side=256, num_repeats=2,
                     randaug=lambda clip, generator=None: seen.append(tuple(clip.shape[-2:])) or clip)
    assert ds[(0, 1)]["video"].shape == (2, 3, 16, 32, 32)
    assert seen == [(256, 341)] * 2  # 320 * 256 / 240 = 341.3
