"""Multi-view evaluation, prediction and embeddings: views counted once, ensembling, unreadable videos
reported, embeddings normalised and aligned with the list, extraction resumable."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hiera_video
from hiera_video.data.lists import write_list
from hiera_video.engine.evaluate import ensemble
from videos import make_video
from conftest import load_tool

ROOT = Path(__file__).parents[1]
CLASSES = ["left", "right", "up"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny 3-class checkpoint that records its data settings and class names, and a list of 6
    videos in which line 4 is missing."""
    d = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    model = hiera_video.create_model("hiera_test_8x64", num_classes=3)
    hiera_video.save_model(model, d / "model.pt", data=dict(num_frames=8, sampling_rate=2, target_fps=30.0,
                                                            sampling_mode="stride", crop_size=64,
                                                            mean=[0.45] * 3, std=[0.225] * 3), classes=CLASSES)
    rows = []
    for i in range(6):
        if i != 3:
            make_video(d / "v" / f"{i}.mp4", num_frames=30 + 3 * i, height=32, width=64)
        rows.append((f"v/{i}.mp4", i % 3))
    write_list(d / "val.csv", rows)
    (d / "cfg.yaml").write_text(
        f"model: {{name: hiera_test_8x64, num_classes: 3}}\n"
        f"data: {{val_list: {d / 'val.csv'}, num_frames: 8, sampling_rate: 2, crop_size: 64, num_workers: 0}}\n"
        f"eval: {{num_temporal_clips: 2, num_spatial_crops: 3, batch_size: 2}}\noutput_dir: {d / 'out'}\n")
    return d


def test_each_ensembling_method_on_a_hand_made_case():
    views = torch.tensor([[0, 0, 0], [0, 1, 0], [2, 0, 0]])
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    videos, s = ensemble(views, logits, "logit")
    assert videos.tolist() == [0, 2] and torch.allclose(s, torch.tensor([[2.0, 1.0], [0.0, 3.0]]))
    p = logits.softmax(-1)
    _, s = ensemble(views, logits, "prob")
    assert torch.allclose(s, torch.stack([(p[0] + p[1]) / 2, p[2]]))
    _, s = ensemble(views, logits, "max")
    assert torch.allclose(s, torch.stack([torch.maximum(p[0], p[1]), p[2]]))
    with pytest.raises(ValueError, match="ensemble must be one of"):
        ensemble(views, logits, "median")


def run_evaluate(setup, out, processes: int, extra=()):
    cmd = [str(ROOT / "tools" / "evaluate.py"), "--cfg", str(setup / "cfg.yaml"), "--ckpt", str(setup / "model.pt"),
           "--out", str(out), *extra]
    if processes > 1:
        cmd = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *cmd]
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_every_view_once_and_one_process_equals_two(setup, tmp_path):
    one = run_evaluate(setup, tmp_path / "one", 1)
    two = run_evaluate(setup, tmp_path / "two", 2)
    assert one["num_videos"] == 6 and one["num_views"] == 5 * 6 and one["num_unreadable"] == 1
    assert {k: two[k] for k in one} == one
    rows_one = list(csv.DictReader(open(tmp_path / "one" / "predictions.csv")))
    rows_two = list(csv.DictReader(open(tmp_path / "two" / "predictions.csv")))
    assert [r["top1"] for r in rows_one] == [r["top1"] for r in rows_two]
    for a, b in zip(rows_one, rows_two):
        if a["score1"]:
            assert abs(float(a["score1"]) - float(b["score1"])) < 1e-5


def test_reports_and_unreadable_videos(setup, tmp_path, capsys):
    code = load_tool("evaluate").main(["--cfg", str(setup / "cfg.yaml"), "--ckpt", str(setup / "model.pt"),
                                       "--out", str(tmp_path / "r"), "eval.ensemble=logit"])
    assert code == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    for key in ("top1", "top5", "mean_class_acc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_unreadable"] == 1 and metrics["unreadable"][0]["path"].endswith("v/3.mp4")
    rows = list(csv.DictReader(open(tmp_path / "r" / "predictions.csv")))
    assert [Path(r["path"]).name for r in rows] == [f"{i}.mp4" for i in range(6)]  # list order, none dropped
    assert rows[3]["error"] == "file not found" and rows[3]["top1"] == ""
    assert rows[0]["label_name"] == "left" and rows[0]["top1"] in CLASSES
    per_class = list(csv.DictReader(open(tmp_path / "r" / "per_class.csv")))
    assert [r["name"] for r in per_class] == CLASSES and sum(int(r["videos"]) for r in per_class) == 5
    assert (tmp_path / "r" / "confusion.png").read_bytes().startswith(b"\x89PNG")


def test_evaluate_rejects_a_checkpoint_without_classifier(setup, tmp_path, capsys):
    mae_like = hiera_video.create_model("hiera_test_8x64", num_classes=0)
    hiera_video.save_model(mae_like, tmp_path / "features.pt")
    assert load_tool("evaluate").main(["--cfg", str(setup / "cfg.yaml"), "--ckpt", str(tmp_path / "features.pt")]) == 2
    assert "no classifier" in capsys.readouterr().err


def test_predict_prints_class_names_and_survives_a_bad_video(setup, capsys):
    code = load_tool("predict").main([str(setup / "v" / "0.mp4"), str(setup / "v" / "3.mp4"), str(setup / "v" / "1.mp4"),
                                      "--ckpt", str(setup / "model.pt"), "--views", "2,3", "--k", "2", "--json"])
    assert code == 1  # one video could not be read
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["error"] for r in results] == [None, "file not found", None]
    for r in (results[0], results[2]):
        names = [t["class"] for t in r["top"]]
        probs = [t["prob"] for t in r["top"]]
        assert len(names) == 2 and set(names) <= set(CLASSES) and probs == sorted(probs, reverse=True)
    assert "3.mp4: cannot read: file not found" in captured.err


def test_embeddings_are_normalised_aligned_and_resumable(setup, tmp_path):
    from hiera_video.engine.embed import extract_embeddings
    # The same video on lines 0 and 2: its rows must match; line 3 is missing: a NaN row, listed.
    write_list(tmp_path / "list.csv", [(str(setup / "v" / "0.mp4"), 0), (str(setup / "v" / "1.mp4"), 1),
                                       (str(setup / "v" / "0.mp4"), 0), (str(setup / "v" / "3.mp4"), 2),
                                       (str(setup / "v" / "4.mp4"), 1)])
    out = tmp_path / "emb"
    meta = extract_embeddings(None, str(setup / "model.pt"), str(tmp_path / "list.csv"), out, 2, 3, chunk=2,
                              num_workers=0)
    emb = np.load(out / "embeddings.npy")
    assert emb.shape == (5, meta["dimension"]) and emb.dtype == np.float32
    ok = [0, 1, 2, 4]
    np.testing.assert_allclose(np.linalg.norm(emb[ok], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(emb[0], emb[2], rtol=1e-5)
    assert np.isnan(emb[3]).all() and [u["index"] for u in meta["unreadable"]] == [3]
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert [Path(r["path"]).name for r in rows] == ["0.mp4", "1.mp4", "0.mp4", "3.mp4", "4.mp4"]
    assert meta["views"] == [2, 3] and meta["pooling"] == "mean" and meta["clip_settings"]["num_frames"] == 8
    # Interrupted after two chunks: only the missing one is recomputed, with the same result.
    (out / "parts" / "part_000000004.npz").unlink()
    (out / "embeddings.npy").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    extract_embeddings(None, str(setup / "model.pt"), str(tmp_path / "list.csv"), out, 2, 3, chunk=2, num_workers=0)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    assert {k: after[k] for k in before} == before and "part_000000004.npz" in after
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), emb)


def test_evaluate_compiles_the_model_when_the_config_says_so(setup, tmp_path, monkeypatch, fresh_accelerate):
    calls = []

    def fake_compile(model, *args, **kwargs):  # records, and returns the model as is: no real compile here
        calls.append(type(model).__name__)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    def argv(out, *overrides):
        return ["--cfg", str(setup / "cfg.yaml"), "--ckpt", str(setup / "model.pt"), "--out", str(tmp_path / out),
                "eval.num_temporal_clips=1", "eval.num_spatial_crops=1", *overrides]

    assert load_tool("evaluate").main(argv("plain")) == 0
    assert calls == []
    assert load_tool("evaluate").main(argv("compiled", "model.compile=true")) == 0
    assert calls == ["Hiera"]
