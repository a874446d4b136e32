"""Clip embeddings: one L2-normalised vector per video of a list, for search and retrieval.

A video's embedding is the backbone's pooled pre-logits feature (`forward_head(..., pre_logits=True)`),
pooled over the chosen views (mean, or max), then L2-normalised. Output folder:

    embeddings.npy   float32 [N, D]; row i = line i of the list; a NaN row for an unreadable video
    index.csv        path, label (empty for an unlabelled list)
    meta.json        model, checkpoint, clip settings, views, pooling, dimension, date, unreadable videos
    parts/           finished chunks; an interrupted extraction resumes from them

Work is split into chunks of videos; each finished chunk is written atomically, so a rerun (with any
number of processes) only computes what is missing.
"""

from __future__ import annotations

import csv
import datetime
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..config import Config
from ..data.datasets import collate_views
from ..data.lists import read_list
from ..fileio import atomic_path
from .evaluate import clip_settings, load_model, multi_view_dataset, predict_views

logger = logging.getLogger("hiera_video")


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


def extract_embeddings(cfg: Config | None, ckpt_path: str, list_path: str, out_dir: str | Path,
                       temporal: int = 1, spatial: int = 1, pool: str = "mean", model_name: str | None = None,
                       chunk: int = 512, batch_size: int = 4, num_workers: int = 2, root: str | None = None) -> dict:
    """See the module docstring. Returns meta.json's content (on every process)."""
    from tqdm import tqdm

    from .accel import build_accelerator

    accelerator = build_accelerator()
    out = Path(out_dir)
    parts = out / "parts"
    if accelerator.is_main_process:
        parts.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    model, ckpt = load_backbone(ckpt_path, cfg, model_name)
    settings = clip_settings(model, ckpt, cfg)
    entries = read_list(list_path, root if root is not None else (cfg.data.root if cfg else None), labelled=False)
    model = accelerator.prepare(model)
    D = accelerator.unwrap_model(model).num_features
    chunks = [(i, min(i + chunk, len(entries))) for i in range(0, len(entries), chunk)]
    todo = [c for c in chunks if not (parts / f"part_{c[0]:09d}.npz").exists()]
    if accelerator.is_main_process:
        logger.info("embedding %d videos (%d views each, %s pooling) in %d chunks, %d already done", len(entries),
                    temporal * spatial, pool, len(chunks), len(chunks) - len(todo))
    bar = tqdm(total=len(todo), desc="embedding chunks", disable=not accelerator.is_main_process)
    for start, stop in todo:
        ds = multi_view_dataset(entries[start:stop], settings, temporal, spatial,
                                cfg.data.backend if cfg else "auto")
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
    for start, _ in chunks:
        with np.load(parts / f"part_{start:09d}.npz") as part:
            embeddings[part["indices"]] = part["embeddings"]
            unreadable.update({int(k): tuple(v) for k, v in json.loads(str(part["unreadable"])).items()})
    base = accelerator.unwrap_model(model)
    meta = {"model": getattr(base, "name", None), "checkpoint": str(ckpt_path), "list": str(list_path),
            "clip_settings": asdict(settings), "views": [temporal, spatial], "pooling": pool, "dimension": D,
            "num_videos": len(entries), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "unreadable": [{"index": i, "path": p, "error": e} for i, (p, e) in sorted(unreadable.items())]}
    if accelerator.is_main_process:
        np.save(out / "embeddings.npy", embeddings)
        with open(out / "index.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for e in entries:
                w.writerow([e.path, e.label if e.label >= 0 else ""])
        (out / "meta.json").write_text(json.dumps(meta, indent=2))
        logger.info("wrote %s: %d x %d embeddings, %d unreadable", out / "embeddings.npy", len(entries), D,
                    len(unreadable))
    accelerator.wait_for_everyone()
    return meta
