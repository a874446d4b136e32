"""Datasets: clip shapes, repeated sampling, bad videos (replaced in training, reported in evaluation),
and exact view bookkeeping for multi-view testing."""

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hiera_video.data.datasets import (BadVideos, BatchAugment, ClipDataset, MultiViewDataset, collate_clips,
                                       collate_views)
from hiera_video.data.lists import Entry
from hiera_video.data.transforms import RandAugment
from videos import make_bad_videos, make_video, read_index


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    good = [make_video(d / f"v{i}.mp4", 70, fps=30, height=32, width=64) for i in range(3)]
    portrait = make_video(d / "portrait.mp4", 70, fps=30, height=64, width=32)
    return {"good": good, "portrait": portrait, "bad": make_bad_videos(d / "bad")}


def entries(paths, label=1):
    return [Entry(p, label, i + 1) for i, p in enumerate(paths)]


def test_clip_dataset_item(videos):
    ds = ClipDataset(entries(videos["good"]), num_frames=8, sampling_rate=4, crop_size=24,
                     randaug=RandAugment(7, 4, 0.5))
    item = ds[0]
    assert item["video"].shape == (1, 3, 8, 24, 24) and item["video"].dtype == torch.uint8
    assert item["label"] == 1 and item["bad"] == [] and item["index"] == 0


def test_clip_dataset_samples_8x4_frames(videos):
    # Read the frame ids of the decoded clip: 8 samples over 4 * 8 = 32 frames at 30 fps, i.e.
    # linspace(start, start + 31, 8) truncated: offsets from start 0, 4.43, 8.86, 13.3, 17.7, 22.1, 26.6, 31
    ds = ClipDataset(entries(videos["good"]), num_frames=8, sampling_rate=4, crop_size=32, hflip=False)
    for seed in range(3):
        clip = ds._decode(ds.entries[0], torch.Generator().manual_seed(seed))  # [C, T, H, W]
        ids = [read_index(clip[:, t].permute(1, 2, 0).numpy()) for t in range(8)]
        start = float(torch.rand((), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)) * 38
        assert ids == [int(start + o) for o in (0, 31 / 7, 62 / 7, 93 / 7, 124 / 7, 155 / 7, 186 / 7, 31)]


def test_repeated_sampling_gives_independently_augmented_clips(videos):
    ds = ClipDataset(entries(videos["good"]), num_frames=4, crop_size=16, num_repeats=3)
    torch.manual_seed(1)
    video = ds[1]["video"]
    assert video.shape == (3, 3, 4, 16, 16)
    assert not torch.equal(video[0], video[1]) or not torch.equal(video[1], video[2])
    batch = collate_clips([ds[0], ds[1]])
    assert batch["video"].shape == (6, 3, 4, 16, 16)
    assert batch["label"].tolist() == [1] * 6 and batch["index"].tolist() == [0, 0, 0, 1, 1, 1]


def test_bad_videos_are_replaced_and_reported(videos, caplog):
    bad = videos["bad"]
    paths = [bad["missing"], bad["empty"], bad["not_video"], bad["truncated_mp4"], videos["good"][0]]
    ds = ClipDataset(entries(paths), num_frames=4, crop_size=16, max_retries=50)
    torch.manual_seed(0)
    items = [ds[i] for i in range(4)]
    assert all(it["index"] == 4 for it in items)  # the only good video stands in
    tracker = BadVideos()
    with caplog.at_level(logging.WARNING, logger="hiera_video"):
        for it in items:
            tracker.update(it["bad"])
    skipped = sum(len(it["bad"]) for it in items)
    assert tracker.end_epoch() == skipped >= 4 and tracker.end_epoch() == 0
    for path in paths[:4]:
        assert caplog.text.count(f"skipping unreadable video {path}") == 1  # logged once, however often hit


def test_a_dataset_of_only_bad_videos_is_a_clear_error(videos):
    bad = videos["bad"]
    ds = ClipDataset(entries([bad["missing"], bad["empty"]]), max_retries=5)
    with pytest.raises(RuntimeError, match=r"6 videos in a row could not be decoded.*check_videos.py"):
        ds[0]


def test_multi_view_dataset_views_and_crops(videos):
    ds = MultiViewDataset(entries(videos["good"]), num_frames=8, sampling_rate=4, crop_size=24,
                          num_temporal_clips=5, num_spatial_crops=3)
    item = ds[2]
    assert item["video"].shape == (15, 3, 8, 24, 24) and item["error"] is None
    assert item["views"].tolist() == [[2, t, s] for t in range(5) for s in range(3)]
    # Landscape 32x64 resized to 24x48: left, centre and right crops differ.
    v = item["video"]
    assert not torch.equal(v[0], v[1]) and not torch.equal(v[1], v[2])


def test_multi_view_temporal_clips_span_the_video(videos):
    ds = MultiViewDataset(entries(videos["good"]), num_frames=8, sampling_rate=4, crop_size=32,
                          num_temporal_clips=3, num_spatial_crops=1)
    # 70 frames, clips of 32: delta 38, starts 0, floor(38 / 2) = 19, 38 (frame ids: tests/test_protocol.py)
    from hiera_video.data.sampling import eval_clips
    clips = eval_clips(70, 30, 3, 8, 4)
    assert [c.tolist() for c in clips] == [[0, 4, 8, 13, 17, 22, 26, 31], [19, 23, 27, 32, 36, 41, 45, 50],
                                           [38, 42, 46, 51, 55, 60, 64, 69]]
    assert ds[0]["video"].shape == (3, 3, 8, 32, 32)


def test_portrait_video_crops_top_centre_bottom(videos):
    ds = MultiViewDataset(entries([videos["portrait"]]), num_frames=4, crop_size=24, num_temporal_clips=1,
                          num_spatial_crops=3)
    v = ds[0]["video"]
    assert v.shape == (3, 3, 4, 24, 24)


def test_unreadable_video_is_reported_not_replaced(videos):
    ds = MultiViewDataset(entries([videos["good"][0], videos["bad"]["missing"]]), num_frames=4, crop_size=16,
                          num_temporal_clips=2, num_spatial_crops=3)
    item = ds[1]
    assert item["error"] == "file not found" and item["video"].shape[0] == 0
    batch = collate_views([ds[0], item])
    assert batch["video"].shape[0] == 6 and batch["views"][:, 0].tolist() == [0] * 6
    assert batch["unreadable"] == [(1, videos["bad"]["missing"], "file not found")]


def test_every_view_exactly_once_through_a_multi_worker_loader(videos):
    paths = videos["good"] + [videos["bad"]["empty"]] + videos["good"]
    ds = MultiViewDataset(entries(paths), num_frames=4, crop_size=16, num_temporal_clips=2, num_spatial_crops=3)
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_views)
    seen, unreadable = [], []
    for batch in loader:
        seen += [tuple(v) for v in batch["views"].tolist()]
        unreadable += [u[0] for u in batch["unreadable"]]
    expected = [(i, t, s) for i in range(7) if i != 3 for t in range(2) for s in range(3)]
    assert sorted(seen) == expected and unreadable == [3]


def test_segment_sampling_dataset(videos):
    ds = ClipDataset(entries(videos["good"]), sampling_mode="segment", num_frames=8, crop_size=16, hflip=False)
    assert ds[0]["video"].shape == (1, 3, 8, 16, 16)
    ev = MultiViewDataset(entries(videos["good"]), sampling_mode="segment", num_frames=8, crop_size=16,
                          num_temporal_clips=2, num_spatial_crops=3)
    assert ev[0]["video"].shape == (6, 3, 8, 16, 16)


def test_batch_augment_normalises_and_mixes():
    video = torch.full((4, 3, 2, 8, 8), 255, dtype=torch.uint8)
    x, y = BatchAugment()(video, torch.tensor([0, 1, 2, 3]), train=False)
    assert x.dtype == torch.float32 and torch.allclose(x, torch.full_like(x, (1 - 0.45) / 0.225))
    assert y.tolist() == [0, 1, 2, 3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="sampling_mode must be 'stride' or 'segment'"):
        ClipDataset([Entry("x", 0, 1)], sampling_mode="dense")
    with pytest.raises(ValueError, match="num_spatial_crops must be 1 or 3"):
        MultiViewDataset([Entry("x", 0, 1)], num_spatial_crops=2)
    with pytest.raises(ValueError, match="randaug_order must be 'before_crop' or 'after_crop'"):
        ClipDataset([Entry("x", 0, 1)], randaug_order="middle")
    with pytest.raises(ValueError, match="test_short_side"):
        MultiViewDataset([Entry("x", 0, 1)], crop_size=224, test_short_side=200)
