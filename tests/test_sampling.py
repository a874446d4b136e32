"""Frame indices against the PySlowFast / MAE-ST Kinetics loader and PySlowFast's SSv2 loader.

Every expected index below was worked out by hand from the reference's formulas (see
hiera_video/data/sampling.py), not by running our code:
  clip_size = 4 * 16 / 30 * fps, delta = max(N - clip_size, 0),
  test view i of n starts at i * floor(delta / (n - 1)) (n = 1: floor(delta / 2)),
  frames = trunc(clamp(linspace(start, start + clip_size - 1, 16), 0, N - 1)).
The offsets k * (clip_size - 1) / 15 used for each frame rate:
  30 fps (size 64, step 4.2):        0 4.2 8.4 12.6 16.8 21 25.2 29.4 33.6 37.8 42 46.2 50.4 54.6 58.8 63
  29.97 fps (63.936, step 4.19573):  ... 20.979 (5) ... 41.957 (10) ... 62.936 (15): one frame less there
  25 fps (53.333, step 3.48889):     0 3.49 6.98 10.47 13.96 17.44 20.93 24.42 27.91 31.40 34.89 ... 52.33
  24 fps (51.2, step 3.34667):       0 3.35 6.69 10.04 13.39 16.73 20.08 23.43 26.77 30.12 33.47 ... 50.2
  60 fps (128, step 8.46667):        0 8.47 16.93 25.4 33.87 42.33 50.8 59.27 67.73 76.2 84.67 ... 127
  15 fps (32, step 2.06667):         0 2.07 4.13 6.2 8.27 10.33 12.4 14.47 16.53 18.6 20.67 ... 31
"""

import math

import numpy as np
import pytest
import torch

from hiera_video.data import sampling


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


OFF_30 = [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 42, 46, 50, 54, 58, 63]
OFF_2997 = [0, 4, 8, 12, 16, 20, 25, 29, 33, 37, 41, 46, 50, 54, 58, 62]
OFF_25 = [0, 3, 6, 10, 13, 17, 20, 24, 27, 31, 34, 38, 41, 45, 48, 52]
OFF_24 = [0, 3, 6, 10, 13, 16, 20, 23, 26, 30, 33, 36, 40, 43, 46, 50]
OFF_60 = [0, 8, 16, 25, 33, 42, 50, 59, 67, 76, 84, 93, 101, 110, 118, 127]
OFF_15 = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 31]

# (frame count, fps, views) -> start of each view. Integer starts, so each view is start + offsets.
#   30 fps, 300 frames: delta 236, 5 views gap floor(59) = 59, 1 view floor(118) = 118
#   29.97, 300: delta 236.064, gap floor(59.016) = 59, centre floor(118.032) = 118
#   25, 250: delta 196.667, gap floor(49.17) = 49, centre floor(98.33) = 98
#   24, 240: delta 188.8, gap floor(47.2) = 47, centre floor(94.4) = 94
#   60, 600: delta 472, gap 118, centre 236
#   15, 150: delta 118, gap floor(29.5) = 29 (the last view ends 2 frames before the end), centre 59
#   30, 300, 10 views (MAE-ST's test default): gap floor(236 / 9) = floor(26.2) = 26; 3 views: 118
#   30, 165: delta 101, centre floor(50.5) = 50
LONG_VIDEOS = [
    (300, 30, 5, [0, 59, 118, 177, 236], OFF_30),
    (300, 30, 1, [118], OFF_30),
    (300, 30, 3, [0, 118, 236], OFF_30),
    (300, 30, 10, [0, 26, 52, 78, 104, 130, 156, 182, 208, 234], OFF_30),
    (165, 30, 1, [50], OFF_30),
    (300, 29.97, 5, [0, 59, 118, 177, 236], OFF_2997),
    (300, 29.97, 1, [118], OFF_2997),
    (250, 25, 5, [0, 49, 98, 147, 196], OFF_25),
    (250, 25, 1, [98], OFF_25),
    (240, 24, 5, [0, 47, 94, 141, 188], OFF_24),
    (240, 24, 1, [94], OFF_24),
    (600, 60, 5, [0, 118, 236, 354, 472], OFF_60),
    (600, 60, 1, [236], OFF_60),
    (150, 15, 5, [0, 29, 58, 87, 116], OFF_15),
    (150, 15, 1, [59], OFF_15),
]


@pytest.mark.parametrize("n,fps,views,starts,offsets", LONG_VIDEOS)
def test_eval_views_are_the_reference_indices(n, fps, views, starts, offsets):
    clips = sampling.eval_clips(n, fps, views, 16, 4)
    assert [c.tolist() for c in clips] == [[s + o for o in offsets] for s in starts]
    assert all(c.dtype == np.int64 for c in clips)


def test_some_views_written_out_in_full():
    # the same table, spelled out for the views whose frames are easiest to misread
    assert sampling.eval_clips(300, 30, 5)[1].tolist() == [
        59, 63, 67, 71, 75, 80, 84, 88, 92, 96, 101, 105, 109, 113, 117, 122]
    assert sampling.eval_clips(300, 29.97, 5)[4].tolist() == [
        236, 240, 244, 248, 252, 256, 261, 265, 269, 273, 277, 282, 286, 290, 294, 298]
    assert sampling.eval_clips(250, 25, 5)[4].tolist() == [
        196, 199, 202, 206, 209, 213, 216, 220, 223, 227, 230, 234, 237, 241, 244, 248]
    assert sampling.eval_clips(240, 24, 1)[0].tolist() == [
        94, 97, 100, 104, 107, 110, 114, 117, 120, 124, 127, 130, 134, 137, 140, 144]


# Exact fit and shorter than a clip: delta = 0, every view starts at 0, indices clamp to N - 1.
SHORT_VIDEOS = [
    (64, 30, [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 42, 46, 50, 54, 58, 63]),           # exact fit
    (40, 30, [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 39, 39, 39, 39, 39, 39]),           # shorter
    (53, 25, [0, 3, 6, 10, 13, 17, 20, 24, 27, 31, 34, 38, 41, 45, 48, 52]),           # 53 < 53.33: 52.33 -> 52
    (51, 24, [0, 3, 6, 10, 13, 16, 20, 23, 26, 30, 33, 36, 40, 43, 46, 50]),           # 51 < 51.2
    (128, 60, [0, 8, 16, 25, 33, 42, 50, 59, 67, 76, 84, 93, 101, 110, 118, 127]),     # exact fit
    (20, 15, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 19, 19, 19, 19, 19, 19]),             # shorter
    (64, 29.97, [0, 4, 8, 12, 16, 20, 25, 29, 33, 37, 41, 46, 50, 54, 58, 62]),        # delta 0.064 -> 0
]


@pytest.mark.parametrize("n,fps,expected", SHORT_VIDEOS)
@pytest.mark.parametrize("views", [1, 3, 5])
def test_exact_fit_and_short_videos(n, fps, expected, views):
    assert [c.tolist() for c in sampling.eval_clips(n, fps, views)] == [expected] * views


def test_eight_by_eight_demo_sampling():
    # 8 frames 8 apart at 30 fps: the same 64 frames, step 63 / 7 = 9 exactly
    (clip,) = sampling.eval_clips(80, 30, 1, num_samples=8, stride=8)
    assert clip.tolist() == [8, 17, 26, 35, 44, 53, 62, 71]  # delta 16, start 8


@pytest.mark.parametrize("n,fps", [(300, 30), (300, 29.97), (250, 25), (240, 24), (600, 60), (150, 15),
                                   (40, 30)])
def test_train_clip_is_the_formula_at_the_drawn_start(n, fps):
    size = 4 * 16 / 30 * fps
    delta = max(n - size, 0)
    for seed in range(20):
        u = float(torch.rand((), generator=gen(seed), dtype=torch.float64))  # the one draw train_clip makes
        start = u * delta
        expected = [min(math.floor(start + k * (size - 1) / 15 + 1e-9), n - 1) for k in range(16)]
        assert sampling.train_clip(n, fps, 16, 4, generator=gen(seed)).tolist() == expected


def test_train_clip_start_covers_the_whole_room():
    n, fps = 200, 30  # delta 136
    starts = [sampling.train_clip(n, fps, generator=gen(s))[0] for s in range(400)]
    assert min(starts) < 10 and max(starts) > 136 - 10 and max(starts) <= 136


def test_train_clip_of_a_short_video_starts_at_zero_and_repeats_the_last_frame():
    idx = sampling.train_clip(20, 30, 16, 4, generator=gen(3))
    assert idx.tolist() == [0, 4, 8, 12, 16] + [19] * 11


def test_train_clip_is_reproducible_with_a_generator():
    assert np.array_equal(sampling.train_clip(500, 30, generator=gen(7)), sampling.train_clip(500, 30, generator=gen(7)))


# SSv2 (PySlowFast): segment bounds round(k * (N - 1) / 16), half to even.
#   N = 50: (N - 1) / 16 = 3.0625; k * 3.0625 = 0 3.06 6.13 9.19 12.25 15.31 18.38 21.44 24.5 27.56 30.63
#   33.69 36.75 39.81 42.88 45.94 49 -> 0 3 6 9 12 15 18 21 24 28 31 34 37 40 43 46 49 (24.5 -> 24)
SSV2_50_LO = [0, 3, 6, 9, 12, 15, 18, 21, 24, 28, 31, 34, 37, 40, 43, 46]
SSV2_50_HI = [3, 6, 9, 12, 15, 18, 21, 24, 28, 31, 34, 37, 40, 43, 46, 49]
#   N = 7: k * 0.375 = 0 .375 .75 1.125 1.5 1.875 2.25 2.625 3 3.375 3.75 4.125 4.5 4.875 5.25 5.625 6
#   -> 0 0 1 1 2 2 2 3 3 3 4 4 4 5 5 6 6 (1.5 -> 2, 4.5 -> 4)
SSV2_7_LO = [0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6]
SSV2_7_HI = [0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6]


def test_segment_bounds_are_the_reference_ones():
    assert [b.tolist() for b in sampling.segment_bounds(50, 16)] == [SSV2_50_LO, SSV2_50_HI]
    assert [b.tolist() for b in sampling.segment_bounds(7, 16)] == [SSV2_7_LO, SSV2_7_HI]


def test_one_segment_view_takes_each_segments_midpoint():
    # (lo + hi) // 2
    assert sampling.segment_eval_clips(50, 1, 16)[0].tolist() == [
        1, 4, 7, 10, 13, 16, 19, 22, 26, 29, 32, 35, 38, 41, 44, 47]
    assert sampling.segment_eval_clips(7, 1, 16)[0].tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6]


def test_two_segment_views_are_videomaes():
    # tick = 50 / 16 = 3.125; view 0: int(3.125 k), view 1: int(1.5625 + 3.125 k)
    a, b = sampling.segment_eval_clips(50, 2, 16)
    assert a.tolist() == [0, 3, 6, 9, 12, 15, 18, 21, 25, 28, 31, 34, 37, 40, 43, 46]
    assert b.tolist() == [1, 4, 7, 10, 14, 17, 20, 23, 26, 29, 32, 35, 39, 42, 45, 48]


def test_segment_clip_draws_every_frame_of_each_closed_segment():
    seen = [set() for _ in range(16)]
    for s in range(300):
        idx = sampling.segment_clip(50, 16, generator=gen(s))
        for k, i in enumerate(idx.tolist()):
            assert SSV2_50_LO[k] <= i <= SSV2_50_HI[k]
            seen[k].add(i)
    # randint(lo, hi) includes both ends: segment 8 is [24, 28], five values
    assert seen[8] == {24, 25, 26, 27, 28}
    assert all(seen[k] == set(range(SSV2_50_LO[k], SSV2_50_HI[k] + 1)) for k in range(16))


def test_segment_clip_of_a_video_shorter_than_the_segments():
    for s in range(20):
        idx = sampling.segment_clip(7, 16, generator=gen(s)).tolist()
        assert all(lo <= i <= hi for i, lo, hi in zip(idx, SSV2_7_LO, SSV2_7_HI))


def test_bad_arguments():
    with pytest.raises(ValueError, match="fps must be positive"):
        sampling.train_clip(100, 0)
    with pytest.raises(ValueError, match="num_clips must be >= 1"):
        sampling.eval_clips(100, 30, 0)
    with pytest.raises(ValueError, match="num_clips must be >= 1"):
        sampling.segment_eval_clips(100, 0)
