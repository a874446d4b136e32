"""Run configuration: small typed dataclasses, loaded from one YAML file plus dotted overrides.

    cfg = load_config("configs/k400_hiera_l.yaml", ["train.epochs=3", "data.train_list=/d/train.csv"])

An unknown key is an error naming the closest valid key; a value of the wrong type is an error naming
the key. No inheritance between files: one YAML is one run. The resolved config is saved with the run
(`save_config`), and `Config.from_dict` reads it back.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad config file, key or value; the message names the key."""


TASKS = ("classify", "mae", "ava")


@dataclass
class ModelConfig:
    name: str = "hiera_base_16x224"  # a registered model (hiera_video.list_models())
    num_classes: int = 400
    pretrained: str | None = None  # checkpoint path/URL/tag; see hiera_video.create_model
    drop_path: float = 0.2  # stochastic depth rate of the last block (linear from 0)
    dropout: float = 0.3  # head dropout
    grad_checkpointing: bool = False  # recompute activations in backward: less memory, more time
    compile: bool = False  # torch.compile the model
    mask_ratio: float | None = None  # task mae: fraction of mask units deleted (default: the model's, video 0.9)

    def __post_init__(self):
        _check_range("model.drop_path", self.drop_path, 0, 1)
        _check_range("model.dropout", self.dropout, 0, 1)
        if self.mask_ratio is not None and not 0 < self.mask_ratio < 1:
            raise ConfigError(f"model.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.num_classes < 1:
            raise ConfigError(f"model.num_classes must be >= 1, got {self.num_classes}")


@dataclass
class DataConfig:
    train_list: str | None = None  # `path label` lines (data_lists/README.md)
    val_list: str | None = None
    root: str | None = None  # relative paths in the lists start here (default: each list's folder)
    classes: str | None = None  # class names file, for reports
    num_frames: int = 16  # frames per clip (16x4: 16 frames ...)
    sampling_rate: int = 4  # ... 4 apart at target_fps; "segment" sampling ignores it
    target_fps: float = 30.0
    sampling_mode: str = "stride"  # "stride" (Kinetics) or "segment" (SSv2)
    crop_size: int = 224
    num_workers: int = 8  # DataLoader workers per process
    backend: str = "auto"  # video decoder: auto, decord, pyav
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])  # random resized crop area
    hflip: bool = True  # off for SSv2 (labels say left/right) and the synthetic set
    randaug_magnitude: float = 7.0  # RandAugment rand-m{M}-n{N}-mstd{S}; 0 ops disables it
    randaug_num_ops: int = 4
    randaug_std: float = 0.5
    erase_prob: float = 0.25  # random erasing probability
    mixup: float = 0.8  # mixup alpha (0: off)
    cutmix: float = 1.0  # cutmix alpha (0: off)
    label_smoothing: float = 0.1
    num_repeats: int = 2  # repeated sampling: clips per decoded video
    mean: list[float] = field(default_factory=lambda: [0.45, 0.45, 0.45])
    std: list[float] = field(default_factory=lambda: [0.225, 0.225, 0.225])

    def __post_init__(self):
        if self.sampling_mode not in ("stride", "segment"):
            raise ConfigError(f"data.sampling_mode must be 'stride' or 'segment', got {self.sampling_mode!r}")
        if self.backend not in ("auto", "decord", "pyav"):
            raise ConfigError(f"data.backend must be auto, decord or pyav, got {self.backend!r}")
        if self.num_repeats < 1:
            raise ConfigError(f"data.num_repeats must be >= 1, got {self.num_repeats}")
        _check_range("data.erase_prob", self.erase_prob, 0, 1)
        _check_range("data.label_smoothing", self.label_smoothing, 0, 1)


@dataclass
class OptimConfig:
    optimizer: str = "adamw"  # adamw, or sgd (the AVA recipe)
    momentum: float = 0.9  # sgd only (Nesterov)
    lr: float = 8e-4  # peak learning rate at a global batch of `lr_batch_size` clips
    lr_batch_size: int = 256  # the lr scales linearly with the actual global batch
    min_lr: float = 1e-6  # end of the cosine
    weight_decay: float = 0.05  # not applied to norms, biases and position embeddings
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    layer_decay: float = 0.85  # lr x layer_decay^(depth + 1 - layer): embeddings lowest, head 1
    warmup_epochs: float = 10.0
    grad_clip: float | None = 5.0  # max global gradient norm (null: no clipping)

    def __post_init__(self):
        _check_range("optim.layer_decay", self.layer_decay, 0, 1, low_open=True)
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optim.optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 8  # clips per process per step (a multiple of data.num_repeats)
    grad_accum: int = 1  # steps accumulated per optimizer update
    mixed_precision: str = "no"  # no, fp16, bf16
    seed: int = 0
    resume: bool = False  # continue from output_dir/checkpoints/latest
    checkpoint_every: int = 500  # optimizer updates between resumable checkpoints (and every epoch end)
    keep_checkpoints: int = 2
    log_every: int = 20  # optimizer updates between log lines
    ema: bool = False  # keep an exponential moving average of the weights (validated and saved)
    ema_decay: float = 0.9998
    on_nonfinite: str = "stop"  # a NaN/inf loss: "stop" the run, or "skip" the update
    max_steps: int | None = None  # stop after this many optimizer updates (smoke tests)

    def __post_init__(self):
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"train.mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.on_nonfinite not in ("stop", "skip"):
            raise ConfigError(f"train.on_nonfinite must be 'stop' or 'skip', got {self.on_nonfinite!r}")
        for key in ("epochs", "batch_size", "grad_accum", "checkpoint_every", "log_every", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")


@dataclass
class EvalConfig:
    list: str | None = None  # videos to evaluate (default: data.val_list)
    num_temporal_clips: int = 5  # Kinetics 5, SSv2 2
    num_spatial_crops: int = 3
    batch_size: int = 4  # videos per process per step (each brings all its views)
    ensemble: str = "prob"  # prob (mean of softmax), logit (sum of logits), max (max probability)

    def __post_init__(self):
        if self.ensemble not in ("prob", "logit", "max"):
            raise ConfigError(f"eval.ensemble must be prob, logit or max, got {self.ensemble!r}")
        if self.num_spatial_crops not in (1, 3):
            raise ConfigError(f"eval.num_spatial_crops must be 1 or 3, got {self.num_spatial_crops}")


@dataclass
class AvaConfig:
    """AVA v2.2 detection (`task: ava`): the official files; see hiera_video/data/ava.py."""
    frames_root: str | None = None  # frames/{video_id}/{video_id}_{:06d}.jpg at 30 fps, 000001 = 900 s
    video_root: str | None = None  # or {video_id}.mp4 of the 15-30 min cut (time 0 = 900 s)
    train_annotations: str | None = None  # ava_train_v2.2.csv
    val_annotations: str | None = None  # ava_val_v2.2.csv
    labelmap: str | None = None  # ava_action_list_v2.2_for_activitynet_2019.pbtxt: the evaluated classes
    train_exclusions: str | None = None  # ava_train_excluded_timestamps_v2.2.csv
    val_exclusions: str | None = None  # ava_val_excluded_timestamps_v2.2.csv
    train_proposals: str | None = None  # optional person detections added to the training boxes
    val_proposals: str | None = None  # person detections scored at test time (AVA columns + score)
    train_proposal_score: float = 0.9  # training proposals kept from this score
    val_proposal_score: float = 0.8  # test proposals kept from this score
    jitter: list[float] = field(default_factory=lambda: [1.0, 1.25])  # train short side = crop x U(jitter)
    loss: str = "bce"  # bce (sigmoid multi-label) or ce (softmax cross entropy, as the paper mentions)
    fps: int = 30  # frame rate of the extracted frames
    capacity: int = 50  # detections kept per keyframe by the evaluator (the official cap; 0: all)

    def __post_init__(self):
        if self.loss not in ("bce", "ce"):
            raise ConfigError(f"ava.loss must be 'bce' or 'ce', got {self.loss!r}")
        if len(self.jitter) != 2 or not 0 < self.jitter[0] <= self.jitter[1]:
            raise ConfigError(f"ava.jitter must be [low, high] with 0 < low <= high, got {self.jitter}")


@dataclass
class Config:
    task: str = "classify"  # classify or ava (tools/finetune.py), mae (tools/pretrain.py)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ava: AvaConfig = field(default_factory=AvaConfig)
    output_dir: str = "runs/default"

    def __post_init__(self):
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.train.batch_size % self.data.num_repeats:
            raise ConfigError(f"train.batch_size ({self.train.batch_size}) must be a multiple of "
                              f"data.num_repeats ({self.data.num_repeats}): each video brings that many clips")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "Config":
        return _build(cls, data, "", source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_range(key: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    if not (low < value <= high if low_open else low <= value <= high):
        raise ConfigError(f"{key} must be in {'(' if low_open else '['}{low}, {high}], got {value}")


def _keys(cls) -> list[str]:
    """Every dotted key of a config dataclass."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += [f"{f.name}.{k}" for k in _keys(hints[f.name])]
        else:
            out.append(f.name)
    return out


def _unknown_key(key: str, source: str) -> ConfigError:
    valid = _keys(Config)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{source}: unknown config key {key!r}{hint}")


def _check_type(key: str, value: Any, annotation: Any, source: str) -> Any:
    """Return value (ints widened to float where a float is expected) or raise naming the key."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(key, value, option, source)
            except ConfigError:
                pass
        raise ConfigError(f"{source}: {key} must be {_name(annotation)}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list of {_name(item)}, got {value!r}")
        return [_check_type(f"{key}[{i}]", v, item, source) for i, v in enumerate(value)]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        # YAML 1.1 (PyYAML) reads 2e-3 as a string (it wants 2.0e-3); nobody means a string there.
        try:
            return float(value)
        except ValueError:
            pass
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be int, got {value!r}")
    if not isinstance(value, annotation):
        raise ConfigError(f"{source}: {key} must be {_name(annotation)}, got {value!r} ({type(value).__name__})")
    return value


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _build(cls, data: Any, prefix: str, source: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(prefix + str(key), source)
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = _build(annotation, value or {}, f"{prefix}{key}.", source)
        else:
            kwargs[key] = _check_type(prefix + key, value, annotation, source)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def apply_override(data: dict[str, Any], override: str) -> None:
    """`a.b=value` into a nested dict; the value is parsed as YAML (3, 0.5, true, null, [1, 2])."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key=value, e.g. train.epochs=3")
    key, text = override.split("=", 1)
    key = key.strip()
    if key not in _keys(Config):
        raise _unknown_key(key, "override")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {key}: cannot parse {text!r} ({e})") from None
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {part!r} is not a section")
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (`yaml.safe_load`), apply `key=value` overrides, validate."""
    data: dict[str, Any] = {}
    source = str(path) if path else "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
    for override in overrides:
        apply_override(data, override)
    return Config.from_dict(data, source)


def save_config(cfg: Config, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
