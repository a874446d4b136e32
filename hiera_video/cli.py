"""What the command-line tools share: logging set-up and the training entry point behind
`tools/finetune.py` (task classify) and `tools/pretrain.py` (task mae)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per file saved is noise


def _errors():
    from .data.datasets import TooManyBadVideos
    from .engine.state import CheckpointWriteError
    from .fileio import DiskFullError
    from .models.checkpoints import CheckpointError
    return (FileExistsError, FileNotFoundError, ValueError), (CheckpointError, CheckpointWriteError, DiskFullError,
                                                               TooManyBadVideos)


def train_main(argv: list[str] | None, task: str, description: str) -> int:
    """Parse `--cfg FILE key=value ...`, check the config's task is one this tool runs (finetune.py:
    classify and ava; pretrain.py: mae), train. Returns the exit code."""
    from .config import ConfigError, load_config

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", type=Path, required=True, help="YAML config (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. train.epochs=3 data.train_list=/d/train.csv")
    args = p.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.cfg, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tools = {"classify": "tools/finetune.py", "ava": "tools/finetune.py", "mae": "tools/pretrain.py"}
    if tools[cfg.task] != tools[task]:
        tool = tools[cfg.task]
        print(f"error: {args.cfg} is a task {cfg.task!r} config; this tool runs task {task!r} (use {tool})",
              file=sys.stderr)
        return 2
    from .engine.train import train
    USAGE_ERRORS, RUN_ERRORS = _errors()
    try:
        metrics = train(cfg)
    except RUN_ERRORS as e:  # the run could not go on (full disk, damaged checkpoints, no readable video)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except USAGE_ERRORS as e:  # bad values, paths or data: the message says which
        print(f"error: {e}", file=sys.stderr)
        return 2
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0
