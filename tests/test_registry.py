"""The model registry: every registered model builds and has the right shapes; the paper's video
models have exactly the paper's parameter counts and FLOPs."""

import pytest
import torch

import hiera_video
from hiera_video.models import count_flops, count_params

# From shared/reference/hiera_paper.yaml (K400 head, 16x224x224 input).
PAPER = {
    "hiera_base_16x224": (51_092_560, 102),
    "hiera_base_plus_16x224": (69_392_240, 133),
    "hiera_large_16x224": (213_091_600, 413),
    "hiera_huge_16x224": (671_627_664, 1159),
}


def _meta(name, **kw):
    with torch.device("meta"):
        return hiera_video.create_model(name, **kw)


@pytest.mark.parametrize("name", list(PAPER))
def test_parameter_count_is_exact(name):
    assert count_params(_meta(name)) == PAPER[name][0]


@pytest.mark.parametrize("name", list(PAPER))
def test_flops_within_one_percent_of_paper(name):
    gflops = count_flops(_meta(name)) / 1e9
    assert abs(gflops - PAPER[name][1]) / PAPER[name][1] < 0.01, gflops


def test_create_model_works_on_meta_device():
    model = _meta("hiera_huge_16x224")
    assert all(p.device.type == "meta" for p in model.parameters())


@pytest.mark.parametrize("name", hiera_video.list_models("hiera_*"))
def test_every_classifier_has_consistent_shapes(name):
    model = _meta(name, num_classes=9)
    x = torch.empty(2, 3, *model.input_size, device="meta")
    assert model(x).shape == (2, 9)
    maps = model.forward_intermediates(x)
    grid = model.tokens_spatial_shape
    for i, m in enumerate(maps):
        # time is never pooled; space halves at each transition
        expected = [grid[0], *[g // 2**i for g in grid[1:]]] if len(grid) == 3 else [g // 2**i for g in grid]
        assert list(m.shape[1:-1]) == expected, (i, m.shape)
    assert maps[-1].shape[-1] == model.num_features


def test_video_models_use_the_paper_geometry():
    model = _meta("hiera_base_16x224")
    assert model.input_size == (16, 224, 224)
    assert model.tokens_spatial_shape == [8, 56, 56]
    assert model.num_mask_units == 8 * 7 * 7
    assert model.pos_embed_spatial.shape == (1, 56 * 56, 96)
    assert model.pos_embed_temporal.shape == (1, 8, 96)
    assert tuple(model.patch_embed.proj.kernel_size) == (3, 7, 7)


def test_tiny_model_runs_for_real_on_cpu():
    model = hiera_video.create_model("hiera_tiny_16x128", num_classes=4).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 128, 128))
    assert out.shape == (1, 4) and torch.isfinite(out).all()


def test_overrides_reach_the_constructor():
    model = _meta("hiera_base_16x224", drop_path_rate=0.3, head_dropout=0.5, input_size=(32, 224, 224))
    assert model.blocks[-1].drop_path.p == pytest.approx(0.3)
    assert model.head.dropout.p == 0.5
    assert model.pos_embed_temporal.shape == (1, 16, 96)


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ValueError, match=r"unknown model 'hiera_bas_16x224'.*did you mean 'hiera_base_16x224'"):
        hiera_video.create_model("hiera_bas_16x224")


def test_pretrained_metadata_for_paper_models():
    from hiera_video.models import PRETRAINED
    meta = PRETRAINED["hiera_large_16x224"]["mae_k400_ft_k400"]
    assert meta["url"].endswith("/hiera_large_16x224.pth")
    assert (meta["num_frames"], meta["sampling_rate"], meta["num_classes"]) == (16, 4, 400)
    assert meta["mean"] == (0.45,) * 3 and meta["std"] == (0.225,) * 3


def test_unknown_pretrained_tag_lists_the_tags():
    with pytest.raises(FileNotFoundError, match=r"mae_k400_ft_k400, mae_k400"):
        hiera_video.create_model("hiera_base_16x224", pretrained="mae_k700")


@pytest.mark.parametrize("name", hiera_video.list_models("mae_*"))
def test_every_mae_matches_its_classifier_encoder(name):
    mae, clf = _meta(name), _meta(name[len("mae_"):], num_classes=0)
    encoder = {k: v.shape for k, v in clf.state_dict().items() if not k.startswith(("norm.", "head."))}
    assert {k: v.shape for k, v in mae.state_dict().items() if k in encoder} == encoder
    assert mae.q_pool == 2 and mae.input_size == clf.input_size
