"""Building lists for Kinetics (folders and official CSVs) and SSv2 (official JSON)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hiera_video.data.lists import ListError, read_classes, read_list
from hiera_video.data.prepare import kinetics_clip_name, kinetics_from_csv, ssv2_split, write_split

ROOT = Path(__file__).parents[1]
CLASSES = ["air drumming", "passing American football (in game)", "zumba"]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_kinetics_from_folders_with_underscored_class_names(tmp_path):
    videos = tmp_path / "k"
    touch(videos / "train" / "air_drumming" / "a.mp4")
    touch(videos / "train" / "passing_American_football_(in_game)" / "b.mp4")
    touch(videos / "val" / "zumba" / "c.webm")
    touch(videos / "val" / "zumba" / "notes.txt")
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    out = tmp_path / "lists"
    r = run_tool("tools/prepare_kinetics.py", "--videos", videos, "--classes", tmp_path / "classes.txt", "--out", out)
    assert r.returncode == 0, r.stderr
    train = read_list(out / "train.csv")
    assert [(Path(e.path).name, e.label) for e in train] == [("a.mp4", 0), ("b.mp4", 1)]
    assert [(Path(e.path).name, e.label) for e in read_list(out / "val.csv")] == [("c.webm", 2)]
    assert read_classes(out / "classes.txt") == CLASSES
    assert (out / "train.csv").read_text().startswith("../k/train/air_drumming/a.mp4 0")


def test_kinetics_unknown_class_folder_is_an_error(tmp_path):
    touch(tmp_path / "k" / "train" / "juggling" / "a.mp4")
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    r = run_tool("tools/prepare_kinetics.py", "--videos", tmp_path / "k", "--classes", tmp_path / "classes.txt",
                 "--out", tmp_path / "o")
    assert r.returncode == 2 and "class folders are not in the class list" in r.stderr and "juggling" in r.stderr


def test_kinetics_from_official_csv_reports_missing(tmp_path):
    clips = tmp_path / "clips"
    touch(clips / "sub" / f"{kinetics_clip_name('abc', 10, 20)}.mp4")
    touch(clips / f"{kinetics_clip_name('-x_y', '0.0', '10.0')}.mp4")
    csv = tmp_path / "train.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split,is_cc\n"
                   "zumba,abc,10,20,train,0\n\"air drumming\",-x_y,0,10,train,0\nzumba,gone,5,15,train,0\n")
    split = kinetics_from_csv(csv, clips, CLASSES)
    assert [(Path(p).name, label) for p, label in split.rows] == [("abc_000010_000020.mp4", 2),
                                                                  ("-x_y_000000_000010.mp4", 0)]
    assert split.missing == ["gone_000005_000015"]
    write_split(split, tmp_path / "out")
    assert (tmp_path / "out" / "missing_train.txt").read_text() == "gone_000005_000015\n"
    assert len(read_list(tmp_path / "out" / "train.csv")) == 2


def test_kinetics_csv_with_unknown_label(tmp_path):
    csv = tmp_path / "val.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\njuggling,abc,10,20,val\n")
    with pytest.raises(ListError, match=r"val.csv:2: class 'juggling' is not in the class list"):
        kinetics_from_csv(csv, tmp_path, CLASSES)


def test_unlabelled_csv_gives_a_bare_path_list(tmp_path):
    touch(tmp_path / "clips" / "abc_000010_000020.mp4")
    csv = tmp_path / "test.csv"
    csv.write_text("youtube_id,time_start,time_end,split\nabc,10,20,test\n")
    split = kinetics_from_csv(csv, tmp_path / "clips", CLASSES)
    path = write_split(split, tmp_path / "out")
    assert read_list(path, labelled=False)[0].label == -1


def test_ssv2_lists_from_official_json(tmp_path):
    labels = {"Pushing something from left to right": "1", "Approaching something with your camera": "0"}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    train = [{"id": "11", "label": "pushing a cup from left to right", "template": "Pushing [something] from left to right",
              "placeholders": ["a cup"]},
             {"id": "12", "label": "approaching a box", "template": "Approaching [something] with your camera",
              "placeholders": ["a box"]},
             {"id": "13", "label": "lost", "template": "Approaching [something] with your camera", "placeholders": []}]
    (tmp_path / "something-something-v2-train.json").write_text(json.dumps(train))
    touch(tmp_path / "videos" / "11.webm")
    touch(tmp_path / "videos" / "12.webm")
    out = tmp_path / "lists"
    r = run_tool("tools/prepare_ssv2.py", "--labels", tmp_path / "labels.json", "--splits",
                 tmp_path / "something-something-v2-train.json", "--videos", tmp_path / "videos", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "2 videos, 1 missing" in r.stdout
    assert [(Path(e.path).name, e.label) for e in read_list(out / "train.csv")] == [("11.webm", 1), ("12.webm", 0)]
    assert read_classes(out / "classes.txt") == ["Approaching something with your camera",
                                                 "Pushing something from left to right"]


def test_ssv2_unknown_template(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"A": "0"}))
    (tmp_path / "t.json").write_text(json.dumps([{"id": "1", "template": "B [something]"}]))
    with pytest.raises(ListError, match="template 'B something' is not in"):
        ssv2_split(tmp_path / "t.json", tmp_path / "labels.json", tmp_path)
