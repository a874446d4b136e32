"""Finetuning a classifier (`task: classify`): soft-target cross entropy after mixup/cutmix, validation
top-1/top-5 over one centre view per video."""

from __future__ import annotations

from ..data.datasets import BatchAugment
from ..data.lists import read_classes
from ..data.mix import Mixup, soft_target_cross_entropy
from ..engine.evaluate import predict_views, topk_accuracy
from ..errors import ConfigError, ListError
from ..models import create_model
from ..resources import classes_path
from . import Task
from .video import check_video_paths, video_datasets


def check_class_count(classes: str, num_classes: int) -> None:
    """data.classes names as many classes as the model predicts (else every report after training would
    fail on it). A missing file stays a warning at training: only reports use the names."""
    if classes_path(classes) is None:
        return
    try:
        names = read_classes(classes)
    except ListError as e:
        raise ConfigError(f"data.classes: {e}") from None
    if len(names) != num_classes:
        raise ConfigError(f"data.classes: {classes} lists {len(names)} classes but model.num_classes is "
                          f"{num_classes}; make them agree")


class ClassifyTask(Task):
    best_metric, higher_is_better = "val_top1", True

    def check_paths(self):
        check_video_paths(self.cfg)
        if self.cfg.data.classes:
            check_class_count(self.cfg.data.classes, self.cfg.model.num_classes)

    def build_model(self):
        c, d = self.cfg.model, self.cfg.data
        if c.name.startswith("mae_"):
            raise ValueError(f"model.name {c.name!r} does not fit task 'classify': it needs a classifier "
                             f"(hiera_*), e.g. {c.name[len('mae_'):]}")
        model = create_model(c.name, pretrained=c.pretrained, num_classes=c.num_classes, drop_path_rate=c.drop_path,
                             head_dropout=c.dropout, input_size=(d.num_frames, d.crop_size, d.crop_size))
        model.set_grad_checkpointing(c.grad_checkpointing)
        return model

    def datasets(self):
        return video_datasets(self.cfg, labelled=True)

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
