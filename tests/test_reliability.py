"""Reliability, tried as a hostile environment and a careless user would: tampered and damaged run
folders, full disks, half-written files, and every bad config value. Nothing runs code from a run
folder, nothing is lost or overwritten without a loud error, and a damaged checkpoint falls back to
an intact one that ends with exactly the uninterrupted run's weights."""

import errno
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import load_tool
from hiera_video import fileio
from hiera_video.config import load_config
from hiera_video.engine import state as ckpt_state
from test_train import final_weights, overrides

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "synthetic_hiera_tiny.yaml"


def config(data, out, **extra):
    # 4 updates per epoch, a checkpoint every 2 (so older intact ones exist), 2 epochs.
    base = {"train.checkpoint_every": 2, "train.keep_checkpoints": 3, "data.randaug_num_ops": 0}
    return load_config(TINY, overrides(data, out, **{**base, **extra}))


def train(cfg):
    from accelerate.state import AcceleratorState, GradientState
    from hiera_video.engine.train import train as run
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return run(cfg)


def resume(data, out, **extra):
    return train(config(data, out, **{"train.resume": True, **extra}))


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """One uninterrupted run: its folder (to copy and damage) and its final weights."""
    out = tmp_path_factory.mktemp("rel") / "reference"
    train(config(data, out))
    return out, final_weights(out)


def newest(out: Path) -> Path:
    return out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()


def assert_same_weights(out: Path, reference: dict) -> None:
    weights = final_weights(out)
    assert weights.keys() == reference.keys()
    for k in reference:
        assert torch.equal(weights[k], reference[k]), k


class Exploit:
    """Stands for arbitrary code in a malicious pickle: unpickling it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def rehash(folder: Path) -> None:
    """What a careful attacker does: make the manifest match the planted file."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = {"bytes": (folder / name).stat().st_size,
                                   "sha256": ckpt_state._sha256(folder / name)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------------------------------------
# 1. Nothing in a run folder is ever executed
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("file", ["optimizer.pt", "scheduler.pt", "rng_0.pt"])
def test_a_planted_pickle_never_runs_on_resume(data, finished, tmp_path, file, caplog):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    marker = tmp_path / "exploited"
    folder = newest(out)
    torch.save({"state": Exploit(marker)}, folder / file)
    # Accelerate's pickle files, which older code unpickled, planted too: they are never read.
    torch.save(Exploit(marker), folder / "random_states_0.pkl")
    torch.save(Exploit(marker), folder / "custom_checkpoint_0.pkl")
    # Without a matching manifest the file is damaged: resume falls back and never opens it.
    resume(data, out)
    assert not marker.exists()
    assert "damaged checkpoint passed over" in caplog.text and file in caplog.text
    assert_same_weights(out, finished[1])
    # With the manifest rewritten to match, loading refuses the object and names it.
    out2 = tmp_path / "run2"
    shutil.copytree(finished[0], out2)
    folder = newest(out2)
    torch.save({"state": Exploit(marker)}, folder / file)
    rehash(folder)
    with pytest.raises(Exception, match=r"not a plain checkpoint: it asks to construct posix.system, which was refused"):
        resume(data, out2)
    assert not marker.exists()


def test_checkpoints_hold_no_pickled_objects(finished):
    folder = newest(finished[0])
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["manifest.json", "model.safetensors", "optimizer.pt", "rng_0.pt", "scheduler.pt", "state.json"]
    for name in ("optimizer.pt", "scheduler.pt", "rng_0.pt"):  # plain tensors and numbers only
        with torch.serialization.safe_globals([]):
            torch.load(folder / name, weights_only=True)


# ---------------------------------------------------------------------------------------------
# 2, 3. Damaged or missing checkpoints: fall back to the newest intact one, never restart
# ---------------------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated model.safetensors": lambda f: _truncate(f / "model.safetensors"),
    "truncated optimizer.pt": lambda f: _truncate(f / "optimizer.pt"),
    "truncated scheduler.pt": lambda f: _truncate(f / "scheduler.pt"),
    "truncated rng_0.pt": lambda f: _truncate(f / "rng_0.pt"),
    "truncated state.json": lambda f: _truncate(f / "state.json"),
    "truncated manifest.json": lambda f: _truncate(f / "manifest.json"),
    "flipped byte in model.safetensors": lambda f: (f / "model.safetensors").write_bytes(
        (lambda b: b[:-10] + bytes([b[-10] ^ 1]) + b[-9:])((f / "model.safetensors").read_bytes())),
    "deleted optimizer.pt": lambda f: (f / "optimizer.pt").unlink(),
    "deleted folder": lambda f: shutil.rmtree(f),
    "latest names nothing": lambda f: (f.parent / "latest").write_text("step_99999999\n"),
    "latest empty": lambda f: (f.parent / "latest").write_text(""),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_and_ends_equal(data, finished, tmp_path, damage, caplog):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    reference_rows = (finished[0] / "metrics.jsonl").read_text().splitlines()
    DAMAGE[damage](newest(out))
    metrics = resume(data, out)
    assert "damaged checkpoint passed over" in caplog.text or "names" in caplog.text
    assert "resuming from" in caplog.text or "latest" in caplog.text
    assert metrics["epoch"] == 2
    assert_same_weights(out, finished[1])
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    # The redone epoch reports what the uninterrupted one did (its running sums are checkpointed).
    ref = [json.loads(r) for r in reference_rows]
    assert rows[1]["train_loss"] == pytest.approx(ref[1]["train_loss"], rel=1e-5)
    assert rows[1]["val_top1"] == ref[1]["val_top1"]


def test_a_damaged_leftover_folder_is_pruned_not_fatal(data, finished, tmp_path, caplog):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    shutil.rmtree(newest(out))
    junk = out / "checkpoints" / "step_00000099"
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"half")  # no manifest: never complete
    resume(data, out)
    assert "step_00000099: manifest.json is missing" in caplog.text
    assert not junk.exists()
    assert_same_weights(out, finished[1])


def test_no_intact_checkpoint_is_an_error_never_a_restart(data, finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    for folder in (out / "checkpoints").glob("step_*"):
        _truncate(folder / "model.safetensors")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(Exception, match=r"no intact checkpoint .*step_\d+: model.safetensors has \d+ bytes.*"
                                        r"model_best.pt.*metrics.jsonl"):
        resume(data, out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_resume_after_a_mid_epoch_checkpoint_reports_the_whole_epoch(data, finished, tmp_path):
    """Fall back to the checkpoint in the middle of epoch 2: its train_loss still averages all batches."""
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    folder = newest(out)
    shutil.rmtree(folder)  # the end-of-epoch-2 checkpoint; the next newest is mid-epoch 2
    mid = ckpt_state.latest_checkpoint(out)
    assert json.loads((mid / "state.json").read_text())["step_in_epoch"] == 2
    resume(data, out)
    ref = [json.loads(r) for r in (finished[0] / "metrics.jsonl").read_text().splitlines()]
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[1]["train_loss"] == pytest.approx(ref[1]["train_loss"], rel=1e-5)
    assert_same_weights(out, finished[1])


# ---------------------------------------------------------------------------------------------
# 4. A fresh run never writes into a folder that holds any part of a run
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [("model_best.pt", "metrics.jsonl"), ("metrics.jsonl",), ("model_last.pt",),
                                  ("config.yaml",), ("tensorboard",)])
def test_a_fresh_run_refuses_a_folder_with_any_artefact(data, finished, tmp_path, keep):
    out = tmp_path / "run"
    out.mkdir()
    for name in keep:
        if name == "tensorboard":
            (out / name).mkdir()
            (out / name / "events.out.tfevents.1").write_bytes(b"x")
        else:
            shutil.copy(finished[0] / name, out / name)
    contents = lambda: {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}  # noqa: E731
    before = contents()
    with pytest.raises(FileExistsError, match=r"already holds a run .*train.resume=true.*nothing was overwritten"):
        train(config(data, out))
    assert contents() == before
    if "metrics.jsonl" in keep or "model_last.pt" in keep:  # results and no checkpoint: resume refuses too
        with pytest.raises(Exception, match="no intact checkpoint"):
            resume(data, out)
        assert contents() == before


def test_resume_starts_a_run_with_nothing_to_lose(data, tmp_path):
    out = tmp_path / "new"
    metrics = resume(data, out, **{"train.epochs": 1})
    assert metrics["epoch"] == 1


# ---------------------------------------------------------------------------------------------
# 5. Full disks and killed writers
# ---------------------------------------------------------------------------------------------
class FullDisk(io.BytesIO):
    """A file on a disk that fills up after `room` bytes."""

    def __init__(self, path, room):
        super().__init__()
        self.path, self.room = path, room

    def write(self, b):
        if self.tell() + len(b) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(b)

    def __exit__(self, *exc):
        Path(self.path).write_bytes(self.getvalue()[: self.room])  # what reached the disk
        return super().__exit__(*exc)


def stray_temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".tmp" in p.name]


def test_a_full_disk_during_a_checkpoint_is_a_clear_error_and_leaves_nothing(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = fileio.open_for_write
    writes = {"checkpoints": 0}

    def filling(path):
        if ".tmp_step_" in str(path):
            writes["checkpoints"] += 1
            if writes["checkpoints"] > 7:  # the first checkpoint fits (6-7 files), the second does not
                return FullDisk(path, room=100)
        return real(path)

    monkeypatch.setattr(fileio, "open_for_write", filling)
    with pytest.raises(OSError, match=r"no space left on device writing .*\.tmp_step_\d+/\S+: it needs about "
                                      r"[\d.]+ [KMG]?B, .* free .*previous checkpoint .*step_00000002.* untouched"):
        train(config(data, out))
    assert stray_temporaries(out) == []
    assert [p.name for p in (out / "checkpoints").iterdir() if p.is_dir()] == ["step_00000002"]
    assert ckpt_state.verify(out / "checkpoints" / "step_00000002") is None
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_00000002"


def test_a_full_disk_writing_weights_keeps_the_old_file(data, finished, tmp_path, monkeypatch):
    from hiera_video.models import create_model, save_model
    path = tmp_path / "model_last.pt"
    shutil.copy(finished[0] / "model_last.pt", path)
    before = path.read_bytes()
    model = create_model(pretrained=str(path))
    monkeypatch.setattr(fileio, "open_for_write", lambda p: FullDisk(p, room=1000))
    for name in ("model_last.pt", "model.safetensors"):
        with pytest.raises(fileio.DiskFullError, match=rf"writing .*{name}: it needs about [\d.]+ [KM]B"):
            save_model(model, tmp_path / name)
    assert path.read_bytes() == before and stray_temporaries(tmp_path) == []


def test_temporaries_of_killed_writers_are_removed_on_resume(data, finished, tmp_path, caplog):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    planted = [out / ".model_last.pt.x81k2.tmp", out / "model_best.pt.tmp-4242", out / "metrics.jsonl.tmp-7",
               out / "checkpoints" / ".tmp_step_00000010"]
    for p in planted[:3]:
        p.write_bytes(b"half")
    planted[3].mkdir()
    (planted[3] / "model.safetensors").write_bytes(b"half")
    resume(data, out)
    assert not any(p.exists() for p in planted)
    assert "left by a process killed while writing it" in caplog.text


def test_files_are_written_with_the_umask(finished):
    umask = os.umask(0)
    os.umask(umask)
    for p in [finished[0] / "model_last.pt", finished[0] / "model_best.pt", newest(finished[0]) / "optimizer.pt"]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p


# ---------------------------------------------------------------------------------------------
# 6. A half-written last line of metrics.jsonl
# ---------------------------------------------------------------------------------------------
def test_a_half_written_metrics_line_is_dropped_with_a_warning(data, finished, tmp_path, caplog):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    shutil.rmtree(newest(out))  # resume inside epoch 2, whose line was being written when the disk filled
    rows = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text(rows[0] + "\n" + rows[1][:17])
    resume(data, out)
    assert "dropping an incomplete last line" in caplog.text
    assert [json.loads(r)["epoch"] for r in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_bad_metrics_line_in_the_middle_names_file_and_line(data, finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    rows = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("{oops\n" + "\n".join(rows) + "\n")
    shutil.rmtree(newest(out))
    with pytest.raises(Exception, match=r"metrics.jsonl, line 1: not a metrics row"):
        resume(data, out)


# ---------------------------------------------------------------------------------------------
# 7. Config values checked before anything runs: exit 2, the key named, no traceback
# ---------------------------------------------------------------------------------------------
BAD_VALUES = [
    ("optim.lr_batch_size=0", "optim.lr_batch_size"), ("data.target_fps=0", "data.target_fps"),
    ("data.scale=[0.5]", "data.scale"), ("optim.lr=.inf", "optim.lr"), ("optim.lr=.nan", "optim.lr"),
    ("data.sampling_rate=0", "data.sampling_rate"), ("optim.warmup_epochs=-5", "optim.warmup_epochs"),
    ("optim.weight_decay=-1", "optim.weight_decay"), ("data.num_frames=0", "data.num_frames"),
    ("data.crop_size=0", "data.crop_size"), ("data.crop_size=7", "data.crop_size"),
    ("data.crop_size=48", "data.crop_size"), ("data.num_frames=7", "data.num_frames"),
    ("data.scale=[1.0, 0.5]", "data.scale"), ("data.mean=[0.5]", "data.mean"), ("data.std=[0, 0, 0]", "data.std"),
    ("optim.betas=[2, 3]", "optim.betas"), ("data.num_workers=-1", "data.num_workers"),
    ("eval.batch_size=0", "eval.batch_size"), ("eval.num_temporal_clips=0", "eval.num_temporal_clips"),
    ("train.ema_decay=1.5", "train.ema_decay"), ("optim.grad_clip=0", "optim.grad_clip"),
    ("model.name=hiera_bsae_16x224", "model.name"), ("optim.min_lr=-1e-6", "optim.min_lr"),
    ("data.test_short_side=32", "data.test_short_side"), ("data.randaug_order=sideways", "data.randaug_order"),
]


def run_finetune(args, capsys):
    rc = load_tool("finetune").main(args)
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("override,key", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_values_exit_2_naming_the_key(override, key, tmp_path, capsys):
    out = tmp_path / "out"
    rc, err = run_finetune(["--cfg", str(TINY), override, f"output_dir={out}"], capsys)
    assert rc == 2 and key in err and "Traceback" not in err, err
    assert not out.exists()


BAD_FILES = {
    "empty": (b"", "is empty"),
    "only comments": (b"# nothing here\n", "is empty"),
    "section a list": (b"model:\n  name: hiera_tiny_8x64\ntrain: []\n", "train must be a mapping"),
    "section a string": (b"data: hello\n", "data must be a mapping"),
    "whole file a list": (b"- 1\n- 2\n", "must be a mapping of sections"),
    "whole file a string": (b"hello\n", "must be a mapping of sections"),
    "not UTF-8": (b"model:\n  name: hiera_tiny_8x64\noutput_dir: caf\xe9\n", "not UTF-8 text .*line 3"),
    "duplicate keys": (b"optim:\n  lr: 1.0e-3\n  lr: 1.0e-2\n", "key 'lr' appears twice \\(lines 2 and 3\\)"),
    "duplicate sections": (b"train:\n  epochs: 1\ntrain:\n  epochs: 2\n", "key 'train' appears twice"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_exit_2_naming_the_file(case, tmp_path, capsys):
    import re
    content, match = BAD_FILES[case]
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    rc, err = run_finetune(["--cfg", str(path), "train.epochs=1"], capsys)
    assert rc == 2 and "c.yaml" in err and re.search(match, err) and "Traceback" not in err, err


def test_an_empty_section_is_fine_and_a_bom_is_harmless(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xef\xbb\xbfmodel:\n  name: hiera_tiny_8x64\n  num_classes: 8\ntrain:\ndata:\n  crop_size: 64\n"
                     b"  num_frames: 8\n")
    cfg = load_config(path, ["train.epochs=2"])
    assert cfg.train.epochs == 2 and cfg.model.name == "hiera_tiny_8x64"


# ---------------------------------------------------------------------------------------------
# 8. Cheap things first: no download, no model, no folder before the inputs are known to exist
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def no_downloads(monkeypatch):
    from hiera_video.models import checkpoints

    def refuse(url):
        raise AssertionError(f"tried to download {url}")
    monkeypatch.setattr(checkpoints, "_download", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: refuse(a[0]))


def test_a_paper_recipe_without_data_stops_before_any_download(tmp_path, capsys, no_downloads):
    out = tmp_path / "fresh"
    rc, err = run_finetune(["--cfg", str(ROOT / "configs" / "k400_hiera_l.yaml"), f"output_dir={out}"], capsys)
    assert rc == 2 and "data.train_list" in err and "tools/prepare_kinetics.py" in err, err
    assert "data_lists/README.md" in err and "Traceback" not in err
    assert not out.exists()


def test_missing_paths_name_their_key(data, tmp_path, capsys, no_downloads):
    out = tmp_path / "fresh"
    base = overrides(data, out)
    for extra, key in [("data.train_list=/nowhere/train.csv", "data.train_list"),
                       ("data.val_list=/nowhere/val.csv", "data.val_list"),
                       ("data.root=/nowhere", "data.root"),
                       ("model.pretrained=/nowhere/mae.pth", "model.pretrained"),
                       ("model.pretrained=mae_k401", "model.pretrained")]:
        rc, err = run_finetune(["--cfg", str(TINY), *base, extra], capsys)
        assert rc == 2 and key in err and "Traceback" not in err, (extra, err)
        assert not out.exists(), extra


def test_a_start_that_fails_later_leaves_no_folder(data, tmp_path, capsys):
    out = tmp_path / "fresh"
    bad = tmp_path / "weights.pth"
    bad.write_text("not a checkpoint")
    rc, err = run_finetune(["--cfg", str(TINY), *overrides(data, out), f"model.pretrained={bad}"], capsys)
    assert rc != 0 and "weights.pth" in err and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------------------------------
# 9. Clear errors, not tracebacks
# ---------------------------------------------------------------------------------------------
def test_a_list_of_broken_videos_gives_one_clear_message(tmp_path, capsys):
    from hiera_video.data.lists import write_list
    for i in range(4):
        (tmp_path / f"{i}.mp4").write_bytes(b"not a video")
    write_list(tmp_path / "train.csv", [(f"{i}.mp4", i % 2) for i in range(4)])
    out = tmp_path / "out"
    rc, err = run_finetune(["--cfg", str(TINY), *overrides(tmp_path, out, **{"data.num_workers": 1}),
                            f"data.val_list=null"], capsys)
    assert rc == 1 and "videos in a row could not be decoded" in err and "tools/check_videos.py" in err, err
    assert "Traceback" not in err and "DataLoader worker" not in err


def test_a_malicious_checkpoint_for_evaluation_names_the_refused_global(data, tmp_path, capsys):
    marker = tmp_path / "exploited"
    evil = tmp_path / "evil.pt"
    torch.save({"model": Exploit(marker)}, evil)
    rc = load_tool("evaluate").main(["--cfg", str(TINY), "--ckpt", str(evil), *overrides(data, tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc != 0 and not marker.exists()
    assert "asks to construct posix.system, which was refused" in err and "weights_only set to False" not in err, err


# ---------------------------------------------------------------------------------------------
# 10. Smaller promises
# ---------------------------------------------------------------------------------------------
def test_the_evaluation_summary_counts_readable_videos(data, finished, tmp_path, caplog):
    import logging
    from hiera_video.data.lists import read_list, write_list
    caplog.set_level(logging.INFO, logger="hiera_video")
    rows = [(e.path, e.label) for e in read_list(data / "val.csv")]
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    write_list(tmp_path / "val.csv", rows + [(str(tmp_path / "broken.mp4"), 0)])
    rc = load_tool("evaluate").main(["--cfg", str(TINY), "--ckpt", str(finished[0] / "model_best.pt"),
                                     *overrides(data, tmp_path / "o", **{"eval.list": tmp_path / "val.csv",
                                                                         "eval.num_temporal_clips": 1,
                                                                         "eval.num_spatial_crops": 1,
                                                                         "data.classes": "null"})])
    assert rc == 0
    assert "over the 5 readable videos of 6" in caplog.text and "1 unreadable" in caplog.text


def test_an_ema_run_resumes_to_the_same_ema_weights(data, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "run"
    metrics = train(config(data, ref, **{"train.ema": True, "train.ema_decay": 0.5}))
    assert metrics["epoch"] == 2 and "val_top1" in metrics
    assert (newest(ref) / "ema.safetensors").is_file()
    shutil.copytree(ref, out)
    shutil.rmtree(newest(out))  # resume mid-epoch 2: the EMA comes back from the checkpoint
    resume(data, out, **{"train.ema": True, "train.ema_decay": 0.5})
    assert_same_weights(out, final_weights(ref))
    # model_last.pt holds the EMA weights, not the raw ones
    from safetensors.torch import load_file
    raw = load_file(str(newest(ref) / "model.safetensors"))
    assert any(not torch.equal(raw[k], v) for k, v in final_weights(ref).items() if v.is_floating_point())


def test_resuming_with_another_model_names_the_file_and_loses_nothing(data, finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    before = {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(Exception, match=r"model.safetensors does not fit this run's model.*shapes"):
        resume(data, out, **{"model.name": "hiera_tiny_8x64"})
    assert {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
