"""The one place an entry point gets its `Accelerator`: the launch is checked first, so a requested
distributed mode either runs as requested or stops with a message saying why and what to do.

Without GPUs, `--multi_gpu --num_processes N` runs N processes, data parallel over gloo, DeepSpeed
(`--use_deepspeed`) runs its ZeRO stages over gloo too, and FSDP and several processes without
`--multi_gpu` are refused; left to itself, Accelerate would silently make N independent runs that
write one folder, turn FSDP into plain DDP, or start DeepSpeed as one process per rank that each
believes it is alone.
Restarts (`--max-restarts`) are refused unless the restarted group gets a rendezvous store of its own.
Details: docs/training.md (hiera_video/engine/accel.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs, ProjectConfiguration

from . import zero

logger = logging.getLogger("hiera_video")

# Where a launcher says how many processes there are (torchrun; mpirun's flavours, as Accelerate reads them).
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class LaunchError(ValueError):
    """A launch that would not run as it was asked to (a ValueError: the CLIs print it and exit 2)."""


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "false").strip().lower() in ("1", "true", "yes")


def world_size(env: Mapping[str, str]) -> int:
    for name in _WORLD_SIZE_VARS:
        if env.get(name):
            return int(env[name])
    return 1


def check_launch(env: Mapping[str, str], has_gpu: bool) -> bool:
    """Raises LaunchError for a launch that would not run as asked (see docs/training.md).
    Returns whether Accelerate must be told `cpu=True` (several processes, no GPU: gloo data parallel)."""
    n = world_size(env)
    # torchrun / accelerate launch --max-restarts N: a restarted group that shares the launcher's
    # rendezvous store with the group it replaces can read that group's addresses and hang or fail as it
    # starts (pytorch issue 135712). With torch 2.13 and gloo, each of 7 runs of 3 restarts on this project's
    # CPU machine had a restarted group fail or hang at its start; with stores of their own (the variable
    # below, c10d rendezvous), none of 24 restarts did.
    # The launcher exports both variables; stopping at the first start beats a hang at the first failure.
    restarts = int(env.get("TORCHELASTIC_MAX_RESTARTS") or 0)
    if n > 1 and restarts > 0 and env.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        fix = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"
        raise LaunchError(f"--max-restarts {restarts} with the rendezvous store shared between the launcher and its "
                          f"processes: a restarted group can read the addresses of the one it replaces, and hang or "
                          f"fail as it starts (PyTorch issue 135712). Give the launcher {fix} in its environment and "
                          f"the c10d rendezvous: `{fix} torchrun --standalone ...`, or `{fix} accelerate launch "
                          f"--rdzv_backend c10d ...` (the default static rendezvous always shares it)")
    if zero.requested(env):
        missing = zero.missing_packages()
        if missing:
            raise LaunchError(f"`accelerate launch --use_deepspeed` needs {' and '.join(missing)} (Accelerate's "
                              f"DeepSpeed support imports transformers too): pip install 'hiera-video[deepspeed]'")
        return False  # DeepSpeed runs its own process group (gloo here when there is no GPU)
    if not has_gpu and _flag(env, "ACCELERATE_USE_FSDP"):
        raise LaunchError("FSDP needs GPUs and this machine has none (Accelerate does not shard on CPU; "
                          "ACCELERATE_USE_FSDP=true came from `accelerate launch` or its config file). For data "
                          "parallelism over CPU processes use `accelerate launch --multi_gpu --num_processes N` "
                          "(or --use_deepspeed for ZeRO); for one process, plain `python`")
    # `accelerate launch --num_processes N` without --multi_gpu (and with fewer than 2 GPUs) runs its simple
    # launcher: ONE process, yet it exports MASTER_ADDR for the N it was asked for. It is the only launcher
    # that sets ACCELERATE_USE_CPU, and no launcher of several processes leaves the world size unset.
    if n == 1 and "ACCELERATE_USE_CPU" in env and "MASTER_ADDR" in env:
        raise LaunchError("`accelerate launch` started a single process although more were asked for "
                          "(--num_processes > 1 or --num_machines > 1 without --multi_gpu; its config file can "
                          "ask too): add --multi_gpu (data parallel, on GPUs or, without them, on CPU processes), "
                          "or drop --num_processes for one process. (MASTER_ADDR inherited from your shell "
                          "looks the same: unset it for a one-process run.)")
    return n > 1 and not has_gpu


def build_accelerator(*, mixed_precision: str = "no", grad_accum: int = 1, project_dir: str | Path | None = None,
                      log_with: str | Sequence | None = None, grad_clip: float | None = None, **kw):
    """An `Accelerator` for this launch, after `check_launch`. `project_dir` sets Accelerate's project
    folder (checkpoints) with the logs of local trackers (TensorBoard, ...) in its tensorboard/;
    `log_with` is Accelerate's: tracker names and/or `GeneralTracker` objects (engine/train.py checks
    the names' packages first); `grad_clip` (training) goes into a DeepSpeed launch's config, where
    the engine does the clipping; `kw` goes to `Accelerator` as is (dataloader_config, ...)."""
    has_gpu = torch.cuda.is_available()
    cpu = check_launch(os.environ, has_gpu)
    if zero.requested(os.environ):
        if grad_clip is not None:
            kw["deepspeed_plugin"] = zero.plugin(grad_clip)
        if not has_gpu:  # Accelerate finds no backend for DeepSpeed on a CPU machine and would run alone
            kw["kwargs_handlers"] = [*kw.get("kwargs_handlers", []), InitProcessGroupKwargs(backend="gloo")]
    if project_dir is not None:
        kw["project_config"] = ProjectConfiguration(project_dir=str(project_dir),
                                                    logging_dir=str(Path(project_dir) / "tensorboard"))
    accelerator = Accelerator(cpu=cpu, mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum,
                              log_with=log_with, **kw)
    if accelerator.num_processes > 1 and accelerator.is_main_process:
        mode = accelerator.distributed_type.value + (f" ZeRO-{zero.stage(accelerator)}" if zero.stage(accelerator) else "")
        logger.info("%d processes, %s on %s (backend %s)", accelerator.num_processes, mode,
                    accelerator.device.type, accelerator.state.backend)
    return accelerator
