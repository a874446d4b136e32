"""Sharded training for real: two CPU processes under torch's FSDP2 (`fully_shard` over gloo; on a
machine without GPUs Accelerate does no FSDP itself), driving our checkpoint, EMA, in-sync and
evaluation functions. tests/fsdp_worker.py holds the checks; this starts it and reads its verdict.

What it checks: sharded training equals plain training on the global batch (float tolerance: the
gradient is averaged over processes instead of over one batch, another float32 summation order);
the checkpoint holds the full gathered weights and a plain `Optimizer.state_dict()`; resuming into
a freshly sharded model ends bitwise equal to the uninterrupted sharded run (same data, same
shards, same reduction order), and the same checkpoint resumes unsharded; weights_in_sync is True
for a sharded model and False when one process's replicated weight changes (HSDP and plain);
predict_views counts each video once and `ema.applied` swaps the EMA weights in and back out;
FSDP1 (use_orig_params=True) trains like plain and its checkpoint resumes bitwise. Each check was
seen to fail when the code it covers is broken (a DTensor shard compared as if replicated, an
`applied` that swaps nothing, an optimizer state not loaded, optimizer.pt keyed by names).

FSDP2 resume reads model.safetensors, optimizer.pt and ema.safetensors on the main process only and
broadcasts the shards: rank 1 resumes from a copy of the checkpoint without those files, and still
ends bitwise equal (seen to fail with every process reading again, with the broadcast switched off,
and with only the EMA read on every process). A checkpoint whose weights, optimizer state or EMA
does not fit is refused on both processes with the same CheckpointError, before any weight is
loaded, and so are misfits given to ModelEma.load_state_dict and load_optimizer_state directly (seen
to fail with the other process's message replaced, with the checks before loading removed, and with
the main process's verdict not shared by load_model_state or load_optimizer_state).
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_fsdp2_train_checkpoint_resume_and_evaluate(data, tmp_path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / "tests" / "fsdp_worker.py"), str(tmp_path / "run"), str(data / "val.csv")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "ALL CHECKS PASSED" in proc.stdout, log[-6000:]
    assert "FAILED:" not in proc.stdout, log[-6000:]
