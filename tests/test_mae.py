"""MAE pretraining model: equivalence with the official fixtures, the sparse encoder, the pixel
targets, reconstruction, and an MAE checkpoint initialising a classifier with every encoder weight."""

import math

import pytest
import torch

import hiera_video
from conftest import assert_close_rel, load_fixture
from hiera_video.models import CheckpointError, count_flops, save_model
from hiera_video.models.official import official_config_to_kwargs
from hiera_video.models.mae import MaskedAutoencoderHiera


@pytest.fixture(scope="module", params=["mae_hiera_video_tiny", "mae_hiera_image_tiny"])
def reference(request):
    f = load_fixture(request.param)
    model = MaskedAutoencoderHiera(**official_config_to_kwargs(f["config"], request.param))
    model.load_state_dict(f["state_dict"])  # strict: key names are the official ones
    return f, model.train()


def test_loss_predictions_and_targets_match_official(reference):
    f, model = reference
    with torch.no_grad():
        out = model(f["input"], mask=f["mask"])
    assert_close_rel(out.pred, f["pred"], rtol=1e-5)
    assert_close_rel(out.label, f["label"], rtol=1e-5)
    torch.testing.assert_close(out.loss, f["loss"], rtol=1e-5, atol=0)
    loss, pred, label, mask = out  # unpacks like the official (loss, pred, label, mask)
    assert torch.equal(mask, f["mask"])


def test_official_config_json_builds_the_same_mae(reference, tmp_path):
    f, model = reference
    import json
    from safetensors.torch import save_file
    (tmp_path / "config.json").write_text(json.dumps(f["config"]))
    save_file({k: v.contiguous() for k, v in f["state_dict"].items()}, str(tmp_path / "model.safetensors"))
    rebuilt = hiera_video.create_model(pretrained=str(tmp_path)).train()
    assert isinstance(rebuilt, MaskedAutoencoderHiera)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(f["input"], mask=f["mask"]).loss, f["loss"], rtol=1e-5, atol=0)


def test_random_mask_keeps_the_same_count_per_sample_and_loss_uses_masked_only():
    model = hiera_video.create_model("mae_hiera_test_8x64")
    x = torch.randn(3, 3, 8, 64, 64)
    out = model(x)  # default ratio 0.9 of 16 units -> int(1.6) = 1 kept
    assert out.mask.shape == (3, 16) and out.mask.sum(1).tolist() == [1, 1, 1]
    # each unit is 1x2x2 prediction tokens of 16x16 pixels: 15 masked units x 4 tokens per sample
    assert out.pred.shape == out.label.shape == (3 * 15 * 4, 16 * 16 * 3)
    assert torch.allclose(out.loss, (out.pred - out.label).pow(2).mean())
    out = model(x, mask_ratio=0.5)
    assert out.mask.sum(1).tolist() == [8, 8, 8]


def test_a_mask_with_nothing_masked_is_refused():
    model = hiera_video.create_model("mae_hiera_test_8x64")
    with pytest.raises(ValueError, match="no masked unit"):
        model(torch.randn(1, 3, 8, 64, 64), mask=torch.ones(1, 16, dtype=torch.bool))


def test_masked_units_cannot_influence_the_kept_ones():
    # Deleted, not computed: changing the pixels of masked units leaves the encoder output unchanged
    # (the patch conv sees them zeroed, as in the official code).
    model = hiera_video.create_model("mae_hiera_test_8x64").eval()
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, [0, 5, 10]] = True
    x = torch.randn(1, 3, 8, 64, 64)
    y = x.clone()
    unit = mask.view(1, 1, 4, 2, 2).float()
    keep = torch.nn.functional.interpolate(unit, size=(8, 64, 64)).bool().expand_as(x)
    y[~keep] = torch.randn(int((~keep).sum()))
    with torch.no_grad():
        assert torch.equal(model.forward_encoder(x, mask), model.forward_encoder(y, mask))


def test_sparse_encoder_costs_a_fraction_of_the_dense_one():
    model = hiera_video.create_model("mae_hiera_test_8x64")
    dense = count_flops(model, mask=torch.ones(1, 16, dtype=torch.bool), forward="encoder")
    sparse = count_flops(model, mask=model.get_random_mask(1, 0.75), forward="encoder")
    # The patch conv runs over the whole input (masked pixels zeroed, as in the official code); the
    # blocks see only the 4 kept units of 16 (global attention is quadratic, so even less).
    conv = model.patch_embed.proj
    patch = math.prod(model.tokens_spatial_shape) * conv.out_channels * conv.in_channels * math.prod(conv.kernel_size)
    assert 0.1 < (sparse - patch) / (dense - patch) <= 0.25, (sparse, dense, patch)


def test_video_targets_take_the_first_frame_of_each_token_and_reconstruct_keeps_visible_pixels():
    model = hiera_video.create_model("mae_hiera_test_8x64", norm_pix_loss=False).eval()
    x = torch.randn(2, 3, 8, 64, 64)
    raw = model.pixel_targets(x)
    assert raw.shape == (2, 4 * 4 * 4, 16 * 16 * 3)
    assert torch.equal(model.patches_to_pixels(raw, x.shape), x[:, :, ::2])  # layout round trip
    mask = model.get_random_mask(2, 0.75)
    rec = model.reconstruct(x, mask)  # [B, C, T', H, W]
    visible = torch.nn.functional.interpolate(mask.view(2, 1, 4, 2, 2).float(), size=(4, 64, 64)).bool()
    visible = visible.expand_as(rec)
    assert torch.equal(rec[visible], x[:, :, ::2][visible])
    assert not torch.equal(rec[~visible], x[:, :, ::2][~visible])


def test_image_targets_round_trip():
    model = hiera_video.create_model("mae_hiera_tiny_224", norm_pix_loss=False, decoder_depth=1,
                                     input_size=(64, 64))
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(model.patches_to_pixels(model.pixel_targets(x), x.shape), x)


def test_classifier_from_an_mae_checkpoint_gets_every_encoder_weight(tmp_path, caplog):
    mae = hiera_video.create_model("mae_hiera_tiny_8x64")
    with torch.no_grad():
        for p in mae.parameters():
            p.add_(torch.randn_like(p))  # nothing equal by chance to a fresh initialisation
    save_model(mae, tmp_path / "mae.pt")
    with caplog.at_level("INFO", logger="hiera_video"):
        clf = hiera_video.create_model("hiera_tiny_8x64", pretrained=str(tmp_path / "mae.pt"), num_classes=8)
    source = mae.state_dict()
    fresh = {"norm.weight", "norm.bias", "head.projection.weight", "head.projection.bias"}
    for key, value in clf.state_dict().items():
        if key in fresh:
            continue
        assert key in source, f"classifier tensor {key} has no counterpart in the MAE"
        assert torch.equal(value, source[key]), f"{key} was not loaded"
    assert set(clf.state_dict()) - set(source) == fresh
    assert "dropped" in caplog.text and "left at initial values" in caplog.text
    # The same checkpoint with no name rebuilds the MAE itself, or its encoder when num_classes is given.
    assert isinstance(hiera_video.create_model(pretrained=str(tmp_path / "mae.pt")), MaskedAutoencoderHiera)
    enc = hiera_video.create_model(pretrained=str(tmp_path / "mae.pt"), num_classes=0)
    assert not isinstance(enc, MaskedAutoencoderHiera) and enc.q_pool == 3


def test_an_mae_checkpoint_missing_an_encoder_weight_is_an_error(tmp_path):
    mae = hiera_video.create_model("mae_hiera_tiny_8x64")
    sd = mae.state_dict()
    del sd["blocks.2.attn.qkv.weight"]
    torch.save({"model_state": sd}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"blocks\.2\.attn\.qkv\.weight"):
        hiera_video.create_model("hiera_tiny_8x64", pretrained=str(tmp_path / "broken.pth"))


def test_mae_variants_have_the_official_sizes():
    with torch.device("meta"):
        model = hiera_video.create_model("mae_hiera_base_16x224")
    assert sum(p.numel() for p in model.parameters()) == 79_367_104  # official mae_hiera_base_16x224
    assert model.grid_final == [8, 14, 14] and model.unit_final == [1, 2, 2] and model.pred_stride == 16
    assert model.decoder_pred.out_features == 16 * 16 * 3 and model.mask_ratio == 0.9
    assert model.config["decoder_num_heads"] == 8  # the paper's video decoder
