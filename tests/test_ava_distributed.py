"""AVA evaluation over two CPU processes (`accelerate launch --multi_gpu --num_processes 2`): each
process scores its own part of the keyframes, each keyframe once, and the main process writes the
same detections and frame mAP as one process. An untrained tiny detector on a small synthetic set:
the scores only have to agree, not to be good. About 30 s on 2 CPU cores."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hiera_video
from hiera_video.config import load_config
from hiera_video.tasks.ava.model import create_ava_model

ROOT = Path(__file__).parents[1]
CFG = ROOT / "configs" / "synthetic_ava_hiera_tiny.yaml"


@pytest.fixture(scope="module")
def ava_eval(tmp_path_factory):
    from hiera_video.tasks.ava.synthetic import make_ava_dataset

    root = tmp_path_factory.mktemp("ava_dist")
    make_ava_dataset(root / "data", num_train=0, num_val=2, seconds=8, seed=0, workers=1, progress=False)
    torch.manual_seed(0)
    hiera_video.save_model(create_ava_model("hiera_test_8x64"), root / "detector.pt")
    a = root / "data" / "annotations"
    # batch 3: the keyframes split unevenly over 2 processes, and keyframes hold different numbers of boxes
    overrides = [f"ava.frames_root={root / 'data' / 'frames'}", f"ava.val_annotations={a / 'ava_val_v2.2.csv'}",
                 f"ava.labelmap={a / 'ava_action_list_v2.2_for_activitynet_2019.pbtxt'}",
                 f"ava.val_exclusions={a / 'ava_val_excluded_timestamps_v2.2.csv'}",
                 f"ava.val_proposals={a / 'person_proposals_val.csv'}", "model.name=hiera_test_8x64",
                 "data.crop_size=64", "data.num_workers=0", "eval.batch_size=3", f"output_dir={root / 'out'}"]
    return root, overrides


def _detections(folder: Path) -> list[list[str]]:
    return sorted(csv.reader(open(folder / "detections.csv")))


def test_two_processes_split_the_keyframes_and_agree_with_one(ava_eval, fresh_accelerate):
    from hiera_video.tasks.ava.task import evaluate_ava

    root, overrides = ava_eval
    one = evaluate_ava(load_config(CFG, overrides), str(root / "detector.pt"), root / "one")
    m1 = json.loads((root / "one" / "metrics.json").read_text())
    n = m1["num_keyframes_scored"]
    # An odd number of batches of 3: an evenly split loader would make process 1 repeat keyframes.
    assert n >= 5 and -(-n // 3) % 2 == 1 and m1["keyframes_per_process"] == [n]
    assert one["mAP"] == m1["mAP"]

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           str(ROOT / "tools" / "evaluate_ava.py"), "--cfg", str(CFG), "--ckpt", str(root / "detector.pt"),
           "--out", str(root / "two"), *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    m2 = json.loads((root / "two" / "metrics.json").read_text())
    # Each process did part of the work, each keyframe exactly once (no repeats to even out the split).
    shares = m2["keyframes_per_process"]
    assert len(shares) == 2 and all(s > 0 for s in shares) and sum(shares) == n, shares
    assert "2 processes, MULTI_CPU on cpu (backend gloo)" in out
    for rank in (0, 1):
        assert f"process {rank} of 2 scored {shares[rank]} keyframes" in out
    assert out.count('"mAP"') == 1  # the main process reports; the other returns nothing to print
    # The same boxes, scores and mAP as one process.
    a, b = _detections(root / "one"), _detections(root / "two")
    assert len(a) == m1["num_boxes"] * len(m1["per_class"]) and m2["num_boxes"] == m1["num_boxes"]
    assert [r[:7] for r in a] == [r[:7] for r in b]
    np.testing.assert_allclose([float(r[7]) for r in a], [float(r[7]) for r in b], atol=1e-5)
    assert abs(m2["mAP"] - m1["mAP"]) < 1e-6
