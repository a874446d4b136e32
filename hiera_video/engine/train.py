"""Training with Hugging Face Accelerate: one loop, the class `Trainer` (`train(cfg)` runs it), for
finetuning (`task: classify`), MAE pretraining (`task: mae`) and AVA detection (`task: ava`). What
differs between them (model, datasets, batch augmentation, loss, validation, the figure that picks
model_best.pt) is the task object's (`tasks/__init__.py`, `tasks/ava/task.py`); the loop has no task
branches. CPU, multi-GPU, multi-node, FSDP and DeepSpeed ZeRO come from `accelerate launch` flags.
One launch at a time writes a run folder (engine/runlock.py). A resumed run ends with the
weights of an uninterrupted one; cheap checks come before any download; a non-finite loss stops the
run before any weight changes; validation counts each video once; clips/s leaves out start-up and
validation; trackers and curves never stop a run.
Details: docs/training.md (hiera_video/engine/train.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import accelerate.utils
import torch
from accelerate import DataLoaderConfiguration
from accelerate.utils import broadcast_object_list, set_seed
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from ..config import Config, ConfigError, check_paths, save_config
from ..data.datasets import BadVideos, TooManyBadVideos
from ..data.lists import read_classes
from ..errors import CheckpointError, RunFolderLocked
from ..fileio import atomic_write, remove_stale_temporaries
from ..models import save_model
from ..plots import matplotlib_missing, write_curves
from ..resources import classes_path
from ..tasks import get_task
from . import zero
from .accel import build_accelerator
from .distributed import full_model_state, weights_in_sync
from .optim import ModelEma, build_optimizer, build_scheduler
from .runlock import RunLock, lock_run_folder
from .state import TrainState, find_resumable, latest_checkpoint, load_checkpoint, save_checkpoint

logger = logging.getLogger("hiera_video")


class NonFiniteLossError(RuntimeError):
    pass


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


def build_model(cfg: Config) -> torch.nn.Module:
    """The model of `cfg`'s task (for tools and tests; the loop asks the task directly)."""
    return get_task(cfg).build_model()


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
def train(cfg: Config, trackers: Sequence = ()) -> dict:
    """Train as `cfg` says; returns the last epoch's metrics. See docs/training.md. `trackers`:
    Accelerate `GeneralTracker` objects to log to besides those of `train.log_with`."""
    return Trainer(cfg, trackers).fit()


class Trainer:
    """One run: the task's data and model, the optimizer, schedule and EMA, prepared by Accelerate and
    resumed from the run's last checkpoint when there is one; `fit()` runs the epochs. The task object
    decides everything task-specific; this class has no task branch."""

    def __init__(self, cfg: Config, trackers: Sequence = ()):
        check_paths(cfg)  # lists, roots, checkpoint paths: before any download, model build or folder
        log_with = tracker_names(cfg.train.log_with) + list(trackers)  # a missing package stops here
        out = Path(cfg.output_dir)
        accelerator = build_accelerator(
            mixed_precision=cfg.train.mixed_precision, grad_accum=cfg.train.grad_accum, project_dir=out,
            log_with=log_with or None, step_scheduler_with_optimizer=False, grad_clip=cfg.optim.grad_clip,
            dataloader_config=DataLoaderConfiguration(even_batches=True, use_seedable_sampler=False))
        set_seed(cfg.train.seed)
        if zero.is_deepspeed(accelerator):
            zero.check_training(accelerator, cfg.train.on_nonfinite, cfg.train.mixed_precision)
        # From here until fit() ends, the main process holds the folder's lock (engine/runlock.py).
        resume_from, self.lock = _agree_on_start(accelerator, cfg)
        try:
            self._build(cfg, accelerator, resume_from)
        except BaseException:  # a start that fails later leaves the folder free for the next launch
            self.release()
            raise

    def _build(self, cfg: Config, accelerator, resume_from: Path | None) -> None:
        out = Path(cfg.output_dir)
        task = get_task(cfg)
        data = task.datasets()  # lists are read here: a bad list fails before any download
        model = task.build_model()
        sampler = EpochSampler(len(data.train), cfg.train.seed)
        videos_per_step = cfg.train.batch_size // cfg.data.num_repeats
        train_loader = DataLoader(data.train, batch_size=videos_per_step, sampler=sampler, drop_last=True,
                                  collate_fn=data.collate_train, **_loader_kwargs(cfg))
        val_loader = (DataLoader(data.val, batch_size=cfg.eval.batch_size, shuffle=False, collate_fn=data.collate_val,
                                 **_loader_kwargs(cfg)) if data.val is not None else None)

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
            raise ValueError(f"{len(data.train)} training videos make no full step of {global_batch} clips "
                             f"(train.batch_size x processes x grad_accum); lower train.batch_size")
        scheduler = build_scheduler(optimizer, round(cfg.optim.warmup_epochs * steps_per_epoch),
                                    steps_per_epoch * cfg.train.epochs, cfg.optim.min_lr / lr)
        state = TrainState()
        # The prepared model: FSDP1's state-dict functions need its root wrapper (DDP is unwrapped inside).
        ema = ModelEma(model, cfg.train.ema_decay) if cfg.train.ema else None
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
                        len(data.train), global_batch, cfg.train.batch_size, accelerator.num_processes,
                        cfg.train.grad_accum, lr, cfg.optim.lr, cfg.optim.lr_batch_size, steps_per_epoch)
        # TensorBoard writes into tensorboard/hiera_video/ (SETUP: a fresh run refuses a folder holding it).
        accelerator.init_trackers("hiera_video", config=hyperparameters(cfg))
        self.cfg, self.accelerator, self.task, self.out = cfg, accelerator, task, out
        self.model, self.optimizer, self.scheduler, self.ema, self.state = model, optimizer, scheduler, ema, state
        self.sampler, self.train_loader, self.val_loader = sampler, train_loader, val_loader
        self.steps_per_epoch, self.augment = steps_per_epoch, task.batch_augment()
        self.bad_videos = BadVideos()
        # Said once, here, rather than every epoch; only the main process draws.
        self.no_curves = matplotlib_missing() if accelerator.is_main_process else "not the main process"
        if accelerator.is_main_process and self.no_curves:
            logger.info("no curves.png: %s", self.no_curves)

    def release(self) -> None:
        """Let other launches have the run folder (main process; idempotent)."""
        if self.lock is not None:
            self.lock.release()

    def fit(self) -> dict:
        """The remaining epochs, each validated and checkpointed; returns the last epoch's metrics."""
        metrics: dict = {}
        try:
            while self.state.epoch < self.cfg.train.epochs:
                # Through Accelerate's loader: each iteration of it sets its sampler's epoch to the loader's
                # own count, which only advances when an iteration runs to the end (ours stops at the last
                # full update), so setting the sampler alone replayed epoch 0's order and seeds every epoch.
                self.train_loader.set_epoch(self.state.epoch)
                metrics = self.train_epoch(self.train_loader)
                if self.val_loader is not None:  # with the EMA weights swapped in, when there is an EMA
                    with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
                        metrics.update(self.task.validate(self.accelerator, self.model, self.val_loader))
                self.end_epoch(metrics)
                if self.cfg.train.max_steps and self.state.global_step >= self.cfg.train.max_steps:
                    break
        finally:  # trackers flush and close their files even when the run stops on an error
            self.accelerator.end_training()
            self.release()  # last: nothing is written to the folder after it
        if not metrics:  # resumed a finished run: report its last epoch
            rows = read_metrics(self.out / "metrics.jsonl")
            metrics = rows[-1] if rows else {}
        return metrics

    def checkpoint(self) -> None:
        save_checkpoint(self.accelerator, self.out, self.state, self.model, self.optimizer, self.scheduler,
                        self.ema, self.cfg.train.keep_checkpoints)

    def train_epoch(self, train_loader) -> dict:
        cfg, acc, state, model = self.cfg, self.accelerator, self.state, self.model
        accum = cfg.train.grad_accum
        # Mid-epoch resume: skip the batches the checkpointed run had consumed.
        loader = acc.skip_first_batches(train_loader, state.step_in_epoch * accum) if state.step_in_epoch else train_loader
        model.train()
        bar = tqdm(total=len(train_loader), initial=state.step_in_epoch * accum, dynamic_ncols=True,
                   desc=f"epoch {state.epoch + 1}/{cfg.train.epochs}", disable=not acc.is_main_process)
        # A resumed epoch carries on the sums of its first part (kept in the checkpoint, counted once).
        carry = acc.is_main_process and state.step_in_epoch > 0
        loss_sum = torch.full((), state.epoch_loss_sum if carry else 0.0, device=acc.device)
        loss_count = state.epoch_loss_count if carry else 0
        self.bad_videos.count = state.epoch_bad_videos if carry else 0
        nonfinite = torch.zeros((), device=acc.device)
        # Each update's loss goes to the trackers; its .item() waits for the device, so only with trackers.
        log_updates = acc.is_main_process and bool(acc.trackers)
        update_loss, update_batches = torch.zeros((), device=acc.device), 0
        clips, timed_from, first = 0, None, state.step_in_epoch
        for batch in _batches(loader):
            self.bad_videos.update(batch["bad"])
            with acc.accumulate(model):
                x, target = self.augment(batch["video"], batch.get("label"))
                loss = self.task.loss(model, x, target, batch)
                nonfinite += (~torch.isfinite(loss.detach())).float()
                acc.backward(loss)
            loss_sum += loss.detach()
            update_loss += loss.detach()
            loss_count += 1
            update_batches += 1
            clips += len(x)
            bar.update()
            if not acc.sync_gradients:
                continue
            lr_used = self.scheduler.get_last_lr()[-1]  # _update steps the schedule to the next update's
            self._update(nonfinite)
            if log_updates:  # the main process's share of the batch: all-reducing it would cost a collective
                acc.log({"train/loss": update_loss.item() / update_batches, "train/lr": lr_used},
                        step=state.global_step)
            update_loss.zero_()
            update_batches = 0
            if timed_from is None:  # throughput from the end of the first update (after compile, warm-up)
                timed_from, clips = time.perf_counter(), 0
            if state.global_step % cfg.train.log_every == 0 or state.step_in_epoch == first + 1:
                # .item() waits for the device: only on logging steps (and the first, so the bar shows them)
                loss_now, lr_now = loss_sum.item() / max(loss_count, 1), self.scheduler.get_last_lr()[-1]
                rate = clips * acc.num_processes / max(time.perf_counter() - timed_from, 1e-9) if clips else None
                bar.set_postfix(loss=f"{loss_now:.4f}", lr=f"{lr_now:.2e}",
                                **({"clips_s": f"{rate:.1f}"} if rate else {}))
            if state.global_step % cfg.train.checkpoint_every == 0 and state.step_in_epoch < self.steps_per_epoch:
                state.epoch_loss_sum = acc.reduce(loss_sum.clone(), "sum").item()
                state.epoch_loss_count = _reduce_int(acc, loss_count)
                state.epoch_bad_videos = _reduce_int(acc, self.bad_videos.count)
                self.checkpoint()
            if state.step_in_epoch >= self.steps_per_epoch or (cfg.train.max_steps and
                                                               state.global_step >= cfg.train.max_steps):
                break
        bar.close()
        elapsed = time.perf_counter() - timed_from if timed_from is not None else 0.0
        return {"epoch": state.epoch + 1, "step": state.global_step, "lr": self.scheduler.get_last_lr()[-1],
                "train_loss": acc.reduce(loss_sum.clone(), "sum").item() / max(_reduce_int(acc, loss_count), 1),
                "clips_per_s": clips * acc.num_processes / elapsed if clips and elapsed > 0 else float("nan"),
                "skipped_videos": _reduce_int(acc, self.bad_videos.end_epoch())}

    def _update(self, nonfinite: torch.Tensor) -> None:
        """One optimizer update; a non-finite loss (agreed by all processes) stops or skips it first."""
        cfg, acc, state = self.cfg, self.accelerator, self.state
        if acc.reduce(nonfinite, "sum").item() > 0:
            where = f"epoch {state.epoch + 1}, update {state.step_in_epoch + 1} ({state.global_step + 1} in all)"
            if cfg.train.on_nonfinite == "stop":
                raise NonFiniteLossError(
                    f"non-finite loss at {where}; weights are untouched since the last checkpoint "
                    f"({latest_checkpoint(self.out) or 'none yet'}). Lower optim.lr, use bf16, or set "
                    f"train.on_nonfinite=skip to skip such updates.")
            logger.warning("non-finite loss at %s: update skipped", where)
            state.skipped_updates += 1
        else:
            if cfg.optim.grad_clip:
                acc.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model)
        self.optimizer.zero_grad(set_to_none=True)
        nonfinite.zero_()
        self.scheduler.step()
        state.global_step += 1
        state.step_in_epoch += 1

    def end_epoch(self, metrics: dict) -> None:
        """Best model, weights, metrics line and the end-of-epoch checkpoint."""
        cfg, acc, state, model = self.cfg, self.accelerator, self.state, self.model
        state.epoch += 1
        state.step_in_epoch = 0
        state.epoch_loss_sum, state.epoch_loss_count, state.epoch_bad_videos = 0.0, 0, 0
        # Every process takes part: FSDP/DeepSpeed gather the full weights here.
        weights = self.ema.state_dict() if self.ema is not None else full_model_state(acc, model)
        metrics["weights_in_sync"] = weights_in_sync(acc, model)
        # The same decision on every process: metrics are gathered.
        name, higher = self.task.best_metric, self.task.higher_is_better
        value = metrics.get(name, math.nan)
        is_best = not math.isnan(value) and (math.isnan(state.best_value) or
                                             (value > state.best_value if higher else value < state.best_value))
        if is_best:
            state.best_value, state.best_epoch = value, state.epoch
        if acc.is_main_process:
            base = acc.unwrap_model(model)
            info = dict(epoch=state.epoch, ema=self.ema is not None, **_checkpoint_info(cfg), **{name: value})
            save_model(base, self.out / "model_last.pt", weights, **info)
            if is_best:
                save_model(base, self.out / "model_best.pt", weights, **info)
            _append_metrics(self.out / "metrics.jsonl", metrics)
            logger.info("epoch %d: %s", state.epoch, ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                                for k, v in metrics.items() if k != "epoch"))
            self.draw_curves()
        acc.log(epoch_scalars(metrics), step=state.global_step)
        self.checkpoint()

    def draw_curves(self) -> None:
        """curves.png from metrics.jsonl (main process). A failure is a warning: a picture is never
        worth a run."""
        if self.no_curves:
            return
        try:
            write_curves(read_metrics(self.out / "metrics.jsonl"), self.out / "curves.png")
        except Exception as e:  # noqa: BLE001  (whatever matplotlib or the disk raises)
            logger.warning("%s not drawn (training goes on): %s: %s", self.out / "curves.png", type(e).__name__, e)


def _agree_on_start(accelerator, cfg: Config) -> tuple[Path | None, RunLock | None]:
    """The main process locks the run folder (engine/runlock.py), then decides where the run starts
    (one reading of the folder) and tells the others; a refusal is raised on every process. Returns
    (checkpoint or None, the lock on the main process, else None). The lock comes first: deciding
    removes the temporaries of killed writers, which must not be those of a live run."""
    decision: list = [None]
    lock, error = None, None
    if accelerator.is_main_process:
        try:
            lock = lock_run_folder(cfg.output_dir, cfg.train.lock_wait)
            folder, notes = _resume_point(cfg)
            decision = [(str(folder) if folder else None, notes, None)]
        except Exception as e:  # noqa: BLE001 - raised below on every process, none left waiting
            error = e
            decision = [(None, [], (type(e).__name__, str(e)))]
    if accelerator.num_processes > 1:
        broadcast_object_list(decision)
    folder, notes, failure = decision[0]
    if failure is not None:
        if lock is not None:
            lock.release()
        if error is not None:
            raise error
        if failure[0] in _AGREED_ERRORS:
            raise _AGREED_ERRORS[failure[0]](failure[1])
        raise RuntimeError(f"the main process could not start the run: {failure[0]}: {failure[1]}")
    if accelerator.is_main_process:
        for note in notes:
            logger.warning("%s", note)
    return (Path(folder) if folder else None), lock


# The refusals of the start, by name: the other processes raise the main one's as the same type.
_AGREED_ERRORS = {e.__name__: e for e in (FileExistsError, RunFolderLocked, CheckpointError)}


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


def _checkpoint_info(cfg: Config) -> dict:
    """What evaluation needs besides the weights: how clips were made, and the class names."""
    d = cfg.data
    info = {"data": dict(num_frames=d.num_frames, sampling_rate=d.sampling_rate, target_fps=d.target_fps,
                         sampling_mode=d.sampling_mode, crop_size=d.crop_size, mean=list(d.mean), std=list(d.std),
                         test_short_side=d.test_short_side)}
    if d.classes and classes_path(d.classes) is not None:
        info["classes"] = read_classes(d.classes)
    elif d.classes:  # only reports use the names: not worth stopping a run for
        logger.warning("data.classes: %s does not exist; checkpoints will not record class names", d.classes)
    return info


def tracker_names(log_with: str | list[str] | None) -> list[str]:
    """train.log_with (validated by the config) as the tracker names to give Accelerate: "auto" is
    tensorboard when it is installed, else none. Accelerate drops a tracker whose package is missing
    with only a debug line, so here it is an error, at the start, naming what to install."""
    names = list(dict.fromkeys(log_with if isinstance(log_with, list) else [log_with or "none"]))
    if names in ([], ["none"]):
        return []
    if names == ["auto"]:
        return ["tensorboard"] if _tensorboard_available() else []
    if names == ["all"]:
        return ["all"]  # whichever are installed; none is no error
    # Each tracker's pip package has the tracker's name (tensorboardX would do for tensorboard too).
    missing = [n for n in names if not getattr(accelerate.utils, f"is_{n}_available")()]
    if missing:
        one = len(missing) == 1
        raise ConfigError(f"train.log_with: {', '.join(missing)} {'is' if one else 'are'} not installed; "
                          f"pip install {' '.join(missing)}, or drop {'it' if one else 'them'} from train.log_with")
    return names


def hyperparameters(cfg: Config) -> dict:
    """The run config as tracker hyperparameters: dotted keys, scalar values (lists joined with commas,
    None as "null"), which every tracker takes (TensorBoard's hparams refuse lists and None)."""
    flat: dict = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            elif isinstance(value, (list, tuple)):
                flat[prefix + key] = ",".join(str(v) for v in value)
            else:
                flat[prefix + key] = "null" if value is None else value

    walk("", cfg.to_dict())
    return flat


def epoch_scalars(metrics: dict) -> dict:
    """An epoch's metrics row for the trackers: val_top1 -> val/top1 (val/loss, val/map, ...), the
    rest under epoch/ (epoch/train_loss, epoch/clips_per_s, ...). lr and step are logged per update."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            value = int(value)
        if key in ("lr", "step") or not isinstance(value, (int, float)):
            continue
        out[f"val/{key[4:]}" if key.startswith("val_") else f"epoch/{key}"] = value
    return out


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
