"""Multi-view evaluation: every (video, temporal clip, spatial crop) view scored once, views ensembled
per video, and the reports users read (metrics, per-video predictions, per-class accuracy, confusion).

Views are gathered across processes with their (video, temporal, spatial) ids and de-duplicated, so
each view counts exactly once whatever the number of processes and however the last batch pads; a
video that cannot be read is reported as unreadable, never replaced by another.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import gather_object
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import multiclass_accuracy
from tqdm import tqdm

from ..config import Config
from ..data.datasets import MultiViewDataset, collate_views
from ..data.guard import DEFAULT_SECONDS as DEFAULT_DECODE_TIMEOUT
from ..data.lists import Entry, read_classes, read_list
from ..data.transforms import normalize
from ..models import Checkpoint, create_model, read_checkpoint
from ..models.official import is_mae_config
from ..resources import classes_path, list_class_lists
from ..viz import confusion_png
from . import zero
from .accel import build_accelerator
from .distributed import is_sharded

logger = logging.getLogger("hiera_video")

ENSEMBLES = ("prob", "logit", "max")


@dataclass
class ClipSettings:
    """How a model's clips are made: from a config, else from the checkpoint, else the model."""
    num_frames: int
    sampling_rate: int
    target_fps: float
    sampling_mode: str
    crop_size: int
    mean: tuple
    std: tuple
    test_short_side: int | None = None  # 1-crop views (None: crop_size x 256 / 224)


def parse_views(text: str) -> tuple[int, int]:
    """`T,S` from the command line (an argparse type: bad text gives a message naming the option)."""
    try:
        t, s = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--views {text!r}: expected T,S such as 5,3") from None
    if t < 1 or s not in (1, 3):
        raise argparse.ArgumentTypeError(f"--views {text!r}: T >= 1 temporal clips, S 1 or 3 spatial crops")
    return t, s


def clip_settings(model, ckpt: Checkpoint | None, cfg: Config | None) -> ClipSettings:
    """How to cut clips for `model`: the config's data settings when given, else what the model was
    trained with (`model.pretrained_cfg`: this project's checkpoints, HF folders, Hub repos and registry
    tags record it), else the model's own input size with the official defaults (stride 4, 30 fps)."""
    if cfg is not None:
        d = cfg.data
        return ClipSettings(d.num_frames, d.sampling_rate, d.target_fps, d.sampling_mode, d.crop_size,
                            tuple(d.mean), tuple(d.std), d.test_short_side)
    meta = dict(getattr(model, "pretrained_cfg", None) or {})
    if ckpt is not None:  # a checkpoint read by hand and not passed through create_model
        meta = {**(ckpt.pretrained_cfg or {}), **meta}
    T, H = model.input_size[0], model.input_size[1]
    return ClipSettings(meta.get("num_frames", T), meta.get("sampling_rate", 4), meta.get("target_fps", 30.0),
                        meta.get("sampling_mode", "stride"), meta.get("crop_size", H),
                        tuple(meta.get("mean", (0.45,) * 3)), tuple(meta.get("std", (0.225,) * 3)),
                        meta.get("test_short_side"))


def load_model(ckpt_path: str, cfg: Config | None = None, model_name: str | None = None,
               classifier: bool = True):
    """A model in eval mode from any accepted checkpoint. Returns (model, checkpoint).

    The architecture comes from the checkpoint when it records one (this project's, HF folders), else
    from `model_name` or `cfg.model.name` (official `.pth`). With a config, the input size follows its
    frames and crop (position embeddings are interpolated if they differ). `classifier=True` requires a
    trained head (evaluation, prediction); feature extraction takes MAE encoders too."""
    ckpt = read_checkpoint(ckpt_path)
    if classifier and "head.projection.weight" not in ckpt.state_dict:
        raise ValueError(f"{ckpt_path}: no classifier in this checkpoint (an MAE or feature checkpoint?); "
                         f"finetune it first, or embed with `hiera-video embed`")
    name = None if ckpt.model_config else (model_name or (cfg.model.name if cfg else None))
    if ckpt.model_config is None and name is None:
        raise ValueError(f"{ckpt_path} does not record its architecture: give --model NAME or --cfg")
    overrides = {}
    if cfg is not None:
        overrides["input_size"] = (cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size)
    if name is None and is_mae_config(ckpt.model_config):
        overrides["num_classes"] = 0  # the MAE's encoder as a feature extractor, not the MAE
    return create_model(name, pretrained=ckpt, **overrides).eval(), ckpt


def class_names(ckpt: Checkpoint | None, cfg: Config | None, labels_file: str | None,
                num_classes: int, model_meta: dict | None = None) -> list[str]:
    """Names from an explicit file (or shipped list), else the config's, else the model's
    `pretrained_cfg` (`model_meta`), else the checkpoint's, else the indices."""
    if labels_file is not None and classes_path(labels_file) is None:  # asked for by name: never skipped
        raise FileNotFoundError(f"--labels {labels_file!r}: no such class-names file, nor a shipped list "
                                f"({', '.join(list_class_lists())})")
    for source in (labels_file, cfg.data.classes if cfg else None):
        if source and classes_path(source) is not None:  # a file, or a shipped list's name
            names = read_classes(source)
            if len(names) != num_classes:
                raise ValueError(f"{source} lists {len(names)} classes but the model predicts {num_classes}")
            return names
        if source:  # the config's names (shared with training, where they are optional): say they are unused
            logger.warning("data.classes: %s does not exist; using the checkpoint's class names", source)
    for meta in (model_meta, ckpt.pretrained_cfg if ckpt is not None else None):
        names = (meta or {}).get("classes")
        if isinstance(names, list) and len(names) == num_classes:
            return list(names)
    return [str(i) for i in range(num_classes)]


def multi_view_dataset(entries: list[Entry], s: ClipSettings, temporal: int, spatial: int,
                       backend: str = "auto", decode_timeout: float = DEFAULT_DECODE_TIMEOUT) -> MultiViewDataset:
    return MultiViewDataset(entries, num_frames=s.num_frames, sampling_rate=s.sampling_rate,
                            target_fps=s.target_fps, sampling_mode=s.sampling_mode, crop_size=s.crop_size,
                            num_temporal_clips=temporal, num_spatial_crops=spatial,
                            test_short_side=s.test_short_side, backend=backend,
                            decode_timeout=decode_timeout)


# ------------------------------------------------------------------------------------------------
# Scoring views
# ------------------------------------------------------------------------------------------------
@torch.no_grad()
def predict_views(accelerator, model, loader, num_classes: int, mean, std, progress: str | None = None,
                  features: bool = False, forward=None):
    """Outputs for every view in `loader`, gathered across processes and de-duplicated on (video,
    temporal, spatial). Returns (views [N, 3], outputs [N, D], labels [N], unreadable {video index:
    (path, error)}), complete on every process. Outputs are logits, with `features` the pooled
    pre-logits features, or with `forward(model, x, views)` whatever it returns ([n, D])."""
    model.eval()
    rows: dict[tuple[int, int, int], tuple[torch.Tensor, int]] = {}
    unreadable: dict[int, tuple[str, str]] = {}
    width = None
    bar = tqdm(loader, desc=progress, disable=progress is None or not accelerator.is_main_process,
               leave=False, dynamic_ncols=True)
    # A sharded model's forward is a collective: every process must run it for every batch, even one
    # whose videos were all unreadable (it then runs on one blank clip whose output is dropped).
    sharded = is_sharded(model)
    if sharded and features and not zero.is_deepspeed(accelerator):
        # Imported here: only FSDP2 runs (torch >= 2.5) need it, and torch 2.4 does not have it.
        from torch.distributed.fsdp import register_fsdp_forward_method
        for name in ("forward_features", "forward_head"):  # FSDP2 hooks only cover forward()
            register_fsdp_forward_method(accelerator.unwrap_model(model), name)
    for batch in bar:
        video, views, labels = batch["video"], batch["views"], batch["label"]
        if len(video) or sharded:
            blank = not len(video)
            with accelerator.autocast():
                x = normalize(video.new_zeros(1, *video.shape[1:]) if blank else video, mean, std)
                v = views.new_zeros(1, 3) if blank else views
                if forward is not None:
                    out = forward(model, x, v).float()
                elif features:
                    base = accelerator.unwrap_model(model)
                    with zero.gathered_root(base):  # ZeRO-3: the root's own weights (its hooks wrap forward only)
                        out = base.forward_head(base.forward_features(x), pre_logits=True).float()
                else:
                    out = model(x).float()
            width = out.shape[1]
            out = out[:0] if blank else out
        else:
            out = torch.zeros(0, width or num_classes, device=accelerator.device)
        # Ragged batches (unreadable videos have no views) differ per process: pad, gather, drop pads.
        views = accelerator.pad_across_processes(views.to(accelerator.device), dim=0, pad_index=-1)
        out = accelerator.pad_across_processes(out, dim=0)
        labels = accelerator.pad_across_processes(labels.to(accelerator.device), dim=0, pad_index=-1)
        views, out, labels = accelerator.gather((views, out, labels))
        for v, o, lb in zip(views.tolist(), out.cpu(), labels.tolist()):
            if v[0] >= 0:
                rows.setdefault(tuple(v), (o, lb))
        for idx, path, error in gather_object(batch["unreadable"]):
            unreadable[idx] = (path, error)
    keys = sorted(rows)
    views = torch.tensor(keys, dtype=torch.long).view(-1, 3)
    outputs = torch.stack([rows[k][0] for k in keys]) if keys else torch.zeros(0, width or num_classes)
    labels = torch.tensor([rows[k][1] for k in keys], dtype=torch.long)
    return views, outputs, labels, unreadable


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    if len(labels) == 0:
        return {"top1": float("nan"), "top5": float("nan")}
    # torchmetrics answers in float32 (0.99 -> 0.9900000095); six decimals are exact up to 10^6 videos.
    return {f"top{k}": round(multiclass_accuracy(logits, labels, num_classes, average="micro",
                                                 top_k=min(k, num_classes)).item(), 6) for k in (1, 5)}


def ensemble(views: torch.Tensor, logits: torch.Tensor, how: str = "prob") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-video scores from per-view logits. Returns (video indices [V], scores [V, C]).

    prob: mean of softmax probabilities (the usual multi-view protocol); logit: sum of logits;
    max: per class, the highest probability of any view."""
    if how not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {ENSEMBLES}, got {how!r}")
    videos, inverse = torch.unique(views[:, 0], return_inverse=True)
    C = logits.shape[1]
    if how == "logit":
        scores = torch.zeros(len(videos), C).index_add_(0, inverse, logits)
    elif how == "prob":
        counts = torch.bincount(inverse, minlength=len(videos)).clamp(min=1).unsqueeze(1)
        scores = torch.zeros(len(videos), C).index_add_(0, inverse, logits.softmax(-1)) / counts
    else:
        scores = torch.full((len(videos), C), -1.0).scatter_reduce_(
            0, inverse.unsqueeze(1).expand(-1, C), logits.softmax(-1), reduce="amax")
    return videos, scores


# ------------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------------
def classification_metrics(scores: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    acc = topk_accuracy(scores, labels, num_classes)
    pred = scores.argmax(-1)
    per_class = []
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            per_class.append((c, int(mask.sum()), float((pred[mask] == c).float().mean())))
    mean_class = float(np.mean([a for _, _, a in per_class])) if per_class else float("nan")
    return {"top1": acc["top1"], "top5": acc["top5"], "mean_class_acc": mean_class, "per_class": per_class}


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    m = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(m, (labels.numpy(), pred.numpy()), 1)
    return m


def write_reports(out: Path, entries: list[Entry], names: list[str], videos: torch.Tensor, scores: torch.Tensor,
                  unreadable: dict, num_views: int, how: str) -> dict:
    """metrics.json, predictions.csv, per_class.csv and confusion.png in `out`; returns the metrics."""
    out.mkdir(parents=True, exist_ok=True)
    C = scores.shape[1]
    labels = torch.tensor([entries[i].label for i in videos.tolist()], dtype=torch.long)
    labelled = labels >= 0
    m = classification_metrics(scores[labelled], labels[labelled], C)
    def finite(v: float) -> float | None:  # no labelled readable video: no accuracy (null, not NaN)
        return None if v != v else v

    metrics = {"top1": finite(m["top1"]), "top5": finite(m["top5"]),
               "mean_class_acc": finite(round(m["mean_class_acc"], 6)),
               "num_videos": len(videos) + len(unreadable), "num_views": num_views,
               "num_unreadable": len(unreadable), "ensemble": how,
               "unreadable": [{"path": p, "error": e} for p, e in (unreadable[k] for k in sorted(unreadable))]}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    k = min(5, C)
    top_scores, top_classes = scores.topk(k, dim=-1)
    by_video = {v: (c, s) for v, c, s in zip(videos.tolist(), top_classes.tolist(), top_scores.tolist())}
    with open(out / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "label_name"] + [x for i in range(1, k + 1) for x in (f"top{i}", f"score{i}")]
                   + ["error"])
        for i, e in enumerate(entries):
            label_name = names[e.label] if 0 <= e.label < C else ""
            if i in by_video:
                classes, vals = by_video[i]
                w.writerow([e.path, e.label, label_name] + [x for c, v in zip(classes, vals)
                                                            for x in (names[c], f"{v:.6f}")] + [""])
            elif i in unreadable:
                w.writerow([e.path, e.label, label_name] + [""] * (2 * k) + [unreadable[i][1]])
    with open(out / "per_class.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "name", "videos", "top1"])
        for c, n, a in m["per_class"]:
            w.writerow([c, names[c], n, f"{a:.6f}"])
    if labelled.any():
        confusion_png(confusion_matrix(scores[labelled].argmax(-1), labels[labelled], C), out / "confusion.png",
                      names=names)
    return metrics


def evaluate(cfg: Config, ckpt_path: str, out_dir: str | Path | None = None, model_name: str | None = None) -> dict:
    """Multi-view evaluation of `ckpt_path` on `cfg.eval.list` (else `cfg.data.val_list`); see the
    module docstring. Writes the reports to `out_dir` (default output_dir/eval) on the main process."""

    accelerator = build_accelerator(mixed_precision=cfg.train.mixed_precision)
    list_path = cfg.eval.list or cfg.data.val_list
    if not list_path:
        raise ValueError("nothing to evaluate: set eval.list or data.val_list")
    model, ckpt = load_model(ckpt_path, cfg, model_name)
    C = model.num_classes
    names = class_names(ckpt, cfg, None, C, getattr(model, "pretrained_cfg", None))
    entries = read_list(list_path, cfg.data.root, num_classes=C)
    settings = clip_settings(model, ckpt, cfg)
    ds = multi_view_dataset(entries, settings, cfg.eval.num_temporal_clips, cfg.eval.num_spatial_crops,
                            cfg.data.backend, cfg.data.decode_timeout)
    loader = DataLoader(ds, batch_size=cfg.eval.batch_size, shuffle=False, collate_fn=collate_views,
                        num_workers=cfg.data.num_workers, pin_memory=torch.cuda.is_available())
    if cfg.model.compile:  # as in training; the first batches pay for the compilation
        model = torch.compile(model)
    model = zero.inference_model(accelerator, model, cfg.eval.batch_size)
    loader = accelerator.prepare(loader)
    if accelerator.is_main_process:
        logger.info("evaluating %s on %d videos x %d views (%d temporal x %d spatial), ensemble %s", ckpt_path,
                    len(entries), ds.views_per_video, cfg.eval.num_temporal_clips, cfg.eval.num_spatial_crops,
                    cfg.eval.ensemble)
    views, logits, _, unreadable = predict_views(accelerator, model, loader, C, settings.mean, settings.std,
                                                 progress="evaluating")
    videos, scores = ensemble(views, logits, cfg.eval.ensemble)
    out = Path(out_dir) if out_dir else Path(cfg.output_dir) / "eval"
    metrics = None
    if accelerator.is_main_process:
        metrics = write_reports(out, entries, names, videos, scores, unreadable, len(views), cfg.eval.ensemble)
        readable = metrics["num_videos"] - metrics["num_unreadable"]
        acc = {k: "n/a" if metrics[k] is None else f"{metrics[k]:.4f}" for k in ("top1", "top5", "mean_class_acc")}
        logger.info("top-1 %s, top-5 %s, mean class accuracy %s over the %d readable videos of %d (%d views; "
                    "%d unreadable, listed in metrics.json); reports in %s", acc["top1"], acc["top5"],
                    acc["mean_class_acc"], readable, metrics["num_videos"], metrics["num_views"],
                    metrics["num_unreadable"], out)
    accelerator.wait_for_everyone()
    return metrics or {}


# ------------------------------------------------------------------------------------------------
# A few videos, no list (tools/predict.py)
# ------------------------------------------------------------------------------------------------
@torch.no_grad()
def predict_videos(model, settings: ClipSettings, paths: list[str], names: list[str], temporal: int = 5,
                   spatial: int = 3, k: int = 5, device: str | torch.device = "cpu",
                   backend: str = "auto") -> list[dict]:
    """Top-k classes (mean of view probabilities) of each video:
    [{"path", "top": [{"class", "index", "prob"}, ...], "error"}].
    A video that cannot be read gets its error and no predictions; the others still run."""
    device = torch.device(device)
    model = model.to(device).eval()
    ds = multi_view_dataset([Entry(p, -1, i + 1) for i, p in enumerate(paths)], settings, temporal, spatial, backend)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)
    results = []
    for i in range(len(ds)):
        item = ds[i]
        if item["error"] is not None:
            results.append({"path": paths[i], "top": [], "error": item["error"]})
            continue
        with autocast:
            logits = model(normalize(item["video"].to(device), settings.mean, settings.std)).float()
        probs = logits.softmax(-1).mean(0).cpu()
        vals, idx = probs.topk(min(k, len(probs)))
        top = [{"class": names[c], "index": c, "prob": round(v, 6)} for c, v in zip(idx.tolist(), vals.tolist())]
        results.append({"path": paths[i], "top": top, "error": None})
    return results
