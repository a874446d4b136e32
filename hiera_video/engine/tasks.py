"""What a training task is, and the two video-level ones: classification (finetuning) and MAE
pretraining. AVA detection, the third, lives with the rest of AVA's training code in `engine/ava.py`.

The loop in `engine/train.py` knows nothing task-specific: it asks the task for its model, datasets
and collate functions, the batch-wise augmentation, the loss of a batch and the validation figures,
and which figure picks `model_best.pt`. Adding a task means writing one `Task` subclass and naming it
in `TASKS` (the config's `task:` value).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ..config import Config
from ..data.datasets import BatchAugment, ClipDataset, MultiViewDataset, collate_clips, collate_views
from ..data.lists import read_list
from ..data.mix import Mixup, soft_target_cross_entropy
from ..data.transforms import RandAugment
from ..models import create_model
from .evaluate import predict_views, topk_accuracy


@dataclass
class Datasets:
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None
    collate_train: object
    collate_val: object


class Task(ABC):
    """One kind of training. `best_metric` (a key of `validate`'s result) and `higher_is_better`
    pick model_best.pt."""
    best_metric: str = "val_loss"
    higher_is_better: bool = False

    def __init__(self, cfg: Config):
        self.cfg = cfg

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        ...

    @abstractmethod
    def datasets(self) -> Datasets:
        ...

    def batch_augment(self) -> BatchAugment:
        """Device-side augmentation of a uint8 batch; by default only normalisation."""
        return BatchAugment(self.cfg.data.mean, self.cfg.data.std)

    @abstractmethod
    def loss(self, model, x: torch.Tensor, target, batch: dict) -> torch.Tensor:
        ...

    @abstractmethod
    def validate(self, accelerator, model, loader) -> dict:
        """Validation figures (gathered: the same on every process)."""


# ------------------------------------------------------------------------------------------------
# Shared pieces of the video-level tasks
# ------------------------------------------------------------------------------------------------
def _input_size(cfg: Config) -> tuple[int, int, int]:
    return cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size


def _entries(cfg: Config, path: str):
    if cfg.task == "mae":  # MAE needs no labels
        return read_list(path, cfg.data.root, labelled=False)
    return read_list(path, cfg.data.root, num_classes=cfg.model.num_classes)


def train_dataset(cfg: Config) -> ClipDataset:
    d = cfg.data
    if not d.train_list:
        raise ValueError("data.train_list is not set: give a list of `path label` lines (data_lists/README.md)")
    randaug = RandAugment(d.randaug_magnitude, d.randaug_num_ops, d.randaug_std) if d.randaug_num_ops > 0 else None
    return ClipDataset(_entries(cfg, d.train_list), num_frames=d.num_frames, sampling_rate=d.sampling_rate,
                       target_fps=d.target_fps, sampling_mode=d.sampling_mode, crop_size=d.crop_size,
                       scale=tuple(d.scale), hflip=d.hflip, randaug=randaug, randaug_order=d.randaug_order,
                       short_side=d.train_short_side, num_repeats=d.num_repeats, backend=d.backend)


def eval_dataset(cfg: Config, list_path: str, temporal: int, spatial: int) -> MultiViewDataset:
    d = cfg.data
    return MultiViewDataset(_entries(cfg, list_path), num_frames=d.num_frames, sampling_rate=d.sampling_rate,
                            target_fps=d.target_fps, sampling_mode=d.sampling_mode, crop_size=d.crop_size,
                            num_temporal_clips=temporal, num_spatial_crops=spatial,
                            test_short_side=d.test_short_side, backend=d.backend)


def _video_datasets(cfg: Config) -> Datasets:
    # Validation during training: one centre view per video (eval.* views are for tools/evaluate.py).
    val = eval_dataset(cfg, cfg.data.val_list, 1, 1) if cfg.data.val_list else None
    return Datasets(train_dataset(cfg), val, collate_clips, collate_views)


# ------------------------------------------------------------------------------------------------
# The tasks
# ------------------------------------------------------------------------------------------------
class ClassifyTask(Task):
    """Finetuning a classifier: soft-target cross entropy after mixup/cutmix; validation top-1/top-5."""
    best_metric, higher_is_better = "val_top1", True

    def build_model(self):
        c = self.cfg.model
        if c.name.startswith("mae_"):
            raise ValueError(f"model.name {c.name!r} does not fit task 'classify': it needs a classifier "
                             f"(hiera_*), e.g. {c.name[len('mae_'):]}")
        model = create_model(c.name, pretrained=c.pretrained, num_classes=c.num_classes, drop_path_rate=c.drop_path,
                             head_dropout=c.dropout, input_size=_input_size(self.cfg))
        model.set_grad_checkpointing(c.grad_checkpointing)
        return model

    def datasets(self):
        return _video_datasets(self.cfg)

    def batch_augment(self):
        d = self.cfg.data
        mixup = Mixup(self.cfg.model.num_classes, d.mixup, d.cutmix, label_smoothing=d.label_smoothing,
                      enabled=d.mixup > 0 or d.cutmix > 0)
        return BatchAugment(d.mean, d.std, d.erase_prob, mixup)

    def loss(self, model, x, target, batch):
        return soft_target_cross_entropy(model(x).float(), target)

    def validate(self, accelerator, model, loader):
        _, logits, labels, unreadable = predict_views(accelerator, model, loader, self.cfg.model.num_classes,
                                                      self.cfg.data.mean, self.cfg.data.std, progress="validating")
        acc = topk_accuracy(logits, labels, self.cfg.model.num_classes)
        return {"val_top1": acc["top1"], "val_top5": acc["top5"], "val_videos": len(labels),
                "val_unreadable": len(unreadable)}


class MaeTask(Task):
    """Sparse MAE pretraining: the model's own loss under random masks (from the global RNG, which
    checkpoints restore); validation loss under masks seeded by video id (the same every epoch)."""
    best_metric, higher_is_better = "val_loss", False

    def build_model(self):
        c = self.cfg.model
        if not c.name.startswith("mae_"):
            raise ValueError(f"model.name {c.name!r} does not fit task 'mae': it needs an mae_* model, "
                             f"e.g. mae_{c.name}")
        extra = {key: getattr(c, key) for key in ("mask_ratio", "norm_pix_loss") if getattr(c, key) is not None}
        model = create_model(c.name, pretrained=c.pretrained, drop_path_rate=c.drop_path,
                             input_size=_input_size(self.cfg), **extra)
        model.set_grad_checkpointing(c.grad_checkpointing)
        return model

    def datasets(self):
        return _video_datasets(self.cfg)

    def loss(self, model, x, target, batch):
        return model(x).loss

    def validate(self, accelerator, model, loader):
        _, losses, _, unreadable = predict_views(accelerator, model, loader, 1, self.cfg.data.mean,
                                                 self.cfg.data.std, progress="validating", forward=mae_clip_losses)
        return {"val_loss": round(losses.mean().item(), 6) if len(losses) else float("nan"),
                "val_videos": len(losses), "val_unreadable": len(unreadable)}


@torch.no_grad()
def mae_clip_losses(model, x: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """Validation for MAE: each clip's loss [N, 1] under a mask seeded by its video index, so the
    figure is the same every epoch, for any batch size and number of processes."""
    base = getattr(model, "module", model)  # DDP-wrapped or not; the forward itself goes through `model`
    masks = torch.cat([base.get_random_mask(1, base.mask_ratio, generator=torch.Generator().manual_seed(int(v)))
                       for v in views[:, 0].tolist()]).to(x.device)
    out = model(x, mask=masks)
    # Every clip has the same number of masked patches: [masked patches of the batch, P] -> [N, ...]
    return (out.pred.float() - out.label.float()).pow(2).view(len(x), -1).mean(1, keepdim=True)


# task name -> "module:class", imported on use (AVA pulls in its file formats and RoI head)
TASKS = {"classify": f"{__name__}:ClassifyTask", "mae": f"{__name__}:MaeTask",
         "ava": f"{__package__}.ava:AvaTask"}


def get_task(cfg: Config) -> Task:
    if cfg.task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    module, cls = TASKS[cfg.task].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
