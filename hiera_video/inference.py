"""One call from a video file to its action classes: `hiera_video.predict(paths, ckpt)`.

    import hiera_video
    hiera_video.predict("clip.mp4", "runs/k400_l/model_best.pt", k=5, views=(5, 3))
    model = hiera_video.load_classifier("hiera_large_16x224.pth", model_name="hiera_large_16x224")
    hiera_video.predict(["a.mp4", "b.webm"], model)      # loaded once, used for many calls

Frames, sampling, crop, normalisation and class names come from the checkpoint (this project's
checkpoints and Hugging Face folders record them; the official tags are in the registry), so nothing
has to be re-entered; `cfg` (a config file, shipped name or `Config`) and `labels` override them.
The same code runs `hiera-video predict`.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

__all__ = ["load_classifier", "predict"]


def load_classifier(ckpt: str | os.PathLike, model_name: str | None = None, cfg=None, labels: str | None = None,
                    overrides: Sequence[str] = ()):
    """A classifier in eval mode with everything `predict` needs attached: `model.pretrained_cfg` (clip
    settings) and `model.class_names`. `ckpt`: any checkpoint `create_model` reads; `model_name` for
    those that do not record their architecture (official .pth); `cfg`: a Config, or a config file or
    shipped name (with `overrides`), whose data settings win; `labels`: a class-names file or shipped
    list (`kinetics400`)."""
    from .config import Config, load_config
    from .engine.evaluate import class_names, clip_settings, load_model

    if cfg is not None and not isinstance(cfg, Config):
        cfg = load_config(cfg, list(overrides))
    model, checkpoint = load_model(str(ckpt), cfg, model_name)
    model.class_names = class_names(checkpoint, cfg, labels, model.num_classes)
    model.clip_settings = clip_settings(model, checkpoint, cfg)
    return model


def predict(paths: str | os.PathLike | Sequence[str | os.PathLike], ckpt, k: int = 5,
            views: tuple[int, int] = (5, 3), *, model_name: str | None = None, cfg=None, labels: str | None = None,
            device: str | torch.device | None = None, backend: str = "auto") -> list[dict]:
    """Top-k classes of each video, the mean of `views` = (temporal clips, spatial crops) view
    probabilities: one `{"path", "top": [{"class", "index", "prob"}, ...], "error"}` per path, in order
    (a single path gives a list of one). A video that cannot be read gets `error` set and an empty
    `top`; the others still run. `ckpt` is a checkpoint path or a model from `load_classifier`."""
    from .engine.evaluate import predict_videos

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    temporal, spatial = views
    if temporal < 1 or spatial not in (1, 3):
        raise ValueError(f"views={views!r}: (T >= 1 temporal clips, S = 1 or 3 spatial crops)")
    model = ckpt if isinstance(ckpt, torch.nn.Module) else load_classifier(ckpt, model_name, cfg, labels)
    if not hasattr(model, "clip_settings"):
        raise ValueError("ckpt is a model without clip settings: load it with hiera_video.load_classifier")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return predict_videos(model, model.clip_settings, paths, model.class_names, temporal, spatial, k=k,
                          device=device, backend=backend)
