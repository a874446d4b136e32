"""AVA v2.2 detection: its training task for the shared loop (`AvaTask`, `task: ava`) and its
evaluation: datasets from the official files, per-box inference gathered exactly across processes,
detections in the official CSV format, and the frame-level mAP (`metric.py`).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import torch
from accelerate import DataLoaderConfiguration
from accelerate.utils import gather_object
from torch.utils.data import DataLoader
from tqdm import tqdm

from ...config import Config
from ...data.transforms import normalize
from ...engine.accel import build_accelerator
from ...errors import ConfigError
from ...models import create_model, read_checkpoint
from .. import Datasets, Task
from ..video import need_dir, need_file
from .dataset import NUM_ACTIONS, AVADataset, FrameSource, collate_ava, evaluation_keyframes, training_keyframes
from .io import read_annotations, read_exclusions, read_labelmap, read_proposals, write_detections
from .metric import frame_map_from_rows
from .model import ava_loss, ava_scores, create_ava_model

logger = logging.getLogger("hiera_video")


def _need(cfg: Config, key: str) -> str:
    value = getattr(cfg.ava, key)
    if not value:
        raise ConfigError(f"task ava needs ava.{key} (see configs/ava_hiera_l.yaml)")
    return value


def _need_frames(cfg: Config) -> None:
    if not cfg.ava.frames_root and not cfg.ava.video_root:
        raise ConfigError("task ava needs ava.frames_root (extracted frames) or ava.video_root (videos)")


def frame_source(cfg: Config) -> FrameSource:
    _need_frames(cfg)
    return FrameSource(cfg.ava.frames_root or None, None if cfg.ava.frames_root else cfg.ava.video_root,
                       cfg.ava.fps, cfg.data.backend)


def train_dataset(cfg: Config) -> AVADataset:
    a, d = cfg.ava, cfg.data
    excluded = read_exclusions(a.train_exclusions) if a.train_exclusions else set()
    proposals = read_proposals(a.train_proposals, a.train_proposal_score) if a.train_proposals else None
    keyframes = training_keyframes(read_annotations(_need(cfg, "train_annotations")), excluded, proposals)
    return AVADataset(keyframes, frame_source(cfg), num_frames=d.num_frames, sampling_rate=d.sampling_rate,
                      crop_size=d.crop_size, train=True, jitter=a.jitter, hflip=d.hflip,
                      decode_timeout=d.decode_timeout)


def val_dataset(cfg: Config) -> AVADataset:
    """The val keyframes that have person proposals above `ava.val_proposal_score`."""
    a, d = cfg.ava, cfg.data
    gt = read_annotations(_need(cfg, "val_annotations"))
    excluded = read_exclusions(a.val_exclusions) if a.val_exclusions else set()
    proposals = read_proposals(_need(cfg, "val_proposals"), a.val_proposal_score)
    keys = list(dict.fromkeys([*gt, *proposals]))  # every annotated or detected keyframe, once
    keyframes = evaluation_keyframes(keys, proposals, excluded)
    if not keyframes:
        raise ValueError(f"no val keyframe has a proposal with score >= {a.val_proposal_score} "
                         f"({a.val_proposals}); lower ava.val_proposal_score?")
    return AVADataset(keyframes, frame_source(cfg), num_frames=d.num_frames, sampling_rate=d.sampling_rate,
                      crop_size=d.crop_size, train=False, decode_timeout=d.decode_timeout)


@torch.no_grad()
def score_boxes(accelerator, model, loader, mean, std, loss_kind: str = "bce",
                progress: str | None = None) -> tuple[tuple[list, torch.Tensor], int]:
    """This process's share of `loader`: ((rows [(keyframe index, box index, (video_id, sec), box)],
    scores [K, 80]), number of clips it scored). No collective call: processes may hold different
    numbers of batches."""
    model.eval()
    rows, scores, clips = [], [], 0
    bar = tqdm(loader, desc=progress, disable=progress is None or not accelerator.is_main_process, leave=False,
               dynamic_ncols=True)
    for batch in bar:
        clips += len(batch["keys"])
        if not len(batch["boxes"]):
            continue
        with accelerator.autocast():
            logits = model(normalize(batch["video"], mean, std), batch["boxes"], batch["box_batch"])
        scores.append(ava_scores(logits, loss_kind).float().cpu())
        keys = batch["keys"]
        for kf, bi, clip, box in zip(batch["keyframe"].tolist(), batch["box_index"].tolist(),
                                     batch["box_batch"].tolist(), batch["orig_boxes"].tolist()):
            rows.append((kf, bi, tuple(keys[clip]), tuple(box)))
    # One [K, 80] tensor, not K row views: pickling a view sends its whole batch along.
    return (rows, torch.cat(scores) if scores else torch.zeros(0, 80)), clips


def gather_boxes(share: tuple[list, torch.Tensor]) -> dict[tuple[int, int], tuple[tuple, tuple, torch.Tensor]]:
    """Every process's `score_boxes` share, de-duplicated on (keyframe, box) (an evenly split loader
    repeats keyframes to fill the last batch): {(keyframe index, box index): ((video_id, sec), box,
    scores [80])}, complete on every process. One collective call, made by every process."""
    found: dict[tuple[int, int], tuple[tuple, tuple, torch.Tensor]] = {}
    for rows, scores in gather_object([share]):  # ragged: keyframes hold different numbers of boxes
        for (kf, bi, key, box), s in zip(rows, scores):
            found.setdefault((kf, bi), (key, box, s))
    return found


def predict_boxes(accelerator, model, loader, mean, std, loss_kind: str = "bce",
                  progress: str | None = None) -> dict[tuple[int, int], tuple[tuple, tuple, torch.Tensor]]:
    """Scores of every box of every keyframe in `loader`, gathered across processes and de-duplicated
    on (keyframe, box): {(keyframe index, box index): ((video_id, sec), box, scores [80])}, complete
    on every process."""
    share, _ = score_boxes(accelerator, model, loader, mean, std, loss_kind, progress)
    return gather_boxes(share)


def detection_rows(found: dict, action_ids: list[int]) -> list[tuple[str, int, tuple, int, float]]:
    """The official results format: one row per box and evaluated action (video_id, sec, box, id, score)."""
    rows = []
    for (_kf, _bi), ((video_id, sec), box, scores) in sorted(found.items()):
        for a in action_ids:
            rows.append((video_id, int(sec), box, a, float(scores[a - 1])))
    return rows


class FrameMapScorer:
    """The val ground truth, label map and exclusions, read once: detections -> frame-level mAP with
    the official evaluator's rules (`metric.py`)."""

    def __init__(self, cfg: Config):
        self.labelmap = read_labelmap(_need(cfg, "labelmap"))
        self.action_ids = [i for i, _ in self.labelmap]
        self.gt = read_annotations(_need(cfg, "val_annotations"))
        self.excluded = read_exclusions(cfg.ava.val_exclusions) if cfg.ava.val_exclusions else set()
        self.capacity = cfg.ava.capacity

    def rows(self, found: dict) -> list:
        return detection_rows(found, self.action_ids)

    def __call__(self, rows: list) -> dict:
        return frame_map_from_rows(self.gt, rows, self.labelmap, self.excluded, capacity=self.capacity)


def evaluate_ava(cfg: Config, ckpt_path: str, out_dir: str | Path | None = None) -> dict:
    """Centre-crop inference on the val keyframes with the proposals; writes OUT/detections.csv (the
    official format), OUT/metrics.json (frame mAP and per-class AP) and OUT/per_class.csv.

    Over several processes each scores its own part of the keyframes (each keyframe exactly once: the
    split is not evened out with repeats) and the main one gathers the boxes, scores and reports;
    metrics.json records how many keyframes each process scored. Returns the metrics on the main
    process, {} on the others."""
    if cfg.task != "ava":
        raise ConfigError(f"the config is a task {cfg.task!r} one; AVA evaluation needs task: ava")

    out = Path(out_dir) if out_dir else Path(cfg.output_dir) / "eval_ava"
    # even_batches=False: no process repeats keyframes to fill its last batch; score_boxes makes no
    # collective call per batch, so processes may run different numbers of batches.
    accelerator = build_accelerator(mixed_precision=cfg.train.mixed_precision if torch.cuda.is_available() else "no",
                                    dataloader_config=DataLoaderConfiguration(even_batches=False))
    ckpt = read_checkpoint(ckpt_path)
    if not ckpt.model_config or "ava_num_classes" not in ckpt.model_config:
        raise ValueError(f"{ckpt_path} is not an AVA detector checkpoint (train one with task: ava)")
    model = create_model(pretrained=ckpt)
    ds = val_dataset(cfg)
    loader = DataLoader(ds, batch_size=cfg.eval.batch_size, shuffle=False, collate_fn=collate_ava,
                        num_workers=cfg.data.num_workers)
    if cfg.model.compile:  # as in training; the first batches pay for the compilation
        model = torch.compile(model)
    # evaluation_mode: a plain copy of the model per process, no DDP wrapper (whose forward could wait
    # for a process that has run out of batches).
    model = accelerator.prepare_model(model, evaluation_mode=True)
    loader = accelerator.prepare(loader)
    share, clips = score_boxes(accelerator, model, loader, cfg.data.mean, cfg.data.std, cfg.ava.loss,
                               progress="detecting")
    if accelerator.num_processes > 1:
        logger.info("process %d of %d scored %d keyframes (%d boxes)", accelerator.process_index,
                    accelerator.num_processes, clips, len(share[0]))
    found = gather_boxes(share)
    per_process = gather_object([clips])
    metrics: dict = {}
    if accelerator.is_main_process:
        scorer = FrameMapScorer(cfg)
        rows = scorer.rows(found)
        metrics = scorer(rows)
        out.mkdir(parents=True, exist_ok=True)
        write_detections(out / "detections.csv", rows)
        (out / "metrics.json").write_text(json.dumps({**metrics, "num_keyframes_scored": len(ds),
                                                      "keyframes_per_process": per_process,
                                                      "num_boxes": len(found), "checkpoint": str(ckpt_path)},
                                                     indent=2))
        with open(out / "per_class.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "name", "ap"])
            for c in metrics["per_class"]:
                w.writerow([c["id"], c["name"], "" if c["ap"] is None else f"{c['ap']:.6f}"])  # None: no GT
        logger.info("frame mAP %.4f over %d classes (%d keyframes over %d processes, %d boxes); %s", metrics["mAP"],
                    len(metrics["per_class"]), len(ds), accelerator.num_processes, len(found), out)
    accelerator.wait_for_everyone()  # no process exits (and tears down the group) while the main one writes
    return metrics


# ------------------------------------------------------------------------------------------------
# The training task (`task: ava` in the shared loop, engine/train.py)
# ------------------------------------------------------------------------------------------------


class AvaTask(Task):
    """AVA detection: Hiera + RoI head on keyframe clips with boxes; BCE (or CE) over the actions of
    each box; validation = frame mAP of the val proposals with the official evaluator's rules."""
    best_metric, higher_is_better = "val_map", True

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        if cfg.data.num_repeats != 1:
            raise ValueError("task ava uses one clip per keyframe: set data.num_repeats=1")
        self.scorer = None

    def check_paths(self):
        a = self.cfg.ava
        _need_frames(self.cfg)
        need_dir("ava.frames_root", a.frames_root)
        need_dir("ava.video_root", a.video_root)
        _need(self.cfg, "train_annotations")
        for key in ("train_annotations", "val_annotations", "labelmap", "train_exclusions", "val_exclusions",
                    "train_proposals", "val_proposals"):
            need_file(f"ava.{key}", getattr(a, key))

    def build_model(self):
        c, d = self.cfg.model, self.cfg.data
        model = create_ava_model(c.name, pretrained=c.pretrained, drop_path_rate=c.drop_path,
                                 input_size=(d.num_frames, d.crop_size, d.crop_size), roi_dropout=c.dropout,
                                 ava_num_classes=NUM_ACTIONS)
        model.set_grad_checkpointing(c.grad_checkpointing)
        return model

    def datasets(self):
        a = self.cfg.ava
        val = val_dataset(self.cfg) if a.val_annotations and a.val_proposals else None
        self.scorer = FrameMapScorer(self.cfg) if val is not None else None  # ground truth read once
        return Datasets(train_dataset(self.cfg), val, collate_ava, collate_ava)

    def loss(self, model, x, target, batch):
        return ava_loss(model(x, batch["boxes"], batch["box_batch"]), batch["labels"], self.cfg.ava.loss)

    def validate(self, accelerator, model, loader):
        found = predict_boxes(accelerator, model, loader, self.cfg.data.mean, self.cfg.data.std, self.cfg.ava.loss,
                              progress="validating")
        result = self.scorer(self.scorer.rows(found))
        return {"val_map": round(float(result["mAP"]), 6), "val_keyframes": len(loader.dataset),
                "val_boxes": len(found)}
