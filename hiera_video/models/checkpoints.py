"""Checkpoint files, read and written: every format a `pretrained=` source may be, into one `Checkpoint`.

Accepted inputs (all read without executing pickled code: a checkpoint is untrusted input):
  * official `.pth`: `{"model_state": state_dict}` (classifier or MAE);
  * a Hugging Face-style folder: `config.json` (the official constructor's arguments) + `model.safetensors`,
    plus, when `save_pretrained` wrote it, `hiera_video.json` (our extra arguments and `pretrained_cfg`);
  * a Hugging Face Hub id (`sources.py` says when a value is one; downloaded by `hub.py`);
  * this project's checkpoints: `{"model": state_dict, "model_config": {...}, "model_name": ...}`;
  * a plain state dict (`.pt`/`.pth`/`.bin`) or a `.safetensors` file;
  * an `http(s)://` or `file://` URL of any of the above files (cached by torch.hub).
Every `Checkpoint` carries `pretrained_cfg` (`pretrained_cfg.py`), from wherever its format keeps it.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

from .. import fileio
from ..errors import CheckpointError
from . import hub
from .hiera import Hiera
from .mae import MaskedAutoencoderHiera
from .official import EXTRA_FILE, EXTRA_FORMAT, constructor_args, official_config_to_kwargs
from .pretrained_cfg import cfg_from_extra, make_pretrained_cfg
from .registry import tag_pretrained_cfg
from .sources import HUB_PREFIX, resolve_source

FORMAT = "hiera-video/1"

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP / torch.compile

@dataclass
class Checkpoint:
    state_dict: dict[str, torch.Tensor]
    source: str
    format: str  # "official", "hf-folder", "hiera-video", "state-dict", "safetensors"
    model_config: dict[str, Any] | None = None  # Hiera constructor arguments, when the file records them
    model_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    pretrained_cfg: dict[str, Any] = field(default_factory=lambda: {"classes": None})

def _harmless_globals() -> list:
    """Classes that training scripts commonly store beside the weights (MAE-style `args`, numpy
    scalars) and that unpickle into plain data. Allowing them keeps `weights_only=True`: nothing
    else in a file is ever constructed, let alone executed."""
    core = getattr(np, "_core", None) or np.core
    found = [argparse.Namespace, np.dtype, core.multiarray.scalar]
    found += [getattr(np.dtypes, n) for n in dir(getattr(np, "dtypes", object)) if n.endswith("DType")]
    return found

def torch_load_untrusted(path: str | os.PathLike, allowed: list | None = None) -> Any:
    """`torch.load(path, weights_only=True)` with errors that say what is wrong: a file that would
    construct an object (a pickle of code) names the refused global and is never loaded; a damaged
    or foreign file says so. torch's own advice to retry with unpickling switched on is never shown."""
    try:
        with torch.serialization.safe_globals(_harmless_globals() if allowed is None else allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_global(e)
        if refused is None:  # not a pickle of objects: a damaged or foreign file
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({_reason(e)})") from None
        raise CheckpointError(
            f"{path}: not a plain checkpoint: it asks to construct {refused}, which was refused (a checkpoint "
            f"is untrusted input and is read with torch.load(weights_only=True); nothing in it was run). "
            f"If you made the file yourself, save its tensors with torch.save(state_dict) or safetensors.") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None

def _refused_global(e: Exception) -> str | None:
    """The global torch's weights-only unpickler refused (its wording changes across versions:
    "Unsupported global: GLOBAL x.y", "unsupported GLOBAL x.y whose module x is blocked")."""
    m = re.search(r"unsupported global:?\s+(?:GLOBAL\s+)?([\w.]+)", str(e), flags=re.IGNORECASE)
    return m.group(1) if m else None

def _reason(e: Exception) -> str:
    """The informative line of torch.load's long weights_only message (never its advice)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    lines = [line for line in lines if "weights_only" not in line and "Please file an issue" not in line
             and not line.startswith("Check the documentation")]
    line = next((line for line in lines if "nsupported" in line), lines[0] if lines else type(e).__name__)
    return line.split(" was not an allowed global")[0].replace("WeightsUnpickler error: ", "")

def _load_safetensors(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None

def _download(url: str) -> Any:
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True, progress=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{url}: refused to unpickle non-tensor objects ({e})") from None
    except OSError as e:  # URLError is an OSError
        raise CheckpointError(f"could not download {url} ({e}); download it where there is network access "
                              f"and pass the local path as `pretrained`") from None

def _unwrap(obj: Any, source: str) -> Checkpoint:
    """Find the state dict inside whatever `torch.load` returned."""
    if isinstance(obj, dict) and "model_state" in obj:
        return Checkpoint(strip_prefixes(obj["model_state"]), source, "official")
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        cfg = obj.get("model_config")
        fmt = "hiera-video" if obj.get("format") == FORMAT else "state-dict"
        extra = {k: v for k, v in obj.items() if k not in ("model", "model_config", "model_name", "format")}
        return Checkpoint(strip_prefixes(obj["model"]), source, fmt, cfg, obj.get("model_name"), extra)
    for key in ("state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return Checkpoint(strip_prefixes(obj[key]), source, "state-dict")
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return Checkpoint(strip_prefixes(obj), source, "state-dict")
    keys = list(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f"{source}: no state dict found (looked for 'model_state', 'model', 'state_dict', "
                          f"'module', or a dict of tensors); top-level keys: {keys}")

def strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd

def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read any accepted checkpoint (see the module docstring) into a `Checkpoint`. An existing local
    path always wins over a Hub id of the same spelling; `hf-hub:` always means the Hub (`sources.py`)."""
    source = str(path)
    where = resolve_source(source)
    if where.kind == "url":
        ckpt = _unwrap(_download(source), source)
        ckpt.pretrained_cfg = cfg_from_extra(ckpt.extra, source)
        return ckpt
    if where.kind == "hub":
        repo_id, revision = where.location, where.revision
        try:
            folder = hub.download(repo_id, revision)
        except (CheckpointError, ImportError) as e:
            if where.explicit:
                raise
            # A bare owner/name is just as likely a mistyped local path: say both.
            raise CheckpointError(f"checkpoint not found: {source} is no local file or folder, and as a "
                                  f"Hugging Face Hub id: {e}") from None
        ckpt = read_checkpoint(folder)
        ckpt.source = f"{HUB_PREFIX}{repo_id}" + (f"@{revision}" if revision else "")
        ckpt.pretrained_cfg = make_pretrained_cfg({**_hub_pretrained_cfg(repo_id), **{
            k: v for k, v in ckpt.pretrained_cfg.items() if v is not None}}, ckpt.source)
        return ckpt
    p = Path(source).expanduser()
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {source}")
    if p.is_dir():
        weights = [p / n for n in ("model.safetensors", "pytorch_model.bin") if (p / n).exists()]
        if not weights:
            raise CheckpointError(f"{source}: folder has no model.safetensors or pytorch_model.bin")
        if weights[0].suffix == ".safetensors":
            sd, _ = _load_safetensors(str(weights[0]))
            ckpt = Checkpoint(strip_prefixes(sd), source, "hf-folder")
        else:
            ckpt = _unwrap(torch_load_untrusted(str(weights[0])), source)
            ckpt.format = "hf-folder"
        if any(k.startswith(("hiera.", "embeddings.")) for k in ckpt.state_dict):
            raise CheckpointError(f"{source}: this is a `transformers` HieraModel checkpoint (keys like "
                                  f"{next(iter(ckpt.state_dict))!r}); use the official-format weights "
                                  f"(facebook/hiera_*_16x224.*, or the .pth files)")
        cfg_file = p / "config.json"
        if cfg_file.exists():
            ckpt.model_config = official_config_to_kwargs(_read_json(cfg_file), str(cfg_file))
        if (p / EXTRA_FILE).exists():
            _apply_extra_file(ckpt, p / EXTRA_FILE)
        return ckpt
    if p.suffix == ".safetensors":
        sd, meta = _load_safetensors(str(p))
        ckpt = Checkpoint(strip_prefixes(sd), source, "safetensors")
        if "model_config" in meta:  # written by save_model(..., safetensors): every value is JSON
            ckpt.model_config = json.loads(meta["model_config"])
            ckpt.model_name = meta.get("model_name") or None
            for k, v in meta.items():
                if k not in ("format", "model_config", "model_name"):
                    try:
                        ckpt.extra[k] = json.loads(v)
                    except ValueError:
                        ckpt.extra[k] = v
            ckpt.pretrained_cfg = cfg_from_extra(ckpt.extra, source)
        return ckpt
    ckpt = _unwrap(torch_load_untrusted(str(p)), source)
    ckpt.pretrained_cfg = cfg_from_extra(ckpt.extra, source)
    return ckpt

def _hub_pretrained_cfg(repo_id: str) -> dict[str, Any]:
    """For an official `facebook/hiera_*` repo, its registry tag's metadata (`PRETRAINED`) in the
    `pretrained_cfg` schema; `{}` for any other repo."""
    owner, _, name = repo_id.partition("/")
    model, _, tag = name.partition(".")
    if owner != "facebook" or not tag:
        return {}
    cfg = tag_pretrained_cfg(model, tag)
    return {**cfg, "hub_id": repo_id} if cfg else {}

def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None

def _apply_extra_file(ckpt: Checkpoint, path: Path) -> None:
    """`hiera_video.json` (written by `save_pretrained`): our constructor arguments that config.json
    cannot hold, the model name and `pretrained_cfg`."""
    extra = _read_json(path)
    if not isinstance(extra, dict) or extra.get("format") != EXTRA_FORMAT:
        found = extra.get("format") if isinstance(extra, dict) else type(extra).__name__
        raise CheckpointError(f"{path}: not a {EXTRA_FORMAT} file (format: {found!r})")
    args = extra.get("model_config") or {}
    valid = constructor_args(Hiera) | constructor_args(MaskedAutoencoderHiera)
    unknown = sorted(set(args) - valid)
    if unknown:
        raise CheckpointError(f"{path}: model_config keys {unknown} are not Hiera arguments")
    if args:
        if ckpt.model_config is None:
            raise CheckpointError(f"{path}: has model_config but the folder has no config.json")
        ckpt.model_config.update(args)
    ckpt.model_name = extra.get("model_name") or ckpt.model_name
    ckpt.pretrained_cfg = make_pretrained_cfg(extra.get("pretrained_cfg"), f"{path}: pretrained_cfg")

def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a nested checkpoint object (what a write of it needs, roughly)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0

def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename: a reader (or a run
    killed mid-write) sees the old file or the new one, never half of one. A full disk raises
    `DiskFullError` naming the path and the size, and leaves no temporary file."""
    with fileio.atomic_path(path, needed=tensor_bytes(obj), durable=True) as tmp:
        with fileio.open_for_write(tmp) as f:
            torch.save(obj, f)

def save_model(model: torch.nn.Module, path: str | os.PathLike, state_dict: dict | None = None,
               **extra: Any) -> None:
    """Write weights plus the model's configuration, enough for `create_model(pretrained=path)` to
    rebuild it alone. `.safetensors` paths get the config in the file's metadata; anything else is a
    torch file `{"format", "model", "model_config", "model_name", **extra}` (extra: plain values only).
    `state_dict` replaces the model's own (e.g. EMA weights, or one gathered from FSDP shards)."""
    sd = {k: v.detach().cpu().contiguous() for k, v in (state_dict or model.state_dict()).items()}
    name = getattr(model, "name", None)
    if str(path).endswith(".safetensors"):
        meta = {"format": FORMAT, "model_config": json.dumps(model.config), "model_name": name or ""}
        meta.update({k: json.dumps(v) for k, v in extra.items()})
        payload = safetensors.torch.save(sd, metadata=meta)
        with fileio.atomic_path(path, needed=len(payload), durable=True) as tmp:
            with fileio.open_for_write(tmp) as f:
                f.write(payload)
        return
    atomic_save({"format": FORMAT, "model": sd, "model_config": dict(model.config), "model_name": name, **extra}, path)
