"""The Python API in a few calls: classify videos, embed them, train from a config.

    import hiera_video
    hiera_video.predict("clip.mp4", "runs/k400_l/model_best.pt", k=5, views=(5, 3))
    model = hiera_video.load_classifier("hiera_large_16x224.pth", model_name="hiera_large_16x224")
    hiera_video.predict(["a.mp4", "b.webm"], model)      # loaded once, used for many calls
    hiera_video.embed(["a.mp4", "b.webm"], "model_best.pt", views=(2, 3))   # [2, D], L2-normalised
    hiera_video.train("synthetic_hiera_tiny", ["train.epochs=1", "output_dir=runs/try"])

Frames, sampling, crop, normalisation and class names come from the checkpoint (this project's
checkpoints and Hugging Face folders record them; the official tags are in the registry), so nothing
has to be re-entered; `cfg` (a config file, shipped name or `Config`) and `labels` override them.
The same code runs `hiera-video predict` and `hiera-video retrieve --query`. The engine (Accelerate, the
DataLoader stack) is imported on the first call, so `import hiera_video` stays quick.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

from .config import Config, load_config
from .data.lists import Entry
from .data.transforms import normalize

__all__ = ["embed", "load_classifier", "predict", "train"]


def _config(cfg, overrides: Sequence[str] = ()):
    """None, a Config, or a config file / shipped name (loaded with the overrides)."""
    if cfg is None or isinstance(cfg, Config):
        return cfg
    return load_config(cfg, list(overrides))


def _paths(paths) -> list[str]:
    """A path or a sequence of paths -> list of str; anything else is a TypeError naming what it got."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    elif not isinstance(paths, (list, tuple)):
        raise TypeError(f"paths: a video path or a list of them, got {type(paths).__name__}")
    bad = [p for p in paths if not isinstance(p, (str, os.PathLike)) or isinstance(p, bytes)]
    if bad:
        raise TypeError(f"paths: each must be a str or os.PathLike, got {type(bad[0]).__name__} ({bad[0]!r})")
    return [os.fspath(p) for p in paths]


def _check_views(views) -> tuple[int, int]:
    if not (isinstance(views, (tuple, list)) and len(views) == 2 and all(isinstance(v, int) for v in views)):
        raise ValueError(f"views={views!r}: a pair (T, S) of ints, e.g. (5, 3)")
    temporal, spatial = views
    if temporal < 1 or spatial not in (1, 3):
        raise ValueError(f"views={views!r}: (T >= 1 temporal clips, S = 1 or 3 spatial crops)")
    return temporal, spatial


def resolve_device(device) -> torch.device:
    """None (cuda when visible, else cpu), or a device name checked: ValueError naming it otherwise."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r}: not a device (cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}: no CUDA device is visible to this torch ({torch.__version__})")
    return device


def load_classifier(ckpt: str | os.PathLike, model_name: str | None = None, cfg=None, labels: str | None = None,
                    overrides: Sequence[str] = ()):
    """A classifier in eval mode with everything `predict` needs attached: `model.pretrained_cfg` (clip
    settings) and `model.class_names`. `ckpt`: any checkpoint `create_model` reads; `model_name` for
    those that do not record their architecture (official .pth); `cfg`: a Config, or a config file or
    shipped name (with `overrides`), whose data settings win; `labels`: a class-names file or shipped
    list (`kinetics400`)."""
    from .engine.evaluate import load_model

    cfg = _config(cfg, overrides)
    model, checkpoint = load_model(str(ckpt), cfg, model_name)
    return _attach(model, cfg, labels, checkpoint)


def _attach(model, cfg=None, labels: str | None = None, checkpoint=None):
    """Give a classifier the clip settings and class names `predict` uses (from `cfg`, `labels`, the
    checkpoint and `model.pretrained_cfg`, in that order)."""
    from .engine.evaluate import class_names, clip_settings

    cfg = _config(cfg)
    if not getattr(model, "num_classes", 0):
        raise ValueError(f"{getattr(model, 'name', type(model).__name__)} has no classifier (num_classes 0): "
                         f"predict needs a finetuned model; hiera_video.embed takes feature models")
    model.class_names = class_names(checkpoint, cfg, labels, model.num_classes, getattr(model, "pretrained_cfg", None))
    model.clip_settings = clip_settings(model, checkpoint, cfg)
    return model


def predict(paths: str | os.PathLike | Sequence[str | os.PathLike], ckpt, k: int = 5,
            views: tuple[int, int] = (5, 3), *, model_name: str | None = None, cfg=None, labels: str | None = None,
            device: str | torch.device | None = None, backend: str = "auto") -> list[dict]:
    """Top-k classes of each video, the mean of `views` = (temporal clips, spatial crops) view
    probabilities: one `{"path", "top": [{"class", "index", "prob"}, ...], "error"}` per path, in order
    (a single path gives a list of one). A video that cannot be read gets `error` set and an empty
    `top`; the others still run. `ckpt` is a checkpoint path, or a model (from `load_classifier`, or
    from `create_model(pretrained=...)`, whose `pretrained_cfg` gives the clip settings and names)."""
    from .engine.evaluate import predict_videos

    paths = _paths(paths)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an int of at least 1, got {k!r}")
    temporal, spatial = _check_views(views)
    device = resolve_device(device)
    model = ckpt if isinstance(ckpt, torch.nn.Module) else load_classifier(ckpt, model_name, cfg, labels)
    if not hasattr(model, "clip_settings"):  # e.g. straight from create_model: what it records is enough
        _attach(model, cfg, labels)
    return predict_videos(model, model.clip_settings, paths, model.class_names, temporal, spatial, k=k,
                          device=device, backend=backend)


@torch.no_grad()
def embed(paths: str | os.PathLike | Sequence[str | os.PathLike], ckpt, views: tuple[int, int] = (1, 1),
          pool: str = "mean", *, model_name: str | None = None, cfg=None, settings=None,
          device: str | torch.device | None = None, backend: str = "auto") -> torch.Tensor:
    """One L2-normalised embedding per video, float32 `[len(paths), D]`: the pooled pre-logits feature
    of each view, pooled over `views` (`pool`: mean or max); a NaN row for a video that cannot be read.
    `ckpt`: any checkpoint (an MAE encoder too) or an already loaded model; `settings` (a ClipSettings)
    overrides the clip settings the checkpoint records. For whole lists, resumable and distributed:
    `hiera-video embed`."""
    from .engine.embed import load_backbone, pool_views
    from .engine.evaluate import clip_settings, multi_view_dataset

    paths = _paths(paths)
    temporal, spatial = _check_views(views)
    cfg = _config(cfg)
    if isinstance(ckpt, torch.nn.Module):
        model, checkpoint = ckpt, None
    else:
        model, checkpoint = load_backbone(str(ckpt), cfg, model_name)
    s = settings or getattr(model, "clip_settings", None) or clip_settings(model, checkpoint, cfg)
    device = resolve_device(device)
    model = model.to(device).eval()
    ds = multi_view_dataset([Entry(p, -1, i + 1) for i, p in enumerate(paths)], s, temporal, spatial, backend)
    views_ids, feats, errors = [], [], []
    for i in range(len(ds)):
        item = ds[i]
        if item["error"] is not None:
            errors.append(f"{paths[i]}: {item['error']}")
            continue  # no views: pool_views gives this video a NaN row
        x = normalize(item["video"].to(device), s.mean, s.std)  # [views, C, T, H, W]
        f = model.forward_head(model.forward_features(x), pre_logits=True).float().cpu()  # [views, D]
        feats.append(f)
        views_ids.append(torch.full((len(f), 3), i, dtype=torch.long))
    if not feats:
        raise ValueError(f"cannot read {errors[0]}" if len(errors) == 1 else
                         f"none of the {len(paths)} videos could be read: " + "; ".join(errors[:3]))
    return pool_views(torch.cat(views_ids), torch.cat(feats), len(paths), pool)


def train(cfg, overrides: Sequence[str] = ()) -> dict:
    """Run training (finetuning, MAE pretraining or AVA, as the config's `task` says) in this process,
    as `hiera-video finetune` / `pretrain` does; returns the last epoch's metrics. `cfg`: a Config, or a
    config file / shipped name with `overrides` (`["train.epochs=3", "output_dir=runs/try"]`). For
    several processes or GPUs use `accelerate launch -m hiera_video finetune --cfg ...`."""
    from .engine.train import train as run
    return run(_config(cfg, overrides))
