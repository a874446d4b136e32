"""Several nodes, tried on one machine: examples/slurm/finetune.sbatch run with stand-ins for srun and
scontrol starts one `accelerate launch` per "node"; two nodes of one CPU process train, resume and
evaluate together, and split the data exactly as one node of two processes does."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hiera_video.config import load_config
from test_train import final_weights, overrides

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "synthetic_hiera_tiny.yaml"
SBATCH = ROOT / "examples" / "slurm" / "finetune.sbatch"

# srun: one task per node of the allocation, all here, each with its SLURM_NODEID; a task that fails
# fails the step (as --kill-on-bad-exit would, minus the killing). scontrol show hostnames: this host,
# once per node.
SRUN = """#!/usr/bin/env bash
while [[ $1 == --* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do SLURM_NODEID=$i SLURM_PROCID=$i "$@" & pids+=($!); done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
"""
SCONTROL = """#!/usr/bin/env bash
for ((i = 0; i < SLURM_NNODES; i++)); do echo 127.0.0.1; done
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A folder holding the srun and scontrol stand-ins."""
    folder = tmp_path_factory.mktemp("slurm_bin")
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (folder / name).write_text(text)
        (folder / name).chmod(stat.S_IRWXU)
    return folder


def sbatch(slurm: Path, nodes: int, per_node: int, *args: str) -> str:
    """Run the sbatch script as Slurm would on `nodes` nodes of `per_node` processes; returns its log."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SLURM_NNODES": str(nodes), "SLURM_JOB_NODELIST": "node[0-9]",
           "SLURM_JOB_ID": "1", "GPUS_PER_NODE": str(per_node), "MASTER_PORT": str(free_port()),
           # the stand-ins, then the `accelerate` of this Python's environment
           "PATH": os.pathsep.join([str(slurm), str(Path(sys.executable).parent), os.environ["PATH"]])}
    # A session of its own, so that a run that hangs is taken down whole, launchers and processes.
    proc = subprocess.Popen(["bash", str(SBATCH), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log = proc.communicate(timeout=240)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the launch did not finish:\n{proc.communicate()[0]}")
    assert proc.returncode == 0, log
    return log


def rows(out: Path) -> list[dict]:
    # clips/s is a timing; everything else must be the same
    return [{k: v for k, v in json.loads(line).items() if k != "clips_per_s"}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_nodes_train_resume_and_evaluate_as_one_node_of_two_processes(data, tmp_path, slurm, fresh_accelerate):
    # 8 videos, 1 per process per update: 4 updates an epoch; a checkpoint every 3 updates is mid-epoch.
    # A constant learning rate (no warm-up, min_lr = lr) does not depend on train.epochs, so that one
    # epoch resumed to two (two nodes) must end as two epochs in one go (the reference, one node).
    extra = {"train.batch_size": 2, "train.epochs": 2, "train.checkpoint_every": 3, "train.keep_checkpoints": 1,
             "optim.warmup_epochs": 0, "optim.lr": 1e-3, "optim.min_lr": 1e-3, "train.log_with": "none"}
    one, two = tmp_path / "one_node", tmp_path / "two_nodes"
    log = sbatch(slurm, 1, 2, "finetune", "--cfg", str(TINY), *overrides(data, one, **extra))
    assert "nodes=1 processes_per_node=2" in log and "4 clips per update (2 per process x 2 processes" in log, log
    log = sbatch(slurm, 2, 1, "finetune", "--cfg", str(TINY), *overrides(data, two, **{**extra, "train.epochs": 1}))
    assert "nodes=2 processes_per_node=1" in log and "4 clips per update (2 per process x 2 processes" in log, log
    log = sbatch(slurm, 2, 1, "finetune", "--cfg", str(TINY), *overrides(data, two, **{**extra, "train.resume": True}))
    assert "resumed from" in log and "step_00000004" in log, log

    assert rows(two) == rows(one) and [r["epoch"] for r in rows(two)] == [1, 2]
    assert all(r["weights_in_sync"] and r["val_videos"] == 5 for r in rows(two))
    # Bitwise the same weights: the model, and the checkpoint's (two nodes: a rng_N.pt from each).
    a, b = final_weights(one), final_weights(two)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    last = two / "checkpoints" / "step_00000008"
    assert sorted(p.name for p in last.glob("rng_*.pt")) == ["rng_0.pt", "rng_1.pt"]
    a, b = load_file(one / "checkpoints" / "step_00000008" / "model.safetensors"), load_file(last / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (two / ".lock").exists()  # released at the end

    # Evaluation on two nodes: every view once, and the reports of one process.
    settings = ["model.name=hiera_test_8x64", "model.num_classes=2", f"data.val_list={data / 'val.csv'}",
                "data.classes=null", "data.num_frames=8", "data.sampling_rate=2", "data.crop_size=64",
                "data.num_workers=0", "eval.num_temporal_clips=2", "eval.num_spatial_crops=1", "eval.batch_size=1"]
    sbatch(slurm, 2, 1, "evaluate", "--cfg", str(TINY), "--ckpt", str(two / "model_last.pt"), "--out",
           str(tmp_path / "eval2"), *settings)
    from hiera_video.engine.evaluate import evaluate
    evaluate(load_config(TINY, settings), str(two / "model_last.pt"), tmp_path / "eval1")
    reports = {n: json.loads((tmp_path / f"eval{n}" / "metrics.json").read_text()) for n in (1, 2)}
    assert reports[2] == reports[1] and reports[2]["num_views"] == 10
    assert (tmp_path / "eval2" / "predictions.csv").read_text() == (tmp_path / "eval1" / "predictions.csv").read_text()
