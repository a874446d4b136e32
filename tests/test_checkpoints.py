"""Checkpoint formats, the state-dict filter (head, position embeddings, MAE keys), errors that name
the culprit, and atomic writes."""

import argparse
import json
import logging

import pytest
import torch
from safetensors.torch import save_file

import hiera_video
from conftest import assert_close_rel, load_fixture
from hiera_video.errors import CheckpointError
from hiera_video.models.adapt import adapt_state_dict
from hiera_video.models.checkpoints import atomic_save, read_checkpoint, save_model

NAME = "hiera_test_8x64"  # registered with the video fixture's geometry


@pytest.fixture(scope="module")
def fx():
    return load_fixture("hiera_video_tiny")


@pytest.fixture
def official_pth(fx, tmp_path):
    path = tmp_path / "official.pth"
    torch.save({"model_state": fx["state_dict"]}, path)
    return path


def _logits(model, fx):
    with torch.no_grad():
        return model.eval()(fx["input"])


def test_official_pth_loads_and_reproduces_logits(official_pth, fx):
    model = hiera_video.create_model(NAME, pretrained=str(official_pth))
    assert model.num_classes == 7  # taken from the checkpoint's head
    assert_close_rel(_logits(model, fx), fx["logits"], rtol=1e-5)


def test_hf_folder_rebuilds_the_model_from_config_json(fx, tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    # The official config.json lists only explicitly passed arguments, as the fixture config does.
    (folder / "config.json").write_text(json.dumps(fx["config"]))
    save_file(fx["state_dict"], str(folder / "model.safetensors"))
    model = hiera_video.create_model(pretrained=str(folder))
    assert model.config["input_size"] == [8, 64, 64]
    assert_close_rel(_logits(model, fx), fx["logits"], rtol=1e-5)


def test_hf_config_missing_keys_take_the_official_image_defaults(tmp_path):
    f = load_fixture("hiera_image_tiny")
    cfg = {k: v for k, v in f["config"].items()
           if k not in ("q_stride", "mask_unit_size", "patch_kernel", "patch_stride", "patch_padding",
                        "sep_pos_embed", "in_chans", "q_pool", "mask_unit_attn")}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file(f["state_dict"], str(tmp_path / "model.safetensors"))
    model = hiera_video.create_model(pretrained=str(tmp_path))
    with torch.no_grad():
        assert_close_rel(model.eval()(f["input"]), f["logits"], rtol=1e-5)


def test_own_checkpoint_round_trips_with_its_config(official_pth, fx, tmp_path):
    model = hiera_video.create_model(NAME, pretrained=str(official_pth))
    for fname in ("ours.pt", "ours.safetensors"):
        save_model(model, tmp_path / fname, epoch=3)
        again = hiera_video.create_model(pretrained=str(tmp_path / fname))
        assert again.name == NAME and again.config == model.config
        torch.testing.assert_close(_logits(again, fx), _logits(model, fx), rtol=0, atol=0)
    assert read_checkpoint(tmp_path / "ours.pt").extra == {"epoch": 3}


def test_plain_state_dict_with_wrapper_prefixes(fx, tmp_path):
    path = tmp_path / "ddp.pth"
    torch.save({"module._orig_mod." + k: v for k, v in fx["state_dict"].items()}, path)
    model = hiera_video.create_model(NAME, pretrained=str(path))
    assert_close_rel(_logits(model, fx), fx["logits"], rtol=1e-5)


def test_file_url_downloads_through_torch_hub(official_pth, fx, tmp_path):
    torch.hub.set_dir(str(tmp_path / "hub"))
    model = hiera_video.create_model(NAME, pretrained=official_pth.as_uri())
    assert_close_rel(_logits(model, fx), fx["logits"], rtol=1e-5)


def test_head_is_reinitialised_with_a_log_line_when_classes_differ(official_pth, fx, caplog):
    with caplog.at_level(logging.INFO, logger="hiera_video"):
        model = hiera_video.create_model(NAME, pretrained=str(official_pth), num_classes=3)
    assert "classifier re-initialised: checkpoint has 7 classes, model has 3" in caplog.text
    assert model.head.projection.weight.shape == (3, 128)
    torch.testing.assert_close(model.blocks[2].attn.qkv.weight, fx["state_dict"]["blocks.2.attn.qkv.weight"])


def test_position_embeddings_are_interpolated_for_other_frames_and_resolution(official_pth, caplog):
    with caplog.at_level(logging.INFO, logger="hiera_video"):
        model = hiera_video.create_model(NAME, pretrained=str(official_pth), input_size=(16, 96, 96))
    assert model.pos_embed_spatial.shape == (1, 24 * 24, 16)
    assert model.pos_embed_temporal.shape == (1, 8, 16)
    assert "pos_embed_spatial interpolated from [16, 16] to [24, 24]" in caplog.text
    assert "pos_embed_temporal interpolated from 4 to 8" in caplog.text
    assert model(torch.randn(1, 3, 16, 96, 96)).shape == (1, 7)


def test_interpolation_preserves_smooth_embeddings():
    model = hiera_video.create_model(NAME, input_size=(16, 64, 64))
    t = torch.arange(4.0).view(1, 4, 1).expand(1, 4, 16)  # a linear ramp in time
    sd = dict(model.state_dict(), pos_embed_temporal=t.clone(),
              pos_embed_spatial=torch.full((1, 256, 16), 0.5))
    out, notes = adapt_state_dict(sd, model)
    assert out is not sd and out["pos_embed_temporal"].shape == (1, 8, 16)
    assert sd["pos_embed_temporal"].shape == (1, 4, 16)  # input untouched
    assert torch.all(out["pos_embed_temporal"][0, 1:, 0].diff() >= 0)  # still monotone
    torch.testing.assert_close(out["pos_embed_spatial"], sd["pos_embed_spatial"])


def test_mae_checkpoint_drops_decoder_and_reports_what_stays_initial(fx, tmp_path, caplog):
    sd = {k: v for k, v in fx["state_dict"].items() if not k.startswith(("head.", "norm."))}
    sd.update({"decoder_embed.weight": torch.zeros(32, 128), "mask_token": torch.zeros(1, 1, 32),
               "encoder_norm.weight": torch.ones(128), "multi_scale_fusion_heads.0.weight": torch.zeros(1)})
    path = tmp_path / "mae.pth"
    torch.save({"model_state": sd}, path)
    with caplog.at_level(logging.INFO, logger="hiera_video"):
        model = hiera_video.create_model(NAME, pretrained=str(path), num_classes=5)
    assert "dropped 4 MAE decoder tensors" in caplog.text
    assert "left at initial values: ['norm.weight', 'norm.bias', 'head.projection.weight'" in caplog.text
    torch.testing.assert_close(model.blocks[0].mlp.fc1.weight, fx["state_dict"]["blocks.0.mlp.fc1.weight"])


def test_wrong_model_names_the_key_and_both_shapes(official_pth):
    with pytest.raises(CheckpointError, match=r"patch_embed.proj.weight: checkpoint \[16, 3, 3, 7, 7\], "
                                              r"model \[32, 3, 3, 7, 7\]") as e:
        hiera_video.create_model(NAME, pretrained=str(official_pth), embed_dim=32)
    assert "video Hiera with embed_dim 16 and 7 blocks" in str(e.value)


def test_missing_and_unexpected_keys_are_errors(fx, tmp_path):
    sd = dict(fx["state_dict"])
    del sd["blocks.3.mlp.fc2.bias"]
    sd["blocks.99.attn.qkv.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"missing \['blocks.3.mlp.fc2.bias'\].*unexpected \['blocks.99"):
        hiera_video.create_model(NAME, pretrained=str(tmp_path / "bad.pt"))


class Payload:
    """Stands for arbitrary code in a malicious pickle."""


def test_pickled_objects_are_refused_naming_the_class(fx, tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model_state": fx["state_dict"], "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"not a plain checkpoint: it asks to construct "
                                              r"test_checkpoints.Payload, which was refused") as e:
        read_checkpoint(path)
    assert "weights_only set to False" not in str(e.value)  # torch's advice is never passed on


def test_harmless_training_metadata_is_accepted(fx, tmp_path):
    import numpy as np
    path = tmp_path / "mae_style.pth"
    torch.save({"model": fx["state_dict"], "args": argparse.Namespace(lr=1.5e-4), "epoch": 799,
                "best": np.float64(0.5)}, path)
    ckpt = read_checkpoint(path)
    assert set(ckpt.state_dict) == set(fx["state_dict"]) and ckpt.extra["args"].lr == 1.5e-4


@pytest.mark.parametrize("content,match", [(b"", "not a readable torch checkpoint"),
                                           (b"garbage" * 10, "not a readable torch checkpoint")])
def test_corrupt_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"broken.pth: {match}"):
        read_checkpoint(path)


def test_missing_file_and_unrecognised_content(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "nope.pth")
    torch.save({"epoch": 3}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"no state dict found.*\['epoch'\]"):
        read_checkpoint(tmp_path / "odd.pt")


def test_transformers_format_is_recognised(tmp_path):
    save_file({"hiera.embeddings.patch_embeddings.projection.weight": torch.zeros(1)},
              str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="transformers"):
        read_checkpoint(tmp_path)


def test_name_is_required_without_a_config(official_pth):
    with pytest.raises(ValueError, match="needs a model name"):
        hiera_video.create_model(pretrained=str(official_pth))


def test_atomic_save_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": torch.ones(2)}, path)

    def broken_save(obj, f):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
