"""Optimizer parameter groups with layer-wise learning-rate decay, the warmup + cosine schedule,
and an exponential moving average of the weights that works on sharded (FSDP) models.

Layer ids follow the finetuning recipe of MAE-style models: patch and position embeddings are layer 0,
block i is layer i + 1, the final norm and the head are the last layer; a parameter's lr is
`lr * layer_decay ** (num_layers + 1 - layer_id)`. Norms, biases and position embeddings get no
weight decay.
"""

from __future__ import annotations

import contextlib
import math

import torch

from . import zero
from .distributed import (_is_main, _local, check_fits, full_model_state, is_deepspeed_model, load_model_state,
                          named_tensors)


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
    """Exponential moving average of a model's weights, for plain, DDP, sharded (FSDP) and DeepSpeed
    models.

    One EMA tensor per parameter and buffer, shaped like this process's part of it (each process
    averages its own shards or ZeRO-3 partitions; buffers are copied), on the model's device, in
    float32 also where the model's weights are 16-bit (DeepSpeed casts the module itself: an average
    with decay 0.9999 kept in bf16 would not move). Nothing copies the module
    itself (FSDP modules cannot be deep-copied). Validate with the EMA weights swapped in:

        with ema.applied(model):
            predict_views(accelerator, model, ...)

    `state_dict()` gathers the full EMA weights (a collective: every process calls it; complete on
    the main process, `{}` on the others, keys as `unwrap_model(model).state_dict()`), and
    `load_state_dict(full_sd)` shards a full state back (every process passes all of it, except for
    an FSDP2 model, where the main process's is broadcast and the others may pass `{}`).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = model  # the live model: state_dict/load_state_dict go through it
        named = list(named_tensors(model))
        self.names = [n for n, _ in named]
        self.shadow = [_local(t).detach().clone().to(_ema_dtype(t)) for _, t in named]
        # Parameters are averaged; buffers (norm statistics, step counters) follow the model.
        params = {id(p) for p in model.parameters()}
        self.averaged = [id(t) in params and t.dtype.is_floating_point for _, t in named]

    def _live(self, model: torch.nn.Module) -> list[torch.Tensor]:
        """This process's part of each of the model's tensors, checked against the EMA's."""
        named = list(named_tensors(model))
        if [n for n, _ in named] != self.names:
            missing = sorted(set(self.names) - {n for n, _ in named})
            extra = sorted({n for n, _ in named} - set(self.names))
            raise ValueError(f"the model is not the one the EMA was made for: missing {missing[:5]}, extra {extra[:5]}")
        live = [_local(t).detach() for _, t in named]
        for name, ema, cur in zip(self.names, self.shadow, live):
            if ema.shape != cur.shape:  # e.g. called inside an FSDP forward, with the full weights out
                raise ValueError(f"{name}: the model holds {tuple(cur.shape)} here, the EMA {tuple(ema.shape)} "
                                 f"(call update/applied outside forward and backward)")
        return live

    @torch.no_grad()
    def update(self, model: torch.nn.Module | None = None) -> None:
        """ema = decay * ema + (1 - decay) * weights, on this process's shards; buffers copied."""
        live = self._live(self.model if model is None else model)
        pairs = [(e, c.to(e.dtype)) for e, c, avg in zip(self.shadow, live, self.averaged) if avg]
        if pairs:
            torch._foreach_lerp_([e for e, _ in pairs], [c for _, c in pairs], 1.0 - self.decay)
        for e, c, avg in zip(self.shadow, live, self.averaged):
            if not avg:
                e.copy_(c)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module | None = None):
        """The EMA weights in the live model for the block (in place, shard by shard), the training
        weights restored bitwise after it, also when it raises. Costs one copy of this process's
        shards while it lasts."""
        target = self.model if model is None else model
        live = self._live(target)
        with torch.no_grad():
            backup = [t.clone() for t in live]
            for t, e in zip(live, self.shadow):
                t.copy_(e)
        zero.release(target)  # ZeRO-3: forwards use gathered copies of the partitions just written
        try:
            yield self.model if model is None else model
        finally:
            with torch.no_grad():
                for t, b in zip(live, backup):
                    t.copy_(b)
            zero.release(target)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if is_deepspeed_model(self.model):
            # Not through the model: its full weights are DeepSpeed's fp32 master copy, not the module's.
            main = _is_main(None)
            out = {}
            for (name, t), e in zip(named_tensors(self.model), self.shadow):
                full = zero.gather_partition(t, e)  # a collective for ZeRO-3 partitions
                if main:
                    out[name] = full.to("cpu", copy=True)
            return out
        with self.applied():
            return full_model_state(None, self.model)

    def load_state_dict(self, state: dict[str, torch.Tensor], source: str = "the EMA state") -> None:
        if is_deepspeed_model(self.model):
            check_fits(self.model, state, source)
            with torch.no_grad():
                for (name, t), e in zip(named_tensors(self.model), self.shadow):
                    e.copy_(zero.slice_partition(t, state[name].to(e.device)))
            return
        with self.applied() as model:
            load_model_state(None, model, state, source)
            with torch.no_grad():
                for e, t in zip(self.shadow, self._live(model)):
                    e.copy_(t)

    @property
    def module(self):
        raise AttributeError("ModelEma.module is gone (an FSDP model cannot be copied): validate with "
                             "`with ema.applied(model): ...`")


def _ema_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else t.dtype
