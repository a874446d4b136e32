"""The finetuning loop: outputs, exact resumption after SIGKILL, non-finite losses, distributed runs, trackers
and learning curves."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import hiera_video
from hiera_video.config import load_config

ROOT = Path(__file__).parents[1]


def overrides(data: Path, out: Path, **extra) -> list[str]:
    base = {"model.name": "hiera_test_8x64", "model.num_classes": 2, "model.drop_path": 0.1, "model.dropout": 0.1,
            "data.train_list": str(data / "train.csv"), "data.val_list": str(data / "val.csv"),
            # The demo config names runs/demo/data/classes.txt (8 classes), which exists once ./run.sh ran.
            "data.classes": "null",
            "data.num_frames": 8, "data.sampling_rate": 2, "data.crop_size": 64, "data.num_workers": 0,
            "data.hflip": True, "data.randaug_num_ops": 2, "data.erase_prob": 0.5, "data.num_repeats": 2,
            "train.batch_size": 4, "train.epochs": 2, "train.checkpoint_every": 1, "train.log_every": 1,
            "optim.warmup_epochs": 1, "optim.lr_batch_size": 4, "output_dir": str(out)}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def run_tool(args: list[str], env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, str(ROOT / "tools" / "finetune.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def final_weights(out: Path) -> dict:
    return torch.load(out / "model_last.pt", weights_only=True)["model"]


def test_outputs_of_a_short_run(data, tmp_path, fresh_accelerate):
    from hiera_video.engine.train import train
    out = tmp_path / "run"
    metrics = train(load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml", overrides(data, out)))
    assert (out / "config.yaml").exists() and load_config(out / "config.yaml").output_dir == str(out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("step", "lr", "train_loss", "val_top1", "val_top5", "clips_per_s", "skipped_videos"):
        assert key in rows[-1], key
    # 8 videos, 2 per update (4 clips, 2 repeats each): 4 updates per epoch
    assert rows[-1]["val_videos"] == 5 and rows[-1]["step"] == 8 and metrics["epoch"] == 2
    # model_last/best rebuild their model alone
    model = hiera_video.create_model(pretrained=str(out / "model_best.pt"))
    assert model.num_classes == 2 and model.input_size == (8, 64, 64)
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_00000008"
    assert len([p for p in (out / "checkpoints").iterdir() if p.is_dir()]) == 2  # keep_checkpoints


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_gives_identical_weights(data, tmp_path):
    args = ["--cfg", str(ROOT / "configs" / "synthetic_hiera_tiny.yaml")]
    ref = tmp_path / "ref"
    proc = run_tool(args + overrides(data, ref, **{"train.epochs": 3}))
    assert proc.wait(timeout=300) == 0, proc.stdout.read()
    reference = final_weights(ref)

    for kill_after in (5, 8):  # checkpoints written before the kill (the kill lands wherever it lands)
        out = tmp_path / f"killed_{kill_after}"
        # The interrupted run uses 2 data workers, the reference none: augmentation may not depend on it.
        cmd = args + overrides(data, out, **{"train.epochs": 3, "data.num_workers": 2})
        proc = run_tool(cmd)
        latest = out / "checkpoints" / "latest"
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if latest.exists() and int(latest.read_text().strip().split("_")[1]) >= kill_after:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        resumed = run_tool(cmd + ["train.resume=true"])
        log = resumed.communicate(timeout=300)[0]
        assert resumed.returncode == 0, log
        assert "resumed from" in log
        weights = final_weights(out)
        for key in reference:
            assert torch.equal(weights[key], reference[key]), key
        epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2, 3]


def poison_loss(monkeypatch, at_call: int, value: float):
    """Make the training loss `value` (NaN, inf) at its `at_call`-th computation."""
    from hiera_video.tasks import classify as tasks
    from hiera_video.engine import train as engine
    calls = {"n": 0}
    real = tasks.soft_target_cross_entropy

    def poisoned(logits, target):
        calls["n"] += 1
        loss = real(logits, target)
        return loss * value if calls["n"] == at_call else loss

    monkeypatch.setattr(tasks, "soft_target_cross_entropy", poisoned)
    return engine


def test_non_finite_loss_stops_before_touching_the_weights(data, tmp_path, fresh_accelerate, monkeypatch):
    engine = poison_loss(monkeypatch, at_call=3, value=float("nan"))
    out = tmp_path / "nan"
    cfg = load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml", overrides(data, out))
    with pytest.raises(engine.NonFiniteLossError, match=r"non-finite loss at epoch 1, update 3 \(3 in all\)"):
        engine.train(cfg)
    # The last checkpoint holds the weights after update 2, all finite.
    latest = engine.latest_checkpoint(out)
    assert latest.name == "step_00000002"
    from safetensors.torch import load_file
    assert all(torch.isfinite(t).all() for t in load_file(latest / "model.safetensors").values())


def test_non_finite_loss_can_skip_the_update(data, tmp_path, fresh_accelerate, monkeypatch):
    engine = poison_loss(monkeypatch, at_call=2, value=float("inf"))
    out = tmp_path / "skip"
    engine.train(load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml",
                             overrides(data, out, **{"train.on_nonfinite": "skip"})))
    weights = final_weights(out)
    assert all(torch.isfinite(t).all() for t in weights.values())
    state = json.loads((out / "checkpoints" / "step_00000008" / "state.json").read_text())
    assert state["skipped_updates"] == 1


def test_each_epoch_draws_a_new_order_and_new_augmentations(data, tmp_path, fresh_accelerate, monkeypatch):
    """Accelerate's loader resets its sampler's epoch to its own count on every iteration, and that
    count only advances when an iteration runs to the end (ours stops at the last full update): set
    on the sampler alone, every epoch replayed epoch 0's order and per-clip seeds (the same crops
    and RandAugment each epoch, and no exact mid-epoch resume over several processes)."""
    from hiera_video.data.datasets import ClipDataset
    from hiera_video.engine.train import train
    seen: list = []
    real = ClipDataset.__getitem__
    monkeypatch.setattr(ClipDataset, "__getitem__", lambda self, key: seen.append(key) or real(self, key))
    train(load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml",
                      overrides(data, tmp_path / "run", **{"train.epochs": 3, "data.num_repeats": 1})))
    epochs = [seen[i:i + 8] for i in range(0, 24, 8)]  # 8 training videos, then validation (no seeds)
    assert len(seen) >= 24 and all(isinstance(k, tuple) for e in epochs for k in e)
    assert all(sorted(i for i, _ in e) == list(range(8)) for e in epochs)  # each video once per epoch
    orders = [[i for i, _ in e] for e in epochs]
    seeds = [{s for _, s in e} for e in epochs]
    assert orders[0] != orders[1] != orders[2] and not seeds[0] & seeds[1] and not seeds[1] & seeds[2]


def test_config_errors_exit_2_naming_the_key(tmp_path):
    proc = run_tool(["--cfg", str(ROOT / "configs" / "synthetic_hiera_tiny.yaml"), "train.epoch=3"])
    log = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2 and "did you mean 'train.epochs'" in log


@pytest.mark.slow
def test_two_processes_stay_in_sync_and_validate_each_video_once(data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / "tools" / "finetune.py"), "--cfg", str(ROOT / "configs" / "synthetic_hiera_tiny.yaml"),
           *overrides(data, out, **{"train.batch_size": 2})]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for epoch, row in enumerate(rows, 1):
        assert row["weights_in_sync"] is True
        assert row["val_videos"] == 5 and row["val_unreadable"] == 0  # 5 videos over 2 processes: none twice
        assert row["step"] == 4 * epoch  # 8 videos / (1 video x 2 processes) = 4 updates per epoch
    assert "16 clips" not in proc.stderr and "4 clips per update (2 per process x 2 processes" in proc.stderr
    # Both processes resume from the same checkpoint (the main one picks it) with their own RNG states.
    assert sorted(p.name for p in (out / "checkpoints" / "step_00000008").glob("rng_*.pt")) == ["rng_0.pt", "rng_1.pt"]
    proc = subprocess.run(cmd + ["train.resume=true", "train.epochs=3"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resumed from" in proc.stderr and "step_00000008" in proc.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["weights_in_sync"] is True


def test_a_fresh_run_never_overwrites_an_existing_one(data, tmp_path, fresh_accelerate):
    from hiera_video.engine.train import train
    out = tmp_path / "run"
    cfg = load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml", overrides(data, out, **{"train.epochs": 1}))
    train(cfg)
    before = final_weights(out)
    with pytest.raises(FileExistsError, match="already holds a run.*train.resume=true"):
        train(cfg)
    assert all(torch.equal(before[k], v) for k, v in final_weights(out).items())
    # Resuming a finished run trains nothing and reports its last epoch.
    done = train(load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml",
                             overrides(data, out, **{"train.epochs": 1, "train.resume": True})))
    assert done["epoch"] == 1 and "val_top1" in done


# ------------------------------------------------------------------------------------------------
# Trackers and learning curves
# ------------------------------------------------------------------------------------------------
def recording_tracker():
    """An Accelerate tracker that keeps what it is given (hyperparameters, logged values, the finish)."""
    from accelerate.tracking import GeneralTracker

    class Recording(GeneralTracker):
        name, requires_logging_directory = "recording", False

        def __init__(self):
            super().__init__()
            self.config, self.logs, self.finished = None, [], False

        @property
        def tracker(self):
            return self

        def store_init_configuration(self, values):
            self.config = dict(values)

        def log(self, values, step=None, **kwargs):
            self.logs.append((step, dict(values)))

        def finish(self):
            self.finished = True

    return Recording()


def test_trackers_get_the_config_each_update_and_each_epoch_and_curves_survive_a_failure(
        data, tmp_path, fresh_accelerate, monkeypatch, caplog):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from hiera_video.engine import train as engine
    real, calls = engine.write_curves, []

    def fails_first(rows, path):
        calls.append(len(rows))
        if len(calls) == 1:
            raise OSError("disk on fire")
        real(rows, path)

    monkeypatch.setattr(engine, "write_curves", fails_first)
    out, tracker = tmp_path / "tracked", recording_tracker()
    cfg = load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml",
                      overrides(data, out, **{"train.log_with": "none"}))
    with caplog.at_level("INFO", logger="hiera_video"):
        engine.train(cfg, trackers=[tracker])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    # Hyperparameters: the whole config, dotted keys, scalars only.
    assert tracker.config["model.name"] == "hiera_test_8x64" and tracker.config["train.epochs"] == 2
    assert tracker.config["data.mean"] == "0.45,0.45,0.45" and tracker.config["train.log_with"] == "none"
    assert tracker.config["train.max_steps"] == "null" and len(tracker.config) > 60
    assert all(isinstance(v, (bool, int, float, str)) for v in tracker.config.values())

    updates = [(step, v) for step, v in tracker.logs if "train/loss" in v]
    assert [step for step, _ in updates] == list(range(1, 9))  # every update, numbered from 1
    for epoch, row in enumerate(rows):  # one batch per update: the epoch's mean is the mean of its updates
        losses = [v["train/loss"] for step, v in updates if epoch * 4 < step <= epoch * 4 + 4]
        assert sum(losses) / 4 == pytest.approx(row["train_loss"], rel=1e-5)
    # train/lr is the rate the update used; metrics.jsonl's lr is the next update's.
    assert updates[4][1]["train/lr"] == pytest.approx(rows[0]["lr"]) and updates[0][1]["train/lr"] != rows[0]["lr"]

    epochs = [(step, v) for step, v in tracker.logs if "val/top1" in v]
    assert [step for step, _ in epochs] == [4, 8]
    for (_, logged), row in zip(epochs, rows):
        assert logged["val/top1"] == row["val_top1"] and logged["val/top5"] == row["val_top5"]
        assert logged["epoch/train_loss"] == row["train_loss"] and logged["epoch/epoch"] == row["epoch"]
    assert tracker.finished

    # curves.png: drawn after each epoch from metrics.jsonl; the failed first drawing only warned.
    assert calls == [1, 2]
    assert any("curves.png not drawn (training goes on): OSError: disk on fire" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")
    with Image.open(out / "curves.png") as image:
        assert image.format == "PNG" and image.width > 600


def test_without_matplotlib_training_says_so_once_and_draws_nothing(data, tmp_path, fresh_accelerate, monkeypatch,
                                                                   caplog):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    from hiera_video.engine.train import train
    out = tmp_path / "plain"
    with caplog.at_level("INFO", logger="hiera_video"):
        train(load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml", overrides(data, out)))
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert not (out / "curves.png").exists()
    said = [r for r in caplog.records if "curves.png" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "INFO" and "hiera-video[viz]" in said[0].getMessage()


def test_a_tracker_without_its_package_stops_the_start_naming_it(data, tmp_path, fresh_accelerate, monkeypatch):
    import accelerate.utils

    from hiera_video.config import ConfigError
    from hiera_video.engine.train import train
    monkeypatch.setattr(accelerate.utils, "is_wandb_available", lambda: False)
    out = tmp_path / "wandb"
    cfg = load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml",
                      overrides(data, out, **{"train.log_with": "[tensorboard, wandb]"}))
    monkeypatch.setattr(accelerate.utils, "is_tensorboard_available", lambda: True)
    with pytest.raises(ConfigError, match=r"^train.log_with: wandb is not installed; pip install wandb"):
        train(cfg)
    assert not out.exists()  # refused before the run left anything
