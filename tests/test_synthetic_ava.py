"""The synthetic AVA v2.2 dataset: the exact official layout and formats, GT boxes measured on the
decoded JPEGs, proposals, actions that show only over time, determinism, resuming, and the CLI."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hiera_video.tasks.ava.synthetic import (ACTIONS, FPS, MOTIONS, frame_relpath, keyframe_index, keyframe_seconds,
                                            make_ava_dataset, plan_video, read_jpeg, video_id)

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_LABELS = Path("/work/shared/data/labels/ava_v2.2_60classes.txt")
SECONDS, W, H = 5, 96, 72  # keyframes 902 and 903; val videos 0 and 1 exclude 903
ARGS = dict(num_train=1, num_val=2, seconds=SECONDS, seed=0, width=W, height=H, progress=False)
ANNOTATIONS = {"ava_train_v2.2.csv", "ava_val_v2.2.csv", "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
               "ava_train_excluded_timestamps_v2.2.csv", "ava_val_excluded_timestamps_v2.2.csv",
               "person_proposals_train.csv", "person_proposals_val.csv"}


@pytest.fixture(scope="module")
def ava(tmp_path_factory):
    out = tmp_path_factory.mktemp("ava") / "syn"
    summary = make_ava_dataset(out, workers=2, **ARGS)
    return out, summary


def rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def gt_boxes(out: Path, split: str) -> dict[tuple[str, int], dict[int, tuple[np.ndarray, set]]]:
    """{(video, sec): {person_id: (box, actions)}} from an annotation file."""
    found = {}
    for vid, ts, x1, y1, x2, y2, action, pid in rows(out / "annotations" / f"ava_{split}_v2.2.csv"):
        box = np.array([float(x1), float(y1), float(x2), float(y2)])
        entry = found.setdefault((vid, int(ts)), {}).setdefault(int(pid), (box, set()))
        assert np.array_equal(entry[0], box)  # one box per person and keyframe
        entry[1].add(int(action))
    return found


# --------------------------------------------------------------------------------------------------
# Layout and formats
# --------------------------------------------------------------------------------------------------
def test_layout(ava):
    out, summary = ava
    meta = json.loads((out / "synthetic_ava.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["annotations", "frame_lists", "frames", "synthetic_ava.json"]
    assert {p.name for p in (out / "annotations").iterdir()} == ANNOTATIONS
    assert {p.name for p in (out / "frame_lists").iterdir()} == {"train.csv", "val.csv"}
    videos = meta["videos"]["train"] + meta["videos"]["val"]
    assert len(videos) == 3 and len(set(videos)) == 3
    assert videos == [video_id(0, "train", 0), video_id(0, "val", 0), video_id(0, "val", 1)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", v) for v in videos)
    assert sorted(p.name for p in (out / "frames").iterdir()) == sorted(videos)
    for v in videos:
        names = sorted(p.name for p in (out / "frames" / v).iterdir())  # no temporary files left
        assert names == [f"{v}_{n:06d}.jpg" for n in range(1, SECONDS * FPS + 1)]
    assert read_jpeg(out / "frames" / frame_relpath(videos[0], 0)).shape == (H, W, 3)
    assert meta["keyframes"] == keyframe_seconds(SECONDS) == [902, 903]
    assert meta["actions"] == {str(k): v for k, v in ACTIONS.items()}
    assert (meta["seed"], meta["seconds"], meta["width"], meta["height"]) == (0, SECONDS, W, H)
    assert summary["written"] == 3 and summary["skipped"] == 0 and summary["frames"] == 3 * SECONDS * FPS


def test_action_list_is_official(ava):
    out, _ = ava
    text = (out / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").read_text()
    assert text.startswith('item {\n  name: "jump/leap"\n  id: 7\n}\nitem {\n')
    # parsed as PySlowFast's read_labelmap does
    names, ids = re.findall(r'^  name: "(.*)"$', text, re.M), re.findall(r"^  id: (\d+)$", text, re.M)
    labelmap = dict(zip(map(int, ids), names))
    assert labelmap == ACTIONS and len(names) == len(ids) == text.count("item {")
    if OFFICIAL_LABELS.exists():  # the real AVA v2.2 ids and names
        official = dict(line.split(": ", 1) for line in OFFICIAL_LABELS.read_text().splitlines() if line)
        assert all(official[str(i)] == n for i, n in ACTIONS.items())


@pytest.mark.parametrize("split", ["train", "val"])
def test_annotation_rows(ava, split):
    out, _ = ava
    meta = json.loads((out / "synthetic_ava.json").read_text())
    gt = rows(out / "annotations" / f"ava_{split}_v2.2.csv")
    assert gt and len(gt) == len({tuple(r) for r in gt})
    for r in gt:
        assert len(r) == 8 and r[0] in meta["videos"][split]
        assert re.fullmatch(r"09\d\d", r[1]) and int(r[1]) in meta["keyframes"]
        assert all(re.fullmatch(r"[01]\.\d{3}", c) for c in r[2:6])
        x1, y1, x2, y2 = map(float, r[2:6])
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert int(r[6]) in ACTIONS and re.fullmatch(r"\d+", r[7])
        # keyframe -> frame, as PySlowFast computes it: index into the sorted frame list
        frames = sorted((out / "frames" / r[0]).iterdir())
        assert frames[keyframe_index(int(r[1]))].name == f"{r[0]}_{(int(r[1]) - 900) * 30 + 1:06d}.jpg"
    assert any(len(acts) >= 2 for people in gt_boxes(out, split).values() for _, acts in people.values())

    excluded = rows(out / "annotations" / f"ava_{split}_excluded_timestamps_v2.2.csv")
    if split == "train":
        assert excluded == []
    else:
        assert excluded == [[meta["videos"]["val"][0], "0903"], [meta["videos"]["val"][1], "0903"]]
        assert not {(r[0], r[1]) for r in gt} & {tuple(e) for e in excluded}  # left unannotated

    frame_list = (out / "frame_lists" / f"{split}.csv").read_text().splitlines()
    assert frame_list[0] == "original_vido_id video_idx frame_id path labels"
    assert len(frame_list) == 1 + len(meta["videos"][split]) * SECONDS * FPS
    for line in frame_list[1:]:
        vid, idx, fid, path, labels = line.split(" ")
        assert meta["videos"][split][int(idx)] == vid and labels == '""'
        assert path == frame_relpath(vid, int(fid)) and (out / "frames" / path).exists()


def test_boxes_cover_the_people(ava):
    """In each annotated keyframe's decoded JPEG, the dark pixels are the people, inside their boxes."""
    out, _ = ava
    for split in ("train", "val"):
        for (vid, sec), people in gt_boxes(out, split).items():
            img = read_jpeg(out / "frames" / frame_relpath(vid, keyframe_index(sec))).astype(np.float32)
            luma = img @ np.array([0.299, 0.587, 0.114], np.float32)
            inside = np.zeros((H, W), bool)
            for box, _ in people.values():
                x0, y0, x1, y1 = np.round(box * [W, H, W, H]).astype(int)
                inside[y0:y1, x0:x1] = True
                assert luma[y0:y1, x0:x1].mean() < 150
            padded = np.pad(inside, 1)  # grown by a pixel each way: JPEG blurs edges
            grown = np.any([padded[1 + dy:1 + dy + H, 1 + dx:1 + dx + W]
                            for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
            dark = luma < 100
            assert dark.sum() > 0.05 * H * W
            assert (dark & grown).sum() >= 0.99 * dark.sum()  # no unannotated person
            assert luma[~grown].mean() > 170 and luma[inside].mean() < luma[~grown].mean() - 60


@pytest.mark.parametrize("split", ["train", "val"])
def test_proposals(ava, split):
    out, _ = ava
    meta = json.loads((out / "synthetic_ava.json").read_text())
    props: dict = {}
    for r in rows(out / "annotations" / f"person_proposals_{split}.csv"):
        assert len(r) == 8 and r[6] == "" and re.fullmatch(r"09\d\d", r[1])
        box = np.array(list(map(float, r[2:6])))
        assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1 and 0 < float(r[7]) < 1
        props.setdefault((r[0], int(r[1])), []).append((box, float(r[7])))
    low = 0
    for index, vid in enumerate(meta["videos"][split]):
        plan = plan_video(0, split, index, SECONDS, W, H)
        for sec in meta["keyframes"]:  # excluded keyframes too: the people are there
            people = [box for _, box, _ in plan.actions(keyframe_index(sec))]
            found = props[(vid, sec)]
            for person in people:  # a high-scored proposal on every person
                assert any(s >= 0.85 and iou(b, person) > 0.7 for b, s in found)
            for b, s in found:  # high scores are people, low scores are clutter
                best = max(iou(b, p) for p in people)
                assert (s >= 0.85 and best > 0.7) or (0.1 <= s <= 0.7 and best < 0.3), (b, s, best)
                low += s < 0.8
            assert sum(s >= 0.8 for _, s in found) == len(people)  # so a 0.8 threshold keeps exactly them
    assert low > 0
    # the proposals' people are the annotation's people
    for (vid, sec), people in gt_boxes(out, split).items():
        assert len(people) == sum(s >= 0.8 for _, s in props[(vid, sec)])


# --------------------------------------------------------------------------------------------------
# Content: actions show over time only
# --------------------------------------------------------------------------------------------------
def test_actions_need_time():
    """Over +-1 s around each keyframe: walkers travel, jumpers bounce, wavers move their arm, standers
    keep still; and the sizes and arm heights of single frames do not depend on the action."""
    seen, sizes = set(), {m: [] for m in MOTIONS}
    for index in range(12):
        plan = plan_video(3, "train", index, seconds=10)
        for sec in keyframe_seconds(10):
            k = keyframe_index(sec)
            near = slice(k - FPS // 2 + 1, k + FPS // 2)  # switches happen 0.5 s from a keyframe
            for p in plan.persons:
                m = MOTIONS[p.motion[k]]
                seen.add(m)
                assert (p.motion[near] == p.motion[k]).all()
                box, arm = p.box[near], p.arm[near, 1] - p.body[near, 1]
                dx, dy, darm = np.ptp(box[:, 0]), np.ptp(box[:, 1]), np.ptp(arm)
                if m == "walk":
                    assert dx > 0.05 * plan.width and dy < 1e-9 and darm < 1e-9
                elif m == "jump":
                    assert dy > 0.05 * plan.height and dx < 1e-9 and darm < 1e-9
                elif m == "wave":
                    assert dx < 1 and dy < 1 and darm > 0.2 * (p.body[k, 3] - p.body[k, 1])
                else:
                    assert dx < 1 and dy < 1 and darm < 1e-9
                sizes[m].append((box[0, 2] - box[0, 0]) / plan.width)
                w = p.box[k, 2] - p.box[k, 0]
                assert 0.14 * plan.width < w < 0.28 * plan.width
                assert 0.29 * plan.height < p.box[k, 3] - p.box[k, 1] < 0.61 * plan.height
    assert seen == set(MOTIONS)
    means = [np.mean(v) for v in sizes.values()]
    assert max(means) - min(means) < 0.04  # no action has its own size


# --------------------------------------------------------------------------------------------------
# Determinism, resuming, the CLI
# --------------------------------------------------------------------------------------------------
def test_deterministic_and_resumable(ava, tmp_path):
    first, _ = ava
    out = tmp_path / "again"
    make_ava_dataset(out, workers=1, **ARGS)  # other workers, same files
    for name in ANNOTATIONS:
        assert (out / "annotations" / name).read_bytes() == (first / "annotations" / name).read_bytes(), name
    for name in ("frame_lists/train.csv", "frame_lists/val.csv", "synthetic_ava.json"):
        assert (out / name).read_bytes() == (first / name).read_bytes(), name
    vid = video_id(0, "val", 1)
    some = [out / "frames" / frame_relpath(vid, f) for f in (0, 61, SECONDS * FPS - 1)]
    assert all(p.read_bytes() == (first / p.relative_to(out)).read_bytes() for p in some)

    # Another seed: other ids and people.
    assert video_id(1, "train", 0) != video_id(0, "train", 0)
    a, b = plan_video(0, "train", 0, SECONDS, W, H), plan_video(1, "train", 0, SECONDS, W, H)
    assert not np.array_equal(a.persons[0].box, b.persons[0].box)

    # A re-run skips complete videos; a video with a missing frame (and a stale temporary file from
    # an interrupted write) gets exactly that frame back.
    kept = out / "frames" / frame_relpath(video_id(0, "train", 0), 5)
    stamp = kept.stat().st_mtime_ns
    lost = some[1]
    original = lost.read_bytes()
    lost.unlink()
    (lost.parent / f"{lost.name}.tmp-999").write_bytes(b"half a jpeg")
    (out / "annotations" / "ava_val_v2.2.csv").write_text("garbage\n")
    summary = make_ava_dataset(out, workers=1, **ARGS)
    assert (summary["written"], summary["skipped"]) == (1, 2)
    assert lost.read_bytes() == original and kept.stat().st_mtime_ns == stamp
    assert not list(lost.parent.glob("*.tmp-*"))
    assert (out / "annotations" / "ava_val_v2.2.csv").read_bytes() == \
        (first / "annotations" / "ava_val_v2.2.csv").read_bytes()

    with pytest.raises(ValueError, match="same settings"):
        make_ava_dataset(out, **{**ARGS, "seconds": SECONDS + 1})
    with pytest.raises(ValueError, match="seconds"):
        make_ava_dataset(tmp_path / "short", **{**ARGS, "seconds": 3})


def test_cli(tmp_path, capsys):
    """In process: a second interpreter would spend seconds importing torch through the package."""
    spec = importlib.util.spec_from_file_location("make_synthetic_ava", REPO / "tools" / "make_synthetic_ava.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--videos-train", "1", "--videos-val", "0", "--seconds", "4", "--width", "64",
            "--height", "48", "--seed", "2", "--no-progress"]
    assert tool.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["train"], summary["val"], summary["written"], summary["frames"]) == (1, 0, 1, 120)
    assert (out / "annotations" / "ava_train_v2.2.csv").read_text().count(",0902,") >= 1
    assert (out / "annotations" / "ava_val_v2.2.csv").read_text() == ""
    assert read_jpeg(out / "frames" / frame_relpath(video_id(2, "train", 0), 119)).shape == (48, 64, 3)
    assert tool.main([a if a != "4" else "5" for a in argv]) == 2  # other settings, same folder: refused
    assert "same settings" in capsys.readouterr().err
