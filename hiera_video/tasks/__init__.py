"""Training tasks behind one protocol: the loop (`engine/train.py`) drives a `Task` and has no task branch.

A task builds its model and datasets, checks the paths its config names, augments a batch on the
device, computes the loss of a batch, validates, and names the figure that picks model_best.pt.
`TASKS` is the one table of them (the config's `task:` value -> its class); adding a task is one
class and one line here. Each task's code lives in its own room: `classify.py`, `mae/`, `ava/`.
A task's module is imported when a run asks for it, so reading a config never loads AVA's file
formats and RoI head, and the task modules may import `config` (which reads this table).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
import torch

from ..data.datasets import BatchAugment

# task name -> "module:class"
TASKS = {"classify": "hiera_video.tasks.classify:ClassifyTask",
         "mae": "hiera_video.tasks.mae.task:MaeTask",
         "ava": "hiera_video.tasks.ava.task:AvaTask"}


@dataclass
class Datasets:
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None
    collate_train: object
    collate_val: object


class Task(ABC):
    """One kind of training. `best_metric` (a key of `validate`'s result) and `higher_is_better`
    pick model_best.pt; `command` is the `hiera-video` command that runs it. `cfg` is the run's
    `Config` (this package imports no config: config.py reads the TASKS table)."""
    best_metric: str = "val_loss"
    higher_is_better: bool = False
    command: str = "finetune"

    def __init__(self, cfg):
        self.cfg = cfg

    @abstractmethod
    def check_paths(self) -> None:
        """The files and folders the config names exist (before any download, build or output),
        each error naming its config key."""

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


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_task(cfg) -> Task:
    return task_class(cfg.task)(cfg)
