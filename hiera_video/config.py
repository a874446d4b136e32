"""Run configuration: small typed dataclasses, loaded from one YAML file plus dotted overrides.

    cfg = load_config("configs/k400_hiera_l.yaml", ["train.epochs=3", "data.train_list=/d/train.csv"])

An unknown key is an error naming the closest valid key; a value of the wrong type is an error naming
the key. No inheritance between files: one YAML is one run. The resolved config is saved with the run
(`save_config`), and `Config.from_dict` reads it back. A task's own section lives with its task (`ava:`
in tasks/ava/config.py); `check_paths` asks the run's task which files and folders it reads.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data.guard import DEFAULT_SECONDS as DEFAULT_DECODE_TIMEOUT
from .errors import ConfigError, at_least, check_range, positive
from .fileio import atomic_write
from .models.registry import PRETRAINED, model_geometry
from .models.sources import UnknownSource, resolve_source
from .resources import config_path
from .tasks import TASKS, get_task
from .tasks.ava.config import AvaConfig

# Accelerate's experiment trackers that train.log_with may name, and the words that stand for a choice.
TRACKERS = ("tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive")
TRACKER_CHOICES = ("auto", "all", "none")


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
    # task mae: targets normalised per patch (the paper's; default true) or raw pixels (false): see
    # docs/mae_study.md for data where the normalised target teaches the deep stages nothing
    norm_pix_loss: bool | None = None

    def __post_init__(self):
        check_range("model.drop_path", self.drop_path, 0, 1)
        check_range("model.dropout", self.dropout, 0, 1)
        if self.mask_ratio is not None and not 0 < self.mask_ratio < 1:
            raise ConfigError(f"model.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        at_least("model.num_classes", self.num_classes, 1)
        if not self.name:
            raise ConfigError("model.name is empty: choose one of hiera_video.list_models()")
        if self.pretrained == "":
            raise ConfigError("model.pretrained is an empty string: give a path or tag, or null for none")


@dataclass
class DataConfig:
    train_list: str | None = None  # `path label` lines (data_lists/README.md)
    val_list: str | None = None
    root: str | None = None  # relative paths in the lists start here (default: each list's folder)
    classes: str | None = None  # class names: a file, or a shipped list (kinetics400, ssv2, ...)
    num_frames: int = 16  # frames per clip (16x4: 16 frames ...)
    sampling_rate: int = 4  # ... 4 apart at target_fps; "segment" sampling ignores it
    target_fps: float = 30.0
    sampling_mode: str = "stride"  # "stride" (Kinetics) or "segment" (SSv2)
    crop_size: int = 224
    num_workers: int = 8  # DataLoader workers per process
    backend: str = "auto"  # video decoder: auto, decord, pyav, torchcodec (only if installed)
    # seconds one video may take to decode before it is abandoned and reported as unreadable (0: no limit)
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])  # random resized crop area
    hflip: bool = True  # off for SSv2 (labels say left/right) and the synthetic set
    randaug_magnitude: float = 7.0  # RandAugment rand-m{M}-n{N}-mstd{S}; 0 ops disables it
    randaug_num_ops: int = 2  # MAE-ST's rand-m7-mstd0.5-inc1 has timm's default of 2 ops
    randaug_std: float = 0.5
    randaug_order: str = "before_crop"  # before_crop (MAE-ST: on the decoded frames) or after_crop (cheaper)
    test_short_side: int | None = None  # 1-crop views: short side before the centre crop (None: crop x 256/224)
    train_short_side: int | None = None  # resize decoded training frames first (MAE-ST: 256; None: as decoded)
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
        if self.backend not in ("auto", "decord", "pyav", "torchcodec"):
            raise ConfigError(f"data.backend must be auto, decord, pyav or torchcodec (if installed), "
                              f"got {self.backend!r}")
        for key in ("num_repeats", "num_frames", "sampling_rate", "crop_size"):
            at_least(f"data.{key}", getattr(self, key), 1)
        at_least("data.num_workers", self.num_workers, 0)
        for key in ("test_short_side", "train_short_side"):
            if getattr(self, key) is not None and getattr(self, key) < self.crop_size:
                raise ConfigError(f"data.{key} ({getattr(self, key)}) must be >= data.crop_size ({self.crop_size}), "
                                  f"or null: the crop is cut from frames of that short side")
        positive("data.target_fps", self.target_fps)
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ConfigError(f"data.scale must be [low, high] with 0 < low <= high <= 1 (the crop's share "
                              f"of the frame area), got {self.scale}")
        for key in ("mean", "std"):
            if len(getattr(self, key)) != 3:
                raise ConfigError(f"data.{key} must have 3 values (R, G, B), got {getattr(self, key)}")
        if not all(s > 0 for s in self.std):
            raise ConfigError(f"data.std values must be > 0 (clips are divided by them), got {self.std}")
        at_least("data.randaug_num_ops", self.randaug_num_ops, 0)
        check_range("data.randaug_magnitude", self.randaug_magnitude, 0, 30)
        at_least("data.randaug_std", self.randaug_std, 0)
        if self.randaug_order not in ("before_crop", "after_crop"):
            raise ConfigError(f"data.randaug_order must be before_crop or after_crop, got {self.randaug_order!r}")
        check_range("data.erase_prob", self.erase_prob, 0, 1)
        at_least("data.decode_timeout", self.decode_timeout, 0)
        check_range("data.label_smoothing", self.label_smoothing, 0, 1)
        at_least("data.mixup", self.mixup, 0)
        at_least("data.cutmix", self.cutmix, 0)


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
        check_range("optim.layer_decay", self.layer_decay, 0, 1, low_open=True)
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optim.optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        positive("optim.lr", self.lr)
        at_least("optim.lr_batch_size", self.lr_batch_size, 1)
        at_least("optim.min_lr", self.min_lr, 0)
        at_least("optim.weight_decay", self.weight_decay, 0)
        at_least("optim.warmup_epochs", self.warmup_epochs, 0)
        check_range("optim.momentum", self.momentum, 0, 1)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be [beta1, beta2], each in [0, 1), got {self.betas}")
        if self.grad_clip is not None:
            positive("optim.grad_clip", self.grad_clip)


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 8  # clips per process per step (a multiple of data.num_repeats)
    grad_accum: int = 1  # steps accumulated per optimizer update
    mixed_precision: str = "no"  # no, fp16, bf16
    seed: int = 0
    resume: bool = False  # continue from the newest intact checkpoint (an empty output_dir: start)
    checkpoint_every: int = 500  # optimizer updates between resumable checkpoints (and every epoch end)
    keep_checkpoints: int = 2
    log_every: int = 20  # optimizer updates between log lines
    ema: bool = False  # keep an exponential moving average of the weights (validated and saved)
    ema_decay: float = 0.9998
    on_nonfinite: str = "stop"  # a NaN/inf loss: "stop" the run, or "skip" the update
    max_steps: int | None = None  # stop after this many optimizer updates (smoke tests)
    # Seconds a launch waits for another one to release output_dir (engine/runlock.py) before it is
    # refused: a restarted group may start while the old one is still exiting.
    lock_wait: float = 30.0
    # Experiment trackers (Accelerate's): one name or a list of TRACKERS; "all" (every one installed),
    # "none", or "auto": tensorboard when tensorboard or tensorboardX is installed, else none.
    log_with: str | list[str] | None = "auto"

    def __post_init__(self):
        names = self.log_with if isinstance(self.log_with, list) else [self.log_with or "none"]
        for name in names:
            if name not in TRACKERS + TRACKER_CHOICES:
                raise ConfigError(f"train.log_with: unknown tracker {name!r}; use one of {', '.join(TRACKERS)} "
                                  f"(or a list of them), or {', '.join(TRACKER_CHOICES)}")
        if len(names) > 1 and set(names) & set(TRACKER_CHOICES):
            raise ConfigError(f"train.log_with: {', '.join(TRACKER_CHOICES)} stand alone, not in a list "
                              f"(got {self.log_with})")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"train.mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.on_nonfinite not in ("stop", "skip"):
            raise ConfigError(f"train.on_nonfinite must be 'stop' or 'skip', got {self.on_nonfinite!r}")
        for key in ("epochs", "batch_size", "grad_accum", "checkpoint_every", "log_every", "keep_checkpoints"):
            at_least(f"train.{key}", getattr(self, key), 1)
        at_least("train.seed", self.seed, 0)
        at_least("train.lock_wait", self.lock_wait, 0)
        check_range("train.ema_decay", self.ema_decay, 0, 1, low_open=True)
        if self.max_steps is not None:
            at_least("train.max_steps", self.max_steps, 1)


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
        at_least("eval.num_temporal_clips", self.num_temporal_clips, 1)
        at_least("eval.batch_size", self.batch_size, 1)


@dataclass
class Config:
    task: str = "classify"  # classify or ava (`hiera-video finetune`), mae (`hiera-video pretrain`)
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
        if not self.output_dir:
            raise ConfigError("output_dir is empty: name the run's folder")
        self._check_geometry()

    def _check_geometry(self) -> None:
        """The model must exist and cut the clip into whole mask units (checked before any build)."""
        try:
            geometry = model_geometry(self.model.name)
        except ValueError as e:
            raise ConfigError(f"model.name: {e}") from None
        if geometry is None:  # an image model or one we cannot describe: the build will tell
            return
        (pt, ph, pw), (mt, mh, mw) = geometry
        unit_t, unit_h = pt * mt, ph * mh
        if self.data.crop_size % unit_h or (ph * mh != pw * mw):
            raise ConfigError(f"data.crop_size ({self.data.crop_size}) must be a multiple of {unit_h}: "
                              f"{self.model.name} cuts frames into mask units of {unit_h}x{pw * mw} pixels")
        if self.data.num_frames % unit_t:
            raise ConfigError(f"data.num_frames ({self.data.num_frames}) must be a multiple of {unit_t}: "
                              f"{self.model.name} cuts clips into mask units of {unit_t} frames")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "Config":
        return _build(cls, data, "", source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    leaf = key.rsplit(".", 1)[-1]
    # The right name in the wrong section (train.lr -> optim.lr) beats a look-alike in the same one.
    same_leaf = [k for k in valid if k.rsplit(".", 1)[-1] == leaf]
    close = same_leaf[:1] or difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
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
            value = float(value)
        except ValueError:
            pass
    if annotation is float and isinstance(value, float) and not math.isfinite(value):
        # .inf / .nan would only surface after updates (a NaN lr trains NaN weights)
        raise ConfigError(f"{source}: {key} must be a finite number, got {value}")
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
        if dataclasses.is_dataclass(annotation):  # a section; `train:` with nothing under it is empty
            kwargs[key] = _build(annotation, {} if value is None else value, f"{prefix}{key}.", source)
        else:
            kwargs[key] = _check_type(prefix + key, value, annotation, source)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def apply_override(data: dict[str, Any], override: str, source: str = "config") -> None:
    """`a.b=value` into a nested dict; the value is parsed as YAML (3, 0.5, true, null, [1, 2])."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key=value, e.g. train.epochs=3")
    key, text = override.split("=", 1)
    key = key.strip()
    if key not in _keys(Config):
        sections = sorted({k.split(".")[0] for k in _keys(Config) if "." in k})
        if key in sections:
            raise ConfigError(f"override {override!r}: {key} is a section; set a key inside it, e.g. "
                              f"{next(k for k in _keys(Config) if k.startswith(key + '.'))}=...")
        raise _unknown_key(key, "override")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {key}: cannot parse {text!r} ({e})") from None
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        if node.get(part) is None:  # absent, or an empty `section:` in the file
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {part} must be a mapping (a section), got {node!r}; "
                              f"cannot apply override {key}")
    node[parts[-1]] = value


class _StrictLoader(yaml.SafeLoader):
    """`yaml.safe_load` that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so `lr` set twice in a long file would quietly train with the second)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise ConfigError(f"key {key!r} appears twice (lines {seen[key]} and "
                                      f"{key_node.start_mark.line + 1})")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    """A YAML file's contents, safely (no tags executed, no duplicate keys); errors name the file."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a BOM from a Windows editor is harmless
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}, line {line}); save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (`yaml.safe_load` rules), apply `key=value` overrides, validate. `path` is a
    file or the name of a shipped config (`k400_hiera_l`: `hiera-video configs` lists them). Without a
    path, the defaults (for code that fills in the rest); a file must hold a mapping of sections."""
    data: dict[str, Any] = {}
    source = str(path) if path else "defaults"
    if path is not None:
        if Path(path).expanduser().is_dir():
            raise ConfigError(f"config {path} is a folder; give a YAML file in it or a shipped config's name")
        try:
            path = config_path(path)
        except FileNotFoundError as e:
            raise ConfigError(str(e)) from None
        data = read_yaml(path)
        if data is None:  # an empty file would silently train the defaults (a 400-class Hiera-B)
            raise ConfigError(f"{path}: the file is empty; a config sets at least model, data and "
                              f"output_dir (see configs/*.yaml)")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of sections (model:, data:, train:, ...), "
                              f"got a {type(data).__name__}")
    for override in overrides:
        apply_override(data, override, source)
    return Config.from_dict(data, source)


def check_paths(cfg: Config) -> None:
    """The files and folders a run reads exist: checked before any download, model build or output,
    each error naming its config key (what is inside them is checked as they are read). The task knows
    which keys it reads; the checkpoint is every task's."""
    get_task(cfg).check_paths()
    check_pretrained(cfg.model.name, cfg.model.pretrained)


def check_pretrained(name: str, pretrained: str | None) -> None:
    """A URL, a Hugging Face Hub id or a tag of the model passes (downloaded later); anything else must be
    an existing local path. Decided by the one resolver that `create_model` uses."""
    if not pretrained:
        return
    try:
        resolve_source(pretrained, PRETRAINED.get(name, {}), model=name, must_exist=True)
    except UnknownSource as e:
        raise ConfigError(f"model.pretrained: {e}") from None


def save_config(cfg: Config, path: str | Path) -> None:
    atomic_write(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
