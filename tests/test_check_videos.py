"""tools/check_videos.py flags exactly the bad entries of a list (and exits 1), or exits 0; odd but
readable files (rotated, VFR, still images, PyAV-only) are warnings that do not fail the check."""

import shutil
from pathlib import Path

import pytest

from hiera_video.data import decode
from hiera_video.data.check import check_video, inspect_video
from hiera_video.data.decode import available_backends
from videos import make_bad_videos, make_video
from conftest import load_tool

VIDEOS = Path(__file__).parent / "fixtures" / "videos"


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


@pytest.fixture
def odd(tmp_path):
    """The real-file fixtures that are readable but worth a warning, and one plain good video."""
    decode._DECORD_FAILED.clear()
    names = ["rotate_cw90.mp4", "vfr.mp4", "still.mp4", "av1.mp4", "h264.ts"]
    for name in names:
        shutil.copy(VIDEOS / name, tmp_path / name)
    make_video(tmp_path / "plain.mp4", 30)
    yield tmp_path, names
    decode._DECORD_FAILED.clear()


def test_odd_files_are_warned_about_but_pass(odd):
    d, _ = odd
    expected = {"rotate_cw90.mp4": "rotation metadata: displayed turned 90 degrees clockwise",
                "vfr.mp4": "variable frame rate: 90 frames at 10.0-50.0 fps (average 30.00)",
                "still.mp4": "a single still image (png_pipe)"}
    if "decord" in available_backends():
        expected["av1.mp4"] = "only PyAV can read it (decord:"
        expected["h264.ts"] = "read with PyAV only (decord misreads MPEG-TS)"
    for name, text in expected.items():
        reason, warnings = inspect_video(str(d / name))
        assert reason is None, (name, reason)
        assert any(w.startswith(text) for w in warnings), (name, warnings)
    assert inspect_video(str(d / "plain.mp4")) == (None, [])


def test_the_tool_prints_warnings_and_still_exits_zero(odd, capsys):
    d, names = odd
    (d / "list.csv").write_text("".join(f"{n} 0\n" for n in names + ["plain.mp4"]))
    out = d / "warnings.tsv"
    assert load_tool("check_videos").main([str(d / "list.csv"), "--workers", "1", "--warnings", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"warning: {d / 'still.mp4'}: a single still image" in captured.err
    assert "0 bad of 6 videos; " in captured.err and " with warnings" in captured.err
    warned = {Path(line.split("\t")[0]).name for line in out.read_text().splitlines()}
    assert {"rotate_cw90.mp4", "vfr.mp4", "still.mp4"} <= warned and "plain.mp4" not in warned


def test_cut_index_first_mp4s_are_bad(tmp_path):
    for name in ("cut_faststart.mp4", "cut_faststart_at_packet.mp4"):
        reason = check_video(str(VIDEOS / name), full=False)
        assert reason is not None and "requested but the data ends after frame 29" in reason, reason


def test_a_list_with_a_byte_order_mark_exits_two_naming_the_line(tmp_path, capsys):
    (tmp_path / "l.csv").write_bytes(b"\xef\xbb\xbfa.mp4 0\n")
    assert load_tool("check_videos").main([str(tmp_path / "l.csv")]) == 2
    assert "l.csv:1: starts with a UTF-8 byte-order mark" in capsys.readouterr().err


def test_a_killed_check_continues_where_it_stopped_and_reports_the_same(tmp_path):
    """kill -9 mid-list, run the same command again: the report, warnings and clean list equal those of
    an uninterrupted run, and the progress file is gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from videos import make_video
    good = [make_video(tmp_path / f"v{i}.mp4", 40, fps=30, height=32, width=64) for i in range(3)]
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    lines = [f"{good[i % 3]} {i % 5}" if i % 7 else f"missing_{i}.mp4 1" for i in range(240)]
    lines[100] = f"{tmp_path / 'junk.mp4'} 2"
    lst = tmp_path / "list.csv"
    lst.write_text("\n".join(lines) + "\n")
    tool = [sys.executable, "-m", "hiera_video", "check-videos", str(lst), "--workers", "1", "--quick"]

    def run(out_dir, kill_after=None):
        out_dir.mkdir()
        cmd = tool + ["--out", str(out_dir / "bad.tsv"), "--clean-list", str(out_dir / "clean.csv")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kill_after is not None:
            progress = out_dir / "bad.tsv.progress"
            deadline = time.time() + 120
            while time.time() < deadline and (not progress.exists() or
                                              progress.read_text().count("\n") < kill_after):
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert progress.exists() and not (out_dir / "bad.tsv").exists()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = proc.communicate(timeout=300)[1].decode()
        return proc.returncode, err

    code, _ = run(tmp_path / "whole")
    code_killed, err = run(tmp_path / "killed", kill_after=60)
    assert code == code_killed == 1
    assert "continuing:" in err and "already checked" in err
    for name in ("bad.tsv", "clean.csv"):
        assert (tmp_path / "whole" / name).read_text() == (tmp_path / "killed" / name).read_text(), name
    assert not (tmp_path / "killed" / "bad.tsv.progress").exists()
    bad = (tmp_path / "whole" / "bad.tsv").read_text().splitlines()
    assert len(bad) == 36 and any("junk.mp4" in line for line in bad)  # 35 missing + the junk file
    assert (tmp_path / "whole" / "clean.csv").read_text().splitlines() == [
        line for i, line in enumerate(lines) if i % 7 and i != 100]
