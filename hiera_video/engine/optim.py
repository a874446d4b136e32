"""Optimizer parameter groups with layer-wise learning-rate decay, the warmup + cosine schedule,
and an exponential moving average of the weights.

Layer ids follow the finetuning recipe of MAE-style models: patch and position embeddings are layer 0,
block i is layer i + 1, the final norm and the head are the last layer; a parameter's lr is
`lr * layer_decay ** (num_layers + 1 - layer_id)`. Norms, biases and position embeddings get no
weight decay.
"""

from __future__ import annotations

import copy
import math

import torch


def layer_id(name: str, num_blocks: int) -> int:
    if name.startswith(("patch_embed.", "pos_embed")):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_blocks + 1  # norm, head


def param_groups(model: torch.nn.Module, weight_decay: float, layer_decay: float = 1.0) -> list[dict]:
    """AdamW groups for a Hiera: one per (layer, decay or not), each with an `lr_scale`."""
    num_blocks = len(model.blocks)
    no_decay_names = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = p.ndim > 1 and name not in no_decay_names
        lid = layer_id(name, num_blocks)
        group = groups.setdefault((lid, decay), {
            "params": [], "weight_decay": weight_decay if decay else 0.0, "layer_id": lid,
            "lr_scale": layer_decay ** (num_blocks + 1 - lid)})
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, layer_decay: float,
                    betas=(0.9, 0.999), name: str = "adamw", momentum: float = 0.9) -> torch.optim.Optimizer:
    """AdamW (finetuning, MAE) or SGD with Nesterov momentum (the AVA recipe), over `param_groups`."""
    groups = param_groups(model, weight_decay, layer_decay)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name != "adamw":
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {name!r}")
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float = 0.0):
    """lr multiplier per optimizer update: linear from 0 over `warmup_steps`, then a cosine down to
    `min_ratio` at `total_steps`."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                    min_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per optimizer update by the training loop (not by Accelerate, which would step
    it once per process)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup_steps, total_steps, min_ratio))


class ModelEma:
    """Exponential moving average of a model's weights (buffers are copied), kept on its device.
    `state_dict`/`load_state_dict` make it checkpointable with the rest of the training state."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for ema, cur in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.dtype.is_floating_point:
                ema.lerp_(cur.detach(), 1.0 - self.decay)
            else:
                ema.copy_(cur)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
