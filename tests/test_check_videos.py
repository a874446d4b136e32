"""tools/check_videos.py flags exactly the bad entries of a list (and exits 1), or exits 0."""

from pathlib import Path

import pytest

from hiera_video.data.check import check_video
from videos import make_bad_videos, make_video
from conftest import load_tool



@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    d = tmp_path_factory.mktemp("check")
    good = [make_video(d / "good" / "a.mp4", 30), make_video(d / "good" / "b c.webm", 30, codec="vp9"),
            make_video(d / "good" / "d.mp4", 30, fps=12)]
    bad = make_bad_videos(d / "bad")
    return d, good, bad


@pytest.mark.parametrize("workers", [1, 2])
def test_flags_exactly_the_bad_entries(mixed, tmp_path, capsys, workers):
    d, good, bad = mixed
    lines = [f"{Path(p).relative_to(d)} 0" for p in good[:2]] + [f"{Path(p).relative_to(d)} 1" for p in bad.values()]
    lines.append(f"{Path(good[2]).relative_to(d)} 2")
    (d / "list.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "bad.tsv"
    code = load_tool("check_videos").main([str(d / "list.csv"), "--workers", str(workers), "--out", str(out)])
    assert code == 1
    reported = dict(line.split("\t") for line in out.read_text().splitlines())
    assert sorted(reported) == sorted(bad.values())
    assert reported[bad["missing"]] == "file not found"
    assert reported[bad["empty"]] == "empty file"
    assert reported[bad["truncated_webm"]].startswith("truncated:")
    assert "5 bad of 8 videos" in capsys.readouterr().err


def test_all_good_exits_zero_and_prints_nothing(mixed, capsys):
    d, good, _ = mixed
    (d / "good.csv").write_text("".join(f"{Path(p).relative_to(d)}\n" for p in good))  # labels optional here
    assert load_tool("check_videos").main([str(d / "good.csv"), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "0 bad of 3 videos" in captured.err


def test_quick_mode_still_catches_broken_files(mixed):
    _, good, bad = mixed
    assert check_video(good[0], full=False) is None
    for kind in ("missing", "empty", "not_video", "truncated_mp4", "truncated_webm"):
        assert check_video(bad[kind], full=False) is not None, kind


def test_unreadable_list_exits_two(tmp_path, capsys):
    assert load_tool("check_videos").main([str(tmp_path / "nope.csv")]) == 2
    assert "data list not found" in capsys.readouterr().err
