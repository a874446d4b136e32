"""Clip embeddings: one L2-normalised vector per video of a list, for search and retrieval.

A video's embedding is the backbone's pooled pre-logits feature (`forward_head(..., pre_logits=True)`),
pooled over the chosen views (mean or max), then L2-normalised. The output folder holds embeddings.npy
(float32 [N, D], row i = line i of the list, NaN for an unreadable video), index.csv and meta.json.
Work is split into chunks written atomically to parts/, so a rerun with any number of processes computes
only what is missing, and only from parts of the same extraction (otherwise an error names what differs).
Details: docs/training.md (hiera_video/engine/embed.py).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import Config
from ..data.datasets import collate_views
from ..data.guard import DEFAULT_SECONDS as DEFAULT_DECODE_TIMEOUT
from ..data.lists import read_list
from ..fileio import atomic_path
from . import zero
from .accel import build_accelerator
from .evaluate import clip_settings, load_model, multi_view_dataset, predict_views

logger = logging.getLogger("hiera_video")

SPEC_FILE = "extraction.json"
SPEC_FORMAT = 1
_MIB = 1 << 20


def load_backbone(ckpt_path: str, cfg: Config | None = None, model_name: str | None = None):
    """Any checkpoint (classifier or MAE encoder) as a feature extractor. Returns (model, checkpoint)."""
    return load_model(ckpt_path, cfg, model_name, classifier=False)


def pool_views(views: torch.Tensor, features: torch.Tensor, num_videos: int, pool: str) -> torch.Tensor:
    """Per-view features [V, D] -> per-video L2-normalised embeddings [num_videos, D]; NaN rows for
    videos without views."""
    D = features.shape[1]
    video = views[:, 0]
    if pool == "mean":
        sums = torch.zeros(num_videos, D, dtype=torch.float64).index_add_(0, video, features.double())
        counts = torch.bincount(video, minlength=num_videos).unsqueeze(1)
        pooled = sums / counts.clamp(min=1)
    elif pool == "max":
        pooled = torch.full((num_videos, D), float("-inf"), dtype=torch.float64).scatter_reduce_(
            0, video.unsqueeze(1).expand(-1, D), features.double(), reduce="amax")
    else:
        raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
    out = torch.nn.functional.normalize(pooled, dim=1).float()
    missing = torch.bincount(video, minlength=num_videos) == 0
    out[missing] = float("nan")
    return out


def _save_part(path: Path, indices: np.ndarray, embeddings: np.ndarray, unreadable: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no ".npz"
        np.savez(f, indices=indices, embeddings=embeddings,
                 unreadable=np.array(json.dumps({str(k): v for k, v in unreadable.items()})))


def _file_fingerprint(path: Path) -> str:
    """SHA-256 of a file's size, first MiB and last MiB: cheap for a multi-GB checkpoint, survives a
    copy (mtime would not), and a zip checkpoint's last MiB holds the CRC of every tensor."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_MIB))
        if size > _MIB:
            f.seek(max(_MIB, size - _MIB))
            h.update(f.read())
    return h.hexdigest()


def checkpoint_fingerprint(ckpt_path: str) -> str:
    """A file's fingerprint; a folder's (HF layout) over its files; a Hub id is its own fingerprint."""
    p = Path(ckpt_path)
    if p.is_file():
        return _file_fingerprint(p)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")):
            h.update(f"{f.relative_to(p).as_posix()}\0{_file_fingerprint(f)}\n".encode())
        return h.hexdigest()
    return f"id:{ckpt_path}"


def extraction_spec(ckpt_path: str, list_path: str, entries: list, settings, temporal: int, spatial: int,
                    pool: str, chunk: int, model_name: str | None, backend: str) -> dict:
    """What defines an extraction's rows: the same spec means the same embeddings, so parts can be
    reused. Not batch size, workers or the number of processes, which change no row."""
    videos = hashlib.sha256("".join(f"{e.path}\0{e.label}\n" for e in entries).encode()).hexdigest()
    spec = {"format": SPEC_FORMAT,
            "checkpoint": {"path": str(ckpt_path), "fingerprint": checkpoint_fingerprint(ckpt_path)},
            "list": {"path": str(Path(list_path).resolve()),
                     "sha256": hashlib.sha256(Path(list_path).read_bytes()).hexdigest(),
                     "videos_sha256": videos, "num_videos": len(entries)},
            "views": [temporal, spatial], "pooling": pool, "chunk": chunk, "model": model_name,
            "clip_settings": asdict(settings), "backend": backend}
    return json.loads(json.dumps(spec))  # as read back from the file: tuples become lists


def spec_differences(old: dict, new: dict) -> list[str]:
    """What differs between the spec the parts were made with (`old`) and this run's, in words."""
    if old.get("format") != new["format"]:
        return [f"parts/{SPEC_FILE} format {old.get('format')!r} vs {new['format']!r} (another version)"]
    out = []
    oc, nc = old.get("checkpoint", {}), new["checkpoint"]
    if oc.get("fingerprint") != nc["fingerprint"]:
        out.append(f"checkpoint: {oc.get('path')} vs {nc['path']}" if oc.get("path") != nc["path"] else
                   f"checkpoint: {nc['path']} changed since the parts were made")
    ol, nl = old.get("list", {}), new["list"]
    if ol.get("path") != nl["path"] and (ol.get("sha256") != nl["sha256"]
                                         or ol.get("videos_sha256") != nl["videos_sha256"]):
        out.append(f"list: {ol.get('path')} vs {nl['path']}")
    elif ol.get("sha256") != nl["sha256"]:
        out.append(f"list: {nl['path']} changed ({ol.get('num_videos')} vs {nl['num_videos']} videos)")
    elif ol.get("videos_sha256") != nl["videos_sha256"]:
        out.append(f"list: the lines of {nl['path']} now name other videos (another root?)")
    for key, name in (("views", "views"), ("pooling", "pooling"), ("chunk", "chunk"), ("model", "model"),
                      ("backend", "decoding backend")):
        if old.get(key) != new[key]:
            show = (lambda v: ",".join(map(str, v)) if isinstance(v, list) else v)
            out.append(f"{name}: {show(old.get(key))} vs {show(new[key])}")
    oclip = old.get("clip_settings", {})
    clip = [f"{k} {oclip.get(k)} vs {v}" for k, v in new["clip_settings"].items() if oclip.get(k) != v]
    if clip:
        out.append("clip settings: " + ", ".join(clip))
    return out


def check_parts(parts: Path, spec: dict) -> bool:
    """Raise ValueError unless the parts in `parts` (if any) were made by the extraction `spec` describes.
    Returns whether the spec file must be written (no parts yet)."""
    out = parts.parent
    restart = f"use another output folder (--out), or delete {parts} to start over"
    has_parts = any(parts.glob("part_*.npz"))
    spec_file = parts / SPEC_FILE
    if not has_parts:  # nothing to reuse; a spec left by a run killed before its first part is replaced
        return True
    if not spec_file.is_file():
        raise ValueError(f"{out} holds embedding parts without {parts / SPEC_FILE} (an older version made them), "
                         f"so they cannot be verified against this extraction: {restart}")
    try:
        old = json.loads(spec_file.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{spec_file} is unreadable ({e}), so the parts in {parts} cannot be verified: "
                         f"{restart}") from e
    diffs = spec_differences(old if isinstance(old, dict) else {}, spec)
    if diffs:
        raise ValueError(f"{out} holds parts of another extraction ({'; '.join(diffs)}): {restart}")
    return False


def extract_embeddings(cfg: Config | None, ckpt_path: str, list_path: str, out_dir: str | Path,
                       temporal: int = 1, spatial: int = 1, pool: str = "mean", model_name: str | None = None,
                       chunk: int = 512, batch_size: int = 4, num_workers: int = 2, root: str | None = None,
                       decode_timeout: float | None = None) -> dict:
    """See docs/training.md (hiera_video/engine/embed.py). Returns meta.json's content (on every process).
    `decode_timeout`: seconds per video (default: the config's data.decode_timeout, else 60)."""

    accelerator = build_accelerator()
    out = Path(out_dir)
    parts = out / "parts"
    if accelerator.is_main_process:
        parts.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    model, ckpt = load_backbone(ckpt_path, cfg, model_name)
    settings = clip_settings(model, ckpt, cfg)
    entries = read_list(list_path, root if root is not None else (cfg.data.root if cfg else None), labelled=False)
    backend = cfg.data.backend if cfg else "auto"
    if decode_timeout is None:
        decode_timeout = cfg.data.decode_timeout if cfg else DEFAULT_DECODE_TIMEOUT
    spec = extraction_spec(ckpt_path, list_path, entries, settings, temporal, spatial, pool, chunk,
                           getattr(model, "name", None), backend)
    # Every process checks (all see the same files, so all raise or none does); the main one writes the
    # spec before the barrier, so before any part exists.
    if check_parts(parts, spec) and accelerator.is_main_process:
        with atomic_path(parts / SPEC_FILE) as tmp:
            tmp.write_text(json.dumps(spec, indent=2) + "\n")
    accelerator.wait_for_everyone()
    model = zero.inference_model(accelerator, model, batch_size)
    D = accelerator.unwrap_model(model).num_features
    chunks = [(i, min(i + chunk, len(entries))) for i in range(0, len(entries), chunk)]
    todo = [c for c in chunks if not (parts / f"part_{c[0]:09d}.npz").exists()]
    if accelerator.is_main_process:
        logger.info("embedding %d videos (%d views each, %s pooling) in %d chunks, %d already done", len(entries),
                    temporal * spatial, pool, len(chunks), len(chunks) - len(todo))
    bar = tqdm(total=len(todo), desc="embedding chunks", disable=not accelerator.is_main_process)
    for start, stop in todo:
        ds = multi_view_dataset(entries[start:stop], settings, temporal, spatial, backend, decode_timeout)
        loader = accelerator.prepare(DataLoader(ds, batch_size=batch_size, collate_fn=collate_views,
                                                num_workers=num_workers))
        views, feats, _, unreadable = predict_views(accelerator, model, loader, D, settings.mean, settings.std,
                                                    features=True)
        emb = pool_views(views, feats, stop - start, pool)
        if accelerator.is_main_process:
            _save_part(parts / f"part_{start:09d}.npz", np.arange(start, stop), emb.numpy(),
                       {start + k: v for k, v in unreadable.items()})
        accelerator.wait_for_everyone()
        bar.update()
    bar.close()

    # Assemble (cheap): the parts hold everything.
    embeddings = np.full((len(entries), D), np.nan, np.float32)
    unreadable: dict[int, tuple[str, str]] = {}
    for start, stop in chunks:
        name = parts / f"part_{start:09d}.npz"
        with np.load(name, allow_pickle=False) as part:
            if not np.array_equal(part["indices"], np.arange(start, stop)) or part["embeddings"].shape[1:] != (D,):
                raise ValueError(f"{name} holds rows {part['indices'][:1]}..{part['indices'][-1:]} of dimension "
                                 f"{part['embeddings'].shape[1:]}, not rows {start}..{stop - 1} of dimension {D}: "
                                 f"delete {parts} to start over")
            embeddings[part["indices"]] = part["embeddings"]
            unreadable.update({int(k): tuple(v) for k, v in json.loads(str(part["unreadable"])).items()})
    base = accelerator.unwrap_model(model)
    meta = {"model": getattr(base, "name", None), "checkpoint": str(ckpt_path), "list": str(list_path),
            "clip_settings": asdict(settings), "views": [temporal, spatial], "pooling": pool, "dimension": D,
            "num_videos": len(entries), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "unreadable": [{"index": i, "path": p, "error": e} for i, (p, e) in sorted(unreadable.items())]}
    if accelerator.is_main_process:
        # Atomic, so a reader never sees a half-written file, nor rows of one run beside another's index.
        with atomic_path(out / "embeddings.npy", needed=embeddings.nbytes) as tmp, open(tmp, "wb") as f:
            np.save(f, embeddings)
        with atomic_path(out / "index.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for e in entries:
                w.writerow([e.path, e.label if e.label >= 0 else ""])
        with atomic_path(out / "meta.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
        logger.info("wrote %s: %d x %d embeddings, %d unreadable", out / "embeddings.npy", len(entries), D,
                    len(unreadable))
    accelerator.wait_for_everyone()
    return meta
