"""Data-list and class-file parsing, and the shipped class lists."""

from pathlib import Path

import pytest

from hiera_video.data.lists import Entry, ListError, parse_line, read_classes, read_list, write_list

DATA_LISTS = Path(__file__).parents[1] / "data_lists"


@pytest.mark.parametrize("line,expected", [
    ("a/b.mp4 3", ("a/b.mp4", 3)),
    ("my video clip.mp4 12\n", ("my video clip.mp4", 12)),
    ("a/b.mp4\t7", ("a/b.mp4", 7)),
    ("a/b.mp4,3", ("a/b.mp4", 3)),
    ("a/b.mp4, 3", ("a/b.mp4", 3)),
    ("a,b/c.mp4 4", ("a,b/c.mp4", 4)),
    ("a/b.mp4", ("a/b.mp4", None)),
    ("a/b 2.mp4", ("a/b 2.mp4", None)),
])
def test_parse_line(line, expected):
    assert parse_line(line) == expected


def test_read_list_resolves_against_the_list_folder_by_default(tmp_path):
    (tmp_path / "l.csv").write_text("# comment\n\nvideos/x 1.mp4 0\n/abs/y.mp4 2\n")
    entries = read_list(tmp_path / "l.csv")
    assert [e.path for e in entries] == [str(tmp_path / "videos/x 1.mp4"), "/abs/y.mp4"]
    assert [e.label for e in entries] == [0, 2] and [e.line for e in entries] == [3, 4]
    other = read_list(tmp_path / "l.csv", root="/data")
    assert other[0].path == "/data/videos/x 1.mp4"


def test_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "l.csv").write_text("a.mp4 0\nb.mp4\n")
    with pytest.raises(ListError, match=r"l.csv:2: no integer label in 'b.mp4'"):
        read_list(tmp_path / "l.csv")
    assert read_list(tmp_path / "l.csv", labelled=False)[1].label == -1
    (tmp_path / "m.csv").write_text("a.mp4 0\nb.mp4 9\n")
    with pytest.raises(ListError, match=r"m.csv:2: label 9 is outside \[0, 5\)"):
        read_list(tmp_path / "m.csv", num_classes=5)
    with pytest.raises(ListError, match="data list not found"):
        read_list(tmp_path / "nope.csv")
    (tmp_path / "e.csv").write_text("\n# nothing\n")
    with pytest.raises(ListError, match="the list is empty"):
        read_list(tmp_path / "e.csv")


def test_write_then_read_round_trips(tmp_path):
    rows = [("a b/c.mp4", 1), ("d.webm", 0)]
    write_list(tmp_path / "out.csv", rows)
    assert [(Path(e.path).relative_to(tmp_path).as_posix(), e.label) for e in read_list(tmp_path / "out.csv")] == rows


def test_read_classes(tmp_path):
    (tmp_path / "c.txt").write_text("walk\nrun\n\n")
    assert read_classes(tmp_path / "c.txt") == ["walk", "run"]
    (tmp_path / "d.txt").write_text("walk\nwalk\n")
    with pytest.raises(ListError, match="'walk' appears twice"):
        read_classes(tmp_path / "d.txt")


@pytest.mark.parametrize("name,count", [("kinetics400", 400), ("kinetics600", 600), ("kinetics700", 700),
                                        ("ssv2", 174)])
def test_shipped_class_lists(name, count):
    classes = read_classes(DATA_LISTS / f"{name}.txt")
    assert len(classes) == count
    if name.startswith("kinetics"):
        assert classes == sorted(classes)  # the order official checkpoints use
        assert classes[0] == "abseiling"


def test_shipped_ava_classes():
    lines = (DATA_LISTS / "ava_v2.2_60classes.txt").read_text().splitlines()
    assert len(lines) == 60 and lines[0].startswith("1:")


def test_a_byte_order_mark_is_an_error_naming_file_and_line(tmp_path):
    (tmp_path / "l.csv").write_bytes(b"\xef\xbb\xbfa.mp4 0\nb.mp4 1\n")  # Windows Notepad's "UTF-8"
    with pytest.raises(ListError, match=r"l.csv:1: starts with a UTF-8 byte-order mark"):
        read_list(tmp_path / "l.csv")
    (tmp_path / "c.txt").write_bytes(b"\xef\xbb\xbfwalk\nrun\n")
    with pytest.raises(ListError, match=r"c.txt:1: starts with a UTF-8 byte-order mark"):
        read_classes(tmp_path / "c.txt")


def test_non_utf8_bytes_are_an_error_naming_file_and_line(tmp_path):
    (tmp_path / "l.csv").write_bytes("a.mp4 0\n# fine\ncaf\u00e9.mp4 1\n".encode("cp1252"))
    with pytest.raises(ListError, match=r"l.csv:3: not UTF-8 \(byte 0xe9 at column 4\)"):
        read_list(tmp_path / "l.csv")
    (tmp_path / "c.txt").write_bytes("walk\nd\u00e9part\n".encode("latin-1"))
    with pytest.raises(ListError, match=r"c.txt:2: not UTF-8"):
        read_classes(tmp_path / "c.txt")


def test_utf8_paths_and_crlf_lines_still_read(tmp_path):
    (tmp_path / "l.csv").write_bytes("caf\u00e9/\u52d5\u753b.mp4 0\r\nb.mp4 1\r\n".encode("utf-8"))
    entries = read_list(tmp_path / "l.csv")
    assert [Path(e.path).relative_to(tmp_path).as_posix() for e in entries] == ["caf\u00e9/\u52d5\u753b.mp4", "b.mp4"]
    assert [e.line for e in entries] == [1, 2]


def test_entry_list_reads_like_a_list_of_entries(tmp_path):
    from hiera_video.data.lists import EntryList
    weird = "clips/caf\u00e9 \udcff.mp4"  # a non-UTF-8 byte in a file name survives (surrogateescape)
    entries = [Entry("/d/a.mp4", 3, 1), Entry(weird, -1, 2), Entry("/d/c d.mp4", 0, 5)]
    flat = EntryList(entries)
    assert len(flat) == 3 and list(flat) == entries and flat == entries and entries == flat
    assert flat[1] == entries[1] and flat[-1] == entries[-1]
    assert flat[1:] == entries[1:] and isinstance(flat[1:], EntryList)
    assert flat + entries[:1] == entries + entries[:1]
    assert flat.labels.tolist() == [3, -1, 0] and flat.lines.tolist() == [1, 2, 5]
    with pytest.raises(IndexError, match="entry 3 of a list of 3"):
        flat[3]
    assert len(EntryList()) == 0 and list(EntryList()) == []


def test_read_list_holds_no_object_per_line(tmp_path):
    """The entries live in numpy arrays (what keeps forked workers from copying them; the figures are the
    README's, `hiera-video benchmark-lists`)."""
    from hiera_video.data.lists import EntryList
    lst = tmp_path / "l.csv"
    lst.write_text("".join(f"v/{i}.mp4 {i % 7}\n" for i in range(1000)))
    entries = read_list(lst)
    assert isinstance(entries, EntryList) and entries[999] == Entry(str(tmp_path / "v/999.mp4"), 999 % 7, 1000)
    arrays = [v for v in vars(entries).values()]
    assert all(type(v).__name__ == "ndarray" for v in arrays), [type(v) for v in arrays]


def test_list_memory_benchmark_reports_every_worker():
    from hiera_video.data.bench import list_memory
    r = list_memory(num_videos=2000, workers=2, storage="flat", batch_size=50)
    assert [w["worker"] for w in r["per_worker"]] == [0, 1]
    assert all(w["start_mb"] > 0 and w["end_mb"] >= 0 for w in r["per_worker"])


def test_the_soak_benchmark_records_every_worker_and_batch(tmp_path):
    from hiera_video.data.bench import soak
    from videos import make_video
    videos = [make_video(tmp_path / f"v{i}.mp4", 40, fps=30, height=32, width=64) for i in range(2)]
    r = soak([Entry(v, i, i + 1) for i, v in enumerate(videos)], clips=12, workers=2, batch_size=3,
             crop_size=32, num_frames=8, sampling_rate=2)
    assert r["clips"] == 12 and len(r["batches"]) == 4 and sorted(r["workers_mb"]) == [0, 1]
    assert [n for _, n, _, _ in r["batches"]] == [3, 6, 9, 12] and r["bad_videos"] == 0
