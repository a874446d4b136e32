"""`create_model`: a registered variant, or the model a checkpoint records, built and initialised from
any `pretrained=` source (`sources.py` decides what the value is; `checkpoints.py` reads it;
`adapt.py` fits it), with `model.pretrained_cfg` saying what the weights were trained with."""

from __future__ import annotations

import logging
from typing import Any, Callable

from .adapt import load_pretrained
from .checkpoints import Checkpoint, read_checkpoint
from .hiera import Hiera
from .mae import MaskedAutoencoderHiera
from .official import encoder_config, is_mae_config
from .pretrained_cfg import make_pretrained_cfg
from .registry import PRETRAINED, build_variant, list_models, tag_pretrained_cfg, unknown_model
from .sources import resolve_source

logger = logging.getLogger("hiera_video")

# Model classes beyond Hiera and the MAE that a checkpoint can record, by the constructor argument that
# marks them (e.g. the AVA detector's `ava_num_classes`); registered where the class is defined.
CHECKPOINT_CLASSES: dict[str, type[Hiera]] = {}


def register_checkpoint_class(key: str) -> Callable[[type[Hiera]], type[Hiera]]:
    def register(cls: type[Hiera]) -> type[Hiera]:
        CHECKPOINT_CLASSES[key] = cls
        return cls
    return register


def read_pretrained(name: str | None, pretrained: Checkpoint | str) -> tuple[Checkpoint, dict | None]:
    """-> (the checkpoint, the tag's pretrained_cfg when `pretrained` is a tag of model `name`, else None)."""
    if isinstance(pretrained, Checkpoint):  # already read, e.g. to look at its metadata first
        return pretrained, None
    where = resolve_source(pretrained, PRETRAINED.get(name or "", {}), model=name)
    if where.kind == "tag":
        return read_checkpoint(PRETRAINED[name][where.location]["url"]), tag_pretrained_cfg(name, where.location)
    return read_checkpoint(where.location if where.kind == "path" else pretrained), None


def create_model(name: str | None = None, pretrained=None, num_classes: int | None = None,
                 **overrides) -> Hiera:
    """Build a registered Hiera (classifier, or MAE for `mae_*` names), optionally initialised from a
    checkpoint. A classifier built from an MAE checkpoint gets every encoder weight; its final norm
    and head start fresh (logged).

    name: a registered variant (`list_models()`); may be None when `pretrained` is a checkpoint
        that records its own configuration (this project's checkpoints, Hugging Face folders).
    pretrained: a local path (official `.pth`, HF folder with config.json + model.safetensors, this
        project's checkpoint, a plain state dict or `.safetensors` file), a tag of the variant
        (`PRETRAINED[name]`), which is downloaded once to the torch hub cache, a Hugging Face Hub id
        (`hf-hub:owner/name[@revision]`, or `owner/name` when no such local path exists; needs
        huggingface_hub), or a `Checkpoint` already read with `read_checkpoint`.
    num_classes: classifier size; by default the checkpoint's, else the variant's. When it differs
        from the checkpoint's, the head is re-initialised (and logged). With `name=None` and an MAE
        checkpoint, giving it builds a classifier on the MAE's encoder instead of the MAE.
    overrides: any `Hiera` constructor argument, e.g. `input_size=(32, 224, 224)`, `drop_path_rate=0.2`;
        position embeddings are interpolated when frames or resolution differ from the checkpoint.

    A model built from a checkpoint has `model.pretrained_cfg`: what the weights were trained with, in
    the schema of `pretrained_cfg.PRETRAINED_CFG_KEYS` (class names, mean/std, frames, stride, crop), from the
    checkpoint itself or the tag's metadata; class names are dropped when the head was resized. A model
    built without one has `{}`.

    Works under `with torch.device("meta"):` (without `pretrained`) for shape and size inspection.
    """
    if name is not None and name not in list_models():
        raise unknown_model(name)
    ckpt, meta = (None, None) if pretrained is None else read_pretrained(name, pretrained)
    if ckpt is not None:
        if num_classes is None and "num_classes" not in overrides:
            head = ckpt.state_dict.get("head.projection.weight")
            if head is not None:
                num_classes = head.shape[0]
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if name is None:
        if ckpt is None or ckpt.model_config is None:
            raise ValueError("create_model needs a model name unless `pretrained` is a checkpoint that "
                             "records its configuration (this project's, or a folder with config.json); "
                             f"choose one of {list_models('hiera_*16x224')}")
        special = [cls for key, cls in CHECKPOINT_CLASSES.items() if key in ckpt.model_config]
        if special:  # e.g. an AVA detector
            model = special[0](**{**ckpt.model_config, **overrides})
        elif is_mae_config(ckpt.model_config) and "num_classes" not in overrides:
            model = MaskedAutoencoderHiera(**{**ckpt.model_config, **overrides})
        else:  # a classifier, or the encoder of an MAE checkpoint as one (num_classes given)
            config = encoder_config(ckpt.model_config) if is_mae_config(ckpt.model_config) else ckpt.model_config
            model = Hiera(**{**config, **overrides})
        model.name = ckpt.model_name or "hiera"
    else:
        model = build_variant(name, **overrides)
    model.pretrained_cfg = model_pretrained_cfg(model, ckpt, meta)
    if ckpt is not None:
        load_pretrained(model, ckpt)
    return model


def model_pretrained_cfg(model, ckpt, meta: dict | None) -> dict[str, Any]:
    """The checkpoint's pretrained_cfg over the tag's; class names only if they fit the model's outputs."""
    if ckpt is None:
        return {}
    known = {k: v for k, v in (ckpt.pretrained_cfg or {}).items() if v is not None}
    cfg = make_pretrained_cfg({**(meta or {}), **known}, ckpt.source)
    outputs = getattr(model, "num_outputs", getattr(model, "num_classes", 0))  # a detector's: per box
    if cfg["classes"] is not None and len(cfg["classes"]) != outputs:
        logger.info("%s: class names dropped from pretrained_cfg (%d names, the model has %d outputs)",
                    ckpt.source, len(cfg["classes"]), outputs)
        cfg["classes"] = None
    return cfg
