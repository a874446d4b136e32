"""Mixup / CutMix: soft targets, the mixing arithmetic, CutMix's lam correction, label smoothing, odd
and single-sample batches, the generator-driven Beta sampler and the soft-target loss."""

import pytest
import torch
import torch.nn.functional as F

from hiera_video.data.mix import Mixup, SoftTargetCrossEntropy, one_hot, sample_beta, soft_target_cross_entropy

NUM_CLASSES = 5


def batch(B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 3, 2, 8, 10, generator=g)
    target = torch.arange(B) % NUM_CLASSES
    return x, target


def test_one_hot_smoothing_exact():
    y = one_hot(torch.tensor([0, 3]), NUM_CLASSES, smoothing=0.1)
    off, on = 0.1 / 5, 1 - 0.1 + 0.1 / 5
    expected = torch.full((2, 5), off)
    expected[0, 0] = expected[1, 3] = on
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(y.sum(1), torch.ones(2))
    assert torch.equal(one_hot(torch.tensor([2]), 5), F.one_hot(torch.tensor([2]), 5).float())
    with pytest.raises(ValueError, match="smoothing"):
        one_hot(torch.tensor([0]), 5, smoothing=1.0)


@pytest.mark.parametrize("mixup_alpha,cutmix_alpha", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_soft_targets_sum_to_one(mixup_alpha, cutmix_alpha, smoothing):
    mix = Mixup(NUM_CLASSES, mixup_alpha, cutmix_alpha, label_smoothing=smoothing)
    x, target = batch()
    for seed in range(5):
        out, y = mix(x, target, generator=torch.Generator().manual_seed(seed))
        assert out.shape == x.shape and y.shape == (4, NUM_CLASSES)
        torch.testing.assert_close(y.sum(1), torch.ones(4))
        assert (y >= 0).all()


def test_mixup_arithmetic():
    mix = Mixup(NUM_CLASSES, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.0)
    x, target = batch()
    before = x.clone()
    out, y = mix(x, target, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, before)  # out of place
    lam = y[0, target[0]].item()  # labels are distinct, so the own-class weight is lam
    assert 0.0 < lam < 1.0
    torch.testing.assert_close(out, lam * x + (1 - lam) * x.flip(0))
    hard = F.one_hot(target, NUM_CLASSES).float()
    torch.testing.assert_close(y, lam * hard + (1 - lam) * hard.flip(0))


def test_cutmix_lam_is_unchanged_fraction():
    mix = Mixup(NUM_CLASSES, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    B, H, W = 4, 8, 10
    x = torch.arange(B, dtype=torch.float32).view(B, 1, 1, 1, 1).expand(B, 3, 2, H, W).contiguous()
    target = torch.arange(B)
    hits = 0
    for seed in range(10):
        out, y = mix(x, target, generator=torch.Generator().manual_seed(seed))
        lam = y[0, 0].item()
        unchanged = (out == x)  # every sample differs from its flipped partner, so changed = pasted
        frac = unchanged.float().mean(dim=(1, 2, 3, 4))
        torch.testing.assert_close(frac, torch.full((B,), lam))
        # one box for every sample, channel and frame
        assert unchanged.eq(unchanged[:1, :1, :1]).all()
        hits += lam < 1.0
    assert hits > 0


def test_cutmix_box_matches_params():
    mix = Mixup(NUM_CLASSES, mixup_alpha=0.0, cutmix_alpha=1.0)
    lam, box = mix.sample_params(8, 10, torch.Generator().manual_seed(2))
    top, bottom, left, right = box
    assert 0 <= top <= bottom <= 8 and 0 <= left <= right <= 10
    assert lam == pytest.approx(1 - (bottom - top) * (right - left) / 80)


def test_no_mixing_paths_only_smooth():
    x, target = batch()
    expected = one_hot(target, NUM_CLASSES, 0.1)
    for mix in (Mixup(NUM_CLASSES, prob=0.0), Mixup(NUM_CLASSES, enabled=False), Mixup(NUM_CLASSES, 0.0, 0.0)):
        out, y = mix(x, target)
        assert torch.equal(out, x)
        torch.testing.assert_close(y, expected)


def test_batch_of_one_and_odd_batch():
    mix = Mixup(NUM_CLASSES)
    x, target = batch(B=1)
    out, y = mix(x, target, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x)
    torch.testing.assert_close(y, one_hot(target, NUM_CLASSES, 0.1))
    x, target = batch(B=3)
    mix = Mixup(NUM_CLASSES, mixup_alpha=0.8, cutmix_alpha=0.0)
    out, y = mix(x, target, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[1], x[1])  # the middle sample mixes with itself
    torch.testing.assert_close(y[1], one_hot(target[1:2], NUM_CLASSES, 0.1)[0])


def test_determinism():
    mix = Mixup(NUM_CLASSES)
    x, target = batch()
    a = mix(x, target, generator=torch.Generator().manual_seed(7))
    b = mix(x, target, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("alpha", [0.2, 0.8, 2.0])
def test_sample_beta_moments(alpha):
    g = torch.Generator().manual_seed(0)
    s = torch.tensor([sample_beta(alpha, alpha, g) for _ in range(2000)])
    assert ((s >= 0) & (s <= 1)).all()
    var = 1 / (4 * (2 * alpha + 1))  # Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1))
    assert abs(s.mean().item() - 0.5) < 0.04
    assert abs(s.var().item() - var) < 0.15 * var


def test_soft_target_cross_entropy():
    logits = torch.randn(4, NUM_CLASSES)
    target = torch.tensor([0, 1, 4, 2])
    soft = one_hot(target, NUM_CLASSES)
    torch.testing.assert_close(soft_target_cross_entropy(logits, soft), F.cross_entropy(logits, target))
    smooth = one_hot(target, NUM_CLASSES, 0.1)
    torch.testing.assert_close(SoftTargetCrossEntropy()(logits, smooth),
                               F.cross_entropy(logits, target, label_smoothing=0.1))
