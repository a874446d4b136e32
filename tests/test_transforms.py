"""Clip transforms: crop geometry, resizing, frame-consistent random transforms, RandAugment ops,
normalisation and random erasing. Tiny clips only ([3, 4, 32, 40] and smaller)."""

import pytest
import torch

from hiera_video.data.transforms import (RandAugment, _rotate, center_crop, crop, hflip, normalize,
                                         random_erasing, random_hflip, random_resized_crop,
                                         random_resized_crop_params, resize, resize_short_side, spatial_crops,
                                         three_crop_offsets)


def rand_clip(C=3, T=4, H=32, W=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (C, T, H, W), dtype=torch.uint8, generator=g)


def same_frames(C=3, T=4, H=32, W=40, seed=0):
    """A clip whose T frames are identical (and frame-independent structure: a gradient plus noise)."""
    frame = rand_clip(C, 1, H, W, seed)
    return frame.expand(C, T, H, W).contiguous()


def assert_frames_identical(clip):
    assert torch.equal(clip, clip[:, :1].expand_as(clip)), "frames differ: parameters not shared across frames"


# ---------------------------------------------------------------- crop geometry


def test_random_resized_crop_params_inside_and_in_bounds():
    H, W = 320, 400
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        top, left, h, w = random_resized_crop_params(H, W, scale, ratio, generator=g)
        assert 0 <= top and 0 <= left and 0 < h and 0 < w
        assert top + h <= H and left + w <= W
        # rounding h and w to integers moves area and ratio a little (sides are >= ~85 px here)
        assert scale[0] * 0.97 <= h * w / (H * W) <= scale[1] * 1.0001
        assert ratio[0] * 0.98 <= w / h <= ratio[1] * 1.02


def test_random_resized_crop_params_fallback():
    # a 1:1 box of >= 90% of the area can never fit in 10 x 100, so all attempts fail
    assert random_resized_crop_params(10, 100, (0.9, 1.0), (1.0, 1.0)) == (0, 45, 10, 10)
    # portrait, too narrow for ratio >= 2: full width, height from the clamped ratio, centred
    assert random_resized_crop_params(100, 10, (0.9, 1.0), (2.0, 3.0)) == (47, 0, 5, 10)
    # own ratio inside the range: the whole image
    assert random_resized_crop_params(30, 30, (1.5, 2.0), (0.5, 2.0)) == (0, 0, 30, 30)


def test_random_resized_crop_params_errors():
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop_params(10, 10, scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="ratio"):
        random_resized_crop_params(10, 10, ratio=(0.0, 1.0))


def test_three_crop_offsets():
    assert three_crop_offsets(32, 40, 32) == [(0, 0), (0, 4), (0, 8)]  # landscape: left, centre, right
    assert three_crop_offsets(40, 32, 32) == [(0, 0), (4, 0), (8, 0)]  # portrait: top, centre, bottom
    assert three_crop_offsets(32, 32, 32) == [(0, 0)] * 3
    assert three_crop_offsets(32, 41, 32)[1] == (0, 5)  # odd margin: centre rounded up, as PySlowFast
    with pytest.raises(ValueError, match="crop_size 33"):
        three_crop_offsets(32, 40, 33)


def test_spatial_crops():
    clip = rand_clip()
    views = spatial_crops(clip, 32, 3)
    assert [v.shape for v in views] == [(3, 4, 32, 32)] * 3
    for v, left in zip(views, (0, 4, 8)):
        assert torch.equal(v, clip[..., :, left:left + 32])
    (centre,) = spatial_crops(clip, 32, 1)
    assert torch.equal(centre, views[1])
    with pytest.raises(ValueError, match="num_crops"):
        spatial_crops(clip, 32, 2)


def test_resize_short_side_sizes_and_dtype():
    assert resize_short_side(rand_clip(H=32, W=40), 16).shape == (3, 4, 16, 20)
    assert resize_short_side(rand_clip(H=40, W=32), 16).shape == (3, 4, 20, 16)
    assert resize_short_side(rand_clip(H=30, W=47), 20).shape[-2:] == (20, 31)  # 31.33 -> 31
    assert resize_short_side(rand_clip(H=4, W=7), 2).shape[-2:] == (2, 4)  # 3.5 -> 4 (half up)
    up = resize_short_side(rand_clip(H=8, W=10), 16)
    assert up.shape[-2:] == (16, 20) and up.dtype == torch.uint8
    f = rand_clip().float() / 255
    out = resize_short_side(f, 16)
    assert out.dtype == torch.float32 and out.shape == (3, 4, 16, 20)
    clip = rand_clip()
    assert resize_short_side(clip, 32) is clip  # already that size
    assert resize(clip, (32, 40)) is clip


def test_resize_values():
    const = torch.full((3, 2, 32, 40), 77, dtype=torch.uint8)
    assert torch.equal(resize(const, (13, 17)), torch.full((3, 2, 13, 17), 77, dtype=torch.uint8))
    clip = rand_clip()
    small_u8 = resize(clip, 16).float()
    small_f = resize(clip.float(), 16)
    # the native uint8 kernel works in fixed point: within one grey level of the float result
    assert (small_u8 - small_f).abs().max() <= 1.0 + 1e-4


def test_center_crop_and_crop():
    clip = torch.arange(3 * 2 * 6 * 8, dtype=torch.int64).view(3, 2, 6, 8).to(torch.uint8)
    assert torch.equal(center_crop(clip, 4), clip[..., 1:5, 2:6])
    assert torch.equal(center_crop(clip, (3, 5)), clip[..., 2:5, 2:7])  # odd margins rounded up
    assert torch.equal(crop(clip, 1, 2, 3, 4), clip[..., 1:4, 2:6])
    with pytest.raises(ValueError, match=r"H=6, W=8"):
        crop(clip, 4, 0, 3, 3)
    with pytest.raises(ValueError, match=r"h=7.*H=6"):
        center_crop(clip, (7, 4))


# ---------------------------------------------------------------- one set of parameters per clip


def test_hflip_reverses_width_only():
    C, T, H, W = 3, 4, 5, 6
    t = torch.arange(T).view(1, T, 1, 1)
    w = torch.arange(W).view(1, 1, 1, W)
    clip = (t * 10 + w).expand(C, T, H, W).to(torch.uint8)
    out = hflip(clip)
    assert torch.equal(out[:, :, :, 0], clip[:, :, :, W - 1])
    assert torch.equal(out, clip.flip(-1))
    assert torch.equal(out[:, 2, 0, :], torch.tensor([25, 24, 23, 22, 21, 20], dtype=torch.uint8).expand(C, W))
    assert torch.equal(random_hflip(clip, p=1.0), out)
    assert random_hflip(clip, p=0.0) is clip


def test_random_transforms_share_parameters_across_frames():
    clip = same_frames()
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        assert_frames_identical(random_resized_crop(clip, 16, generator=g))
        assert_frames_identical(random_hflip(clip, generator=g))
    ra = RandAugment(9, 4, 0.5, prob=1.0)
    for seed in range(40):
        out = ra(clip, generator=torch.Generator().manual_seed(seed))
        assert_frames_identical(out)


def test_random_resized_crop_shape_and_determinism():
    clip = rand_clip()
    a = random_resized_crop(clip, (16, 24), generator=torch.Generator().manual_seed(3))
    b = random_resized_crop(clip, (16, 24), generator=torch.Generator().manual_seed(3))
    assert a.shape == (3, 4, 16, 24) and a.dtype == torch.uint8 and torch.equal(a, b)


# ---------------------------------------------------------------- RandAugment


def test_randaugment_dtype_shape_determinism():
    clip = rand_clip()
    ra = RandAugment()
    outs = [ra(clip, generator=torch.Generator().manual_seed(s)) for s in (5, 5, 6)]
    assert outs[0].dtype == torch.uint8 and outs[0].shape == clip.shape
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(1)
    a = ra(clip)
    torch.manual_seed(1)
    assert torch.equal(a, ra(clip))


def test_randaugment_default_is_mae_st_two_ops(monkeypatch):
    # rand-m7-mstd0.5-inc1 names no n: timm's default, 2 ops per clip (each applied with prob 0.5)
    calls = []
    ra = RandAugment(prob=1.0)
    monkeypatch.setattr(ra, "apply_op", lambda clip, name, m, negate=False: calls.append((name, m)) or clip)
    ra(rand_clip(), generator=torch.Generator().manual_seed(0))
    assert len(calls) == 2 and ra.magnitude == 7 and ra.magnitude_std == 0.5


@pytest.mark.parametrize("name", RandAugment.OP_NAMES)
def test_randaugment_each_op(name):
    clip = rand_clip(T=2, H=12, W=16)
    ra = RandAugment()
    for magnitude in (0, 5, 10):
        for negate in (False, True):
            out = ra.apply_op(clip, name, magnitude, negate)
            assert out.dtype == torch.uint8 and out.shape == clip.shape


@pytest.mark.parametrize("name", ["ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                                  "SharpnessIncreasing", "Rotate", "ShearX", "ShearY", "TranslateXRel",
                                  "TranslateYRel", "SolarizeIncreasing", "SolarizeAdd"])
def test_randaugment_magnitude_zero_is_identity(name):
    clip = rand_clip()
    for negate in (False, True):
        assert torch.equal(RandAugment().apply_op(clip, name, 0.0, negate), clip)


def test_randaugment_op_definitions():
    ra = RandAugment(fill=(10, 20, 30))
    clip = rand_clip(T=2, H=12, W=20)
    x = clip.int()
    assert torch.equal(ra.apply_op(clip, "Invert", 5), (255 - clip))
    # m=5: posterize keeps 4 - 2 = 2 bits; solarize threshold 256 - 128 = 128; solarize-add adds 55
    assert torch.equal(ra.apply_op(clip, "PosterizeIncreasing", 5), clip & 0xC0)
    assert torch.equal(ra.apply_op(clip, "SolarizeIncreasing", 5).int(), torch.where(x >= 128, 255 - x, x))
    assert torch.equal(ra.apply_op(clip, "SolarizeAdd", 5).int(), torch.where(x < 128, x + 55, x))
    # brightness factor 1 + 0.9 * 5 / 10 = 1.45, blended with black
    expected = (x.double() * 1.45).round().clamp(0, 255)
    assert (ra.apply_op(clip, "BrightnessIncreasing", 5).double() - expected).abs().max() <= 1
    # autocontrast stretches every frame's channel to the full range
    dull = (clip // 4 + 50).to(torch.uint8)
    out = ra.apply_op(dull, "AutoContrast", 0)
    assert (out.amin(dim=(-2, -1)) == 0).all() and (out.amax(dim=(-2, -1)) == 255).all()
    # equalize of a two-level frame sends the levels to 0 and 255 (PIL's lut: step 512 // 256 = 2,
    # lut = (1 + pixels below) // 2, clipped); a 4x4 frame has step 0 and is left as it is
    two = torch.full((3, 1, 32, 32), 10, dtype=torch.uint8)
    two[..., :16, :] = 200
    assert set(ra.apply_op(two, "Equalize", 0).unique().tolist()) == {0, 255}
    small = two[..., 14:18, :4]  # two levels, 8 pixels each
    assert torch.equal(ra.apply_op(small, "Equalize", 0), small)
    # translate by 0.45 * 20 = 9 px: output column x reads input column x + 9, the rest is fill
    out = ra.apply_op(clip, "TranslateXRel", 10)
    assert torch.equal(out[..., :11], clip[..., 9:])
    fill = torch.tensor([10, 20, 30], dtype=torch.uint8).view(3, 1, 1, 1)
    assert torch.equal(out[..., 11:], fill.expand(3, 2, 12, 9))
    out = ra.apply_op(clip, "TranslateXRel", 10, negate=True)
    assert torch.equal(out[..., 9:], clip[..., :11])


def test_rotate_matches_pil_direction():
    # PIL rotates counter-clockwise for positive angles, as torch.rot90 with k=1 over (H, W)
    clip = rand_clip(T=2, H=7, W=7)
    out = _rotate(clip, 90.0, (0, 0, 0), "nearest")
    assert torch.equal(out, torch.rot90(clip, 1, dims=(-2, -1)))


def test_randaugment_errors():
    with pytest.raises(ValueError, match="uint8"):
        RandAugment()(rand_clip().float())
    with pytest.raises(ValueError, match="shape"):
        RandAugment()(rand_clip()[:, 0])
    with pytest.raises(ValueError, match="unknown RandAugment op"):
        RandAugment().apply_op(rand_clip(), "Blur", 5)
    with pytest.raises(ValueError, match="magnitude"):
        RandAugment(magnitude=11)


# ---------------------------------------------------------------- batch transforms


def test_normalize():
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    clip = rand_clip()
    a = normalize(clip, mean, std)
    b = normalize(clip.double() / 255, mean, std)
    assert a.dtype == torch.float32 and b.dtype == torch.float64
    torch.testing.assert_close(a, b.float(), rtol=1e-5, atol=1e-5)
    for c in range(3):  # the channel dim is the one that gets mean[c], std[c]
        torch.testing.assert_close(a[c], (clip[c].float() / 255 - mean[c]) / std[c], rtol=1e-5, atol=1e-5)
    batch = torch.stack([clip, clip.flip(-1)])
    nb = normalize(batch, mean, std)
    assert nb.shape == (2, 3, 4, 32, 40)
    torch.testing.assert_close(nb[0], a)
    assert normalize(batch, mean, std, dtype=torch.float16).dtype == torch.float16
    f = clip.float() / 255
    kept = f.clone()
    normalize(f, mean, std)
    assert torch.equal(f, kept)  # float input is not normalised in place
    with pytest.raises(ValueError, match="C=3"):
        normalize(batch, (0.5, 0.5), (0.5, 0.5))


def test_random_erasing():
    g = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 3, 4, 32, 40, generator=g)
    before = batch.clone()
    assert torch.equal(random_erasing(batch, prob=0.0), batch)
    for seed in range(5):
        out = random_erasing(batch, prob=1.0, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(batch, before)  # out of place
        changed = out != batch  # [B, C, T, H, W]
        for i in range(batch.shape[0]):
            mask = changed[i, 0, 0]
            assert changed[i].eq(mask).all(), "box differs across channels or frames"
            rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
            top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            assert mask[top:bottom, left:right].all() and mask.sum() == (bottom - top) * (right - left)
            area = mask.sum().item() / (32 * 40)
            assert 0.02 * 0.5 <= area <= 1 / 3 * 1.2
    a = random_erasing(batch, 0.5, generator=torch.Generator().manual_seed(9))
    b = random_erasing(batch, 0.5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="float batch"):
        random_erasing(batch[0])
