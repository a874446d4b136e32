"""A run that survives a lost process: under `torchrun --max-restarts`, rank 1 is killed with SIGKILL
mid-epoch after a checkpoint; the group restarts, resumes from the run's last checkpoint and finishes
with bitwise the weights of an uninterrupted run. The test only watches the run folder and kills from
outside."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil  # a dependency of accelerate
import pytest
import torch
from safetensors.torch import load_file

from test_train import final_weights, overrides

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "synthetic_hiera_tiny.yaml"


def torchrun(out: Path, train_list: Path, data: Path) -> subprocess.Popen:
    # 32 videos, 1 per process per update: 16 updates, one epoch, a checkpoint every 4. train.resume=true
    # from the start: a fresh folder starts from the beginning, a restarted group from the last checkpoint.
    # TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: the restarted group gets a rendezvous store of its own (the
    # launch check refuses restarts without it, see engine/accel.py).
    extra = {"data.train_list": str(train_list), "data.root": str(data), "train.batch_size": 2, "train.epochs": 1,
             "train.checkpoint_every": 4, "train.resume": True, "train.log_with": "none"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--max-restarts",
           "2", str(ROOT / "tools" / "finetune.py"), "--cfg", str(TINY), *overrides(data, out, **extra)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    # A session of its own, so that a failed test can take down the launcher and its processes together.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen) -> str:
    try:
        log = proc.communicate(timeout=240)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log = proc.communicate()[0]
        pytest.fail(f"the run did not finish:\n{log}")
    assert proc.returncode == 0, log
    return log


def rank_1(launcher: subprocess.Popen) -> psutil.Process:
    """The launcher's process of rank 1 (torchrun's workers are its children; their own forks, such as
    data workers, inherit RANK but are not children of the launcher)."""
    for child in psutil.Process(launcher.pid).children():
        if child.environ().get("RANK") == "1":
            return child
    raise AssertionError("no process of rank 1 under the launcher")


@pytest.mark.slow
def test_a_killed_rank_restarts_the_group_which_resumes_and_ends_as_an_uninterrupted_run(data, tmp_path):
    train_list = tmp_path / "train.csv"
    train_list.write_text((data / "train.csv").read_text() * 4)
    reference = tmp_path / "uninterrupted"
    finish(torchrun(reference, train_list, data))

    out = tmp_path / "killed"
    proc = torchrun(out, train_list, data)
    latest = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline and not latest.exists():
        time.sleep(0.02)
    assert proc.poll() is None and latest.exists(), "the run ended, or wrote no checkpoint, before the kill"
    victim = rank_1(proc)
    victim.send_signal(signal.SIGKILL)
    log = finish(proc)

    assert f"(pid: {victim.pid})" in log and "exitcode: -9" in log, log  # torchrun saw it die
    assert re.search(r"resumed from \S+: epoch 0, update (4|8|12) of the epoch", log), log  # mid-epoch
    a, b = final_weights(reference), final_weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a, b = (load_file(run / "checkpoints" / "step_00000016" / "model.safetensors") for run in (reference, out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (out / ".lock").exists()
