"""Training with Hugging Face Accelerate: finetuning a Hiera classifier (`task: classify`) and MAE
pretraining (`task: mae`) share this loop; only the loss and the validation metric differ.

One loop for one CPU, many GPUs, many nodes: all of that comes from `accelerate config` /
`accelerate launch` flags (FSDP and DeepSpeed stop at the start until checkpoints can hold sharded
optimizer state). What the loop guarantees:

* **Exact resumption.** The sampler yields `(index, seed)` pairs that depend only on (run seed, epoch),
  and every random draw of the data pipeline for a sample uses its own seed, so a clip's augmentation
  does not depend on which worker made it or on how many batches were skipped. The DataLoader has its
  own generator, so making an iterator never touches the global RNG, which drop path, random erasing
  and mixup use and which Accelerate saves. A run killed at any point and resumed from its last
  checkpoint ends with the same weights as an uninterrupted one (bitwise on CPU).
* **Checkpoints that cannot run code or lose a run** (`engine/state.py`): written atomically with a
  manifest of sizes and hashes, read without unpickling; resume verifies them and falls back to the
  newest intact one. A fresh run never writes into a folder that holds any part of a run.
* **Cheap checks first.** Config values, lists, roots and checkpoint paths are checked before any
  download or model build, and a start that fails leaves nothing behind.
* **No silent corruption.** A non-finite loss stops the run naming the update (or skips the update,
  `train.on_nonfinite=skip`) before any weight changes.
* **Exact validation.** Predictions are gathered with their video ids and de-duplicated, so padding
  added to even out processes never counts twice and unreadable videos are reported, not replaced.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from ..config import Config, check_paths, save_config
from ..data.datasets import (BadVideos, BatchAugment, ClipDataset, MultiViewDataset, TooManyBadVideos, collate_clips,
                             collate_views)
from ..data.lists import read_list
from ..data.mix import Mixup, soft_target_cross_entropy
from ..data.transforms import RandAugment
from ..fileio import atomic_write, remove_stale_temporaries
from ..models import create_model, save_model
from ..models.checkpoints import CheckpointError
from ..models.detection import ava_loss
from . import ava
from .evaluate import predict_views, topk_accuracy
from .optim import ModelEma, build_optimizer, build_scheduler
from .state import TrainState, find_resumable, latest_checkpoint, load_checkpoint, save_checkpoint  # noqa: F401

logger = logging.getLogger("hiera_video")


class NonFiniteLossError(RuntimeError):
    pass


# The validation figure that picks model_best.pt, per task, and whether higher is better.
BEST_METRIC = {"classify": ("val_top1", True), "mae": ("val_loss", False), "ava": ("val_map", True)}


class EpochSampler(Sampler):
    """Shuffled `(index, seed)` pairs; order and seeds depend only on (seed, epoch)."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        seeds = torch.randint(0, 2**62, (self.size,), generator=g).tolist()
        return iter(zip(order, seeds))

    def __len__(self) -> int:
        return self.size


# ------------------------------------------------------------------------------------------------
# Building the pieces
# ------------------------------------------------------------------------------------------------
def build_model(cfg: Config) -> torch.nn.Module:
    input_size = (cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size)
    if cfg.task == "ava":
        from ..models.registry import create_ava_model
        from ..data.ava import NUM_ACTIONS
        model = create_ava_model(cfg.model.name, pretrained=cfg.model.pretrained, drop_path_rate=cfg.model.drop_path,
                                 input_size=input_size, roi_dropout=cfg.model.dropout, ava_num_classes=NUM_ACTIONS)
        model.set_grad_checkpointing(cfg.model.grad_checkpointing)
        return model
    is_mae = cfg.model.name.startswith("mae_")
    if is_mae != (cfg.task == "mae"):
        want = "an mae_* model, e.g. mae_hiera_large_16x224" if cfg.task == "mae" else "a classifier (hiera_*)"
        raise ValueError(f"model.name {cfg.model.name!r} does not fit task {cfg.task!r}: it needs {want}")
    if is_mae:
        extra = {} if cfg.model.mask_ratio is None else {"mask_ratio": cfg.model.mask_ratio}
        model = create_model(cfg.model.name, pretrained=cfg.model.pretrained, drop_path_rate=cfg.model.drop_path,
                             input_size=input_size, **extra)
    else:
        model = create_model(cfg.model.name, pretrained=cfg.model.pretrained, num_classes=cfg.model.num_classes,
                             drop_path_rate=cfg.model.drop_path, head_dropout=cfg.model.dropout,
                             input_size=input_size)
    model.set_grad_checkpointing(cfg.model.grad_checkpointing)
    return model


def train_dataset(cfg: Config) -> ClipDataset:
    d = cfg.data
    if not d.train_list:
        raise ValueError("data.train_list is not set: give a list of `path label` lines (data_lists/README.md)")
    randaug = RandAugment(d.randaug_magnitude, d.randaug_num_ops, d.randaug_std) if d.randaug_num_ops > 0 else None
    entries = (read_list(d.train_list, d.root, labelled=False) if cfg.task == "mae"  # MAE needs no labels
               else read_list(d.train_list, d.root, num_classes=cfg.model.num_classes))
    return ClipDataset(entries, num_frames=d.num_frames,
                       sampling_rate=d.sampling_rate, target_fps=d.target_fps, sampling_mode=d.sampling_mode,
                       crop_size=d.crop_size, scale=tuple(d.scale), hflip=d.hflip, randaug=randaug,
                       randaug_order=d.randaug_order, short_side=d.train_short_side, num_repeats=d.num_repeats,
                       backend=d.backend)


def eval_dataset(cfg: Config, list_path: str, temporal: int, spatial: int) -> MultiViewDataset:
    d = cfg.data
    entries = (read_list(list_path, d.root, labelled=False) if cfg.task == "mae"
               else read_list(list_path, d.root, num_classes=cfg.model.num_classes))
    return MultiViewDataset(entries,
                            num_frames=d.num_frames, sampling_rate=d.sampling_rate, target_fps=d.target_fps,
                            sampling_mode=d.sampling_mode, crop_size=d.crop_size, num_temporal_clips=temporal,
                            num_spatial_crops=spatial, test_short_side=d.test_short_side, backend=d.backend)


def _loader_kwargs(cfg: Config) -> dict:
    workers = cfg.data.num_workers
    # Own generator: making an iterator must not draw from the global RNG (exact resumption).
    return dict(num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
                generator=torch.Generator())


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------
def _append_metrics(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict]:
    """The rows of metrics.jsonl. A last line cut short (a kill or a full disk mid-write) is dropped
    with a warning; any other bad line is an error naming the file and line."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
                raise ValueError("not a row of epoch metrics")
        except ValueError as e:
            if i == len(lines) - 1:  # no newline after it: the write never finished
                logger.warning("%s: dropping an incomplete last line (%d bytes): %s", path, len(line), e)
                continue
            raise CheckpointError(f"{path}, line {i + 1}: not a metrics row ({e}); fix or remove the line") from None
        rows.append(row)
    return rows


def _trim_metrics(path: Path, completed_epochs: int) -> None:
    """On resume, drop lines of epochs that will be redone (written after the checkpoint, before a
    crash). Lines count epochs from 1, so the first `completed_epochs` stay."""
    if not path.exists():
        return
    rows = [r for r in read_metrics(path) if r["epoch"] <= completed_epochs]
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))


# What a run leaves in its folder. A fresh run refuses a folder holding any of it; a resume without an
# intact checkpoint refuses one holding results (weights, metrics, checkpoints) rather than restart
# over them, but may start over a folder with only the config of a run killed before its first
# checkpoint.
RESULTS = ("model_best.pt", "model_last.pt", "metrics.jsonl", "checkpoints")
SETUP = ("config.yaml", "tensorboard")


def run_artefacts(out: Path) -> list[str]:
    found = []
    for name in RESULTS + SETUP:
        p = out / name
        if p.is_dir() and any(p.iterdir()) or p.is_file():
            found.append(name)
    return found


def _resume_point(cfg: Config) -> tuple[Path | None, list[str]]:
    """Decide where the run starts (main process): (checkpoint or None, warnings). Raises when a
    fresh start would overwrite a run, or a resume finds results but no intact checkpoint."""
    out = Path(cfg.output_dir)
    for d in (out, out / "checkpoints"):
        for p in remove_stale_temporaries(d):
            logger.warning("removed %s, left by a process killed while writing it", p)
    artefacts = run_artefacts(out)
    if not cfg.train.resume:
        if artefacts:
            raise FileExistsError(f"{out} already holds a run ({', '.join(artefacts)}); continue it with "
                                  f"train.resume=true, or choose another output_dir (nothing was overwritten)")
        return None, []
    folder, passed = find_resumable(out)
    if folder is not None:
        notes = [f"damaged checkpoint passed over: {why}" for why in passed]
        if passed:
            notes.append(f"resuming from {folder}, the newest intact checkpoint")
        return folder, notes
    results = [a for a in artefacts if a in RESULTS]
    if results:
        why = "; ".join(passed) if passed else "none was written"
        raise CheckpointError(f"train.resume=true but {out} has no intact checkpoint ({why}). It holds "
                              f"{', '.join(results)}, which starting from the beginning would overwrite: move "
                              f"them away, or choose another output_dir")
    if artefacts:  # the config of a run killed before its first checkpoint: nothing to lose
        return None, [f"train.resume=true but {out} has no checkpoint yet; starting from the beginning"]
    return None, []


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------
def train(cfg: Config) -> dict:
    """Finetune as `cfg` says; returns the last epoch's metrics. See the module docstring."""
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm import tqdm

    from accelerate.utils import broadcast_object_list

    check_paths(cfg)  # lists, roots, checkpoint paths: before any download, model build or folder
    out = Path(cfg.output_dir)
    has_tb = _tensorboard_available()
    accelerator = Accelerator(
        cpu=_multi_process_without_gpu(),
        gradient_accumulation_steps=cfg.train.grad_accum, mixed_precision=cfg.train.mixed_precision,
        log_with="tensorboard" if has_tb else None, step_scheduler_with_optimizer=False,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "tensorboard")),
        dataloader_config=DataLoaderConfiguration(even_batches=True, use_seedable_sampler=False))
    set_seed(cfg.train.seed)
    if accelerator.distributed_type.value in ("FSDP", "DEEPSPEED"):
        raise ValueError(f"{accelerator.distributed_type.value} runs are not supported yet: their optimizer state "
                         f"is sharded and the checkpoint format (engine/state.py) keeps one full copy; use data "
                         f"parallelism (accelerate launch --multi_gpu) with model.grad_checkpointing=true")
    # The main process decides where the run starts and tells the others (one reading of the folder).
    decision: list = [None]
    if accelerator.is_main_process:
        try:
            folder, notes = _resume_point(cfg)
            decision = [(str(folder) if folder else None, notes, None)]
        except (FileExistsError, CheckpointError) as e:
            decision = [(None, [], (type(e).__name__, str(e)))]
    if accelerator.num_processes > 1:
        broadcast_object_list(decision)
    folder, notes, failure = decision[0]
    if failure is not None:
        raise (FileExistsError if failure[0] == "FileExistsError" else CheckpointError)(failure[1])
    resume_from = Path(folder) if folder else None
    if accelerator.is_main_process:
        for note in notes:
            logger.warning("%s", note)

    ava_scorer = None
    if cfg.task == "ava":
        from ..data.ava import collate_ava
        if cfg.data.num_repeats != 1:
            raise ValueError("task ava uses one clip per keyframe: set data.num_repeats=1")
        train_ds = ava.train_dataset(cfg)
        val_ds = ava.val_dataset(cfg) if cfg.ava.val_annotations and cfg.ava.val_proposals else None
        ava_scorer = ava.FrameMapScorer(cfg) if val_ds is not None else None
        collate_train = collate_eval = collate_ava
    else:
        train_ds = train_dataset(cfg)
        val_ds = eval_dataset(cfg, cfg.data.val_list, 1, 1) if cfg.data.val_list else None
        collate_train, collate_eval = collate_clips, collate_views
    model = build_model(cfg)  # after the lists are read: a bad list fails before any download
    sampler = EpochSampler(len(train_ds), cfg.train.seed)
    videos_per_step = cfg.train.batch_size // cfg.data.num_repeats
    train_loader = DataLoader(train_ds, batch_size=videos_per_step, sampler=sampler, drop_last=True,
                              collate_fn=collate_train, **_loader_kwargs(cfg))
    val_loader = (DataLoader(val_ds, batch_size=cfg.eval.batch_size, shuffle=False, collate_fn=collate_eval,
                             **_loader_kwargs(cfg)) if val_ds else None)

    global_batch = cfg.train.batch_size * accelerator.num_processes * cfg.train.grad_accum
    lr = cfg.optim.lr * global_batch / cfg.optim.lr_batch_size
    optimizer = build_optimizer(model, lr, cfg.optim.weight_decay, cfg.optim.layer_decay, cfg.optim.betas,
                                cfg.optim.optimizer, cfg.optim.momentum)
    if cfg.model.compile:
        model = torch.compile(model)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    steps_per_epoch = len(train_loader) // cfg.train.grad_accum
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_ds)} training videos make no full step of {global_batch} clips "
                         f"(train.batch_size x processes x grad_accum); lower train.batch_size")
    total_steps = steps_per_epoch * cfg.train.epochs
    scheduler = build_scheduler(optimizer, round(cfg.optim.warmup_epochs * steps_per_epoch), total_steps,
                                cfg.optim.min_lr / lr)
    state = TrainState()
    ema = ModelEma(accelerator.unwrap_model(model), cfg.train.ema_decay) if cfg.train.ema else None
    if resume_from is not None:
        load_checkpoint(resume_from, accelerator, state, model, optimizer, scheduler, ema)
        logger.info("resumed from %s: epoch %d, update %d of the epoch, %d in all", resume_from, state.epoch,
                    state.step_in_epoch, state.global_step)
    # Only now, with data, model and state in hand, does the run leave anything in its folder.
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        _trim_metrics(out / "metrics.jsonl", state.epoch)
        logger.info("%s: %d training videos, %d clips per update (%d per process x %d processes x %d "
                    "accumulated), lr %.3g (%.3g at %d clips), %d updates per epoch", cfg.model.name,
                    len(train_ds), global_batch, cfg.train.batch_size, accelerator.num_processes,
                    cfg.train.grad_accum, lr, cfg.optim.lr, cfg.optim.lr_batch_size, steps_per_epoch)
    accelerator.init_trackers("hiera_video")
    checkpoint = lambda: save_checkpoint(accelerator, out, state, model, optimizer, scheduler, ema,  # noqa: E731
                                         cfg.train.keep_checkpoints)

    is_mae, is_ava = cfg.task == "mae", cfg.task == "ava"
    if is_mae or is_ava:  # pixels or boxes are the target: no erasing, no mixing
        augment = BatchAugment(cfg.data.mean, cfg.data.std)
    else:
        mixup = Mixup(cfg.model.num_classes, cfg.data.mixup, cfg.data.cutmix,
                      label_smoothing=cfg.data.label_smoothing, enabled=cfg.data.mixup > 0 or cfg.data.cutmix > 0)
        augment = BatchAugment(cfg.data.mean, cfg.data.std, cfg.data.erase_prob, mixup)
    bad_videos = BadVideos()
    metrics: dict = {}
    while state.epoch < cfg.train.epochs:
        epoch = state.epoch
        sampler.set_epoch(epoch)
        # Mid-epoch resume: skip the batches the checkpointed run had consumed.
        loader = (accelerator.skip_first_batches(train_loader, state.step_in_epoch * cfg.train.grad_accum)
                  if state.step_in_epoch else train_loader)
        model.train()
        bar = tqdm(total=len(train_loader), initial=state.step_in_epoch * cfg.train.grad_accum,
                   desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not accelerator.is_main_process,
                   dynamic_ncols=True)
        start, clips = time.perf_counter(), 0
        # A resumed epoch carries on the sums of its first part (kept in the checkpoint, counted once).
        carry = accelerator.is_main_process and state.step_in_epoch > 0
        loss_sum = torch.full((), state.epoch_loss_sum if carry else 0.0, device=accelerator.device)
        loss_count = state.epoch_loss_count if carry else 0
        bad_videos.count = state.epoch_bad_videos if carry else 0
        nonfinite = torch.zeros((), device=accelerator.device)
        for batch in _batches(loader):
            bad_videos.update(batch["bad"])
            with accelerator.accumulate(model):
                x, target = augment(batch["video"], batch.get("label"))
                if is_mae:
                    loss = model(x).loss  # masks from the global RNG, which checkpoints restore
                elif is_ava:
                    loss = ava_loss(model(x, batch["boxes"], batch["box_batch"]), batch["labels"], cfg.ava.loss)
                else:
                    loss = soft_target_cross_entropy(model(x).float(), target)
                nonfinite += (~torch.isfinite(loss.detach())).float()
                accelerator.backward(loss)
            loss_sum += loss.detach()
            loss_count += 1
            clips += len(x)
            bar.update()
            if not accelerator.sync_gradients:
                continue
            # One check per update, agreed by all processes, before any weight changes.
            if accelerator.reduce(nonfinite, "sum").item() > 0:
                where = f"epoch {epoch + 1}, update {state.step_in_epoch + 1} ({state.global_step + 1} in all)"
                if cfg.train.on_nonfinite == "stop":
                    raise NonFiniteLossError(
                        f"non-finite loss at {where}; weights are untouched since the last checkpoint "
                        f"({latest_checkpoint(out) or 'none yet'}). Lower optim.lr, use bf16, or set "
                        f"train.on_nonfinite=skip to skip such updates.")
                logger.warning("non-finite loss at %s: update skipped", where)
                state.skipped_updates += 1
                optimizer.zero_grad(set_to_none=True)
            else:
                if cfg.optim.grad_clip:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if ema is not None:
                    ema.update(accelerator.unwrap_model(model))
            nonfinite.zero_()
            scheduler.step()
            state.global_step += 1
            state.step_in_epoch += 1
            if state.global_step % cfg.train.log_every == 0:
                # .item() waits for the device: only on logging steps
                rate = clips * accelerator.num_processes / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{loss_sum.item() / max(loss_count, 1):.4f}",
                                lr=f"{scheduler.get_last_lr()[-1]:.2e}", clips_s=f"{rate:.1f}")
            if state.global_step % cfg.train.checkpoint_every == 0 and state.step_in_epoch < steps_per_epoch:
                state.epoch_loss_sum = accelerator.reduce(loss_sum.clone(), "sum").item()
                state.epoch_loss_count = int(_reduce_int(accelerator, loss_count))
                state.epoch_bad_videos = int(_reduce_int(accelerator, bad_videos.count))
                checkpoint()
            if state.step_in_epoch >= steps_per_epoch or (cfg.train.max_steps and
                                                          state.global_step >= cfg.train.max_steps):
                break
        bar.close()
        elapsed = time.perf_counter() - start
        train_loss = accelerator.reduce(loss_sum.clone(), "sum").item() / max(_reduce_int(accelerator, loss_count), 1)
        skipped = int(_reduce_int(accelerator, bad_videos.end_epoch()))
        metrics = {"epoch": epoch + 1, "step": state.global_step, "lr": scheduler.get_last_lr()[-1],
                   "train_loss": train_loss, "clips_per_s": clips * accelerator.num_processes / max(elapsed, 1e-9),
                   "skipped_videos": skipped}
        # The prepared model (not an unwrapped one) so that FSDP gathers its shards.
        eval_model = ema.module if ema is not None else model
        if val_loader is not None and is_ava:
            found = ava.predict_boxes(accelerator, eval_model, val_loader, cfg.data.mean, cfg.data.std, cfg.ava.loss,
                                      progress="validating")
            result = ava_scorer(ava_scorer.rows(found))
            metrics.update(val_map=round(float(result["mAP"]), 6), val_keyframes=len(val_loader.dataset),
                           val_boxes=len(found))
        elif val_loader is not None and is_mae:
            _, losses, _, unreadable = predict_views(accelerator, eval_model, val_loader, 1, cfg.data.mean,
                                                     cfg.data.std, progress="validating", forward=mae_clip_losses)
            metrics.update(val_loss=round(losses.mean().item(), 6) if len(losses) else float("nan"),
                           val_videos=len(losses), val_unreadable=len(unreadable))
        elif val_loader is not None:
            _, logits, labels, unreadable = predict_views(accelerator, eval_model, val_loader, cfg.model.num_classes,
                                                          cfg.data.mean, cfg.data.std, progress="validating")
            acc = topk_accuracy(logits, labels, cfg.model.num_classes)
            metrics.update(val_top1=acc["top1"], val_top5=acc["top5"], val_videos=len(labels),
                           val_unreadable=len(unreadable))
        state.epoch += 1
        state.step_in_epoch = 0
        state.epoch_loss_sum, state.epoch_loss_count, state.epoch_bad_videos = 0.0, 0, 0
        # Every process takes part: FSDP/DeepSpeed gather the full weights here.
        weights = ema.state_dict() if ema is not None else accelerator.get_state_dict(model)
        metrics["weights_in_sync"] = _weights_in_sync(accelerator, model)
        # The same decision on every process: metrics are gathered.
        name, higher = BEST_METRIC[cfg.task]
        value = metrics.get(name, math.nan)
        is_best = not math.isnan(value) and (math.isnan(state.best_value) or
                                             (value > state.best_value if higher else value < state.best_value))
        if is_best:
            state.best_value, state.best_epoch = value, epoch + 1
        if accelerator.is_main_process:
            base = accelerator.unwrap_model(model)
            info = dict(epoch=epoch + 1, ema=ema is not None, **_checkpoint_info(cfg), **{name: value})
            save_model(base, out / "model_last.pt", weights, **info)
            if is_best:
                save_model(base, out / "model_best.pt", weights, **info)
            _append_metrics(out / "metrics.jsonl", metrics)
            logger.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                              for k, v in metrics.items() if k != "epoch"))
        accelerator.log({k: v for k, v in metrics.items() if k != "epoch"}, step=state.global_step)
        checkpoint()
        if cfg.train.max_steps and state.global_step >= cfg.train.max_steps:
            break
    accelerator.end_training()
    if not metrics:  # resumed a finished run: report its last epoch
        rows = read_metrics(out / "metrics.jsonl")
        metrics = rows[-1] if rows else {}
    return metrics


def _batches(loader):
    """The loader's batches; a worker's TooManyBadVideos comes out as its own message, without the
    worker traceback the DataLoader wraps around it."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except TooManyBadVideos as e:
            raise TooManyBadVideos(TooManyBadVideos.message_of(e)) from None
        yield batch


def _reduce_int(accelerator, n: int) -> int:
    if accelerator.num_processes == 1:
        return int(n)
    return int(accelerator.reduce(torch.tensor(float(n), device=accelerator.device), "sum").item())


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


def _checkpoint_info(cfg: Config) -> dict:
    """What evaluation needs besides the weights: how clips were made, and the class names."""
    d = cfg.data
    info = {"data": dict(num_frames=d.num_frames, sampling_rate=d.sampling_rate, target_fps=d.target_fps,
                         sampling_mode=d.sampling_mode, crop_size=d.crop_size, mean=list(d.mean), std=list(d.std))}
    if d.classes and Path(d.classes).is_file():
        from ..data.lists import read_classes
        info["classes"] = read_classes(d.classes)
    elif d.classes:  # only reports use the names: not worth stopping a run for
        logger.warning("data.classes: %s does not exist; checkpoints will not record class names", d.classes)
    return info


def _multi_process_without_gpu() -> bool:
    """`accelerate launch --multi_gpu --num_processes N` on a machine without GPUs: ask Accelerate for
    CPU data parallelism (gloo). Without this it would start N independent single-process runs that
    all write into the same output folder."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


@torch.no_grad()
def _weights_in_sync(accelerator, model) -> bool:
    """Every process holds the same weights (checked once per epoch; a float64 checksum per process)."""
    if accelerator.num_processes == 1:
        return True
    params = list(accelerator.unwrap_model(model).parameters())
    checksum = torch.stack([p.double().sum() for p in params] + [p.double().square().sum() for p in params]).sum()
    sums = accelerator.gather(checksum.view(1).to(accelerator.device))
    same = bool((sums == sums[0]).all())
    if not same:
        logger.error("processes hold different weights (checksums %s)", sums.tolist())
    return same


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
        return True
    except ImportError:
        try:
            import tensorboardX  # noqa: F401
            return True
        except ImportError:
            return False
