"""Honest device handling (engine/accel.py): each launch runs as asked or stops saying why, from the
variables `accelerate launch` sets, and through a real launch on this machine."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hiera_video.engine.accel import LaunchError, check_launch

ROOT = Path(__file__).parents[1]

# What `accelerate launch` (1.x) exports, per launcher (the variables check_launch reads).
TORCHRUN_2 = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
              "ACCELERATE_MIXED_PRECISION": "no"}  # --multi_gpu / --use_fsdp: torchrun, no ACCELERATE_USE_CPU
SIMPLE_1 = {"ACCELERATE_USE_CPU": "False", "ACCELERATE_MIXED_PRECISION": "no"}  # no flags, one process
SIMPLE_ASKED_2 = {**SIMPLE_1, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}  # --num_processes 2, no --multi_gpu


def test_plain_runs_and_cpu_data_parallelism_go_ahead():
    assert check_launch({}, has_gpu=False) is False  # python tools/x.py
    assert check_launch(SIMPLE_1, has_gpu=False) is False
    assert check_launch({**SIMPLE_1, "ACCELERATE_USE_CPU": "True"}, has_gpu=True) is False  # --cpu
    assert check_launch(TORCHRUN_2, has_gpu=False) is True  # --multi_gpu without GPUs: gloo processes
    assert check_launch(TORCHRUN_2, has_gpu=True) is False  # on GPUs Accelerate needs no help
    assert check_launch({"OMPI_COMM_WORLD_SIZE": "4"}, has_gpu=False) is True  # mpirun


def test_fsdp_without_gpus_stops_and_says_what_to_do():
    with pytest.raises(LaunchError, match=r"needs GPUs.*does not shard on CPU.*--multi_gpu.*--use_deepspeed"):
        check_launch({**TORCHRUN_2, "ACCELERATE_USE_FSDP": "true"}, has_gpu=False)
    assert isinstance(LaunchError("x"), ValueError)  # the CLIs print ValueErrors and exit 2
    assert check_launch({**TORCHRUN_2, "ACCELERATE_USE_FSDP": "true"}, has_gpu=True) is False


def test_deepspeed_runs_on_cpu_and_names_what_is_missing(monkeypatch):
    """DeepSpeed runs on CPU processes (over gloo: engine/accel.py passes the backend, which Accelerate
    finds none of); without its packages the launch stops naming the extra to install."""
    from hiera_video.engine import zero
    env = {**TORCHRUN_2, "ACCELERATE_USE_DEEPSPEED": "true"}
    monkeypatch.setattr(zero, "missing_packages", lambda: [])
    assert check_launch(env, has_gpu=False) is False and check_launch(env, has_gpu=True) is False
    monkeypatch.setattr(zero, "missing_packages", lambda: ["transformers"])
    with pytest.raises(LaunchError, match=r"needs transformers .*pip install 'hiera-video\[deepspeed\]'"):
        check_launch(env, has_gpu=False)


def test_one_process_started_for_several_asked_stops():
    for has_gpu in (False, True):  # a single GPU is no different: the simple launcher runs one process
        with pytest.raises(LaunchError, match=r"single process.*--multi_gpu"):
            check_launch(SIMPLE_ASKED_2, has_gpu=has_gpu)


def test_restarts_that_would_share_the_launchers_store_stop_and_say_what_to_do():
    # What torchrun's agent exports to its processes: --max-restarts, and whether they use its store.
    shared = {**TORCHRUN_2, "TORCHELASTIC_MAX_RESTARTS": "2", "TORCHELASTIC_USE_AGENT_STORE": "True"}
    with pytest.raises(LaunchError, match=r"--max-restarts 2 .*TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun "
                                          r"--standalone.*accelerate launch --rdzv_backend c10d"):
        check_launch(shared, has_gpu=False)
    assert check_launch({**shared, "TORCHELASTIC_USE_AGENT_STORE": "False"}, has_gpu=False) is True
    assert check_launch({**shared, "TORCHELASTIC_MAX_RESTARTS": "0"}, has_gpu=True) is False  # no restarts: as before


def _launch(*flags: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """tools/evaluate.py under `accelerate launch`: it builds its Accelerator before reading anything,
    so a refused launch stops before the (nonexistent) checkpoint is opened."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *flags, "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "tools" / "evaluate.py"),
           "--cfg", str(ROOT / "configs" / "synthetic_hiera_tiny.yaml"), "--ckpt", "no_such_checkpoint.pt"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the silent fallbacks are those of a machine without GPUs")
def test_fsdp_launch_on_this_cpu_machine_exits_with_the_reason():
    proc = _launch("--use_fsdp", "--num_processes", "2", "--main_process_port", "0")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    # Both processes stop at the launch check, before the (missing) checkpoint is looked for.
    # Each process refuses; the launcher may stop the second before it prints, so one line or two.
    assert 1 <= len(errors) <= 2 and all(e.startswith("error: FSDP needs GPUs and this machine has none")
                                         for e in errors), out
    assert "--multi_gpu" in errors[0]


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="with several GPUs accelerate turns on --multi_gpu itself")
def test_num_processes_without_multi_gpu_exits_with_the_reason():
    proc = _launch("--num_processes", "2")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out  # the tool exits 2; accelerate launch reports it as 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: `accelerate launch` started a single process"), out
