"""data.decode_timeout: a video that takes too long is abandoned and reported, and the job goes on.

Two ways a real decode stops forever, both tested: a decoder caught in a loop with the GIL held (here a
catastrophic regular expression, which holds the GIL in C just as decord's `get_batch` loop does), and a
read stalled on a file system (a FUSE file that serves its first bytes and then never answers; skipped
where FUSE cannot be mounted)."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hiera_video.data.datasets import ClipDataset, MultiViewDataset, collate_clips, collate_views
from hiera_video.data.decode import DecodeError
from hiera_video.data.guard import TimeLimit
from hiera_video.data.lists import Entry
from videos import make_video

LIMIT = 1.5


def _hold_the_gil():
    """Minutes of work inside the regex engine, which never releases the GIL."""
    return re.match(r"(a+)+$", "a" * 64 + "b")


class LoopingClips(ClipDataset):
    def _decode(self, entry, generator=None):
        if entry.path.endswith("loop.mp4"):
            _hold_the_gil()
        return super()._decode(entry, generator)


class LoopingViews(MultiViewDataset):
    def _frames(self, entry):
        if entry.path.endswith("loop.mp4"):
            _hold_the_gil()
        return super()._frames(entry)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("limit")
    good = [make_video(d / f"v{i}.mp4", 70, fps=30, height=32, width=64) for i in range(3)]
    loop = shutil.copy(good[0], d / "loop.mp4")
    return good, str(loop)


def _entries(paths):
    return [Entry(p, 1, i + 1) for i, p in enumerate(paths)]


def test_the_time_limit_abandons_a_call_and_serves_the_next():
    class Target:
        def double(self, x):
            return np.full(3, x * 2)

        def hang(self):
            _hold_the_gil()

    limit = TimeLimit(Target(), LIMIT)
    assert limit.call("a", "double", 2).tolist() == [4, 4, 4]
    start = time.perf_counter()
    with pytest.raises(DecodeError, match=r"x.mp4: .*not decoded within data.decode_timeout=1.5 s"):
        limit.call("x.mp4", "hang")
    assert time.perf_counter() - start < LIMIT + 1.0
    assert limit.call("b", "double", 5).tolist() == [10, 10, 10]  # a fresh helper
    limit.close()
    deadline = time.time() + 10
    while limit._abandoned and time.time() < deadline:  # the killed helpers are reaped, none left behind
        limit._reap()
        time.sleep(0.05)
    assert limit._abandoned == []


def test_training_replaces_a_looping_video_and_reports_it(clips):
    good, loop = clips
    ds = LoopingClips(_entries([loop, *good]), num_frames=8, sampling_rate=2, crop_size=32, decode_timeout=LIMIT)
    start = time.perf_counter()
    item = ds[(0, 123)]
    assert time.perf_counter() - start < LIMIT + 2.0
    assert item["index"] != 0 and [p for p, _ in item["bad"]] == [loop]
    assert "decode_timeout" in item["bad"][0][1]


def test_the_clip_is_the_same_with_and_without_the_time_limit(clips):
    """The generator travels to the helper and back: every draw (clip position, crop, flip) is the same."""
    good, _ = clips
    kw = dict(num_frames=8, sampling_rate=2, crop_size=32)
    plain, limited = ClipDataset(_entries(good), **kw), ClipDataset(_entries(good), decode_timeout=30, **kw)
    for seed in (1, 2, 3):
        assert torch.equal(plain[(1, seed)]["video"], limited[(1, seed)]["video"])


def test_evaluation_lists_a_looping_video_and_scores_the_others(clips):
    good, loop = clips
    ds = LoopingViews(_entries([good[0], loop, good[1]]), num_frames=8, sampling_rate=2, crop_size=32,
                      num_temporal_clips=2, num_spatial_crops=1, decode_timeout=LIMIT)
    loader = DataLoader(ds, batch_size=3, collate_fn=collate_views, num_workers=1)
    start = time.perf_counter()
    (batch,) = list(loader)
    assert time.perf_counter() - start < LIMIT + 10.0  # + a worker's start
    assert [(i, p) for i, p, _ in batch["unreadable"]] == [(1, loop)]
    assert sorted(set(batch["views"][:, 0].tolist())) == [0, 2]
    reference = MultiViewDataset(_entries([good[0]]), num_frames=8, sampling_rate=2, crop_size=32,
                                 num_temporal_clips=2, num_spatial_crops=1)[0]
    assert torch.equal(batch["video"][:2], reference["video"])


# ------------------------------------------------------------------------------------------------
# A file system that stops answering
# ------------------------------------------------------------------------------------------------
STALL_SERVER = textwrap.dedent('''
    import errno, os, stat, sys, time
    from fuse import FUSE, FuseOSError, Operations

    class Stall(Operations):
        """One file, `stall.mp4`: the first `head` bytes of `source`, then reads that never return."""
        def __init__(self, source, head):
            self.data, self.head = open(source, "rb").read(), head
        def getattr(self, path, fh=None):
            if path == "/":
                return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
            if path == "/stall.mp4":
                return dict(st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_size=len(self.data))
            raise FuseOSError(errno.ENOENT)
        def readdir(self, path, fh):
            return [".", "..", "stall.mp4"]
        def read(self, path, size, offset, fh):
            if offset + size > self.head:
                time.sleep(3600)
            return self.data[offset:offset + size]

    FUSE(Stall(sys.argv[2], int(sys.argv[3])), sys.argv[1], foreground=True, nothreads=False, ro=True)
''')


@pytest.fixture
def stalled_file(tmp_path, clips):
    try:
        import fuse  # noqa: F401  (fusepy; it raises OSError where libfuse2 is missing)
    except (ImportError, OSError) as e:
        pytest.skip(f"FUSE tests need fusepy and libfuse2: {e}")
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount") is None:
        pytest.skip("no /dev/fuse or fusermount here")
    mount = tmp_path / "mnt"
    mount.mkdir()
    server = tmp_path / "stall_server.py"
    server.write_text(STALL_SERVER)
    proc = subprocess.Popen([sys.executable, str(server), str(mount), clips[0][0], "64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while not (mount / "stall.mp4").exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.skip(f"FUSE mount failed here: {proc.stderr.read().decode()[-300:]}")
        time.sleep(0.1)
    yield str(mount / "stall.mp4")
    proc.kill()  # the mount then fails every pending read, so stuck readers end
    proc.wait()
    subprocess.run(["fusermount", "-u", "-z", str(mount)], check=False, capture_output=True)


def test_training_and_evaluation_walk_away_from_a_stalled_read(stalled_file, clips):
    good, _ = clips
    ds = ClipDataset(_entries([stalled_file, *good]), num_frames=8, sampling_rate=2, crop_size=32,
                     decode_timeout=LIMIT)
    start = time.perf_counter()
    item = ds[(0, 7)]
    assert time.perf_counter() - start < LIMIT + 3.0
    assert [p for p, _ in item["bad"]] == [stalled_file] and item["index"] != 0
    views = MultiViewDataset(_entries([stalled_file, good[1]]), num_frames=8, sampling_rate=2, crop_size=32,
                             num_temporal_clips=1, num_spatial_crops=1, decode_timeout=LIMIT)
    start = time.perf_counter()
    batch = collate_views([views[0], views[1]])
    assert time.perf_counter() - start < LIMIT + 3.0
    assert [p for _, p, _ in batch["unreadable"]] == [stalled_file] and len(batch["video"]) == 1


def test_check_videos_reports_a_stalled_read_and_checks_the_rest(stalled_file, clips, tmp_path, capsys):
    from hiera_video.commands import check_videos
    good, _ = clips
    lst = tmp_path / "list.csv"
    lst.write_text(f"{good[0]} 0\n{stalled_file} 1\n{good[1]} 2\n")
    start = time.perf_counter()
    assert check_videos.main([str(lst), "--workers", "2", "--timeout", str(LIMIT)]) == 1
    assert time.perf_counter() - start < LIMIT + 10.0  # + the pool's start
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"{stalled_file}\tnot decoded within data.decode_timeout=1.5 s "
                                    f"(a stalled file system, or a decoder caught in a loop)"]
    assert "1 bad of 3 videos" in out.err


def test_check_videos_reports_a_looping_decoder(clips, tmp_path, monkeypatch):
    from hiera_video.data import check
    good, loop = clips
    real = check.inspect_video

    def looping(path, backend="auto", full=True):
        if path.endswith("loop.mp4"):
            _hold_the_gil()
        return real(path, backend, full)

    monkeypatch.setattr(check, "inspect_video", looping)
    start = time.perf_counter()
    results = list(check.inspect_entries(_entries([good[0], loop, good[1]]), workers=1, timeout=LIMIT))
    assert time.perf_counter() - start < LIMIT + 3.0
    assert [(e.path, reason is None) for e, reason, _ in results] == [(good[0], True), (loop, False), (good[1], True)]
    assert "decode_timeout" in results[1][1]


def test_hiera_video_evaluate_lists_a_stalled_video_and_scores_the_others_as_without_it(stalled_file, clips,
                                                                                      tmp_path):
    """The whole command, DataLoader workers included: the stalled file costs the limit, is listed with its
    path, and every other video's prediction equals a run whose list does not hold it."""
    import csv
    import json

    import hiera_video
    from hiera_video.commands import evaluate
    good, _ = clips
    torch.manual_seed(0)
    model = hiera_video.create_model("hiera_test_8x64", num_classes=3)
    hiera_video.save_model(model, tmp_path / "model.pt", data=dict(num_frames=8, sampling_rate=2, crop_size=64))

    def run(name, paths):
        (tmp_path / f"{name}.csv").write_text("".join(f"{p} {i % 3}\n" for i, p in enumerate(paths)))
        (tmp_path / f"{name}.yaml").write_text(
            f"model: {{name: hiera_test_8x64, num_classes: 3}}\n"
            f"data: {{val_list: {tmp_path / (name + '.csv')}, num_frames: 8, sampling_rate: 2, crop_size: 64, "
            f"num_workers: 1, decode_timeout: {LIMIT}}}\n"
            f"eval: {{num_temporal_clips: 1, num_spatial_crops: 1, batch_size: 2}}\noutput_dir: {tmp_path / name}\n")
        start = time.perf_counter()
        assert evaluate.main(["--cfg", str(tmp_path / f"{name}.yaml"), "--ckpt", str(tmp_path / "model.pt"),
                              "--out", str(tmp_path / name)]) == 0
        seconds = time.perf_counter() - start
        rows = {r["path"]: r for r in csv.DictReader(open(tmp_path / name / "predictions.csv"))}
        return json.loads((tmp_path / name / "metrics.json").read_text()), rows, seconds

    clean, clean_rows, clean_seconds = run("clean", good)
    stalled, rows, seconds = run("stalled", [good[0], stalled_file, *good[1:]])
    assert seconds < clean_seconds + LIMIT + 5.0
    assert stalled["num_unreadable"] == 1 and stalled["unreadable"][0]["path"] == stalled_file
    assert "decode_timeout" in rows[stalled_file]["error"]
    for path in good:
        assert {k: rows[path][k] for k in ("top1", "score1")} == {k: clean_rows[path][k] for k in ("top1", "score1")}


def test_finetuning_replaces_a_stalled_video_and_finishes(stalled_file, data, tmp_path, fresh_accelerate, caplog):
    """A whole training run, DataLoader workers included, whose list holds a file that never answers:
    the run finishes, the file is logged with its path and counted as skipped."""
    import json
    import logging

    from hiera_video.config import load_config
    from hiera_video.engine.train import train
    from test_train import ROOT, overrides
    lines = (data / "train.csv").read_text().splitlines()
    lst = tmp_path / "train.csv"
    lst.write_text("".join(f"{data / line.split()[0]} {line.split()[1]}\n" for line in lines)
                   + f"{stalled_file} 0\n")
    out = tmp_path / "run"
    cfg = load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml",
                      overrides(data, out, **{"data.train_list": str(lst), "data.num_workers": 1, "train.epochs": 1,
                                              "data.decode_timeout": LIMIT, "data.num_repeats": 1,
                                              "train.batch_size": 3}))
    with caplog.at_level(logging.WARNING, logger="hiera_video"):
        metrics = train(cfg)
    assert metrics["epoch"] == 1 and metrics["skipped_videos"] >= 1
    assert any(stalled_file in r.getMessage() and "decode_timeout" in r.getMessage() for r in caplog.records)
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["skipped_videos"] >= 1


def test_embeddings_list_a_stalled_video_and_embed_the_others(stalled_file, clips, tmp_path):
    import hiera_video
    from hiera_video.data.lists import write_list
    from hiera_video.engine.embed import extract_embeddings
    good, _ = clips
    torch.manual_seed(0)
    hiera_video.save_model(hiera_video.create_model("hiera_test_8x64", num_classes=3), tmp_path / "model.pt",
                           data=dict(num_frames=8, sampling_rate=2, crop_size=64))
    write_list(tmp_path / "list.csv", [(good[0], 0), (stalled_file, 0), (good[1], 0)])
    write_list(tmp_path / "clean.csv", [(good[0], 0), (good[1], 0)])
    start = time.perf_counter()
    meta = extract_embeddings(None, str(tmp_path / "model.pt"), str(tmp_path / "list.csv"), tmp_path / "e",
                              num_workers=1, decode_timeout=LIMIT)
    assert time.perf_counter() - start < LIMIT + 20.0
    assert [(u["index"], u["path"]) for u in meta["unreadable"]] == [(1, stalled_file)]
    extract_embeddings(None, str(tmp_path / "model.pt"), str(tmp_path / "clean.csv"), tmp_path / "c", num_workers=1)
    emb, clean = np.load(tmp_path / "e" / "embeddings.npy"), np.load(tmp_path / "c" / "embeddings.npy")
    assert np.isnan(emb[1]).all()
    np.testing.assert_allclose(emb[[0, 2]], clean, rtol=1e-5, atol=1e-6)


def test_the_helper_pipe_constructs_nothing_but_arrays_and_entries():
    import pickle

    from hiera_video.data.guard import _loads
    ok = (np.arange(3), Entry("a.mp4", 1, 2), ("x", None, [1.5]))
    back = _loads(pickle.dumps(ok, protocol=pickle.HIGHEST_PROTOCOL))
    assert back[0].tolist() == [0, 1, 2] and back[1:] == ok[1:]
    with pytest.raises(pickle.UnpicklingError, match="refused to construct posix.system"):
        _loads(pickle.dumps(os.system))
