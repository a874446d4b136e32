"""Hugging Face folders and the Hugging Face Hub: `save_pretrained`, `push_to_hub`, and Hub ids.

A folder written by `save_pretrained` has the official layout, so the official code loads it
(`hiera.Hiera.from_pretrained(folder)`, `hiera.MaskedAutoencoderHiera` for an MAE), and so does ours
(`create_model(pretrained=folder)`):

  config.json         the official constructor's keyword arguments, and nothing else
  model.safetensors   the weights, under the official key names (ours are the same)
  hiera_video.json    what config.json cannot hold: our constructor arguments that the official one lacks
                      (`layer_norm_eps`, the MAE's `mask_ratio` and `norm_pix_loss`), the model name, and
                      `pretrained_cfg` (class names, mean/std, frames, stride, crop); the official code
                      ignores this file

A value the official model cannot express (a `layer_norm_eps` other than its hard-wired 1e-6) makes
`save_pretrained` raise, since the official loader would build a different model from the folder; with
`allow_non_official=True` it is written to hiera_video.json only (our loader rebuilds the model exactly)
and a warning says that the official code will not. AVA detectors (`HieraAVA`) are not official models and
are refused: save them with `save_model(model, "x.safetensors")`.

Hub ids: `hf-hub:owner/name[@revision]` always means the Hub; a bare `owner/name` does when no local path
of that name exists. Downloads go through the optional `huggingface_hub` package (imported only when
needed), into its usual cache; `HF_HUB_CACHE`, `HF_HOME` and `HF_HUB_OFFLINE` are read when the download
happens, not when huggingface_hub was imported. For the official `facebook/hiera_*` repos the part after
the dot is a registry tag (`facebook/hiera_base_16x224.mae_k400_ft_k400`), whose metadata fills the
model's `pretrained_cfg`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from .. import fileio
from .checkpoints import (EXTRA_FILE, EXTRA_FORMAT, OFFICIAL_DEFAULTS, CheckpointError, make_pretrained_cfg)

logger = logging.getLogger("hiera_video")

HUB_PREFIX = "hf-hub:"
# The official MAE's extra constructor arguments (its other arguments are `hiera.Hiera`'s).
OFFICIAL_MAE_ARGS = ("decoder_embed_dim", "decoder_depth", "decoder_num_heads")
# Our constructor arguments that the official constructor lacks, with the value its code hard-wires
# (None: the argument changes no weight and no output of `forward`, only our training defaults).
FIXED_IN_OFFICIAL: dict[str, Any] = {"layer_norm_eps": 1e-6, "mask_ratio": None, "norm_pix_loss": None}
# What a Hub repo name may hold (huggingface_hub's rule: letters, digits, '-', '_', '.'; at most 96).
_REPO_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_HUB_ID = re.compile(rf"({_REPO_PART})/({_REPO_PART})(?:@([\w./-]+))?")
# A non-existing path ending like a weights file is a missing file, never a Hub id.
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".pt2", ".onnx", ".json")


# ------------------------------------------------------------------------------------------------
# Writing a folder
# ------------------------------------------------------------------------------------------------
def split_config(model: torch.nn.Module, allow_non_official: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's constructor arguments -> (config.json: official arguments only, ours: the rest).

    Raises `CheckpointError` for a model the official code does not have (an AVA detector) and, unless
    `allow_non_official`, for a value it cannot express (naming the key and both values)."""
    from .detection import HieraAVA
    from .hiera import Hiera
    from .mae import MaskedAutoencoderHiera

    name = getattr(model, "name", None) or type(model).__name__
    if isinstance(model, HieraAVA) or "ava_num_classes" in getattr(model, "config", {}):
        raise CheckpointError(f"{name}: an AVA detector (HieraAVA) is not an official Hiera model, so it has no "
                              f"official config.json; save it with hiera_video.save_model(model, 'x.safetensors')")
    if not isinstance(model, Hiera):
        raise CheckpointError(f"save_pretrained takes a hiera_video Hiera or MaskedAutoencoderHiera, "
                              f"got {type(model).__name__}")
    config = dict(model.config)
    is_mae = isinstance(model, MaskedAutoencoderHiera)
    official_keys = list(OFFICIAL_DEFAULTS) + (list(OFFICIAL_MAE_ARGS) if is_mae else [])
    # Every argument is written, defaults included: the official defaults (image Hiera-B) are not ours.
    official = {k: config.pop(k) for k in official_keys if k in config}
    if is_mae:
        official.pop("num_classes", None)  # the official MAE deletes its head; no classifier to size
    missing = [k for k in official_keys if k not in official and k != "num_classes"]
    if missing:
        raise CheckpointError(f"{name}: model.config lacks the official arguments {missing}")
    unknown = sorted(set(config) - set(FIXED_IN_OFFICIAL))
    if unknown:
        raise CheckpointError(f"{name}: model.config has arguments {unknown} that neither the official Hiera "
                              f"nor hiera_video.json knows")
    differ = {k: v for k, v in config.items() if FIXED_IN_OFFICIAL[k] is not None and v != FIXED_IN_OFFICIAL[k]}
    if differ:
        what = ", ".join(f"{k}={v!r} (the official code always uses {FIXED_IN_OFFICIAL[k]!r})"
                         for k, v in differ.items())
        if not allow_non_official:
            raise CheckpointError(f"{name}: {what}: the official Hiera cannot express this, so "
                                  f"hiera.Hiera.from_pretrained would build a different model from the folder. "
                                  f"Pass allow_non_official=True to write it to {EXTRA_FILE} only (hiera_video "
                                  f"rebuilds the model exactly; the official code will not)")
        logger.warning("%s: %s is written to %s only; the official code will load the folder as a different "
                       "model", name, what, EXTRA_FILE)
    return _jsonable(official), _jsonable(config)


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
    from safetensors.torch import save

    from .mae import MaskedAutoencoderHiera

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
    payload = save(sd, metadata={"format": "pt"})
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


def _jsonable(value: Any) -> Any:
    """Tuples -> lists, recursively, and a check that the result is plain JSON (naming the value)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(f"config value {value!r} is not representable in JSON")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(f"config value {value!r} ({type(value).__name__}) is not plain JSON")


# ------------------------------------------------------------------------------------------------
# Hub ids and downloads
# ------------------------------------------------------------------------------------------------
def is_hub_id(value: str) -> bool:
    """`hf-hub:...`, or `owner/name[@revision]` that does not look like a file path (no leading `.`, `/`,
    `~`, no backslash, no weights-file suffix). Call it only for values that are not existing paths."""
    value = str(value)
    if value.startswith(HUB_PREFIX):
        return True
    if value.lower().endswith(_FILE_SUFFIXES) or value.startswith((".", "/", "~")) or "\\" in value:
        return False
    return _HUB_ID.fullmatch(value) is not None


def parse_hub_id(value: str) -> tuple[str, str | None]:
    """`hf-hub:owner/name@rev` or `owner/name` -> (`owner/name`, revision or None)."""
    text = value[len(HUB_PREFIX):] if value.startswith(HUB_PREFIX) else value
    m = _HUB_ID.fullmatch(text)
    if m is None:
        raise CheckpointError(f"{value!r} is not a Hugging Face Hub id (expected owner/name or "
                              f"{HUB_PREFIX}owner/name[@revision])")
    return f"{m.group(1)}/{m.group(2)}", m.group(3)


def _huggingface_hub():
    try:
        import huggingface_hub
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


def hub_pretrained_cfg(repo_id: str) -> dict[str, Any]:
    """For an official `facebook/hiera_*` repo, its registry tag's metadata (`PRETRAINED`) in the
    `pretrained_cfg` schema; `{}` for any other repo."""
    from .registry import tag_pretrained_cfg

    owner, _, name = repo_id.partition("/")
    model, _, tag = name.partition(".")
    if owner != "facebook" or not tag:
        return {}
    cfg = tag_pretrained_cfg(model, tag)
    return {**cfg, "hub_id": repo_id} if cfg else {}


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
