"""AVA detection pieces: keyframe and clip indices, boxes through resize/crop/flip (checked on drawn
pixels), RoIAlign against a brute-force reference (and torchvision when it imports), the RoI head, the
losses, and a checkpoint round trip."""

import math

import numpy as np
import pytest
import torch

import hiera_video
from hiera_video.tasks.ava.dataset import (AVADataset, FrameSource, Keyframe, clip_frame_indices, collate_ava, flip_boxes,
                                  training_keyframes, transform_clip_and_boxes)
from hiera_video.tasks.ava.io import frame_path, keyframe_index
from hiera_video.tasks.ava.model import HieraAVA, ava_loss, ava_scores, roi_align
from hiera_video.tasks.ava.model import create_ava_model


# --------------------------------------------------------------------------------------------------
# Keyframes and clips
# --------------------------------------------------------------------------------------------------
def test_keyframe_of_second_902_is_frame_60_and_the_clip_is_centred_on_it():
    assert keyframe_index(902) == 60 and keyframe_index(900) == 0
    assert frame_path("f", "vid", 60).name == "vid_000061.jpg"  # files are numbered from 1
    idx = clip_frame_indices(60, num_frames=8, sampling_rate=4, total=1000)
    assert idx.tolist() == [44, 48, 52, 56, 60, 64, 68, 72] and idx[8 // 2] == 60
    # clamped at both ends of the video
    assert clip_frame_indices(2, 4, 4, total=10).tolist() == [0, 0, 2, 6]
    assert clip_frame_indices(8, 4, 4, total=10).tolist() == [0, 4, 8, 9]


def test_proposals_are_labelled_by_the_person_they_overlap():
    gt = {("v", 902): [((0.1, 0.1, 0.4, 0.9), [12, 80]), ((0.6, 0.2, 0.9, 0.9), [14])]}
    props = {("v", 902): [((0.12, 0.1, 0.41, 0.88), 0.99), ((0.0, 0.0, 0.05, 0.05), 0.95)]}
    (kf,) = training_keyframes(gt, proposals=props)
    assert kf.actions == [[12, 80], [14], [12, 80], []]
    assert training_keyframes(gt, excluded={("v", 902)}) == []


def test_keyframe_table_gives_back_every_keyframe_from_flat_arrays():
    from hiera_video.tasks.ava.dataset import KeyframeTable, evaluation_keyframes
    gt = {("v", 902): [((0.1, 0.1, 0.4, 0.9), [12, 80]), ((0.6, 0.2, 0.9, 0.9), [14])],
          ("w", 905): [((0.2, 0.3, 0.5, 0.6), [])], ("v", 903): [((0.123456789, 0.0, 1.0, 1.0), [80])]}
    props = {("v", 902): [((0.12, 0.1, 0.41, 0.88), 0.99), ((0.0, 0.0, 0.05, 0.05), 0.95)]}
    keyframes = training_keyframes(gt, proposals=props)
    table = KeyframeTable(keyframes)
    assert len(table) == 3 and list(table) == keyframes and table[-1] == keyframes[-1]
    assert table.videos == ["v", "w"] and table.boxes.shape == (6, 4)  # one string per video, not per keyframe
    evaluation = evaluation_keyframes([("v", 902)], props)
    assert [(k.key, k.boxes) for k in KeyframeTable(evaluation)] == [(k.key, k.boxes) for k in evaluation]
    with pytest.raises(IndexError):
        table[3]


# --------------------------------------------------------------------------------------------------
# Boxes follow the pixels
# --------------------------------------------------------------------------------------------------
def _frame_with_box(H, W, box):
    """uint8 clip [3, 2, H, W]: black, with a white rectangle at normalised `box`."""
    clip = torch.zeros(3, 2, H, W, dtype=torch.uint8)
    x1, y1, x2, y2 = round(box[0] * W), round(box[1] * H), round(box[2] * W), round(box[3] * H)
    clip[:, :, y1:y2, x1:x2] = 255
    return clip


def _white_extent(clip):
    """Normalised (x1, y1, x2, y2) of the pixels brighter than half, in the first frame."""
    mask = clip[0, 0] > 127
    ys, xs = torch.nonzero(mask, as_tuple=True)
    H, W = mask.shape
    return (xs.min().item() / W, ys.min().item() / H, (xs.max().item() + 1) / W, (ys.max().item() + 1) / H)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("size", [(120, 160), (160, 120)])  # landscape and portrait
def test_boxes_follow_resize_crop_and_flip(train, size):
    H, W = size
    box = (0.30, 0.25, 0.55, 0.80)
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        clip, boxes = transform_clip_and_boxes(_frame_with_box(H, W, box), torch.tensor([box]), 64, train,
                                               jitter=(1.0, 1.5), hflip=True, generator=g)
        assert clip.shape == (3, 2, 64, 64)
        got = torch.tensor(_white_extent(clip))
        # where the rectangle is after the transform = where the box says (within a pixel and a half)
        inside = boxes[0].clamp(0, 1)
        assert torch.allclose(got, inside, atol=1.5 / 64), (seed, got, inside)


def test_flip_is_an_involution_and_mirrors():
    b = torch.tensor([[0.1, 0.2, 0.3, 0.9]])
    assert torch.allclose(flip_boxes(b, 1.0), torch.tensor([[0.7, 0.2, 0.9, 0.9]]))
    assert torch.allclose(flip_boxes(flip_boxes(b, 1.0), 1.0), b)


# --------------------------------------------------------------------------------------------------
# RoIAlign
# --------------------------------------------------------------------------------------------------
def _brute_roi_align(feat, box, bi, out, scale, ratio, aligned):
    """torchvision's algorithm, one bin and one sample at a time, in float64."""
    C, H, W = feat.shape[1:]
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = [float(v) * scale - off for v in box]
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bw, bh = rw / out, rh / out
    gh = ratio if ratio > 0 else math.ceil(rh / out)
    gw = ratio if ratio > 0 else math.ceil(rw / out)
    f = feat[bi].double()
    res = torch.zeros(C, out, out, dtype=torch.float64)
    for ph in range(out):
        for pw in range(out):
            acc = torch.zeros(C, dtype=torch.float64)
            for iy in range(gh):
                for ix in range(gw):
                    y = y1 + ph * bh + (iy + 0.5) * bh / gh
                    x = x1 + pw * bw + (ix + 0.5) * bw / gw
                    if y < -1 or y > H or x < -1 or x > W:
                        continue
                    y, x = max(y, 0.0), max(x, 0.0)
                    y0, x0 = int(y), int(x)
                    if y0 >= H - 1:
                        y0 = ya = H - 1
                        y = float(y0)
                    else:
                        ya = y0 + 1
                    if x0 >= W - 1:
                        x0 = xa = W - 1
                        x = float(x0)
                    else:
                        xa = x0 + 1
                    ly, lx = y - y0, x - x0
                    acc += ((1 - ly) * (1 - lx) * f[:, y0, x0] + (1 - ly) * lx * f[:, y0, xa]
                            + ly * (1 - lx) * f[:, ya, x0] + ly * lx * f[:, ya, xa])
            res[:, ph, pw] = acc / max(gh * gw, 1)
    return res


BOXES = torch.tensor([[0.0, 0.0, 11.0, 9.0], [-3.0, 2.0, 5.0, 20.0], [2.2, 1.3, 7.9, 4.1], [10.0, 8.0, 14.0, 12.0],
                      [0.0, 0.0, 40.0, 30.0], [3.0, 3.0, 3.2, 3.1]])
BATCH = torch.tensor([0, 1, 1, 0, 1, 0])


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio,scale", [(0, 1.0), (2, 1.0), (0, 0.5)])
def test_roi_align_equals_the_brute_force_reference(aligned, ratio, scale):
    feat = torch.randn(2, 3, 9, 11)
    got = roi_align(feat, BOXES, BATCH, 7, scale, ratio, aligned)
    ref = torch.stack([_brute_roi_align(feat, BOXES[k], int(BATCH[k]), 7, scale, ratio, aligned)
                       for k in range(len(BOXES))])
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)


def test_roi_align_equals_torchvision_when_it_imports():
    try:
        from torchvision.ops import roi_align as tv_roi_align
    except Exception:  # not installed, or (as on CPU-only machines here) it fails to import
        pytest.skip("torchvision does not import here")
    feat = torch.randn(2, 3, 9, 11)
    rois = torch.cat([BATCH[:, None].float(), BOXES], 1)
    for aligned in (True, False):
        torch.testing.assert_close(roi_align(feat, BOXES, BATCH, 7, 0.5, 0, aligned),
                                   tv_roi_align(feat, rois, 7, 0.5, 0, aligned), rtol=1e-5, atol=1e-5)


def test_roi_align_of_a_constant_map_is_that_constant_inside():
    feat = torch.full((1, 2, 8, 8), 3.0)
    out = roi_align(feat, torch.tensor([[1.0, 1.0, 6.0, 7.0]]), torch.tensor([0]), 7)
    assert torch.allclose(out, torch.full_like(out, 3.0))
    assert roi_align(feat, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 7).shape == (0, 2, 7, 7)


# --------------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------------
def test_detector_gives_one_row_per_box_and_gradients_reach_the_backbone():
    model = create_ava_model("hiera_test_8x64", roi_dropout=0.0)
    x = torch.randn(2, 3, 8, 64, 64)
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.9], [0.3, 0.2, 0.8, 0.7], [0.0, 0.0, 1.0, 1.0]])
    logits = model(x, boxes, torch.tensor([0, 1, 1]))
    assert logits.shape == (3, 80)
    labels = torch.zeros(3, 80)
    labels[0, [11, 79]] = 1
    ava_loss(logits, labels).backward()
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    # a box's logits depend on its own clip only
    with torch.no_grad():
        model.eval()
        a = model(x, boxes[:1], torch.tensor([0]))
        b = model(torch.cat([x[:1], torch.randn(1, 3, 8, 64, 64)]), boxes[:1], torch.tensor([0]))
    torch.testing.assert_close(a, b)


def test_losses_and_scores():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    torch.testing.assert_close(ava_loss(logits, labels, "bce"), bce)
    # ce: the background box (no label) is skipped; the target is the labels normalised to sum 1
    expected = -(torch.tensor([0.5, 0.0, 0.5]) * logits[0].log_softmax(-1)).sum()
    torch.testing.assert_close(ava_loss(logits, labels, "ce"), expected)
    assert torch.allclose(ava_scores(logits, "ce").sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="bce"):
        ava_loss(logits, labels, "focal")


def test_detector_checkpoint_rebuilds_itself_and_a_classifier_initialises_the_backbone(tmp_path):
    clf = hiera_video.create_model("hiera_test_8x64", num_classes=5)
    hiera_video.save_model(clf, tmp_path / "k400.pt")
    det = create_ava_model("hiera_test_8x64", pretrained=str(tmp_path / "k400.pt"))
    for k, v in clf.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(det.state_dict()[k], v), k
    hiera_video.save_model(det, tmp_path / "ava.pt")
    again = hiera_video.create_model(pretrained=str(tmp_path / "ava.pt"))
    assert isinstance(again, HieraAVA)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in det.state_dict().items())


def test_dataset_reads_extracted_frames_and_collates(tmp_path):
    from hiera_video.tasks.ava.synthetic import encode_jpeg
    vid = "abcdefghijk"
    for i in range(0, 130):  # 900.0 s .. 904.3 s at 30 fps
        rgb = np.full((48, 64, 3), i, np.uint8)
        path = frame_path(tmp_path / "frames", vid, i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_jpeg(rgb))
    kfs = [Keyframe((vid, 902), [(0.1, 0.2, 0.5, 0.9)], [[12]]), Keyframe((vid, 903), [(0.2, 0.2, 0.6, 0.9),
                                                                                      (0.5, 0.1, 0.9, 0.8)], [[14], []])]
    ds = AVADataset(kfs, FrameSource(str(tmp_path / "frames")), num_frames=4, sampling_rate=8, crop_size=32,
                    train=False)
    item = ds[0]
    assert item["video"].shape == (3, 4, 32, 32) and item["labels"][0, 11] == 1
    # the frames around the keyframe, in order: brightness ~ frame index 44, 52, 60, 68
    means = item["video"].float().mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.tensor([44.0, 52.0, 60.0, 68.0]), atol=2.0), means
    batch = collate_ava([ds[0], ds[1]])
    assert batch["video"].shape == (2, 3, 4, 32, 32) and batch["boxes"].shape == (3, 4)
    assert batch["box_batch"].tolist() == [0, 1, 1] and batch["box_index"].tolist() == [0, 0, 1]
    assert batch["keys"] == [(vid, 902), (vid, 903)]
    with pytest.raises(Exception, match="no frame folder"):
        AVADataset([Keyframe(("missingvid00", 902), [(0.1, 0.1, 0.2, 0.2)], [[1]])],
                   FrameSource(str(tmp_path / "frames")), train=False)[0]


def test_a_keyframe_whose_read_never_returns_is_replaced_in_training_within_the_time_limit(tmp_path):
    """data.decode_timeout covers AVA's frame reads: a read that holds the GIL forever (as a stalled
    mount would block it) costs the limit, and training takes another keyframe."""
    import re
    import time

    from hiera_video.tasks.ava.synthetic import encode_jpeg
    for vid in ("goodvideo00", "stuckvideo0"):
        for i in range(0, 130):
            path = frame_path(tmp_path / "frames", vid, i)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_jpeg(np.full((48, 64, 3), i, np.uint8)))

    class Stuck(FrameSource):
        def get(self, video_id, indices):
            if video_id == "stuckvideo0":
                re.match(r"(a+)+$", "a" * 64 + "b")  # minutes in C with the GIL held
            return super().get(video_id, indices)

    kfs = [Keyframe(("stuckvideo0", 902), [(0.1, 0.2, 0.5, 0.9)], [[12]]),
           Keyframe(("goodvideo00", 902), [(0.1, 0.2, 0.5, 0.9)], [[14]])]
    ds = AVADataset(kfs, Stuck(str(tmp_path / "frames")), num_frames=4, sampling_rate=8, crop_size=32,
                    decode_timeout=1.5)
    start = time.perf_counter()
    item = ds[(0, 5)]
    assert time.perf_counter() - start < 4.0
    assert item["key"] == ("goodvideo00", 902) and item["bad"][0][0] == "stuckvideo0,902"
    assert "decode_timeout" in item["bad"][0][1]


@pytest.mark.parametrize("fps", [30, 15])
def test_frames_can_come_from_the_cut_video_at_any_frame_rate(tmp_path, fps):
    # The 15-30 min cut: time 0 = 900 s. Index i at 30 fps is time i / 30, i.e. frame i * fps / 30.
    from videos import make_video, read_index
    make_video(tmp_path / "abcdefghijk.mp4", num_frames=120, fps=fps)
    source = FrameSource(video_root=str(tmp_path))
    assert source.num_frames("abcdefghijk") == 120 * 30 // fps
    frames = source.get("abcdefghijk", np.array([0, 30, 60, 62]))
    assert [read_index(f) for f in frames] == [round(i * fps / 30) for i in (0, 30, 60, 62)]
    with pytest.raises(Exception, match="no video file"):
        source.get("missing0000", np.array([0]))
