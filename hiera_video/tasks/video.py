"""What the two video-level tasks (classify, mae) share: their clip datasets built from a config,
and the checks of the lists and folders those read."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..data.datasets import ClipDataset, MultiViewDataset, collate_clips, collate_views
from ..data.lists import read_list
from ..data.transforms import RandAugment
from ..errors import ConfigError
from . import Datasets

LIST_HELP = ("make lists with `hiera-video prepare-kinetics` or `prepare-ssv2` (tools/prepare_kinetics.py, "
             "tools/prepare_ssv2.py; formats: hiera_video/data_lists/README.md), then set it in the config or "
             "as {key}=PATH")


def need_file(key: str, value: str | None, help_text: str = "") -> None:
    """The file a config key names exists (when the key is set); the error names the key."""
    if value and not Path(value).is_file():
        what = "is a folder, not a file" if Path(value).is_dir() else "does not exist"
        raise ConfigError(f"{key}: {value} {what}" + (f"; {help_text}" if help_text else ""))


def need_dir(key: str, value: str | None) -> None:
    if value and not Path(value).is_dir():
        raise ConfigError(f"{key}: {value} is not a folder")


def check_video_paths(cfg: Config) -> None:
    d = cfg.data
    if not d.train_list:
        raise ConfigError("data.train_list is not set: " + LIST_HELP.format(key="data.train_list"))
    need_file("data.train_list", d.train_list, LIST_HELP.format(key="data.train_list"))
    need_file("data.val_list", d.val_list, LIST_HELP.format(key="data.val_list"))
    need_dir("data.root", d.root)


def _entries(cfg: Config, path: str, labelled: bool):
    if not labelled:
        return read_list(path, cfg.data.root, labelled=False)
    return read_list(path, cfg.data.root, num_classes=cfg.model.num_classes)


def train_dataset(cfg: Config, labelled: bool = True) -> ClipDataset:
    d = cfg.data
    if not d.train_list:
        raise ValueError("data.train_list is not set: give a list of `path label` lines (data_lists/README.md)")
    randaug = RandAugment(d.randaug_magnitude, d.randaug_num_ops, d.randaug_std) if d.randaug_num_ops > 0 else None
    return ClipDataset(_entries(cfg, d.train_list, labelled), num_frames=d.num_frames, sampling_rate=d.sampling_rate,
                       target_fps=d.target_fps, sampling_mode=d.sampling_mode, crop_size=d.crop_size,
                       scale=tuple(d.scale), hflip=d.hflip, randaug=randaug, randaug_order=d.randaug_order,
                       short_side=d.train_short_side, num_repeats=d.num_repeats, backend=d.backend,
                       decode_timeout=d.decode_timeout)


def eval_dataset(cfg: Config, list_path: str, temporal: int, spatial: int, labelled: bool = True) -> MultiViewDataset:
    d = cfg.data
    return MultiViewDataset(_entries(cfg, list_path, labelled), num_frames=d.num_frames, sampling_rate=d.sampling_rate,
                            target_fps=d.target_fps, sampling_mode=d.sampling_mode, crop_size=d.crop_size,
                            num_temporal_clips=temporal, num_spatial_crops=spatial,
                            test_short_side=d.test_short_side, backend=d.backend,
                            decode_timeout=d.decode_timeout)


def video_datasets(cfg: Config, labelled: bool) -> Datasets:
    # Validation during training: one centre view per video (eval.* views are for `hiera-video evaluate`).
    val = eval_dataset(cfg, cfg.data.val_list, 1, 1, labelled) if cfg.data.val_list else None
    return Datasets(train_dataset(cfg, labelled), val, collate_clips, collate_views)
