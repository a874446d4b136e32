"""The backbone: equivalence with the official implementation's fixtures, token layout, attention
against a brute-force reference, gradients, and input checks."""

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_close_rel, load_fixture
from hiera_video.models.hiera import Hiera, MaskUnitAttention, TokenLayout, pool_windows


@pytest.fixture(scope="module", params=["hiera_video_tiny", "hiera_image_tiny"])
def reference(request):
    f = load_fixture(request.param)
    model = Hiera(**f["config"])
    model.load_state_dict(f["state_dict"])  # strict: key names are the official ones
    return f, model.eval()


# --------------------------------------------------------------------------------------------------
# Equivalence with the official implementation
# --------------------------------------------------------------------------------------------------
def test_logits_match_official(reference):
    f, model = reference
    with torch.no_grad():
        assert_close_rel(model(f["input"]), f["logits"], rtol=1e-5)


def test_eval_mode_returns_logits_not_probabilities(reference):
    f, model = reference
    with torch.no_grad():
        logits = model.eval()(f["input"])
    assert not torch.allclose(logits.sum(-1), torch.ones(len(logits)))
    assert_close_rel(logits.softmax(-1), f["eval_probs"], rtol=1e-5)


def test_intermediates_match_official(reference):
    f, model = reference
    with torch.no_grad():
        maps = model.forward_intermediates(f["input"])
    assert len(maps) == 4
    for i, m in enumerate(maps):
        assert_close_rel(m, f[f"intermediate_{i}"], rtol=1e-5)


def test_masked_intermediates_match_official(reference):
    f, model = reference
    with torch.no_grad():
        maps = model.forward_intermediates(f["input"], mask=f["mask"])
    for i, m in enumerate(maps):
        assert_close_rel(m, f[f"intermediate_masked_{i}"], rtol=1e-5)


def test_forward_features_is_last_map_in_spatial_order(reference):
    f, model = reference
    with torch.no_grad():
        feats = model.forward_features(f["input"])
        last = model.forward_intermediates(f["input"])[-1]
    torch.testing.assert_close(feats, last.flatten(1, -2))
    pooled = model.forward_head(feats, pre_logits=True)
    assert pooled.shape == (len(feats), model.num_features)


# --------------------------------------------------------------------------------------------------
# Token layout
# --------------------------------------------------------------------------------------------------
LAYOUTS = [((4, 16, 16), (1, 2, 2), 3), ((2, 8, 24), (1, 2, 2), 2), ((16, 16), (2, 2), 3),
           ((8, 12), (2, 2), 2), ((4, 8, 8), (2, 2, 2), 2)]


@pytest.mark.parametrize("grid,q,levels", LAYOUTS)
def test_unroll_reroll_round_trip(grid, q, levels):
    layout = TokenLayout(grid, q, levels)
    x = torch.randn(2, *grid, 5)
    flat = layout.unroll(x)
    assert flat.shape == (2, math.prod(grid), 5)
    torch.testing.assert_close(layout.reroll(flat, 0), x, rtol=0, atol=0)
    # channels-first input (the patch-embedding conv's layout) unrolls to the same order
    cf = x.movedim(-1, 1)
    torch.testing.assert_close(layout.unroll(cf, channels_first=True), flat, rtol=0, atol=0)


@pytest.mark.parametrize("grid,q,levels", LAYOUTS)
def test_unit_major_order_holds_each_mask_unit_contiguously(grid, q, levels):
    layout = TokenLayout(grid, q, levels)
    x = torch.randn(1, *grid, 3)
    units = layout.reroll_units(layout.unroll(x), 0)  # [1, U, *mu, C]
    mu = layout.unit_tokens(0)
    # The same units cut from the spatial map by slicing, in spatial unit order.
    D = len(grid)
    split = x.reshape(1, *[n for u, m in zip(layout.units, mu) for n in (u, m)], 3)
    perm = [0] + [1 + 2 * d for d in range(D)] + [2 + 2 * d for d in range(D)] + [2 * D + 1]
    expected = split.permute(perm).reshape(1, layout.num_units, *mu, 3)
    torch.testing.assert_close(units, expected, rtol=0, atol=0)


@pytest.mark.parametrize("grid,q,levels", LAYOUTS)
def test_pooling_in_window_order_is_a_spatial_max_pool(grid, q, levels):
    layout = TokenLayout(grid, q, levels)
    x = torch.randn(2, *grid, 4)
    flat = layout.unroll(x)
    spatial = x.movedim(-1, 1)  # [B, C, *grid]
    pool = F.max_pool3d if len(grid) == 3 else F.max_pool2d
    for k in range(1, levels + 1):
        flat = pool_windows(flat, math.prod(q), layout.num_units)
        spatial = pool(spatial, kernel_size=q, stride=q)
        torch.testing.assert_close(layout.reroll(flat, k), spatial.movedim(1, -1), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------
# Attention against a brute-force reference in spatial layout
# --------------------------------------------------------------------------------------------------
def _reference_attention(attn: MaskUnitAttention, x: torch.Tensor, unit: tuple, q_kernel: tuple) -> torch.Tensor:
    """Attention computed window by window on a spatial [B, T, H, W, C] map with explicit softmax.
    unit: window size in tokens (the whole grid for global attention); q_kernel: query max-pool."""
    B, T, H, W, C = x.shape
    h, d = attn.heads, attn.head_dim
    qkv = attn.qkv(x).view(B, T, H, W, 3, h, d)
    out_grid = [n // k for n, k in zip((T, H, W), q_kernel)]
    out = torch.zeros(B, *out_grid, h * d)
    ut, uh, uw = unit
    for t0 in range(0, T, ut):
        for h0 in range(0, H, uh):
            for w0 in range(0, W, uw):
                win = qkv[:, t0:t0 + ut, h0:h0 + uh, w0:w0 + uw]  # [B, ut, uh, uw, 3, h, d]
                q = win[..., 0, :, :].permute(0, 4, 5, 1, 2, 3).reshape(B, h * d, ut, uh, uw)
                q = F.max_pool3d(q, q_kernel, q_kernel)  # [B, h*d, ut', uh', uw']
                shape = q.shape[2:]
                q = q.reshape(B, h, d, -1).transpose(-1, -2)  # [B, h, n_q, d]
                k = win[..., 1, :, :].reshape(B, -1, h, d).transpose(1, 2)
                v = win[..., 2, :, :].reshape(B, -1, h, d).transpose(1, 2)
                a = (q @ k.transpose(-1, -2) / math.sqrt(d)).softmax(-1) @ v  # [B, h, n_q, d]
                a = a.transpose(1, 2).reshape(B, *shape, h * d)
                ot, oh, ow = t0 // q_kernel[0], h0 // q_kernel[1], w0 // q_kernel[2]
                out[:, ot:ot + shape[0], oh:oh + shape[1], ow:ow + shape[2]] = a
    return attn.proj(out)


@pytest.mark.parametrize("mask_unit_attn,pool", [(True, False), (True, True), (False, False), (False, True)])
def test_attention_matches_brute_force(mask_unit_attn, pool):
    grid, q = (2, 16, 16), (1, 2, 2)
    layout = TokenLayout(grid, q, 3)
    stride = 4 if pool else 1
    window = 64 // stride
    attn = MaskUnitAttention(8, 12, heads=2, q_stride=stride, window_size=window, use_mask_unit_attn=mask_unit_attn)
    x = torch.randn(2, *grid, 8)
    with torch.no_grad():
        ours = layout.reroll(attn(layout.unroll(x)), 1 if pool else 0)
        unit = (1, 8, 8) if mask_unit_attn else grid
        expected = _reference_attention(attn, x, unit, (1, 2, 2) if pool else (1, 1, 1))
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Training behaviour
# --------------------------------------------------------------------------------------------------
def _tiny(**kw):
    cfg = dict(input_size=(8, 64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 3, 1), num_classes=5)
    return Hiera(**{**cfg, **kw})


def test_gradients_reach_every_parameter():
    model = _tiny().train()
    model(torch.randn(2, 3, 8, 64, 64)).logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_gradients_reach_every_parameter_with_mask():
    model = _tiny(num_classes=0).train()
    mask = model.get_random_mask(2, 0.5)
    model.forward_intermediates(torch.randn(2, 3, 8, 64, 64), mask=mask)[-1].square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == ["norm.weight", "norm.bias"]  # the final norm is not on the intermediates path


def test_grad_checkpointing_gives_identical_gradients():
    torch.manual_seed(1)
    a = _tiny().train()
    b = _tiny().train()
    b.load_state_dict(a.state_dict())
    b.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 8, 64, 64)
    a(x).sum().backward()
    b(x).sum().backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)


def test_drop_path_is_stochastic_in_train_and_off_in_eval():
    model = _tiny(drop_path_rate=0.5)
    x = torch.randn(2, 3, 8, 64, 64)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_random_mask_keeps_the_same_count_per_sample():
    model = _tiny()
    mask = model.get_random_mask(4, 0.75)
    assert mask.shape == (4, 16) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [4, 4, 4, 4]


def test_masked_forward_returns_logits_from_kept_units():
    model = _tiny().eval()
    x = torch.randn(2, 3, 8, 64, 64)
    mask = model.get_random_mask(2, 0.5)
    assert model(x, mask=mask).shape == (2, 5)
    assert model.forward_features(x, mask=mask).shape == (2, 8 * 1, 128)  # 8 kept units x 1 token


def test_no_classifier_returns_pooled_features():
    model = _tiny(num_classes=0)
    assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 128)


def test_reset_classifier():
    model = _tiny()
    model.reset_classifier(11)
    assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 11)
    assert model.config["num_classes"] == 11


# --------------------------------------------------------------------------------------------------
# Clear errors
# --------------------------------------------------------------------------------------------------
def test_wrong_input_shape_is_a_clear_error():
    model = _tiny()
    with pytest.raises(ValueError, match=r"expects input \[B, 3, 8, 64, 64\].*got \[1, 3, 16, 64, 64\]"):
        model(torch.randn(1, 3, 16, 64, 64))


def test_wrong_mask_shape_is_a_clear_error():
    model = _tiny()
    with pytest.raises(ValueError, match=r"mask must be \[B, num_mask_units\] = \[1, 16\]"):
        model(torch.randn(1, 3, 8, 64, 64), mask=torch.ones(1, 8, dtype=torch.bool))


@pytest.mark.parametrize("kw,match", [
    (dict(input_size=(8, 72, 72)), r"not divisible into mask units"),
    (dict(mask_unit_size=(2, 8, 8)), r"mask_unit_size=\[2, 8, 8\] must equal q_stride \*\* 3"),
    (dict(q_stride=(2, 2)), r"q_stride=\[2, 2\] has 2 dims"),
    (dict(q_pool=4), r"q_pool=4"),
    (dict(mask_unit_attn=(True, False)), r"one flag per stage"),
])
def test_bad_geometry_is_a_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kw)
