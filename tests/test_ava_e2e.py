"""AVA end to end on the synthetic AVA-format set: generate it, train the tiny detector through the
shared loop (task ava), evaluate with tools/evaluate_ava.py, check the official-format detections with
tools/ava_map.py, draw them with tools/visualize_ava.py, and score clearly above chance (random scores
on the same person proposals). About 2 minutes on 2 CPU cores."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hiera_video.config import load_config
from conftest import load_tool

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def ava_run(tmp_path_factory):
    from accelerate.state import AcceleratorState, GradientState
    from hiera_video.tasks.ava.synthetic import make_ava_dataset
    from hiera_video.engine.train import train

    root = tmp_path_factory.mktemp("ava")
    make_ava_dataset(root / "data", num_train=40, num_val=8, seconds=10, seed=0, progress=False)
    a = root / "data" / "annotations"
    overrides = [f"ava.frames_root={root / 'data' / 'frames'}", f"ava.train_annotations={a / 'ava_train_v2.2.csv'}",
                 f"ava.val_annotations={a / 'ava_val_v2.2.csv'}",
                 f"ava.labelmap={a / 'ava_action_list_v2.2_for_activitynet_2019.pbtxt'}",
                 f"ava.train_exclusions={a / 'ava_train_excluded_timestamps_v2.2.csv'}",
                 f"ava.val_exclusions={a / 'ava_val_excluded_timestamps_v2.2.csv'}",
                 f"ava.val_proposals={a / 'person_proposals_val.csv'}", "train.epochs=4",
                 f"output_dir={root / 'train'}"]
    cfg_path = ROOT / "configs" / "synthetic_ava_hiera_tiny.yaml"
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    train(load_config(cfg_path, overrides))
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return root, cfg_path, overrides


def test_training_writes_detector_checkpoints_and_val_map(ava_run):
    root, _, _ = ava_run
    rows = [json.loads(line) for line in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert all(0.0 <= r["val_map"] <= 1.0 and r["val_boxes"] > 0 for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    ckpt = (root / "train" / "model_best.pt")
    assert ckpt.exists()


def test_evaluation_scores_clearly_above_chance_and_agrees_with_ava_map(ava_run, capsys):
    root, cfg_path, overrides = ava_run
    out = root / "eval"
    assert load_tool("evaluate_ava").main(["--cfg", str(cfg_path), "--ckpt", str(root / "train" / "model_best.pt"),
                                           "--out", str(out), *overrides]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # Official results format: 8 columns, one row per box and evaluated class.
    rows = list(csv.reader(open(out / "detections.csv")))
    classes = {int(c["id"]) for c in metrics["per_class"]}
    assert rows and all(len(r) == 8 for r in rows) and {int(r[6]) for r in rows} == classes
    assert len(rows) == metrics["num_boxes"] * len(classes)
    # The same mAP from the CSV files alone.
    a = root / "data" / "annotations"
    capsys.readouterr()
    assert load_tool("ava_map").main(["--gt", str(a / "ava_val_v2.2.csv"), "--detections", str(out / "detections.csv"),
                                      "--labelmap", str(a / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"),
                                      "--exclusions", str(a / "ava_val_excluded_timestamps_v2.2.csv")]) == 0
    from_files = json.loads(capsys.readouterr().out)
    assert abs(from_files["mAP"] - metrics["mAP"]) < 1e-6
    # Chance: random scores for the same boxes (the proposals), averaged over 20 draws.
    from hiera_video.tasks.ava.metric import frame_map_from_rows
    from hiera_video.tasks.ava.io import read_annotations, read_exclusions, read_labelmap
    gt = read_annotations(a / "ava_val_v2.2.csv")
    labelmap = read_labelmap(a / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    excluded = read_exclusions(a / "ava_val_excluded_timestamps_v2.2.csv")
    boxes = {(r[0], int(r[1]), tuple(float(v) for v in r[2:6])) for r in rows}
    chance = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        random_rows = [(v, t, b, c, float(rng.random())) for v, t, b in sorted(boxes) for c in sorted(classes)]
        chance.append(frame_map_from_rows(gt, random_rows, labelmap, excluded)["mAP"])
    assert metrics["mAP"] > np.mean(chance) + 0.1, (metrics["mAP"], np.mean(chance), np.std(chance))


def test_visualisation_of_the_detections(ava_run, tmp_path, capsys):
    root, cfg_path, overrides = ava_run
    det = root / "eval" / "detections.csv"
    if not det.exists():
        pytest.skip("needs the evaluation test's output")
    a = root / "data" / "annotations"
    code = load_tool("visualize_ava").main(["--frames", str(root / "data" / "frames"), "--detections", str(det),
                                            "--labelmap", str(a / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"),
                                            "--gt", str(a / "ava_val_v2.2.csv"), "--out", str(tmp_path / "vis"),
                                            "--max-keyframes", "3"])
    assert code == 0
    pngs = sorted((tmp_path / "vis").glob("*.png"))
    assert len(pngs) == 3 and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_two_processes_give_the_same_detections_as_one(ava_run):
    # Keyframes hold different numbers of boxes and the last batch pads: every box must be scored once.
    import subprocess
    import sys
    root, cfg_path, overrides = ava_run
    one = root / "eval"
    if not (one / "detections.csv").exists():
        pytest.skip("needs the evaluation test's output")
    two = root / "eval_two"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / "tools" / "evaluate_ava.py"), "--cfg", str(cfg_path), "--ckpt",
           str(root / "train" / "model_best.pt"), "--out", str(two), *overrides, "eval.batch_size=3"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a = sorted(csv.reader(open(one / "detections.csv")))
    b = sorted(csv.reader(open(two / "detections.csv")))
    assert [r[:7] for r in a] == [r[:7] for r in b]
    assert np.allclose([float(r[7]) for r in a], [float(r[7]) for r in b], atol=1e-5)
    assert abs(json.loads((two / "metrics.json").read_text())["mAP"]
               - json.loads((one / "metrics.json").read_text())["mAP"]) < 1e-6
