"""Hugging Face folders and the Hugging Face Hub: `save_pretrained`, `push_to_hub`, and downloads.

A folder written by `save_pretrained` has the official layout, so the official code loads it
(`hiera.Hiera.from_pretrained(folder)`, `hiera.MaskedAutoencoderHiera` for an MAE), and so does ours
(`create_model(pretrained=folder)`): `config.json` (the official constructor's keyword arguments and
nothing else), `model.safetensors` (official key names) and `hiera_video.json` (what config.json cannot
hold: our extra arguments, the model name, `pretrained_cfg`; the official code ignores it). A value the
official model cannot express makes `save_pretrained` raise unless `allow_non_official=True`.
Downloads go through the optional `huggingface_hub` (imported when needed); `HF_HUB_CACHE`, `HF_HOME`
and `HF_HUB_OFFLINE` are read when the download happens. docs/checkpoints.md has the details.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from .. import fileio
from ..errors import CheckpointError
from .mae import MaskedAutoencoderHiera
from .official import EXTRA_FILE, EXTRA_FORMAT, split_config
from .pretrained_cfg import make_pretrained_cfg
from .sources import HUB_PREFIX, parse_hub_id

logger = logging.getLogger("hiera_video")

def save_pretrained(model: torch.nn.Module, folder: str | os.PathLike, *, pretrained_cfg: dict | None = None,
                    state_dict: dict[str, torch.Tensor] | None = None, allow_non_official: bool = False) -> Path:
    """Write `model` as a Hugging Face folder in the official layout (see the module docstring):
    config.json, model.safetensors and hiera_video.json, each atomically. Returns the folder.

    pretrained_cfg: what to record beside the weights (class names, mean/std, num_frames, ...); by default
        the model's own `model.pretrained_cfg`. Class names must match the classifier's size.
    state_dict: weights to write instead of the model's (e.g. EMA weights).
    allow_non_official: write values the official model cannot express to hiera_video.json with a warning,
        instead of raising.
    """
    official, ours = split_config(model, allow_non_official)
    name = getattr(model, "name", None)
    cfg = make_pretrained_cfg(getattr(model, "pretrained_cfg", None) if pretrained_cfg is None else pretrained_cfg,
                              "pretrained_cfg")
    classes, num_classes = cfg.get("classes"), official.get("num_classes", 0)
    if classes is not None and len(classes) != num_classes:
        raise CheckpointError(f"{name or 'model'}: pretrained_cfg has {len(classes)} class names, the classifier "
                              f"{num_classes} outputs")
    weights = state_dict if state_dict is not None else model.state_dict()
    sd = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    if not isinstance(model, MaskedAutoencoderHiera) and num_classes == 0 and "head.projection.weight" not in sd:
        # The official Hiera always has a head, of 0 outputs here: its weights are empty tensors.
        dim = model.num_features
        sd["head.projection.weight"], sd["head.projection.bias"] = torch.zeros(0, dim), torch.zeros(0)
    # "format": "pt" is the metadata transformers-style loaders expect of PyTorch safetensors files.
    payload = safetensors.torch.save(sd, metadata={"format": "pt"})
    extra = {"format": EXTRA_FORMAT, "model_name": name, "model_class": type(model).__name__,
             "model_config": ours, "pretrained_cfg": cfg}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Weights first: a folder whose config.json is readable then always has matching weights beside it.
    with fileio.atomic_path(folder / "model.safetensors", needed=len(payload), durable=True) as tmp:
        with fileio.open_for_write(tmp) as f:
            f.write(payload)
    fileio.atomic_write(folder / "config.json", json.dumps(official, indent=2) + "\n")
    fileio.atomic_write(folder / EXTRA_FILE, json.dumps(extra, indent=2) + "\n")
    return folder

def _huggingface_hub():
    try:
        import huggingface_hub  # optional (extra `hub`): only Hub ids and push_to_hub need it
    except ImportError:
        raise ImportError("Hugging Face Hub ids and push_to_hub need the optional package huggingface_hub: "
                          "pip install huggingface_hub (or pip install 'hiera-video[hub]')") from None
    return huggingface_hub

def _env_cache_dir() -> str | None:
    """The Hub cache as the environment says now (huggingface_hub reads it once, at import)."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return env["HF_HUB_CACHE"]
    if env.get("HUGGINGFACE_HUB_CACHE"):
        return env["HUGGINGFACE_HUB_CACHE"]
    if env.get("HF_HOME"):
        return os.path.join(os.path.expanduser(env["HF_HOME"]), "hub")
    return None

def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")

def download(repo_id: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local folder of Hub repo `repo_id` (config.json, model.safetensors, hiera_video.json when
    present), downloaded once into the Hub cache; offline (`HF_HUB_OFFLINE=1`) only the cache is read."""
    hf = _huggingface_hub()
    offline = _env_offline()
    try:
        folder = hf.snapshot_download(repo_id, revision=revision, cache_dir=cache_dir or _env_cache_dir(),
                                      local_files_only=offline,
                                      allow_patterns=["config.json", "model.safetensors", EXTRA_FILE])
    except Exception as e:  # huggingface_hub's errors (not found, offline and not cached, network)
        hint = " (HF_HUB_OFFLINE is set and it is not in the cache)" if offline else ""
        raise CheckpointError(f"{HUB_PREFIX}{repo_id}: could not get it from the Hugging Face Hub{hint}: "
                              f"{type(e).__name__}: {e}") from None
    folder = Path(folder)
    missing = [n for n in ("config.json", "model.safetensors") if not (folder / n).is_file()]
    if missing:
        raise CheckpointError(f"{HUB_PREFIX}{repo_id}: the repo has no {' or '.join(missing)} (at {folder}); "
                              f"only official-layout Hiera repos load")
    return folder

def push_to_hub(model: torch.nn.Module, repo_id: str, *, commit_message: str = "Upload Hiera model",
                private: bool | None = None, token: str | None = None, revision: str | None = None,
                create_pr: bool = False, pretrained_cfg: dict | None = None,
                allow_non_official: bool = False) -> Any:
    """`save_pretrained` into a temporary folder, then create the Hub repo (if needed) and upload the
    folder. Returns what `HfApi.upload_folder` returns (the commit's info)."""
    hf = _huggingface_hub()
    repo_id, rev = parse_hub_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="hiera_push_") as tmp:
        save_pretrained(model, tmp, pretrained_cfg=pretrained_cfg, allow_non_official=allow_non_official)
        api = hf.HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        return api.upload_folder(repo_id=repo_id, folder_path=tmp, repo_type="model", commit_message=commit_message,
                                 revision=revision or rev, create_pr=create_pr)
