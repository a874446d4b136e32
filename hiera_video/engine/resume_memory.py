"""Peak memory per process of resuming an FSDP2 training checkpoint on the CPU (`hiera-video
benchmark-resume`): the main process reading the weight, optimizer and EMA files and broadcasting the
shards (what `load_checkpoint` does), or every process reading them (as before; FSDP1 and unsharded
runs still do).

`measure` starts `accelerate launch --multi_gpu` (gloo on the CPU) once to write a checkpoint and once
per path to load it in fresh processes; each of those runs `write` or `load` below. A process's peak
resident memory (VmHWM) is reset just before `load_checkpoint`, so the peak is the load's. Linux only.
Details: docs/training.md (Resume memory of sharded runs).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from ..models import create_model
from . import distributed, state
from .optim import ModelEma, build_optimizer, build_scheduler
from .state import TrainState, latest_checkpoint, save_checkpoint

PATHS = ("broadcast", "every-process")


def _status_mb(field: str) -> float:
    """A `kB` line of /proc/self/status (VmRSS, VmHWM) in MB."""
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} line (Linux only)")
    return int(match.group(1)) / 1024


def _reset_peak() -> None:
    # Linux >= 4.0: writing 5 to clear_refs sets VmHWM back to the current resident size.
    Path("/proc/self/clear_refs").write_text("5")


def _setup(model_name: str, num_classes: int, ema: bool):
    """An Accelerator on the CPU, and the model sharded over its processes with `fully_shard` per
    block and at the root (as tests/fsdp_worker.py does; Accelerate does no FSDP on a CPU machine;
    a single process keeps it whole), its optimizer, scheduler and EMA, as the training loop builds
    them."""
    from accelerate import Accelerator
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard


    accelerator = Accelerator(cpu=True)
    model = create_model(model_name, num_classes=num_classes)
    if accelerator.num_processes > 1:
        mesh = init_device_mesh("cpu", (accelerator.num_processes,))
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.05, layer_decay=0.75)
    scheduler = build_scheduler(optimizer, 1, 10, 0.0)
    return accelerator, model, optimizer, scheduler, (ModelEma(model, 0.9999) if ema else None)


def write(model_name: str, num_classes: int, ema: bool, out: Path) -> None:
    """Write `out/checkpoints/step_00000001` with save_checkpoint (every process of the launch). The
    checkpoint does not depend on the sharding, and one unsharded process needs the least memory
    to write it: sharded CPU processes each gather the full state."""

    accelerator, model, optimizer, scheduler, averaged = _setup(model_name, num_classes, ema)
    # AdamW state of the real shapes without a forward pass of a 16x224 clip (minutes on a CPU):
    # one step on made-up gradients, each process its shards.
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e-3)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    if averaged is not None:
        averaged.update(model)
    save_checkpoint(accelerator, out, TrainState(global_step=1), model, optimizer, scheduler, averaged)


def load(model_name: str, num_classes: int, ema: bool, out: Path, path: str) -> None:
    """Resume from the checkpoint in `out` the `path` way, and write this process's memory and time
    to `out/load_{path}_rank{N}.json` (every process of the launch)."""

    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    accelerator, model, optimizer, scheduler, averaged = _setup(model_name, num_classes, ema)
    folder = state.latest_checkpoint(out)
    if folder is None:
        raise RuntimeError(f"{out} holds no intact checkpoint to resume from")
    if path == "every-process":
        # For comparison only: the path every FSDP2 process took before, as FSDP1 and unsharded runs
        # still do (every process reads the files and keeps its shards).
        distributed.broadcasts_from_main = state.broadcasts_from_main = lambda model: False
    before = _status_mb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    state.load_checkpoint(folder, accelerator, state.TrainState(), model, optimizer, scheduler, averaged)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    rank = accelerator.process_index
    record = {"model": model_name, "path": path, "rank": rank, "processes": accelerator.num_processes,
              "ema": ema, "rss_before_mb": round(before), "peak_mb": round(peak), "seconds": round(seconds, 1)}
    (out / f"load_{path}_rank{rank}.json").write_text(json.dumps(record))
    accelerator.wait_for_everyone()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    # Not accelerate's fixed 29500: another launch on the machine (a test) may hold it.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(processes: int, args: list[str]) -> None:
    """`hiera-video benchmark-resume ARGS` in `processes` new processes (one: without a launcher)."""
    cmd = [sys.executable, "-m", "hiera_video", "benchmark-resume", *args]
    if processes > 1:
        cmd[1:2] = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                    "--num_machines", "1", "--main_process_port", str(_free_port()), "--mixed_precision", "no",
                    "--dynamo_backend", "no", "-m"]
    # The launched processes import the hiera_video this one runs (a checkout's tools/ script too).
    tree = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode} (its output is above)")


def measure(model_name: str, num_classes: int, processes: int, out: Path, paths=PATHS, ema: bool = True,
            write_processes: int | None = None) -> list[dict]:
    """Write a checkpoint into `out` with `write_processes` processes (default `processes`), unless
    one is there (it is reused), and load it each of `paths` ways, each in a fresh launch of
    `processes` processes. One record per path and process."""

    common = ["--model", model_name, "--num-classes", str(num_classes), "--out", str(out),
              "--ema" if ema else "--no-ema"]
    existing = latest_checkpoint(out)
    if existing is None:
        print(f"writing a {model_name} checkpoint into {out}", file=sys.stderr)
        _launch(write_processes or processes, [*common, "--role", "write"])
    else:
        print(f"reusing the checkpoint {existing}", file=sys.stderr)
    records = []
    for path in paths:
        for old in out.glob(f"load_{path}_rank*.json"):
            old.unlink()
        _launch(processes, [*common, "--role", "load", "--path", path])
        records += [json.loads((out / f"load_{path}_rank{r}.json").read_text()) for r in range(processes)]
    return records


def table(records: list[dict]) -> str:
    """The records as a Markdown table: model, path, peak (and resident before) per rank, seconds."""
    ranks = sorted({r["rank"] for r in records})
    head = ("| model | path | " + " | ".join(f"peak RSS rank {r} (before)" for r in ranks)
            + " | load s |\n|---|---|" + "---|" * (len(ranks) + 1))
    rows = []
    for model, path in dict.fromkeys((r["model"], r["path"]) for r in records):
        mine = {r["rank"]: r for r in records if (r["model"], r["path"]) == (model, path)}
        cells = [f"{mine[r]['peak_mb'] / 1024:.2f} GB ({mine[r]['rss_before_mb'] / 1024:.2f})" for r in ranks]
        rows.append(f"| {model} | {path} | " + " | ".join(cells) + f" | {max(m['seconds'] for m in mine.values())} |")
    return "\n".join([head, *rows])
