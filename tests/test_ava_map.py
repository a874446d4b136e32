"""Frame-level AVA mAP: hand-computed cases, the CLI, and agreement with mmaction2's copy of the official
evaluator where that is installed (a separate environment; the test skips elsewhere)."""

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from hiera_video.tasks.ava.io import write_detections, write_labelmap
from hiera_video.tasks.ava.metric import box_iou, frame_map, frame_map_from_rows
from conftest import load_tool

ROOT = Path(__file__).resolve().parents[1]
LABELS = [(1, "stand"), (2, "sit"), (3, "walk")]
A, B, Z = ("vid_a", 902), ("vid_a", 903), ("vid_b", 1500)
G1, G2 = (0.1, 0.1, 0.4, 0.9), (0.5, 0.2, 0.9, 0.95)
ELSEWHERE = (0.6, 0.0, 0.7, 0.1)  # overlaps neither ground-truth box


def det(key, box, action, score):
    return (key[0], key[1], box, action, score)


def aps(result) -> dict:
    return {c["id"]: c["ap"] for c in result["per_class"]}


def test_perfect_detections_score_one():
    gt = {A: [(G1, [1, 2]), (G2, [2])], B: [(G2, [3])]}
    dets = [det(A, G1, 1, 0.9), det(A, G1, 2, 0.8), det(A, G2, 2, 0.7), det(B, G2, 3, 0.6)]
    r = frame_map_from_rows(gt, dets, LABELS)
    assert r["mAP"] == 1.0 and aps(r) == {1: 1.0, 2: 1.0, 3: 1.0}
    assert [c["gt"] for c in r["per_class"]] == [1, 2, 1] and r["num_keyframes"] == 2


def test_no_detections_score_zero():
    r = frame_map_from_rows({A: [(G1, [1, 2])]}, [], LABELS)
    assert r["mAP"] == 0.0 and aps(r) == {1: 0.0, 2: 0.0, 3: None}


def test_a_duplicate_is_a_false_positive():
    # Score order: TP (A), duplicate FP (A), TP (B). Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; the
    # envelope lifts the middle one to 2/3: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    gt = {A: [(G1, [1])], B: [(G1, [1])]}
    dets = [det(A, G1, 1, 0.9), det(A, G1, 1, 0.8), det(B, G1, 1, 0.7)]
    assert frame_map_from_rows(gt, dets, LABELS)["mAP"] == pytest.approx(5 / 6, abs=1e-12)


def test_a_detection_takes_its_best_box_even_when_that_box_is_taken():
    # As the official per_image_evaluation: the second detection overlaps G1 best (already matched), so it
    # is a false positive although it would also match the free box next to it.
    g2 = (0.25, 0.1, 0.55, 0.9)
    shifted = (0.15, 0.1, 0.45, 0.9)
    assert box_iou(np.array([shifted]), np.array([G1, g2])).round(3).tolist() == [[0.714, 0.5]]
    r = frame_map_from_rows({A: [(G1, [1]), (g2, [1])]}, [det(A, G1, 1, 0.9), det(A, shifted, 1, 0.8)], LABELS)
    assert r["mAP"] == pytest.approx(0.5)


def test_excluded_keyframes_are_left_out():
    gt = {A: [(G1, [1])], B: [(G2, [1])]}
    dets = [det(A, G1, 1, 0.5), det(B, ELSEWHERE, 1, 0.9)]
    assert frame_map_from_rows(gt, dets, LABELS)["mAP"] == pytest.approx(0.25)  # FP, TP over 2 boxes
    r = frame_map_from_rows(gt, dets, LABELS, excluded={B})
    assert r["mAP"] == 1.0 and r["per_class"][0]["gt"] == 1 and r["num_keyframes"] == 1


def test_detections_on_keyframes_without_ground_truth_are_false_positives():
    # The official evaluator matches them against an empty box list. FP (0.9), TP (0.5): AP = 1/2.
    r = frame_map_from_rows({A: [(G1, [1])]}, [det(A, G1, 1, 0.5), det(Z, G1, 1, 0.9)], LABELS)
    assert r["mAP"] == pytest.approx(0.5) and r["num_detection_keyframes"] == 2


def test_class_with_ground_truth_but_no_detections_counts_zero():
    gt = {A: [(G1, [1]), (G2, [2])]}
    r = frame_map_from_rows(gt, [det(A, G1, 1, 0.9), det(A, G2, 3, 0.9)], LABELS)
    # Class 3 has detections but no ground truth: no AP, left out of the mean.
    assert aps(r) == {1: 1.0, 2: 0.0, 3: None} and r["mAP"] == 0.5 and r["num_classes_evaluated"] == 2


def test_classes_outside_the_label_map_are_ignored():
    gt = {A: [(G1, [1, 9])]}
    r = frame_map_from_rows(gt, [det(A, G1, 1, 0.9), det(A, G2, 9, 0.95)], LABELS)
    assert r["mAP"] == 1.0 and r["num_gt"] == 1 and r["num_detections"] == 1


def test_capacity_keeps_the_best_rows_per_keyframe():
    gt = {A: [(G1, [1])]}
    dets = [det(A, G1, 1, 0.1), det(A, ELSEWHERE, 1, 0.8), det(A, G2, 1, 0.9),
            det(A, G1, 9, 1.0)]  # outside the label map: filtered before the cap, takes no place
    assert frame_map_from_rows(gt, dets, LABELS, capacity=2)["mAP"] == 0.0  # only the two FPs survive
    # Uncapped: FP, FP, TP -> precision 1/3 at recall 1.
    assert frame_map_from_rows(gt, dets, LABELS, capacity=3)["mAP"] == pytest.approx(1 / 3)
    assert frame_map_from_rows(gt, dets, LABELS, capacity=0)["mAP"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("x2,iou,expected", [(0.5, 0.5, 1.0), (0.499, 0.5, 0.0), (0.5, 0.51, 0.0)])
def test_iou_threshold_is_inclusive(x2, iou, expected):
    # Ground truth is the whole frame; the detection is its left part: IoU = x2 exactly.
    r = frame_map_from_rows({A: [((0.0, 0.0, 1.0, 1.0), [1])]}, [det(A, (0.0, 0.0, x2, 1.0), 1, 0.9)], LABELS,
                            iou=iou)
    assert r["mAP"] == expected


def test_no_ground_truth_is_an_error():
    with pytest.raises(ValueError, match="no ground-truth boxes"):
        frame_map_from_rows({A: [(G1, [9])]}, [], LABELS)


def write_files(d: Path) -> dict:
    (d / "gt.csv").write_text("vid_a,0902,0.100,0.100,0.400,0.900,1,0\nvid_a,0902,0.100,0.100,0.400,0.900,2,0\n"
                              "vid_a,0903,0.500,0.200,0.900,0.950,1,0\nvid_b,1500,0.1,0.1,0.4,0.9,2,1\n")
    write_detections(d / "det.csv", [det(A, G1, 1, 0.9), det(A, G1, 2, 0.8), det(B, ELSEWHERE, 1, 0.95),
                                     det(Z, ELSEWHERE, 2, 0.3)])
    write_labelmap(d / "map.pbtxt", LABELS)
    (d / "ex.csv").write_text("vid_b,1500\n")
    return {k: d / f"{k}.{ext}" for k, ext in (("gt", "csv"), ("det", "csv"), ("map", "pbtxt"), ("ex", "csv"))}


def test_frame_map_on_files(tmp_path):
    f = write_files(tmp_path)
    # Class 1: FP (0.95), TP (0.9) over 2 boxes -> 1/4. Class 2: TP, FP, vid_b's box unfound -> 1/2.
    assert aps(frame_map(f["gt"], f["det"], f["map"])) == pytest.approx({1: 0.25, 2: 0.5, 3: None})
    r = frame_map(f["gt"], f["det"], f["map"], f["ex"])  # vid_b excluded: class 2 becomes perfect
    assert aps(r) == pytest.approx({1: 0.25, 2: 1.0, 3: None}) and r["mAP"] == pytest.approx(0.625)


def test_tool_prints_json_and_exits_2_on_bad_files(tmp_path, capsys):
    f, tool = write_files(tmp_path), load_tool("ava_map")
    assert tool.main(["--gt", str(f["gt"]), "--detections", str(f["det"]), "--labelmap", str(f["map"]),
                      "--exclusions", str(f["ex"])]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mAP"] == pytest.approx(0.625) and out["per_class"][2]["ap"] is None
    (tmp_path / "bad.csv").write_text("vid_a,0902,0.1,0.1,0.4,0.9,1\n")
    assert tool.main(["--gt", str(f["gt"]), "--detections", str(tmp_path / "bad.csv"), "--labelmap",
                      str(f["map"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'bad.csv'}:1: expected 8 columns") and err.count("\n") == 1


# ------------------------------------------------------------------ agreement with an independent copy

def load_oracle():
    """mmaction2's copy of the ActivityNet evaluator, without importing the rest of mmaction."""
    spec = importlib.util.find_spec("mmaction")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mmaction2 (the reference AVA evaluator) is not installed")
    pkg = types.ModuleType("avaeval")
    pkg.__path__ = [str(Path(spec.submodule_search_locations[0]) / "evaluation" / "functional")]
    sys.modules["avaeval"] = pkg
    return importlib.import_module("avaeval.ava_utils")


def random_case(d: Path, seed: int) -> dict:
    """Real-looking files: 3 videos x 5 keyframes, a few people each with 1-3 of 5 classes (and a class
    outside the label map), jittered detections with random distinct scores, false alarms, detections on
    keyframes without ground truth and on excluded keyframes; fewer than 50 rows per keyframe."""
    rng = np.random.default_rng(seed)
    labels = [(1, "bend/bow"), (3, "crouch/kneel"), (8, "lie/sleep"), (11, "sit"), (12, "stand")]
    ids = [i for i, _ in labels]
    gt_lines, dets = [], []
    scores = iter(rng.permutation(10**6)[:2000] / 1e6)  # distinct: tied scores may be ordered differently

    def box():
        x1, y1 = rng.uniform(0, 0.6, 2)
        return np.round([x1, y1, x1 + rng.uniform(0.1, 0.4), y1 + rng.uniform(0.2, 0.4)], 3)

    def jitter(b):
        while True:  # redraw the rare box that noise and clipping turn inside out
            x1, y1, x2, y2 = np.clip(b + rng.normal(0, 0.05, 4), 0, 1).tolist()
            if x2 - x1 > 0.01 and y2 - y1 > 0.01:
                return x1, y1, x2, y2

    for v in ("-5KQ66BBWC4", "1j20qq1JyX4", "_eBah6c5kyA"):
        for t in range(902, 907):
            for person in range(rng.integers(1, 5)):
                b = box()
                for a in rng.choice(ids + [9], rng.integers(1, 4), replace=False):
                    gt_lines.append(f"{v},{t:04d},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{a},{person}")
                for a in rng.choice(ids, rng.integers(1, 4), replace=False):
                    dets += [(v, t, jitter(b), int(a), next(scores)) for _ in range(rng.integers(1, 3))]
            dets += [(v, t, jitter(box()), int(rng.choice(ids)), next(scores)) for _ in range(rng.integers(0, 3))]
        # Keyframes without ground truth: false positives; 1800 is also excluded (ignored). mmaction2
        # counts the ground truth of excluded keyframes, the official does not, so only these are excluded.
        for t in (1700, 1800):
            dets += [(v, t, jitter(box()), int(a), next(scores)) for a in ids]
    # mmaction2 skips classes without any detection where the official scores them 0: give every class
    # a detection (the 0 case is covered by test_class_with_ground_truth_but_no_detections_counts_zero).
    dets += [("-5KQ66BBWC4", 1700, jitter(box()), a, next(scores)) for a in ids]
    (d / "gt.csv").write_text("\n".join(gt_lines) + "\n")
    write_detections(d / "det.csv", dets)
    write_labelmap(d / "map.pbtxt", labels)
    (d / "ex.csv").write_text("".join(f"{v},1800\n" for v in ("-5KQ66BBWC4", "1j20qq1JyX4", "_eBah6c5kyA")))
    return {k: str(d / f"{k}.{ext}") for k, ext in (("gt", "csv"), ("det", "csv"), ("map", "pbtxt"), ("ex", "csv"))}


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # its sub-means over classes we do not have
@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_mmaction2_evaluator(tmp_path, monkeypatch, seed):
    oracle = load_oracle()

    class SerialPool:  # ava_eval opens Pool(32); serial is faster for files this small
        def __init__(self, n):
            pass

        def map(self, fn, items):
            return [fn(x) for x in items]

    monkeypatch.setattr(oracle, "multiprocessing", types.SimpleNamespace(Pool=SerialPool))
    f = random_case(tmp_path, seed)
    # ignore_empty_frames=False is the official behaviour: detections on keyframes without ground truth
    # count as false positives.
    expected = oracle.ava_eval(f["det"], "mAP", f["map"], f["gt"], f["ex"], verbose=False,
                               ignore_empty_frames=False)["overall"]
    r = frame_map(f["gt"], f["det"], f["map"], f["ex"], capacity=0)
    assert r["mAP"] == pytest.approx(expected, abs=1e-6)
    assert frame_map(f["gt"], f["det"], f["map"], f["ex"])["mAP"] == r["mAP"]  # the cap of 50 never binds
    assert 0.05 < r["mAP"] < 0.95  # a case with both hits and misses
