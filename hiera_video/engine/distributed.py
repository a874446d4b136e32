"""Full (gathered) model and optimizer states, loading them back into shards, and the weights-in-sync
check, for plain, DDP, FSDP2 (`fully_shard`), FSDP1 (`use_orig_params=True`) and DeepSpeed ZeRO
(engine/zero.py) models.

Unsharded models take the plain `state_dict()` / `load_state_dict()` path; sharded ones go through
`torch.distributed.checkpoint.state_dict` with `full_state_dict=True`. Every process calls each function,
in the same order, with the prepared model (FSDP1 needs its wrapper); full states are complete on the
main process only (`{}` elsewhere), keyed as the unwrapped model names them. An FSDP2 model loads a full
state from the main process alone, which broadcasts each process its shards (`broadcasts_from_main`).
Details: docs/training.md (hiera_video/engine/distributed.py).
"""

from __future__ import annotations

import itertools
import logging
from typing import Iterator

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_optimizer_state_dict,
                                                     set_model_state_dict, set_optimizer_state_dict)

from ..errors import CheckpointError
from . import zero

logger = logging.getLogger("hiera_video")

try:
    from torch.distributed.tensor import DTensor
except ImportError:  # torch < 2.5
    from torch.distributed._tensor import DTensor

# Segments that wrappers insert into parameter names; none is a name a model of ours uses.
_WRAPPER_SEGMENTS = {"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod"}


def clean_name(name: str) -> str:
    """A parameter name without wrapper segments: `module.` (DDP, at the front), `_orig_mod.`
    (torch.compile), `_fsdp_wrapped_module.` (FSDP1), `_checkpoint_wrapped_module.`."""
    parts = name.split(".")
    while parts and parts[0] == "module":
        parts = parts[1:]
    return ".".join(p for p in parts if p not in _WRAPPER_SEGMENTS)


def _strip(model: torch.nn.Module) -> torch.nn.Module:
    """Without DDP / DataParallel / DeepSpeed / torch.compile wrappers; an FSDP1 wrapper stays (the
    state-dict functions need it)."""
    while True:
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif type(model).__name__ == "OptimizedModule":  # torch.compile
            model = model._orig_mod
        elif type(model).__name__ == "DeepSpeedEngine":
            model = model.module
        else:
            return model


def is_deepspeed_model(model: torch.nn.Module) -> bool:
    """Whether `model` is (or wraps) a DeepSpeed engine's module: ZeRO parameters carry DeepSpeed's
    attributes (`ds_id` for stage 3, `_hp_mapping` for stages 1-2)."""
    if type(model).__name__ == "DeepSpeedEngine":
        return True
    return any(hasattr(p, "ds_id") or hasattr(p, "_hp_mapping") for p in _strip(model).parameters())


def _fsdp1_modules(model: torch.nn.Module) -> bool:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:
        return False
    return any(isinstance(m, FullyShardedDataParallel) for m in model.modules())


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether the weights are spread over processes (FSDP2 or FSDP1 modules, DTensor parameters)."""
    model = _strip(model)
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # torch < 2.6
        FSDPModule = ()
    # Not only DTensor parameters: an FSDP2 module holds full tensors between an evaluation forward
    # and the next reshard.
    return (any(isinstance(m, FSDPModule) for m in model.modules()) or _fsdp1_modules(model)
            or any(isinstance(p, DTensor) or zero.is_partitioned(p) for p in model.parameters()))


def broadcasts_from_main(model: torch.nn.Module) -> bool:
    """Whether a full state is loaded into `model` from the main process alone: an FSDP2 model (DTensor
    parameters) in a run of several processes. The main process passes the full state, the others `{}`,
    and each receives its shards tensor by tensor (`broadcast_from_rank0`), so that resuming Hiera-H
    does not hold a full copy of it in every process. FSDP1 and unsharded models take the full state
    on every process: torch's broadcast_from_rank0 supports DTensor only (FSDP1's parameters are views
    of flat shards), and an unsharded model holds a full copy anyway."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return False
    # DeepSpeed has its own API (engine/zero.py): every process passes the full state there.
    return is_sharded(model) and not _fsdp1_modules(_strip(model)) and not is_deepspeed_model(model)


def agree_on_error(error: BaseException | None) -> None:
    """Raise on every process when any process has an error, so that none is left waiting in a
    collective the failing one skips. Every process raises the same message, the lowest rank's: that
    process its own error, the others a CheckpointError. A collective: every process calls it."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        messages: list = [None] * dist.get_world_size()
        dist.all_gather_object(messages, None if error is None else str(error))
        first = next((rank for rank, m in enumerate(messages) if m is not None), None)
        if first is not None and first != dist.get_rank():
            raise CheckpointError(messages[first]) from error
    if error is not None:
        raise error


def _error_of(check, *args) -> Exception | None:
    """The error `check(*args)` raises, or None: to be shared by agree_on_error rather than raised
    by one process alone."""
    try:
        check(*args)
    except Exception as e:  # noqa: BLE001 - whatever it is, every process must raise it
        return e
    return None


def _reshard(model: torch.nn.Module) -> None:
    """Put FSDP2 modules back into their shards. The root stays unsharded after a forward without
    backward (evaluation), and its parameters are then full tensors, not this process's shard."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # torch < 2.6
        return
    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.reshard()


def _offload(model: torch.nn.Module) -> bool:
    """Gather onto the main process's CPU (cpu_offload) when the weights live on a GPU. Weights on
    the CPU are gathered onto every process instead: FSDP1's offload of CPU tensors crashes
    (SIGSEGV, torch 2.13), and there is nothing to offload."""
    return any(_local(p).device.type != "cpu" for p in _strip(model).parameters())


def _is_main(accelerator) -> bool:
    if accelerator is not None:
        return accelerator.is_main_process
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _local(t: torch.Tensor) -> torch.Tensor:
    # Under no_grad, to_local() is the DTensor's own local tensor: writing into it writes the shard.
    # A ZeRO-3 parameter's part is its flat partition (ds_tensor), gathered by its module's forward.
    return t.to_local() if isinstance(t, DTensor) else zero.partition(t)


def named_tensors(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(clean name, parameter or buffer) of everything a model's state holds, parameters first, in
    the model's order (the same on every process). Parameters of a sharded model are this
    process's shard (DTensor, or FSDP1's view of its part)."""
    model = _strip(model)
    _reshard(model)
    for name, p in model.named_parameters():
        if type(p).__name__ == "FlatParameter":
            raise ValueError("FSDP1 with use_orig_params=False is not supported (its flat parameters hide the "
                             "model's own): set fsdp_use_orig_params: true in the accelerate config")
        yield clean_name(name), p
    for name, b in model.named_buffers():
        yield clean_name(name), b


def _detached_copies(sd: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """`sd` on the CPU, sharing no memory with the live model (a later update must not change a
    state taken before it)."""
    live = {_local(t).untyped_storage().data_ptr() for _, t in named_tensors(model) if _local(t).numel()}
    out = {}
    for k, v in sd.items():
        v = v.detach()
        if v.device.type != "cpu" or (v.numel() and v.untyped_storage().data_ptr() in live):
            v = v.to("cpu", copy=True)
        out[k] = v
    return out


# ------------------------------------------------------------------------------------------------
# Model state
# ------------------------------------------------------------------------------------------------
@torch.no_grad()
def full_model_state(accelerator, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full model state on the CPU: complete on the main process, `{}` on the others. Every
    process calls it (a collective for sharded models). Tensors share no memory with the model."""
    if is_deepspeed_model(model):
        return {clean_name(k): v for k, v in zero.full_weights(_strip(model), _is_main(accelerator)).items()}
    if not is_sharded(model):
        return _detached_copies(_strip(model).state_dict(), model) if _is_main(accelerator) else {}
    _reshard(model)
    sd = get_model_state_dict(_strip(model), options=StateDictOptions(full_state_dict=True,
                                                                      cpu_offload=_offload(model)))
    if not _is_main(accelerator):
        return {}
    return {clean_name(k): v for k, v in _detached_copies(sd, model).items()}


def expected_shapes(model: torch.nn.Module) -> dict[str, tuple] | None:
    """{key: full shape} of the model's state dict, without communication; None for FSDP1, whose
    local state hides the full shapes."""
    model = _strip(model)
    if _fsdp1_modules(model):
        return None
    if is_deepspeed_model(model):
        return {clean_name(k): v for k, v in zero.expected_shapes(model).items()}
    _reshard(model)
    # FSDP2's state_dict() holds DTensors, whose .shape is the full one; nothing is gathered.
    return {clean_name(k): tuple(v.shape) for k, v in model.state_dict().items()}


def check_fits(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError naming missing and unexpected keys and wrong shapes (first five each)
    unless `sd` is exactly the model's state."""
    own = expected_shapes(model)
    if own is None:
        return  # FSDP1: the strict load below names the keys
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {own[k]}"
              for k in own if k in sd and tuple(sd[k].shape) != own[k]]
    if missing or unexpected or shapes:
        raise CheckpointError(f"{source} does not fit this run's model (was the config changed since it was "
                              f"written?): missing {missing[:5]}, unexpected {unexpected[:5]}, shapes {shapes[:5]}")


@torch.no_grad()
def load_model_state(accelerator, model: torch.nn.Module, sd: dict[str, torch.Tensor],
                     source: str = "the state dict") -> None:
    """Load a full state (as `full_model_state` returns it; every process passes the whole of it,
    except with `broadcasts_from_main(model)`, where only the main process's is read and the others
    may pass `{}`) into the model, sharding it where the model is sharded. Strict: a key missing or
    extra, or a shape that differs, is a CheckpointError naming them and `source`, raised before
    anything is loaded (on every process alike: no collective has started)."""
    if broadcasts_from_main(model):
        # Only the main process holds the state, so only it can check it; the others raise its
        # verdict instead of waiting in a broadcast it would never start.
        _reshard(model)  # as check_fits does: the shards, not full weights left by a forward
        main = dist.get_rank() == 0
        agree_on_error(_error_of(check_fits, model, sd, source) if main else None)
        set_model_state_dict(_strip(model), sd if main else {},
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=True))
        return
    check_fits(model, sd, source)
    if is_deepspeed_model(model):
        zero.load_weights(_strip(model), sd, clean_name)
        return
    if not is_sharded(model):
        _strip(model).load_state_dict(sd)
        return
    set_model_state_dict(_strip(model), sd, options=StateDictOptions(full_state_dict=True, strict=True))


# ------------------------------------------------------------------------------------------------
# Optimizer state
# ------------------------------------------------------------------------------------------------
def _inner(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # Accelerate's AcceleratedOptimizer wraps one


def _names_in_optimizer_order(model: torch.nn.Module, optimizer) -> list[str]:
    names = {id(p): n for n, p in named_tensors(model)}
    out = []
    for g, group in enumerate(_inner(optimizer).param_groups):
        for p in group["params"]:
            if id(p) not in names:
                raise ValueError(f"optimizer group {g} holds a parameter of shape {tuple(p.shape)} that is not the "
                                 f"model's (was the optimizer built before the model was sharded?)")
            out.append(names[id(p)])
    return out


def full_optimizer_state(accelerator, model: torch.nn.Module, optimizer) -> dict:
    """The full optimizer state in `Optimizer.state_dict()`'s format (integer ids in group order),
    on the CPU for sharded models: complete on the main process, `{}` on the others. Every process
    calls it."""
    if is_deepspeed_model(model):
        return zero.full_optimizer_state(optimizer, _is_main(accelerator))
    if not is_sharded(model):
        return optimizer.state_dict() if _is_main(accelerator) else {}
    names = _names_in_optimizer_order(model, optimizer)
    sd = get_optimizer_state_dict(_strip(model), _inner(optimizer),
                                  options=StateDictOptions(full_state_dict=True, cpu_offload=_offload(model)))
    if not _is_main(accelerator):
        return {}
    listed = [clean_name(n) for g in sd["param_groups"] for n in g["params"]]
    if listed != names:
        raise RuntimeError(f"the gathered optimizer state lists its parameters in another order than the optimizer "
                           f"(first {listed[:3]} vs {names[:3]})")
    index = {n: i for i, n in enumerate(names)}
    state = {index[clean_name(n)]: v for n, v in sd["state"].items()}
    groups = [{**g, "params": [index[clean_name(n)] for n in g["params"]]} for g in sd["param_groups"]]
    return {"state": dict(sorted(state.items())), "param_groups": groups}


def check_optimizer_fits(model: torch.nn.Module, optimizer, state: dict, source: str) -> None:
    """Raise CheckpointError naming `source` unless `state` (`full_optimizer_state`'s format) fits
    this optimizer: groups of as many parameters, each parameter id once, state only for those ids,
    and every state tensor beyond scalars (AdamW's step) shaped like its parameter (first five)."""
    names = _names_in_optimizer_order(model, optimizer)
    own = [len(g["params"]) for g in _inner(optimizer).param_groups]
    try:
        sizes = [len(g["params"]) for g in state["param_groups"]]
        ids = sorted(int(i) for g in state["param_groups"] for i in g["params"])
        per_param = {int(i): dict(s) for i, s in state["state"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{source}: not an optimizer state ({type(e).__name__}: {e})") from None
    problems = []
    if sizes != own:
        problems.append(f"groups of {sizes} parameters, this optimizer's of {own}")
    if ids != list(range(len(names))):
        problems.append(f"parameter ids {ids[:5]}... are not 0 to {len(names) - 1} once each")
    stray = sorted(set(per_param) - set(range(len(names))))
    if stray:
        problems.append(f"state for parameter ids {stray[:5]} that this optimizer does not have")
    full = expected_shapes(model)  # None for FSDP1, which hides the full shapes; its own load checks
    if not problems and full is not None:
        shapes = [f"{names[i]} {key}: checkpoint {tuple(v.shape)} vs parameter {full[names[i]]}"
                  for i, s in sorted(per_param.items()) for key, v in s.items()
                  if isinstance(v, torch.Tensor) and v.dim() > 0 and tuple(v.shape) != full[names[i]]]
        if shapes:
            problems.append(f"state shapes {shapes[:5]}")
    if problems:
        raise CheckpointError(f"{source} does not fit this run's optimizer (was the config changed since it was "
                              f"written?): {'; '.join(problems)}")


def _keyed_by_name(names: list[str], state: dict) -> dict:
    """An `Optimizer.state_dict()`-format state keyed by parameter names, as torch.distributed's
    set_optimizer_state_dict takes it."""
    return {"state": {names[int(i)]: v for i, v in state["state"].items()},
            "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]]}


def load_optimizer_state(accelerator, model: torch.nn.Module, optimizer, state: dict,
                         source: str = "the optimizer state") -> None:
    """Load a full optimizer state (`full_optimizer_state`'s format, or a plain
    `optimizer.state_dict()`; every process passes the whole of it, except with
    `broadcasts_from_main(model)`, where only the main process's is read and the others may pass
    `{}`), sharding it where the model is sharded. A state that does not fit raises
    ValueError/KeyError/RuntimeError, or with `broadcasts_from_main` a CheckpointError naming
    `source` on every process before anything is loaded."""
    if is_deepspeed_model(model):
        zero.load_optimizer_state(optimizer, state)
        return
    if broadcasts_from_main(model):
        # As in load_model_state: the main process checks, every process raises its verdict. The
        # others pass {}; torch first builds their local state (a zero-lr step), then overwrites it
        # with the main process's values, tensor by tensor.
        _reshard(model)  # as _names_in_optimizer_order does: parameters named as the optimizer holds them
        main = dist.get_rank() == 0
        agree_on_error(_error_of(check_optimizer_fits, model, optimizer, state, source) if main else None)
        by_name = _keyed_by_name(_names_in_optimizer_order(model, optimizer), state) if main else {}
        set_optimizer_state_dict(_strip(model), _inner(optimizer), by_name,
                                 options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
        return
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    names = _names_in_optimizer_order(model, optimizer)
    groups = state["param_groups"]
    ids = [i for g in groups for i in g["params"]]
    if sorted(ids) != list(range(len(names))) or len(groups) != len(_inner(optimizer).param_groups):
        raise ValueError(f"the optimizer state has {len(groups)} groups of {len(ids)} parameters, this optimizer "
                         f"{len(_inner(optimizer).param_groups)} groups of {len(names)}")
    set_optimizer_state_dict(_strip(model), _inner(optimizer), _keyed_by_name(names, state),
                             options=StateDictOptions(full_state_dict=True))


# ------------------------------------------------------------------------------------------------
# Are the processes in step?
# ------------------------------------------------------------------------------------------------
def _holders(t: torch.Tensor, world: int, fsdp1: bool, is_param: bool) -> list | None:
    """For each rank, a key: ranks with equal keys must hold equal values of `t`; None: skip `t`."""
    if isinstance(t, DTensor):
        if any(p.is_partial() for p in t.placements):
            return None  # unreduced partial sums differ by design
        grid = t.device_mesh.mesh
        shard_dims = [d for d, p in enumerate(t.placements) if p.is_shard()]
        key = [None] * world  # ranks outside the mesh hold nothing to compare
        for coord in itertools.product(*map(range, grid.shape)):
            key[int(grid[coord])] = tuple(coord[d] for d in shard_dims)  # same shard: same value
        return key
    if fsdp1 and is_param:
        return None  # FSDP1's views of this process's part of a flat shard
    if zero.is_partitioned(t):
        return [None] * world  # each process holds its own ZeRO-3 partition: nothing to compare
    return [()] * world  # replicated: every process holds all of it


@torch.no_grad()
def weights_in_sync(accelerator, model: torch.nn.Module) -> bool:
    """Whether every process holds the same weights: each parameter and buffer is compared between
    the processes that hold the same part of it (all of them for replicated tensors, none for a
    shard only one process holds), on float64 checksums gathered once. Logs an error naming the
    tensors and their checksums per process when not."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return True
    world, fsdp1 = dist.get_world_size(), _fsdp1_modules(_strip(model))
    n_params = sum(1 for _ in _strip(model).parameters())
    names, keys, sums = [], [], []
    for i, (name, t) in enumerate(named_tensors(model)):
        key = _holders(t, world, fsdp1, i < n_params)
        if key is None:
            continue
        local = _local(t).detach().double()
        names.append(name)
        keys.append(key)
        sums.append(torch.stack([local.sum(), local.square().sum()]))
    device = accelerator.device if accelerator is not None else _local(next(iter(_strip(model).parameters()))).device
    mine = torch.stack(sums).to(device) if sums else torch.zeros(0, 2, dtype=torch.float64, device=device)
    if accelerator is not None:
        every = accelerator.gather(mine.unsqueeze(0)).cpu()  # [world, tensors, 2]
    else:
        every = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(every, mine)
        every = torch.stack(every).cpu()
    differ = []
    for j, (name, key) in enumerate(zip(names, keys)):
        groups: dict = {}
        for rank in range(world):
            if key[rank] is not None:
                groups.setdefault(key[rank], []).append(rank)
        for ranks in groups.values():
            ref = every[ranks[0], j]
            if any(not torch.equal(every[r, j], ref) for r in ranks[1:]):
                differ.append((name, {r: every[r, j].tolist() for r in ranks}))
                break
    if differ:
        logger.error("processes hold different weights in %d tensors; first: %s", len(differ),
                     "; ".join(f"{n} (sum, sum of squares per process: {c})" for n, c in differ[:5]))
    return not differ
