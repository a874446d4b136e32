"""Where a `pretrained=` value points: a local path, a URL, a tag of the model, or a Hugging Face Hub id.

The one place that decides it, for `create_model`, `read_checkpoint` and the config's check; it reads
nothing but whether a local path exists. In this order: `hf-hub:owner/name[@rev]` is the Hub; an
http(s) or file URL stays a URL; an existing local path wins over every other reading; a tag of the
model (`PRETRAINED[name]`) is that tag; `owner/name` that does not look like a file is the Hub (the
reader names both readings if that fails); anything else is a path that does not exist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass

from ..errors import CheckpointError

HUB_PREFIX = "hf-hub:"
URL_SCHEMES = ("http://", "https://", "file://")
# What a Hub repo name may hold (huggingface_hub's rule: letters, digits, '-', '_', '.'; at most 96).
_REPO_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_HUB_ID = re.compile(rf"({_REPO_PART})/({_REPO_PART})(?:@([\w./-]+))?")
# A non-existing path ending like a weights file is a missing file, never a Hub id.
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".pt2", ".onnx", ".json")


class UnknownSource(FileNotFoundError):
    """A `pretrained=` value that is no existing path, URL, Hub id or tag of the model."""


@dataclass(frozen=True)
class Source:
    kind: str  # "path", "url", "hub" or "tag"
    location: str  # the path (user-expanded), the URL, the Hub repo id (owner/name) or the tag
    revision: str | None = None  # a Hub revision
    explicit: bool = True  # False for a bare owner/name, which may as well be a mistyped local path


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


def resolve_source(value: str, tags: Collection[str] | None = None, model: str | None = None,
                   must_exist: bool = False) -> Source:
    """Read `value` (see the module docstring). `tags`: the model's checkpoint tags, None where no model
    is named (then nothing is a tag, and whatever is not a URL or Hub id is a path). A path that does
    not exist is returned as one (its reader says "not found"), unless `must_exist` or it can be
    nothing else (no separator, no dot: a mistyped tag); then `UnknownSource` lists the tags."""
    value = str(value)
    if value.startswith(HUB_PREFIX):
        return Source("hub", *parse_hub_id(value))
    if value.startswith(URL_SCHEMES):
        return Source("url", value)
    # os.path, not Path: Path("./runs/x") prints as "runs/x", which would then read as a Hub id.
    local = os.path.expanduser(value)
    if os.path.exists(local):
        return Source("path", local)
    if tags is not None and value in tags:
        return Source("tag", value)
    if is_hub_id(value):
        return Source("hub", *parse_hub_id(value), explicit=False)
    if tags is None or (not must_exist and any(c in value for c in "/\\.")):
        return Source("path", local)
    known = f"tags of {model}: {', '.join(tags)}" if tags else f"{model} has no downloadable tags"
    raise UnknownSource(f"{value} is neither an existing file or folder, a Hugging Face Hub id (owner/name, "
                        f"{HUB_PREFIX}owner/name), nor a checkpoint tag ({known})")
