"""Resumable training state: written atomically, verified before use, read without unpickling.

A checkpoint is a folder `output_dir/checkpoints/step_N/`: safetensors weights (model, EMA), optimizer,
scheduler, scaler and per-process RNG states read with `torch.load(weights_only=True)`, counters in
state.json, and manifest.json, written last, with the size and SHA-256 of every file. It is written as
`.tmp_step_N/` and renamed when complete; resume verifies each candidate against its manifest and falls
back to the newest intact one, never to a silent restart. Sharded (FSDP) runs save gathered full states
(engine/distributed.py), so a checkpoint resumes on any number of processes, sharded or not; an FSDP2
run reads the weight, optimizer and EMA files on the main process only, which broadcasts the shards.
Details: docs/training.md (hiera_video/engine/state.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from .. import fileio
from ..errors import CheckpointError, CheckpointWriteError
from ..models.checkpoints import tensor_bytes, torch_load_untrusted
from .distributed import (agree_on_error, broadcasts_from_main, check_fits, check_optimizer_fits, full_model_state,
                          full_optimizer_state, load_model_state, load_optimizer_state)

logger = logging.getLogger("hiera_video")

FORMAT = "hiera-video-train-state/1"
POINTER = "latest"


@dataclass
class TrainState:
    """Progress counters, checkpointed as JSON."""
    epoch: int = 0  # the epoch in progress
    step_in_epoch: int = 0  # optimizer updates done in it
    global_step: int = 0  # optimizer updates done in all
    best_value: float = float("nan")  # of the task's validation metric (BEST_METRIC): model_best.pt
    best_epoch: int = -1
    skipped_updates: int = 0  # non-finite updates skipped (on_nonfinite=skip)
    # Running sums of the epoch in progress, over all processes, so that a resumed epoch reports the
    # same train_loss and skipped-video count as an uninterrupted one.
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    epoch_bad_videos: int = 0

    def to_json(self) -> str:
        # NaN is not JSON; null stands for "no best yet"
        d = {k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(self).items()}
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str) -> "TrainState":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{source}: not valid JSON ({e})") from None
        known = {f.name: f for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - set(known):
            raise CheckpointError(f"{source}: not a training state (keys {sorted(d) if isinstance(d, dict) else d})")
        out = cls()
        for k, v in d.items():
            want = float if known[k].type in ("float", float) else int
            if v is None and want is float:
                v = float("nan")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (want is int and not isinstance(v, int)):
                raise CheckpointError(f"{source}: {k} must be a number, got {v!r}")
            setattr(out, k, want(v))
        return out


# ------------------------------------------------------------------------------------------------
# RNG states as plain tensors and ints
# ------------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every RNG the training step draws from (drop path, erasing, mixup, masks): Python, NumPy,
    torch CPU and the current CUDA device."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": torch.tensor(internal, dtype=torch.int64), "python_version": version,
             "python_gauss": gauss, "numpy_keys": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
             "numpy_has_gauss": int(has_gauss), "numpy_cached": float(cached), "numpy_kind": kind,
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any], source: str) -> None:
    try:
        random.setstate((state["python_version"], tuple(state["python"].tolist()), state["python_gauss"]))
        np.random.set_state((state["numpy_kind"], state["numpy_keys"].numpy().astype(np.uint32),
                             state["numpy_pos"], state["numpy_has_gauss"], state["numpy_cached"]))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise CheckpointError(f"{source}: not a valid RNG state ({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_torch(path: Path, obj: Any) -> None:
    with fileio.open_for_write(path) as f:
        torch.save(obj, f)


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    payload = safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    with fileio.open_for_write(path) as f:
        f.write(payload)


def _write_text(path: Path, text: str) -> None:
    with fileio.open_for_write(path) as f:
        f.write(text.encode("utf-8"))


def save_checkpoint(accelerator, output_dir: Path, state: TrainState, model, optimizer, scheduler,
                    ema=None, keep: int = 2) -> Path:
    """Write the full training state as `checkpoints/step_N` (all processes call this). A write that
    fails on any process (a full disk) removes the half-written folder and raises on every process;
    the previous checkpoint and `latest` are untouched."""
    root = Path(output_dir) / "checkpoints"
    name = f"step_{state.global_step:08d}"
    tmp, final = root / f".tmp_{name}", root / name
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    # Every process takes part in gathering the full states, in this order (collectives for a
    # sharded model), before any write can fail; the main process writes them, the others get {}.
    weights = full_model_state(accelerator, model)
    optimizer_state = full_optimizer_state(accelerator, model, optimizer)
    ema_weights = ema.state_dict() if ema is not None else None
    parts: dict[str, tuple] = {f"rng_{accelerator.process_index}.pt": (_write_torch, rng_state())}
    if main:
        parts["model.safetensors"] = (_write_safetensors, weights)
        parts["optimizer.pt"] = (_write_torch, optimizer_state)
        parts["scheduler.pt"] = (_write_torch, scheduler.state_dict())
        if accelerator.scaler is not None:
            parts["scaler.pt"] = (_write_torch, accelerator.scaler.state_dict())
        if ema is not None:
            parts["ema.safetensors"] = (_write_safetensors, ema_weights)
        parts["state.json"] = (_write_text, state.to_json())
    needed = sum(tensor_bytes(obj) if not isinstance(obj, str) else len(obj) for _, obj in parts.values())
    error: BaseException | None = None
    for file, (write, obj) in parts.items():
        try:
            write(tmp / file, obj)
        except Exception as e:  # noqa: BLE001 - reported below, on every process
            error = fileio.disk_full_error(tmp / file, needed, e) if fileio.is_disk_full(e) else e
            break
    failed = _any(accelerator, error is not None)
    if failed:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        if error is None:
            error = RuntimeError(f"another process failed to write its part of checkpoint {final}")
        raise CheckpointWriteError(f"checkpoint {final} not written: {error}; the previous checkpoint "
                                   f"({_pointer_target(root) or 'none'}) is untouched") from error
    if main:
        try:
            files = sorted(p.name for p in tmp.iterdir())
            manifest = {"format": FORMAT, "step": state.global_step, "epoch": state.epoch,
                        "num_processes": accelerator.num_processes,
                        "files": {f: {"bytes": (tmp / f).stat().st_size, "sha256": _sha256(tmp / f)} for f in files}}
            _write_text(tmp / "manifest.json", json.dumps(manifest, indent=1))
            for f in files + ["manifest.json"]:
                fileio.fsync_path(tmp / f)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            fileio.atomic_write(root / POINTER, name + "\n")
            fileio.fsync_path(root)
        except Exception as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if fileio.is_disk_full(e):
                e = fileio.disk_full_error(tmp / "manifest.json", needed, e)
            raise CheckpointWriteError(f"checkpoint {final} not written: {e}; the previous checkpoint "
                                       f"is untouched") from e
        _prune(root, keep)
        logger.info("checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def _any(accelerator, flag: bool) -> bool:
    if accelerator.num_processes == 1:
        return flag
    t = torch.tensor(float(flag), device=accelerator.device)
    return bool(accelerator.reduce(t, "sum").item() > 0)


def _prune(root: Path, keep: int) -> None:
    """Keep the `keep` newest checkpoints with a readable manifest (by the step it records; the one
    just written is one of them) and delete every other `step_*` folder, damaged ones included."""
    folders = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_")]
    intact = sorted((step, p.name, p) for p in folders if (step := _manifest_step(p)) is not None)
    kept = {p for _, _, p in intact[-keep:]}
    if not kept:
        return
    for p in folders:
        if p not in kept:
            shutil.rmtree(p, ignore_errors=True)


def _manifest_step(folder: Path) -> int | None:
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return int(m["step"]) if m.get("format") == FORMAT else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------------------------------------
# Finding and verifying
# ------------------------------------------------------------------------------------------------
def _pointer_target(root: Path) -> Path | None:
    try:
        name = (root / POINTER).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return root / name if name and "/" not in name and name not in (".", "..") else None


def verify(folder: Path) -> str | None:
    """None if `folder` is a complete checkpoint whose files match its manifest, else why not."""
    if not folder.is_dir():
        return "the folder does not exist"
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "manifest.json is missing (not a complete checkpoint)"
    except (OSError, ValueError) as e:
        return f"manifest.json is unreadable ({type(e).__name__})"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"manifest.json is not a {FORMAT} manifest"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "manifest.json lists no files"
    required = {"model.safetensors", "optimizer.pt", "scheduler.pt", "state.json", "rng_0.pt"}
    if required - set(files):
        return f"manifest.json lacks {sorted(required - set(files))}"
    for name, meta in files.items():
        path = folder / name
        if "/" in name or not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != meta.get("bytes"):
            return f"{name} has {size} bytes, the manifest says {meta.get('bytes')} (truncated or changed)"
        if _sha256(path) != meta.get("sha256"):
            return f"{name} does not match its SHA-256 in the manifest (damaged or changed)"
    return None


def find_resumable(output_dir: str | Path) -> tuple[Path | None, list[str]]:
    """The checkpoint to resume from: the intact one with the highest step (by its manifest, never
    parsed from a folder name), normally the one `latest` names. Returns (folder or None, one line
    per damaged candidate, and for a `latest` that names nothing)."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return None, []
    problems = []
    named = _pointer_target(root)
    if (root / POINTER).exists() and (named is None or not named.is_dir()):
        problems.append(f"{root / POINTER} names {named.name if named else 'nothing'}, which does not exist")
    intact = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_")):
        why = verify(folder)
        if why is None:
            intact.append((_manifest_step(folder), folder))
        else:
            problems.append(f"{folder.name}: {why}")
    if not intact:
        return None, problems
    return max(intact, key=lambda sf: sf[0])[1], problems


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest intact checkpoint of a run, or None."""
    return find_resumable(output_dir)[0]


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(str(path))
    except Exception as e:  # safetensors raises its own types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None


def load_checkpoint(folder: Path, accelerator, state: TrainState, model, optimizer, scheduler, ema=None) -> None:
    """Restore everything `save_checkpoint` wrote into the live objects (all processes call this;
    each keeps its own shards of a sharded model). The weight, optimizer and EMA files are read by
    every process, except for an FSDP2 model, where the main process alone reads them and broadcasts
    each process its shards. Any part that does not load is an error naming the file (never a silent
    partial resume), raised on every process alike."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    # Without the broadcast, every process of a resumed Hiera-H would hold a full copy of its weights,
    # optimizer state and EMA in CPU memory at once (engine/distributed.py, broadcasts_from_main).
    main_only = broadcasts_from_main(model)
    reads_states = accelerator.is_main_process or not main_only
    weights, optimizer_state, ema_weights = {}, {}, ({} if ema is not None else None)
    # Read and check everything first, and agree on the outcome: a process that cannot read a file
    # must not leave the others waiting in the collectives of loading into shards.
    error: BaseException | None = None
    try:
        if accelerator.scaler is not None and "scaler.pt" not in manifest["files"]:
            raise CheckpointError(f"{folder} has no scaler.pt: it was written without fp16, this run uses fp16")
        if ema is not None and "ema.safetensors" not in manifest["files"]:
            raise CheckpointError(f"{folder} has no ema.safetensors: it was written with train.ema=false")
        if reads_states:
            weights = _read_safetensors(folder / "model.safetensors")
            optimizer_state = torch_load_untrusted(folder / "optimizer.pt", allowed=[])
            ema_weights = _read_safetensors(folder / "ema.safetensors") if ema is not None else None
        scheduler_state = torch_load_untrusted(folder / "scheduler.pt", allowed=[])
        scaler_state = (torch_load_untrusted(folder / "scaler.pt", allowed=[])
                        if accelerator.scaler is not None else None)
        if main_only and accelerator.is_main_process:
            # Only this process can see a misfit. All three are checked before the first broadcast,
            # so that a misfit of the optimizer or EMA is refused before any weight is loaded.
            check_fits(model, weights, str(folder / "model.safetensors"))
            check_optimizer_fits(model, optimizer, optimizer_state, str(folder / "optimizer.pt"))
            if ema is not None:
                check_fits(model, ema_weights, str(folder / "ema.safetensors"))
    except Exception as e:  # noqa: BLE001 - raised below, on every process
        error = e
    agree_on_error(error)
    load_model_state(accelerator, model, weights, str(folder / "model.safetensors"))
    weights = {}  # one full copy less while the optimizer builds and loads its state
    for file, load in (("optimizer.pt", lambda: load_optimizer_state(accelerator, model, optimizer, optimizer_state,
                                                                      str(folder / "optimizer.pt"))),
                       ("scheduler.pt", lambda: scheduler.load_state_dict(scheduler_state))):
        try:
            load()
        except CheckpointError:
            raise
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise CheckpointError(f"{folder / file} does not fit this run ({type(e).__name__}: {e}); was "
                                  f"the config changed since it was written?") from None
    optimizer_state = {}
    if scaler_state is not None:
        accelerator.scaler.load_state_dict(scaler_state)
    if ema is not None:
        ema.load_state_dict(ema_weights, str(folder / "ema.safetensors"))
    saved = int(manifest.get("num_processes", 1))
    rank = accelerator.process_index
    if saved != accelerator.num_processes:
        logger.warning("%s was written by %d processes, this run has %d: the random streams differ from the "
                       "original run (resumption is not bitwise exact)", folder, saved, accelerator.num_processes)
    rng_file = folder / f"rng_{rank}.pt"
    if rng_file.name in manifest["files"]:
        set_rng_state(torch_load_untrusted(rng_file, allowed=[]), str(rng_file))
    loaded = TrainState.from_json((folder / "state.json").read_text(encoding="utf-8"), str(folder / "state.json"))
    for f in fields(TrainState):
        setattr(state, f.name, getattr(loaded, f.name))
