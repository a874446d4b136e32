"""AVA v2.2 file formats: label maps, exclusions, annotations, proposals, detections, frame layout."""

from pathlib import Path

import pytest

from hiera_video.tasks.ava.io import (AvaFormatError, frame_path, keyframe_index, read_annotations,
                                     read_detections, read_exclusions, read_labelmap, read_proposals,
                                     write_detections, write_labelmap)

ACTIVITYNET_MAP = '''item {
  name: "bend/bow (at the waist)"
  id: 1
}
item {
  name: "crouch/kneel"
  id: 3
}
item {
  name: "talk to (e.g., self, a person, a group)"
  id: 79
}
'''

FULL_MAP = '''label {
    name: "bend/bow (at the waist)"
    label_id: 1
    label_type: PERSON_MOVEMENT
}
label {
    name: "carry/hold (an object)"
    label_id: 17
    label_type: OBJECT_MANIPULATION
}
'''


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_labelmap_activitynet_and_full_layouts(tmp_path):
    assert read_labelmap(write(tmp_path / "a.pbtxt", ACTIVITYNET_MAP)) == [
        (1, "bend/bow (at the waist)"), (3, "crouch/kneel"), (79, "talk to (e.g., self, a person, a group)")]
    assert read_labelmap(write(tmp_path / "b.pbtxt", FULL_MAP)) == [
        (1, "bend/bow (at the waist)"), (17, "carry/hold (an object)")]


def test_labelmap_round_trip_and_errors(tmp_path):
    items = [(1, "stand"), (12, 'say "hi" \\ wave')]
    write_labelmap(tmp_path / "m.pbtxt", items)
    assert (tmp_path / "m.pbtxt").read_text().startswith('item {\n  name: "stand"\n  id: 1\n}\n')
    assert read_labelmap(tmp_path / "m.pbtxt") == items
    with pytest.raises(AvaFormatError, match=r"x.pbtxt:1: block has no id"):
        read_labelmap(write(tmp_path / "x.pbtxt", 'item {\n  name: "a"\n}\n'))
    with pytest.raises(AvaFormatError, match=r"y.pbtxt:3: id 'one' is not an integer"):
        read_labelmap(write(tmp_path / "y.pbtxt", 'item {\n  name: "a"\n  id: one\n}\n'))
    with pytest.raises(AvaFormatError, match=r"z.pbtxt:5: id 1 already used on line 1"):
        read_labelmap(write(tmp_path / "z.pbtxt", 'item {\n name: "a"\n id: 1\n}\nitem {\n name: "b"\n id: 1\n}\n'))
    with pytest.raises(AvaFormatError, match=r"w.pbtxt:1: block is never closed"):
        read_labelmap(write(tmp_path / "w.pbtxt", 'item {\n  name: "a"\n  id: 1\n'))


def test_read_exclusions(tmp_path):
    path = write(tmp_path / "ex.csv", "-5KQ66BBWC4,0902\n\n1j20qq1JyX4,902\n")
    assert read_exclusions(path) == {("-5KQ66BBWC4", 902), ("1j20qq1JyX4", 902)}
    with pytest.raises(AvaFormatError, match=r"bad.csv:2: expected 2 columns for exclusions, got 3"):
        read_exclusions(write(tmp_path / "bad.csv", "a,0902\nb,0903,1\n"))


def test_read_annotations_groups_rows_into_people(tmp_path):
    path = write(tmp_path / "gt.csv", "\n".join([
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1",
        "-5KQ66BBWC4,0902,0.332,0.194,0.481,0.891,12,0",
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,11,1",
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1",  # a repeated row adds nothing
        "",
        "-5KQ66BBWC4,903,0.5,0.5,1.0005,1.0,14,0",  # a hair outside [0, 1]: clipped
        "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,17,3",
    ]) + "\n")
    assert read_annotations(path) == {
        ("-5KQ66BBWC4", 902): [((0.077, 0.151, 0.283, 0.811), [11, 80]), ((0.332, 0.194, 0.481, 0.891), [12])],
        ("-5KQ66BBWC4", 903): [((0.5, 0.5, 1.0, 1.0), [14])],
        ("1j20qq1JyX4", 902): [((0.002, 0.118, 0.714, 0.977), [17])],
    }
    assert list(read_annotations(path)) == [("-5KQ66BBWC4", 902), ("-5KQ66BBWC4", 903), ("1j20qq1JyX4", 902)]


def test_annotations_without_person_id_group_by_box(tmp_path):
    path = write(tmp_path / "gt7.csv", "v,0902,0.1,0.1,0.4,0.9,12\nv,0902,0.5,0.1,0.9,0.9,12\n"
                                       "v,0902,0.1,0.1,0.4,0.9,80\n")
    assert read_annotations(path) == {("v", 902): [((0.1, 0.1, 0.4, 0.9), [12, 80]), ((0.5, 0.1, 0.9, 0.9), [12])]}


@pytest.mark.parametrize("row,problem", [
    ("v,0902,0.1,0.1,0.4,0.9", "expected 7 or 8 columns for annotations, got 6"),
    ("v,09x2,0.1,0.1,0.4,0.9,12,1", "timestamp '09x2' is not an integer"),
    ("v,0902,0.1,0.1,0.4,0.9,walk,1", "action id 'walk' is not an integer"),
    ("v,0902,0.1,abc,0.4,0.9,12,1", "y1 'abc' is not a finite number"),
    ("v,0902,0.1,0.1,0.4,nan,12,1", "y2 'nan' is not a finite number"),
    ("v,0902,0.4,0.1,0.1,0.9,12,1", "empty box, need x1 < x2 and y1 < y2"),
    ("v,0902,12,10,40,90,12,1", "box coordinates must be normalised to"),
])
def test_annotation_errors_name_the_file_and_line(tmp_path, row, problem):
    path = write(tmp_path / "gt.csv", "v,0902,0.1,0.1,0.4,0.9,12,1\n\n" + row + "\n")
    with pytest.raises(AvaFormatError) as e:
        read_annotations(path)
    assert str(e.value).startswith(f"{path}:3: {problem}")
    assert row in str(e.value)


def test_read_proposals(tmp_path):
    path = write(tmp_path / "props.csv", "\n".join([
        "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,,0.996684",
        "1j20qq1JyX4,0902,0.333,0.033,0.595,0.997,,0.999837",
        "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,,0.5",  # the same box again, worse: dropped
        "1j20qq1JyX4,0902,0.5,0.1,0.6,0.3,,0.65",
        "1j20qq1JyX4,0903,0.1,0.1,0.2,0.2,0.7",  # 7 columns: no action column
    ]) + "\n")
    assert read_proposals(path) == {
        ("1j20qq1JyX4", 902): [((0.333, 0.033, 0.595, 0.997), 0.999837), ((0.002, 0.118, 0.714, 0.977), 0.996684),
                               ((0.5, 0.1, 0.6, 0.3), 0.65)],
        ("1j20qq1JyX4", 903): [((0.1, 0.1, 0.2, 0.2), 0.7)],
    }
    high = read_proposals(path, min_score=0.8)
    assert list(high) == [("1j20qq1JyX4", 902)] and [s for _, s in high[("1j20qq1JyX4", 902)]] == [0.999837, 0.996684]
    with pytest.raises(AvaFormatError, match=r"bad.csv:1: score 'high' is not a finite number"):
        read_proposals(write(tmp_path / "bad.csv", "v,0902,0.1,0.1,0.2,0.2,,high\n"))


def test_detections_round_trip(tmp_path):
    rows = [("-5KQ66BBWC4", 902, (0.0771234567, 0.151, 0.283, 0.8119999), 80, 0.91234567),
            ("1j20qq1JyX4", 1798, (0.0, 0.0, 1.0, 1.0), 1, 1e-7)]
    write_detections(tmp_path / "out" / "det.csv", rows)
    text = (tmp_path / "out" / "det.csv").read_text()
    assert text.splitlines()[0] == "-5KQ66BBWC4,0902,0.077123,0.151000,0.283000,0.812000,80,0.912346"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["det.csv"]  # no temp file left behind
    back = read_detections(tmp_path / "out" / "det.csv")
    for (v, t, box, a, s), (v2, t2, box2, a2, s2) in zip(rows, back, strict=True):
        assert (v, t, a) == (v2, t2, a2)
        assert max(abs(x - y) for x, y in zip(box, box2)) <= 1e-6 and abs(s - s2) <= 1e-6
    with pytest.raises(AvaFormatError, match=r"d.csv:1: expected 8 columns for detections, got 7"):
        read_detections(write(tmp_path / "d.csv", "v,0902,0.1,0.1,0.2,0.2,0.7\n"))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotations file not found: .*nope.csv"):
        read_annotations(tmp_path / "nope.csv")


def test_keyframe_index_and_frame_path():
    assert keyframe_index(900) == 0 and keyframe_index(902) == 60 and keyframe_index(1798, fps=25) == 22450
    assert frame_path("/frames", "-5KQ66BBWC4", keyframe_index(902)) == Path(
        "/frames/-5KQ66BBWC4/-5KQ66BBWC4_000061.jpg")
    assert frame_path(Path("f"), "v", 0).name == "v_000001.jpg"
    with pytest.raises(ValueError, match="before the start"):
        keyframe_index(899)
