"""Frozen-feature probes: how much class information an encoder's embeddings hold, with the encoder
left as it is (the usual yardstick of self-supervised pretraining).

Embeddings are those of `hiera-video embed` (pooled pre-logits features, L2-normalised, any checkpoint:
classifiers, MAE encoders, or a random initialisation written to a file first), of a labelled training
list and a validation list. Two classifiers are fitted on the training embeddings and scored on the
validation ones:
* k-NN: each validation video takes the labels of its k nearest training videos by cosine
  similarity, votes weighted by exp(similarity / T) (k=20, T=0.07, as DINO evaluates encoders);
  also the nearest neighbour alone (1-NN);
* linear: multinomial logistic regression on standardised embeddings (L-BFGS, L2 penalty).
Without a training list, k-NN and 1-NN run leave-one-out over the validation list.
"""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import PartialState

from ..config import Config
from ..fileio import atomic_write
from ..models import create_model, save_model
from ..retrieval import load_index
from .embed import extract_embeddings

logger = logging.getLogger("hiera_video")


def knn_scores(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor, num_classes: int,
               k: int = 20, temperature: float = 0.07, leave_one_out: bool = False) -> torch.Tensor:
    """Class votes [Q, num_classes] of each query from its k nearest training rows (cosine similarity
    of L2-normalised rows; vote exp(sim / temperature)). `leave_one_out`: queries are the training rows
    themselves, and none votes for itself."""
    sim = F.normalize(queries.double(), dim=1) @ F.normalize(train.double(), dim=1).T  # [Q, N]
    if leave_one_out:
        sim.fill_diagonal_(float("-inf"))
    k = min(k, sim.shape[1] - int(leave_one_out))
    top, idx = sim.topk(k, dim=1)  # [Q, k]
    votes = torch.zeros(len(queries), num_classes, dtype=torch.float64)
    return votes.scatter_add_(1, train_labels[idx], (top / temperature).exp())


def linear_probe(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor, num_classes: int,
                 weight_decay: float = 1e-3, max_iter: int = 200) -> torch.Tensor:
    """Logits [Q, num_classes] of a multinomial logistic regression fitted on the training rows
    (standardised with the training mean and std; full-batch L-BFGS, deterministic)."""
    mean, std = train.double().mean(0), train.double().std(0).clamp(min=1e-6)
    x, q = (train.double() - mean) / std, (queries.double() - mean) / std
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, train_labels) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        return q @ w + b


def _accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    k = min(k, scores.shape[1])
    return round(float((scores.topk(k, dim=1).indices == labels[:, None]).any(1).double().mean()), 6)


def load_embeddings(folder: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(embeddings [n, D], labels [n], unreadable count) of an embedding folder's readable rows."""
    emb, _, labels, _ = load_index(folder)
    if any(lb is None for lb in labels):
        raise ValueError(f"{folder}: the list has unlabelled lines; a probe needs `path label` lines")
    ok = torch.isfinite(emb).all(1)
    return emb[ok], torch.tensor(labels)[ok], int((~ok).sum())


def write_random_init(model_name: str, path: Path, cfg: Config | None = None, seed: int = 0) -> Path:
    """A randomly initialised encoder of `model_name` (the model's own initialisation, seeded), written as
    a checkpoint so that it is probed exactly as trained weights are: the yardstick for pretraining."""
    overrides = {}
    if cfg is not None:
        overrides["input_size"] = (cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size)
    if model_name.startswith("mae_"):  # the encoder, built as the classifier it transfers into
        model_name = model_name[len("mae_"):]
    torch.manual_seed(seed)
    model = create_model(model_name, num_classes=0, **overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path, random_init_seed=seed)
    return path


def run_probe(cfg: Config | None, ckpt: str, val_list: str, out: str | Path, train_list: str | None = None,
              model_name: str | None = None, views: tuple[int, int] = (1, 1), k: int = 20,
              temperature: float = 0.07, linear: bool = True, batch_size: int = 4, num_workers: int = 2) -> dict:
    """Embed the lists with `ckpt` (into OUT/embeddings/{train,val}, resumable), fit the probes, write
    OUT/probe.json. Returns the metrics (on every process; only the main one writes)."""

    out = Path(out)
    folders = {"val": out / "embeddings" / "val"}
    if train_list is not None:
        folders["train"] = out / "embeddings" / "train"
    for name, folder in folders.items():
        extract_embeddings(cfg, ckpt, train_list if name == "train" else val_list, folder, *views,
                           model_name=model_name, batch_size=batch_size, num_workers=num_workers)
    val, val_labels, val_bad = load_embeddings(folders["val"])
    if train_list is not None:
        train, train_labels, train_bad = load_embeddings(folders["train"])
    else:
        train, train_labels, train_bad = val, val_labels, 0
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"no readable labelled video to probe with ({len(train)} training, {len(val)} validation)")
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    loo = train_list is None
    votes = knn_scores(train, train_labels, val, num_classes, k, temperature, leave_one_out=loo)
    nearest = knn_scores(train, train_labels, val, num_classes, 1, temperature, leave_one_out=loo)
    metrics = {"checkpoint": str(ckpt), "protocol": "leave-one-out on val" if loo else "train -> val",
               "knn_top1": _accuracy(votes, val_labels), "knn_top5": _accuracy(votes, val_labels, 5),
               "nn1_top1": _accuracy(nearest, val_labels), "k": k, "temperature": temperature}
    if linear and not loo:
        logits = linear_probe(train, train_labels, val, num_classes)
        metrics.update(linear_top1=_accuracy(logits, val_labels), linear_top5=_accuracy(logits, val_labels, 5))
    metrics.update(num_classes=num_classes, num_train=len(train), num_val=len(val), views=list(views),
                   dimension=int(val.shape[1]), unreadable=train_bad + val_bad,
                   train_list=None if loo else str(train_list), val_list=str(val_list),
                   date=datetime.datetime.now().isoformat(timespec="seconds"))
    if PartialState().is_main_process:
        atomic_write(out / "probe.json", json.dumps(metrics, indent=2) + "\n")
        logger.info("probe of %s: k-NN top-1 %.4f, 1-NN %.4f%s (%d training, %d validation videos)", ckpt,
                    metrics["knn_top1"], metrics["nn1_top1"],
                    f", linear {metrics['linear_top1']:.4f}" if "linear_top1" in metrics else "", len(train), len(val))
    return metrics
