"""DeepSpeed ZeRO (stages 1, 2 and 3, through `accelerate launch --use_deepspeed`) behind the same
full-state functions as DDP and FSDP (engine/distributed.py calls these), so that a ZeRO run writes
the pickle-free checkpoint of any other run and resumes from any of them.

What goes through DeepSpeed's own API: the full fp32 master weights and each parameter's optimizer
state (`deepspeed.utils.safe_get_full_fp32_param` / `safe_get_full_optimizer_state` and their
`safe_set_` twins: collectives over the partitions), and ZeRO-3's gathering of the 16-bit module
weights (`deepspeed.zero.GatheredParameters`). What is ours: the map from model parameters to the
optimizer's groups (the ZeRO optimizer keeps the client optimizer's groups in order: `bit16_groups`
for stages 1-2, `fp16_groups` for stage 3), the per-group counters (AdamW's `step`), and creating
the optimizer state before the first update so that a resume can fill it. Every function is called
by every process, in the same order.
Details: docs/training.md (hiera_video/engine/zero.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping

import torch
import torch.distributed as dist

from ..errors import ConfigError

logger = logging.getLogger("hiera_video")

# Accelerate's DeepSpeed support imports transformers even when no Hugging Face model is involved
# (accelerate 1.16, DeepSpeedPlugin.select): both are checked at the start, with what to install.
NEEDS = ("deepspeed", "transformers")


def is_deepspeed(accelerator) -> bool:
    return accelerator is not None and accelerator.distributed_type.value == "DEEPSPEED"


def requested(env: Mapping[str, str]) -> bool:
    """Whether the launch asks for DeepSpeed (`accelerate launch --use_deepspeed` or its config file)."""
    return env.get("ACCELERATE_USE_DEEPSPEED", "false").strip().lower() in ("1", "true", "yes")


def missing_packages() -> list[str]:
    import importlib.util
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def stage(accelerator) -> int:
    """The ZeRO stage of a DeepSpeed run (0 when it is not one)."""
    if not is_deepspeed(accelerator):
        return 0
    return int(accelerator.state.deepspeed_plugin.zero_stage)


def plugin(grad_clip: float | None):
    """The `DeepSpeedPlugin` of this launch (read from Accelerate's environment, as `Accelerator`
    would), with gradient clipping set to the run's `optim.grad_clip`: under DeepSpeed the engine
    clips inside `backward`, and `Accelerator.clip_grad_norm_` only reports the norm. A DeepSpeed
    config file that sets another value is an error naming both."""
    from accelerate.utils import DeepSpeedPlugin

    p = DeepSpeedPlugin()
    ours = float(grad_clip or 0.0)  # DeepSpeed's 0: no clipping (optim.grad_clip: null)
    theirs = p.deepspeed_config.get("gradient_clipping", "auto")
    if theirs in (None, "auto"):
        p.deepspeed_config["gradient_clipping"] = ours
    elif float(theirs) != ours:
        raise ConfigError(f"optim.grad_clip is {grad_clip} but the DeepSpeed config (accelerate launch "
                          f"--gradient_clipping or its config file) says gradient_clipping: {theirs}; make them "
                          f"agree (DeepSpeed clips inside the engine, so its value is the one that would apply)")
    return p


def check_training(accelerator, on_nonfinite: str, mixed_precision: str) -> None:
    """At the start of a ZeRO run, what it cannot do: raises ConfigError, or warns."""
    if stage(accelerator) not in (1, 2, 3):
        raise ConfigError(f"DeepSpeed ZeRO stage {stage(accelerator)}: only stages 1, 2 and 3 keep the optimizer "
                          f"state this project gathers into its checkpoints (accelerate launch --zero_stage 1/2/3)")
    if on_nonfinite == "skip":
        # The engine steps inside backward(), before the loop could see the loss and skip the update.
        raise ConfigError("train.on_nonfinite=skip is not possible under DeepSpeed (its engine updates the "
                          "weights inside backward); use train.on_nonfinite=stop, or DDP/FSDP")
    if mixed_precision == "fp16" and accelerator.is_main_process:
        logger.warning("DeepSpeed fp16: its dynamic loss scale is not in this project's checkpoints, so a resumed "
                       "run starts from the initial scale and is not bitwise the uninterrupted one (bf16 has no "
                       "loss scale)")


def _zero_optimizer(optimizer):
    """The DeepSpeedZeroOptimizer(_Stage3) inside Accelerate's wrappers."""
    opt = optimizer
    for _ in range(3):
        if hasattr(opt, "bit16_groups") or hasattr(opt, "fp16_groups"):
            return opt
        opt = getattr(opt, "optimizer", None)
    raise ValueError("the optimizer is not a DeepSpeed ZeRO optimizer (ZeRO stage 0, or an optimizer set in the "
                     "DeepSpeed config file, is not supported: leave `optimizer` out of it so that the run's "
                     "optim.* settings build it)")


def _subs(zero) -> list[list[int]]:
    """For each client optimizer group, in order, its inner groups: the same index for stages 1-2;
    for stage 3, the sub-groups it was split into (sub_group_size)."""
    if not hasattr(zero, "sub_group_to_group_id"):
        return [[g] for g in range(len(zero.bit16_groups))]
    subs: dict[int, list[int]] = {}
    for sub, g in sorted(zero.sub_group_to_group_id.items()):
        subs.setdefault(g, []).append(sub)
    return [subs[g] for g in sorted(subs)]


def _param_groups(zero) -> list[list[torch.nn.Parameter]]:
    """The model parameters of each client optimizer group, in the client's order."""
    lp = zero.fp16_groups if hasattr(zero, "sub_group_to_group_id") else zero.bit16_groups
    return [[p for sub in subs for p in lp[sub]] for subs in _subs(zero)]


def _flat_partitions(zero) -> list[list[torch.Tensor]]:
    """Per client group, the flat fp32 partitions that key the inner optimizer's state."""
    flat = (zero.fp32_partitioned_groups_flat if hasattr(zero, "sub_group_to_group_id")
            else zero.single_partition_of_fp32_groups)
    return [[flat[sub] for sub in subs] for subs in _subs(zero)]


def _link_states(zero) -> None:
    """Stages 1-2 reach a parameter's optimizer state through views linked once, right after the
    inner optimizer's first step of the first group, when the other groups have no state yet
    (DeepSpeed 0.19.8: with several groups, as layer decay makes, `safe_get_full_optimizer_state`
    then fails for all but the first). Linking again, with every group's state in place, is what the
    first link would have done."""
    if hasattr(zero, "sub_group_to_group_id"):
        return  # stage 3 reads the inner optimizer's state directly
    from deepspeed.utils import lazy_init_hp_params_optimizer_state
    for params, flat in zip(zero.bit16_groups, zero.single_partition_of_fp32_groups):
        if zero.optimizer.state.get(flat):
            lazy_init_hp_params_optimizer_state(params, flat, zero.optimizer.state)
    zero._hp_optimizer_states_linked = True


def _shape(p: torch.Tensor) -> torch.Size:
    return p.ds_shape if hasattr(p, "ds_shape") else p.shape


def named_state(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor, bool]]:
    """(name, tensor, is_parameter) for everything `module.state_dict()` would hold, without calling
    it (ZeRO-3 parameters are empty outside a gather)."""
    for prefix, m in module.named_modules():
        dot = f"{prefix}." if prefix else ""
        for name, p in m.named_parameters(recurse=False):
            yield dot + name, p, True
        for name, b in m.named_buffers(recurse=False):
            if b is not None and name not in m._non_persistent_buffers_set:
                yield dot + name, b, False


def _gathered(p: torch.Tensor):
    """The full 16-bit value of a ZeRO-3 parameter for the block; a no-op for other tensors."""
    if not hasattr(p, "ds_id"):
        return contextlib.nullcontext()
    import deepspeed
    return deepspeed.zero.GatheredParameters([p], modifier_rank=None)


# ------------------------------------------------------------------------------------------------
# Weights
# ------------------------------------------------------------------------------------------------
@torch.no_grad()
def full_weights(module: torch.nn.Module, main: bool) -> dict[str, torch.Tensor]:
    """The full fp32 master weights (the optimizer's copy, not the 16-bit module weights of a
    mixed-precision run) and buffers, on the CPU on the main process, `{}` elsewhere."""
    from deepspeed.utils import safe_get_full_fp32_param

    out = {}
    for name, t, is_param in named_state(module):
        full = safe_get_full_fp32_param(t) if is_param else None
        if full is None:  # a buffer, or a frozen parameter (not in the optimizer)
            with _gathered(t):
                full = t.detach().float() if t.is_floating_point() else t.detach()
                full = full.to("cpu", copy=True) if main else None
        elif main:
            full = full.view(_shape(t)).to("cpu", copy=True)
        if main:
            out[name] = full
    return out


def expected_shapes(module: torch.nn.Module) -> dict[str, tuple]:
    return {name: tuple(_shape(t)) for name, t, _ in named_state(module)}


@torch.no_grad()
def load_weights(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], key=lambda name: name) -> None:
    """Load full weights (every process passes all of them, keyed by `key(name)`; keys already
    checked) into both the fp32 master copy and the module's own (16-bit, or ZeRO-3's partitions)
    weights."""
    from deepspeed.utils import safe_set_full_fp32_param

    for name, t, is_param in named_state(module):
        value = sd[key(name)].to(t.device if t.numel() else "cpu")
        if is_param:
            safe_set_full_fp32_param(t, value.float())
        if hasattr(t, "ds_id"):
            import deepspeed
            # Every process holds the same value: rank 0's is the one re-partitioned on exit.
            with deepspeed.zero.GatheredParameters([t], modifier_rank=0):
                t.data.copy_(value.view(t.shape))
        else:
            t.data.copy_(value)


# ------------------------------------------------------------------------------------------------
# Optimizer state
# ------------------------------------------------------------------------------------------------
def _group_step(zero, flats: list[torch.Tensor], g: int):
    """The per-group counters of the inner optimizer (AdamW's `step`): one value for all of the
    group's partitions, as in every process."""
    scalars: dict[str, torch.Tensor] = {}
    for flat in flats:
        for key, v in zero.optimizer.state.get(flat, {}).items():
            if torch.is_tensor(v) and v.numel() == 1 and v.numel() != flat.numel():
                if key in scalars and not torch.equal(scalars[key], v):
                    raise RuntimeError(f"optimizer group {g}: its partitions disagree on {key} "
                                       f"({scalars[key].item()} vs {v.item()})")
                scalars[key] = v
    return scalars


def _per_element_keys(zero, flats: list[torch.Tensor]) -> list[str]:
    keys: list[str] = []
    for flat in flats:
        for key, v in zero.optimizer.state.get(flat, {}).items():
            if torch.is_tensor(v) and v.numel() == flat.numel() and key not in keys:
                keys.append(key)
    return keys


def full_optimizer_state(optimizer, main: bool) -> dict:
    """The full optimizer state in `torch.optim.Optimizer.state_dict()`'s format (integer ids in the
    client groups' order, one state per parameter), as DDP writes it: complete on the main process,
    `{}` elsewhere."""
    from deepspeed.utils import safe_get_full_optimizer_state

    zero = _zero_optimizer(optimizer)
    _link_states(zero)
    groups, flats, subs = _param_groups(zero), _flat_partitions(zero), _subs(zero)
    state: dict[int, dict] = {}
    saved_groups = []
    i = 0
    for g, (params, group_flats) in enumerate(zip(groups, flats)):
        scalars = _group_step(zero, group_flats, g)
        keys = _per_element_keys(zero, group_flats)
        ids = []
        for p in params:
            entry = {k: v.detach().to("cpu", copy=True) for k, v in scalars.items()}
            for key in keys:
                full = safe_get_full_optimizer_state(p, key)  # a collective
                if main:
                    entry[key] = full.view(_shape(p)).to("cpu", copy=True)
            if entry:
                state[i] = entry
            ids.append(i)
            i += 1
        hyper = {k: v for k, v in zero.optimizer.param_groups[subs[g][0]].items() if k != "params"}
        saved_groups.append({**hyper, "params": ids})
    if not main:
        return {}
    return {"state": state, "param_groups": saved_groups}


@torch.no_grad()
def load_optimizer_state(optimizer, state: dict) -> None:
    """Load a full optimizer state (`full_optimizer_state`'s or a plain `Optimizer.state_dict()`,
    every process passing all of it) into the ZeRO partitions. Before the first update the inner
    optimizer has no state yet: it is created here (zeros, then filled), as its first step would."""
    from deepspeed.utils import safe_set_full_optimizer_state

    zero = _zero_optimizer(optimizer)
    groups, flats, subs = _param_groups(zero), _flat_partitions(zero), _subs(zero)
    saved = state["param_groups"]
    if [len(g["params"]) for g in saved] != [len(g) for g in groups]:
        raise ValueError(f"the optimizer state has {len(saved)} groups of {[len(g['params']) for g in saved]} "
                         f"parameters, this optimizer {len(groups)} groups of {[len(g) for g in groups]}")
    per_param = state["state"]
    for g, (params, group_flats, saved_group) in enumerate(zip(groups, flats, saved)):
        entries = [per_param.get(i, per_param.get(str(i), {})) for i in saved_group["params"]]
        if not any(entries):
            continue  # saved before this group's first update
        # Per-element states (exp_avg, ...) are shaped like their parameter; the rest (step) are counters.
        k0 = next(j for j, e in enumerate(entries) if e)
        keys = [k for k, v in entries[k0].items() if torch.is_tensor(v) and tuple(v.shape) == tuple(_shape(params[k0]))]
        scalars = {k: v for k, v in entries[k0].items() if k not in keys}
        for flat in group_flats:  # create the state the first step would, then overwrite it below
            slot = zero.optimizer.state[flat]
            for k in keys:
                slot.setdefault(k, torch.zeros_like(flat))
            for k, v in scalars.items():
                slot[k] = v.clone() if torch.is_tensor(v) else v
        _link_states(zero)
        for p, entry in zip(params, entries):
            for k in keys:
                value = entry.get(k)
                if value is None or tuple(value.shape) != tuple(_shape(p)):
                    raise ValueError(f"optimizer group {g}: {k} is {'missing' if value is None else tuple(value.shape)}"
                                     f" for a parameter of shape {tuple(_shape(p))}")
                safe_set_full_optimizer_state(p, value.float(), k)
        for sub in subs[g]:
            zero.optimizer.param_groups[sub].update({k: v for k, v in saved_group.items() if k != "params"})


# ------------------------------------------------------------------------------------------------
# ZeRO-3 partitions (EMA, evaluation)
# ------------------------------------------------------------------------------------------------
def is_partitioned(t: torch.Tensor) -> bool:
    """A ZeRO-3 parameter: its lasting value is this process's flat partition (`ds_tensor`), also for
    the small ones that stay gathered between forwards (under stage3_param_persistence_threshold)."""
    return hasattr(t, "ds_tensor")


def partition(t: torch.Tensor) -> torch.Tensor:
    """This process's part of a ZeRO-3 parameter (its flat, padded partition); `t` itself otherwise."""
    return t.ds_tensor if is_partitioned(t) else t


def gather_partition(t: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """The full tensor of which `local` (shaped like `partition(t)`) is this process's part: ZeRO-3
    partitions are contiguous slices of the flattened tensor, rank by rank, zero-padded at the end."""
    if not is_partitioned(t):
        return local
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)[:t.ds_numel].view(t.ds_shape)


def slice_partition(t: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    """This process's part of `full`, shaped like `partition(t)` (the inverse of gather_partition)."""
    if not is_partitioned(t):
        return full
    n = t.ds_tensor.numel()
    flat = full.reshape(-1)
    start = dist.get_rank() * n
    out = torch.zeros(n, dtype=full.dtype, device=full.device)
    if start < flat.numel():
        piece = flat[start:start + n]
        out[:len(piece)] = piece
    return out


def release(model: torch.nn.Module) -> None:
    """Make ZeRO-3's partitions the weights the next forward uses. A forward without backward
    (validation) can leave weights gathered, and small parameters stay gathered between forwards
    ("persistent"); a forward uses a gathered copy, not the partition. After writing into the
    partitions (swapping EMA weights in or out), the engine's `empty_partition_cache` drops every
    gathered copy, persistent ones included (measured: with the default persistence threshold, 72 of
    the tiny model's 74 parameters, ZeRO-3 with EMA ends 1.3e-6 from DDP)."""
    if hasattr(model, "empty_partition_cache") and any(is_partitioned(p) for p in model.parameters()):
        model.empty_partition_cache()


@contextlib.contextmanager
def gathered_root(module: torch.nn.Module):
    """ZeRO-3 gathers a module's own parameters in hooks around its `forward`; a call of another
    method (`forward_features`) runs the root's hooks for none of them. This gathers the root's
    direct parameters (position embeddings, ...) for the block; the submodules gather their own."""
    own = [p for p in module.parameters(recurse=False) if hasattr(p, "ds_id")]
    if not own:
        yield
        return
    import deepspeed
    with deepspeed.zero.GatheredParameters(own, modifier_rank=None):
        yield


def inference_model(accelerator, model: torch.nn.Module, batch_size: int) -> torch.nn.Module:
    """The model prepared for evaluation or embedding (its loaders are prepared on their own). ZeRO-3
    shards the weights, so the model goes through DeepSpeed and every forward is a collective;
    ZeRO-1 and -2 shard only optimizer state, which evaluation has none of (DeepSpeed refuses them
    without an optimizer), so there the model is replicated on each process as under DDP."""
    if stage(accelerator) == 3:
        config = accelerator.state.deepspeed_plugin.deepspeed_config
        if config.get("train_micro_batch_size_per_gpu", "auto") == "auto":  # DeepSpeed wants a number
            config["train_micro_batch_size_per_gpu"] = batch_size
        return accelerator.prepare(model)
    if is_deepspeed(accelerator):
        return model.to(accelerator.device)
    return accelerator.prepare(model)
