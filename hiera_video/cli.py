"""The `hiera-video` command (also `python -m hiera_video`, and `accelerate launch -m hiera_video`): one
subcommand per tool, each implemented once in `hiera_video/commands/` (the scripts in the checkout's
tools/ call the same code), and what the subcommands share: logging, `--cfg NAME key=value ...`
arguments, the training entry point behind `finetune` (tasks classify and ava) and `pretrain` (task mae).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import re
import sys

# name -> (module in hiera_video.commands, one-line summary). Summaries live here rather than being read
# from the modules' docstrings so that `hiera-video --help` does not import torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "finetune": ("finetune", "train a classifier (task classify) or an AVA detector (task ava)"),
    "pretrain": ("pretrain", "MAE-pretrain a video Hiera (task mae)"),
    "evaluate": ("evaluate", "multi-view evaluation of a checkpoint on a data list"),
    "evaluate-ava": ("evaluate_ava", "AVA frame-mAP of a detector checkpoint"),
    "predict": ("predict", "top-k classes of video files"),
    "embed": ("extract_embeddings", "one embedding per video of a list (resumable)"),
    "retrieve": ("retrieve", "nearest neighbours in an embedding folder"),
    "probe": ("probe", "frozen-feature k-NN and linear probe of any checkpoint (MAE encoders too)"),
    "export": ("export", "a checkpoint as ONNX or a torch.export program"),
    "save-pretrained": ("save_pretrained", "a checkpoint as a Hugging Face folder (official layout), or to the Hub"),
    "configs": ("configs", "list the shipped configs and class lists, or print one"),
    "benchmark": ("benchmark", "clips/s of a model, optionally beside the official code"),
    "benchmark-data": ("benchmark_data", "decoded + augmented training clips/s of the data pipeline"),
    "benchmark-mae": ("benchmark_mae", "MAE encoder cost, sparse vs dense"),
    "mae-diagnose": ("mae_diagnose", "is an MAE encoder healthy? stage ranks, what the decoder reads"),
    "mae-study": ("mae_study", "does MAE pretraining pay? scratch vs MAE-then-finetune, probes, mask ratios"),
    "check-videos": ("check_videos", "decode every video of a list and report the bad ones"),
    "prepare-kinetics": ("prepare_kinetics", "Kinetics data lists from folders or the official CSVs"),
    "prepare-ssv2": ("prepare_ssv2", "Something-Something-v2 data lists from the official JSON"),
    "resize-videos": ("resize_videos", "re-encode a video tree to a short side (resumable)"),
    "make-synthetic": ("make_synthetic", "write the synthetic action dataset"),
    "make-synthetic-ava": ("make_synthetic_ava", "write a small synthetic AVA dataset"),
    "ava-map": ("ava_map", "official AVA frame-mAP of a results CSV"),
    "visualize-ava": ("visualize_ava", "draw AVA detections on keyframes"),
    "visualize-mae": ("visualize_mae", "picture of an MAE's reconstruction of one video"),
    "demo": ("demo", "the ./run.sh job: synthetic data, finetune, evaluate, embed, retrieve"),
}
ALIASES = {"extract-embeddings": "embed"}


def main(argv: list[str] | None = None) -> int:
    """`hiera-video COMMAND [ARGS]`: run one subcommand; `hiera-video COMMAND --help` for its options."""
    from . import __version__
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        width = max(map(len, COMMANDS))
        lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
        print("usage: hiera-video COMMAND [ARGS]   (or python -m hiera_video COMMAND, accelerate launch -m "
              "hiera_video COMMAND)\n\ncommands:\n" + "\n".join(lines)
              + "\n\n`hiera-video COMMAND --help` shows a command's options.")
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"hiera-video {__version__}")
        return 0
    name = ALIASES.get(argv[0], argv[0])
    if name not in COMMANDS:
        import difflib
        close = difflib.get_close_matches(name, list(COMMANDS), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        print(f"error: unknown command {argv[0]!r}{hint} (`hiera-video --help` lists them)", file=sys.stderr)
        return 2
    module = importlib.import_module(f".commands.{COMMANDS[name][0]}", __package__)
    try:
        return module.main(argv[1:], prog=f"hiera-video {name}")
    except BrokenPipeError:  # `hiera-video configs | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


def command(main):
    """Decorator of every command's `main`: what a user's machine or keyboard does ends in one line, not a
    traceback. An OSError (read-only folder, permission, missing parent, ...) exits 1 naming the path;
    Ctrl-C exits 130 (training commands add how to resume)."""
    @functools.wraps(main)
    def run(argv=None, prog=None) -> int:
        try:
            return main(argv, prog)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except OSError as e:
            print(f"error: {describe_os_error(e)}", file=sys.stderr)
            return 1
    return run


def describe_os_error(e: OSError) -> str:
    """`[Errno 30] Read-only file system: 'x'` -> `x: read-only file system`; other messages as they are."""
    if e.filename is not None and e.strerror:
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else str(e.filename)
        return f"{where}: {e.strerror[0].lower() + e.strerror[1:]}"
    return str(e)


def command_parser(doc: str | None, prog: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_arguments(p: argparse.ArgumentParser, required: bool = False, overrides: bool = True) -> None:
    """`--cfg FILE|NAME` and trailing `key=value` overrides, the same in every command that reads a config."""
    p.add_argument("--cfg", required=required,
                   help="YAML config file, or the name of a shipped one (`hiera-video configs` lists them)")
    if overrides:
        p.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. data.num_workers=8")


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a bad value is an argparse error naming the option)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0, e.g. data workers (0: in this process)."""
    return _int_at_least(text, 0)


def device_arg(text: str) -> str:
    """argparse type: cpu, cuda or cuda:N, and a CUDA device only where one is visible (the check of
    `hiera_video.predict`)."""
    from .api import resolve_device
    try:
        resolve_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def output_path(text: str):
    """argparse type: a non-empty path to write (an empty string would mean the current folder)."""
    from pathlib import Path
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def output_folder(text: str):
    """argparse type: a folder to write, checked before any work: non-empty, and not an existing file."""
    path = output_path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    return path


_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


def split_overrides(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Positional arguments -> (others, key=value overrides), for commands that take both (predict).
    `a.b=c` is an override unless a file of that name exists."""
    from pathlib import Path
    overrides = [t for t in tokens if _OVERRIDE.match(t) and not Path(t).exists()]
    return [t for t in tokens if t not in overrides], overrides


def load_cli_config(cfg: str | None, overrides: list[str] | None):
    """The config named by --cfg with the overrides, or None without --cfg (overrides then are an error)."""
    from .config import ConfigError, load_config
    if cfg is None:
        if overrides:
            raise ConfigError(f"config overrides {overrides} given without --cfg")
        return None
    return load_config(cfg, overrides or [])


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per file saved is noise


def _errors():
    """(usage errors, run errors): see hiera_video.errors."""
    from .errors import RUN_ERRORS, USAGE_ERRORS
    return USAGE_ERRORS, RUN_ERRORS


def train_main(argv: list[str] | None, task: str, description: str, prog: str | None = None) -> int:
    """Parse `--cfg FILE|NAME key=value ...`, check the config's task is one this command runs (finetune:
    classify and ava; pretrain: mae), train. Returns the exit code."""
    from .config import ConfigError, load_config

    p = command_parser(description, prog)
    add_config_arguments(p, required=True)
    args = p.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.cfg, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tools = {"classify": "finetune", "ava": "finetune", "mae": "pretrain"}
    if tools[cfg.task] != tools[task]:
        tool = tools[cfg.task]
        print(f"error: {args.cfg} is a task {cfg.task!r} config; this command runs task {task!r} "
              f"(use `hiera-video {tool}` or tools/{tool}.py)", file=sys.stderr)
        return 2
    from .engine.train import train
    USAGE_ERRORS, RUN_ERRORS = _errors()
    try:
        metrics = train(cfg)
    except KeyboardInterrupt:
        print(f"interrupted; the last checkpoint in {cfg.output_dir}/checkpoints is kept: continue with the same "
              f"command and train.resume=true", file=sys.stderr)
        return 130
    except RUN_ERRORS as e:  # the run could not go on (full disk, damaged checkpoints, no readable video)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except USAGE_ERRORS as e:  # bad values, paths or data: the message says which
        print(f"error: {e}", file=sys.stderr)
        return 2
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0
