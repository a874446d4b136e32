"""The Python API (hiera_video/api.py) against the command-line paths it shares code with: `predict`
gives what `hiera-video predict` prints, `embed` gives the rows the resumable list extractor writes, and
`train` runs the same loop as `hiera-video finetune`."""

import json

import numpy as np
import pytest
import torch

import hiera_video
from hiera_video.engine.embed import extract_embeddings
from conftest import load_tool

CLASSES = ["left", "right", "up"]  # the names tiny_classifier records


@pytest.fixture(scope="module")
def setup(tiny_classifier):
    return tiny_classifier


def test_predict_matches_the_command_and_needs_nothing_re_entered(setup, capsys):
    paths = [str(setup / "0.mp4"), str(setup / "1.mp4")]
    ours = hiera_video.predict(paths, str(setup / "model.pt"), k=2, views=(2, 3))
    assert load_tool("predict").main([*paths, "--ckpt", str(setup / "model.pt"), "--k", "2", "--views", "2,3",
                                      "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ours
    assert all(t["class"] in CLASSES for r in ours for t in r["top"])
    assert all(abs(sum(t["prob"] for t in hiera_video.predict(p, str(setup / "model.pt"), k=3, views=(1, 1))[0]["top"])
                   - 1) < 1e-5 for p in paths)  # all classes: probabilities sum to 1


def test_predict_with_a_loaded_model_reports_unreadable_videos_and_bad_arguments(setup):
    model = hiera_video.load_classifier(setup / "model.pt")
    assert model.class_names == CLASSES and model.clip_settings.num_frames == 8
    out = hiera_video.predict([setup / "2.mp4", setup / "missing.mp4"], model, k=1, views=(1, 1))
    assert out[0]["error"] is None and len(out[0]["top"]) == 1
    assert out[1]["error"] and out[1]["top"] == []
    with pytest.raises(ValueError, match="views"):
        hiera_video.predict(setup / "2.mp4", model, views=(2, 2))
    with pytest.raises(ValueError, match="k must be"):
        hiera_video.predict(setup / "2.mp4", model, k=0)


def test_labels_and_config_override_the_checkpoint(setup, tmp_path):
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    model = hiera_video.load_classifier(setup / "model.pt", labels=str(tmp_path / "names.txt"))
    assert model.class_names == ["a", "b", "c"]
    with pytest.raises(ValueError, match="lists 400 classes but the model predicts 3"):
        hiera_video.load_classifier(setup / "model.pt", labels="kinetics400")  # a shipped list, by name


def test_embed_equals_the_list_extractor_row_for_row(setup, tmp_path):
    out = tmp_path / "emb"
    extract_embeddings(None, str(setup / "model.pt"), str(setup / "list.csv"), out, 2, 3, num_workers=0)
    rows = torch.from_numpy(np.load(out / "embeddings.npy"))
    ours = hiera_video.embed([setup / f"{i}.mp4" for i in range(3)], setup / "model.pt", views=(2, 3))
    assert ours.shape == rows.shape
    torch.testing.assert_close(ours, rows, atol=1e-5, rtol=1e-5)
    assert torch.allclose(ours.norm(dim=1), torch.ones(3))


def test_embed_gives_nan_rows_for_unreadable_videos_and_names_them_when_none_is_readable(setup):
    out = hiera_video.embed([setup / "0.mp4", setup / "missing.mp4"], setup / "model.pt")
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()
    with pytest.raises(ValueError, match="missing.mp4"):
        hiera_video.embed(setup / "missing.mp4", setup / "model.pt")


def test_train_from_python_with_a_shipped_config_name(data, tmp_path, fresh_accelerate):
    metrics = hiera_video.train("synthetic_hiera_tiny", [
        f"data.train_list={data / 'train.csv'}", f"data.val_list={data / 'val.csv'}", "data.classes=null",
        "model.name=hiera_test_8x64", "model.num_classes=2", "data.num_workers=0", "train.epochs=1",
        "train.batch_size=4", f"output_dir={tmp_path / 'run'}"])
    assert metrics["epoch"] == 1 and (tmp_path / "run" / "model_best.pt").is_file()


def test_predict_takes_a_model_straight_from_create_model(setup):
    """create_model(pretrained=...) records pretrained_cfg; that alone is enough for predict."""
    model = hiera_video.create_model(pretrained=str(setup / "model.pt"))
    video = str(setup / "1.mp4")
    assert hiera_video.predict(video, model, k=3, views=(1, 3)) == \
        hiera_video.predict(video, str(setup / "model.pt"), k=3, views=(1, 3))
    with pytest.raises(ValueError, match="no classifier"):
        hiera_video.predict(video, hiera_video.create_model("hiera_test_8x64", num_classes=0))
