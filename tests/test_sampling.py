"""Frame-index math: Kinetics 16x4 training clips, multi-view test clips, SSv2 segments."""

import numpy as np
import pytest
import torch

from hiera_video.data import sampling


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("fps,step", [(30, 4), (60, 8), (15, 2), (25, 10 / 3)])
def test_train_clip_covers_64_frames_at_30fps_whatever_the_file_rate(fps, step):
    n = 300
    for seed in range(20):
        idx = sampling.train_clip(n, fps, 16, 4, generator=gen(seed))
        assert len(idx) == 16 and idx.dtype == np.int64
        start = idx[0]
        expected = np.floor(start + np.arange(16) * step)
        # idx[0] is floor(start): the rest follow at exact steps from the real-valued start
        assert np.all(np.abs(idx - expected) <= 1)
        assert np.all(np.diff(idx) >= np.floor(step)) and np.all(np.diff(idx) <= np.ceil(step))
        assert idx[-1] <= n - 1


def test_train_clip_start_is_uniform_over_the_room():
    n, fps = 200, 30
    starts = [sampling.train_clip(n, fps, generator=gen(s))[0] for s in range(400)]
    assert min(starts) < 10 and max(starts) > n - 64 - 10
    assert max(starts) <= n - 64


def test_train_clip_exact_indices_at_30fps():
    idx = sampling.clip_indices(10.0, 16, 4.0, 300)
    assert idx.tolist() == list(range(10, 74, 4))


def test_short_video_starts_at_zero_and_repeats_the_last_frame():
    idx = sampling.train_clip(20, 30, 16, 4, generator=gen(3))
    assert idx.tolist() == [0, 4, 8, 12, 16] + [19] * 11


def test_train_clip_is_reproducible_with_a_generator():
    a = sampling.train_clip(500, 30, generator=gen(7))
    b = sampling.train_clip(500, 30, generator=gen(7))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("fps", [30, 24, 60])
def test_eval_clips_first_starts_at_zero_and_last_ends_at_the_end(fps):
    n = 300
    clips = sampling.eval_clips(n, fps, 5, 16, 4)
    step = 4 * fps / 30
    assert len(clips) == 5
    assert clips[0][0] == 0
    # the last clip's span [start, start + 16 * step) ends exactly at the video's end
    last_start = n - 16 * step
    assert clips[-1][0] == np.floor(last_start)
    assert clips[-1][-1] == np.floor(last_start + 15 * step) and clips[-1][-1] <= n - 1
    starts = [c[0] for c in clips]
    assert np.all(np.diff(starts) > 0)
    gaps = np.diff(sampling.eval_clip_starts(n, 16 * step, 5))
    assert np.allclose(gaps, gaps[0])  # uniform


def test_one_eval_clip_is_centred():
    (clip,) = sampling.eval_clips(164, 30, 1)
    assert clip[0] == 50 and clip[-1] == 50 + 60


def test_eval_clips_of_a_short_video_all_start_at_zero():
    clips = sampling.eval_clips(30, 30, 5)
    assert all(c[0] == 0 and c[-1] == 29 for c in clips)


def test_segment_clip_takes_one_frame_from_each_segment():
    n = 100
    seg = n / 16
    for s in range(30):
        idx = sampling.segment_clip(n, 16, generator=gen(s))
        for k, i in enumerate(idx):
            assert np.floor(k * seg) <= i < np.ceil((k + 1) * seg)
        assert np.all(np.diff(idx) >= 0)


def test_segment_clip_of_a_video_shorter_than_the_segments():
    idx = sampling.segment_clip(7, 16, generator=gen(0))
    assert idx.min() >= 0 and idx.max() <= 6 and np.all(np.diff(idx) >= 0)


def test_segment_eval_views_interleave():
    a, b = sampling.segment_eval_clips(64, 2, 16)  # segments of 4 frames: offsets 1 and 3
    assert a.tolist() == list(range(1, 64, 4))
    assert b.tolist() == list(range(3, 64, 4))


def test_bad_arguments():
    with pytest.raises(ValueError, match="fps must be positive"):
        sampling.train_clip(100, 0)
    with pytest.raises(ValueError, match="num_clips must be >= 1"):
        sampling.eval_clips(100, 30, 0)
