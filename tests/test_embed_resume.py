"""Embedding extraction resumes only its own parts: another checkpoint, list, views, pooling or chunk
size in the same output folder is an error naming what differs (never rows of one extraction beside
another's), while the same command after an interruption, or after completion, still reuses them."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import hiera_video
from hiera_video.data.lists import write_list
from hiera_video.engine.embed import SPEC_FILE, extract_embeddings
from videos import make_video


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two tiny checkpoints with different weights, two lists of 4 videos (a.csv, b.csv), and one
    finished extraction of a.csv with checkpoint a.pt in chunks of 2 (views 1,1, mean)."""
    d = tmp_path_factory.mktemp("embed")
    data = dict(num_frames=8, sampling_rate=2, target_fps=30.0, sampling_mode="stride", crop_size=64,
                mean=[0.45] * 3, std=[0.225] * 3)
    for seed, name in ((0, "a.pt"), (1, "b.pt")):
        torch.manual_seed(seed)
        hiera_video.save_model(hiera_video.create_model("hiera_test_8x64", num_classes=2), d / name, data=data)
    for i in range(8):
        make_video(d / "v" / f"{i}.mp4", num_frames=24 + 2 * i, height=32, width=64)
    write_list(d / "a.csv", [(f"v/{i}.mp4", i % 2) for i in range(4)])
    write_list(d / "b.csv", [(f"v/{i}.mp4", i % 2) for i in range(4, 8)])
    extract(d, d / "done")
    return d


def extract(d: Path, out: Path, ckpt: str = "a.pt", lst: str = "a.csv", views=(1, 1), pool="mean", chunk=2):
    return extract_embeddings(None, str(d / ckpt), str(d / lst), out, *views, pool=pool, chunk=chunk,
                              num_workers=0)


def copy_done(setup, tmp_path) -> Path:
    out = tmp_path / "emb"
    shutil.copytree(setup / "done", out)
    return out


def snapshot(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("change, words", [
    (dict(ckpt="b.pt"), r"checkpoint: \S*a\.pt vs \S*b\.pt"),
    (dict(lst="b.csv"), r"list: \S*a\.csv vs \S*b\.csv"),
    (dict(views=(2, 1)), r"views: 1,1 vs 2,1"),
    (dict(pool="max"), r"pooling: mean vs max"),
    (dict(chunk=3), r"chunk: 2 vs 3"),
])
def test_parts_of_another_extraction_are_an_error_naming_what_differs(setup, tmp_path, change, words):
    out = copy_done(setup, tmp_path)
    before = snapshot(out)
    with pytest.raises(ValueError, match=rf"{out} holds parts of another extraction \(.*{words}.*\): use another "
                                         rf"output folder \(--out\), or delete {out / 'parts'} to start over"):
        extract(setup, out, **change)
    assert snapshot(out) == before  # nothing overwritten: the finished extraction is intact


def test_a_list_changed_in_place_is_named(setup, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(setup, d, ignore=shutil.ignore_patterns("done"))
    extract(d, d / "emb")
    write_list(d / "a.csv", [(f"v/{i}.mp4", 0) for i in (7, 6, 5, 4, 3)])
    with pytest.raises(ValueError, match=r"list: \S*a\.csv changed \(4 vs 5 videos\)"):
        extract(d, d / "emb")
    # A checkpoint rewritten in place (same path, other weights) is another extraction too.
    write_list(d / "a.csv", [(f"v/{i}.mp4", i % 2) for i in range(4)])
    shutil.copy(d / "b.pt", d / "a.pt")
    with pytest.raises(ValueError, match=r"checkpoint: \S*a\.pt changed since the parts were made"):
        extract(d, d / "emb")


def test_parts_without_a_record_cannot_be_verified(setup, tmp_path):
    out = copy_done(setup, tmp_path)
    (out / "parts" / SPEC_FILE).unlink()  # as an older version left them
    with pytest.raises(ValueError, match=rf"parts without .*{SPEC_FILE}.*cannot be verified.*delete "
                                         rf"{out / 'parts'} to start over"):
        extract(setup, out)


def test_the_command_exits_2_naming_the_difference(setup, tmp_path, capsys):
    from hiera_video.commands.extract_embeddings import main
    out = copy_done(setup, tmp_path)
    rc = main(["--ckpt", str(setup / "b.pt"), "--list", str(setup / "b.csv"), "--out", str(out),
               "--workers", "0", "--chunk", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint: " in err and "list: " in err and "to start over" in err, err


def test_an_interrupted_extraction_resumes_and_a_finished_one_reruns_unchanged(setup, tmp_path):
    out = copy_done(setup, tmp_path)
    done = np.load(out / "embeddings.npy")
    # The checkpoint copied elsewhere (same bytes, new mtime): still the same extraction.
    shutil.copy(setup / "a.pt", tmp_path / "a.pt")
    (out / "parts" / "part_000000002.npz").unlink()
    kept = (out / "parts" / "part_000000000.npz").stat().st_mtime_ns
    extract_embeddings(None, str(tmp_path / "a.pt"), str(setup / "a.csv"), out, chunk=2, num_workers=0)
    assert (out / "parts" / "part_000000000.npz").stat().st_mtime_ns == kept
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), done)
    # Rerun of a finished extraction: no part recomputed, the same outputs, consistent with the list.
    parts = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    meta = extract(setup, out)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == parts
    emb = np.load(out / "embeddings.npy", allow_pickle=False)
    np.testing.assert_array_equal(emb, done)
    assert emb.shape == (4, meta["dimension"]) and not np.isnan(emb).any() and meta["unreadable"] == []
    rows = (out / "index.csv").read_text().splitlines()
    assert [Path(r.split(",")[0]).name for r in rows[1:]] == [f"{i}.mp4" for i in range(4)]
    assert json.loads((out / "meta.json").read_text())["list"] == str(setup / "a.csv")
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_a_spec_left_before_the_first_part_is_replaced(setup, tmp_path):
    out = tmp_path / "emb"
    (out / "parts").mkdir(parents=True)
    (out / "parts" / SPEC_FILE).write_text(json.dumps({"format": 1, "chunk": 99}))  # killed before any part
    extract(setup, out, lst="b.csv")
    assert json.loads((out / "parts" / SPEC_FILE).read_text())["chunk"] == 2
    assert np.load(out / "embeddings.npy").shape[0] == 4
