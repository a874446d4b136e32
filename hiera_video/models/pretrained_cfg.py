"""The one schema of `pretrained_cfg`: what a model's weights were trained with (class names, input
normalisation, frames, stride, crop), on checkpoints and on models. A key is present only when known,
except `classes`, which is always there (None when unknown); values are plain JSON (lists, not tuples)."""

from __future__ import annotations

from typing import Any

from ..errors import CheckpointError

PRETRAINED_CFG_KEYS = ("classes", "mean", "std", "num_frames", "sampling_rate", "target_fps", "sampling_mode",
                       "crop_size", "test_short_side", "tag", "url", "hub_id")
_CFG_INTS = ("num_frames", "sampling_rate", "crop_size", "test_short_side")


def make_pretrained_cfg(values: dict[str, Any] | None = None, source: str = "pretrained_cfg",
                        **more: Any) -> dict[str, Any]:
    """`values` (and `more`) -> a `pretrained_cfg` in the one schema (see `PRETRAINED_CFG_KEYS`): tuples
    become lists, None values are dropped (except `classes`), unknown keys are kept as they are. A value
    of the wrong kind raises naming `source` and the key."""
    out: dict[str, Any] = {"classes": None}
    for key, value in {**(values or {}), **more}.items():
        if value is None:
            continue
        try:
            if key == "classes":
                if isinstance(value, str) or not all(isinstance(c, str) for c in value):
                    raise TypeError("a list of class names")
                value = list(value)
            elif key in ("mean", "std"):
                value = [float(v) for v in value]
                if len(value) not in (1, 3):
                    raise TypeError("1 or 3 numbers")
            elif key in _CFG_INTS:
                if isinstance(value, bool) or int(value) != value:
                    raise TypeError("an integer")
                value = int(value)
            elif key == "target_fps":
                value = float(value)
            elif isinstance(value, tuple):
                value = list(value)
        except (TypeError, ValueError) as e:
            expected = e if isinstance(e, TypeError) else "valid"
            raise CheckpointError(f"{source}: {key}={value!r} is not {expected}") from None
        out[key] = value
    return out

def cfg_from_extra(extra: dict[str, Any], source: str) -> dict[str, Any]:
    """This project's checkpoints keep how clips were made in `extra["data"]` and the names in
    `extra["classes"]` (see engine/train.py `_checkpoint_info`)."""
    data = extra.get("data") if isinstance(extra.get("data"), dict) else {}
    cfg = {k: v for k, v in data.items() if k in PRETRAINED_CFG_KEYS}
    if isinstance(extra.get("pretrained_cfg"), dict):
        cfg.update(extra["pretrained_cfg"])
    if isinstance(extra.get("classes"), list):
        cfg["classes"] = extra["classes"]
    return make_pretrained_cfg(cfg, source)
