"""The `hiera-video` command (also `python -m hiera_video`, and `accelerate launch -m hiera_video`): one
subcommand per tool, each implemented once in `hiera_video/commands/` (the scripts in the checkout's
tools/ call the same code), and what the subcommands share: `command`, the one way a command is made
(its parser, its logging, one handler of its errors), `--cfg NAME key=value ...` arguments, argparse
types, and the training entry point behind `finetune` (tasks classify and ava) and `pretrain` (task mae).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import re
import sys
from collections.abc import Callable

from .errors import RUN_ERRORS, USAGE_ERRORS

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
    "benchmark-lists": ("benchmark_lists", "memory of DataLoader workers reading a Kinetics-sized list"),
    "benchmark-mae": ("benchmark_mae", "MAE encoder cost, sparse vs dense"),
    "benchmark-resume": ("benchmark_resume", "peak memory per process of resuming a sharded (FSDP2) checkpoint"),
    "mae-diagnose": ("mae_diagnose", "is an MAE encoder healthy? stage ranks, what the decoder reads"),
    "mae-study": ("mae_study", "does MAE pretraining pay? scratch vs MAE-then-finetune, probes, mask ratios"),
    "check-videos": ("check_videos", "decode every video of a list and report the bad ones"),
    "prepare-kinetics": ("prepare_kinetics", "Kinetics data lists from folders or the official CSVs"),
    "prepare-ssv2": ("prepare_ssv2", "Something-Something-v2 data lists from the official JSON"),
    "extract-frames": ("extract_frames", "frames folders (rawframes) from the videos of a list (resumable)"),
    "resize-videos": ("resize_videos", "re-encode a video tree to a short side (resumable)"),
    "make-synthetic": ("make_synthetic", "write the synthetic action dataset"),
    "make-synthetic-ava": ("make_synthetic_ava", "write a small synthetic AVA dataset"),
    "ava-map": ("ava_map", "official AVA frame-mAP of a results CSV"),
    "visualize-ava": ("visualize_ava", "draw AVA detections on keyframes"),
    "visualize-mae": ("visualize_mae", "picture of an MAE's reconstruction of one video"),
    "demo": ("demo", "the ./run.sh job: synthetic data, finetune, evaluate, embed, retrieve"),
}
ALIASES = {"extract-embeddings": "embed"}

Body = Callable[[argparse.Namespace], int]  # what a command does with its parsed arguments -> exit code
Main = Callable[..., int]  # main(argv=None, prog=None) -> exit code: how a command is called


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


class ArgumentsError(Exception):
    """Arguments that parse but do not go together (`--csv needs --clips`): raised by a command's body,
    reported by its parser like any argparse error (usage line, exit 2)."""


def command(doc: str | None, arguments: Callable[[argparse.ArgumentParser], None], *, logs: bool = False,
            interrupted: Callable[[argparse.Namespace], str] | None = None,
            usage_errors: tuple[type[BaseException], ...] = (),
            run_errors: tuple[type[BaseException], ...] = ()) -> Callable[[Body], Main]:
    """The one way a command is made: `@command(__doc__, arguments) def main(args) -> int` becomes
    `main(argv=None, prog=None) -> int`, what `hiera-video NAME`, tools/NAME.py and tests call.

    Its parser is `command_parser(doc, prog)` with `arguments(p)` added; `logs` sets up logging before the
    body runs. Every error ends in one line, not a traceback: USAGE_ERRORS and the command's `usage_errors`
    exit 2; RUN_ERRORS, its `run_errors` and any other OSError exit 1 (an OSError naming the path); an
    ArgumentsError is an argparse error (usage line, exit 2); Ctrl-C exits 130, saying `interrupted(args)`
    (how to continue) when given."""
    def build(body: Body) -> Main:
        def main(argv: list[str] | None = None, prog: str | None = None) -> int:
            p = command_parser(doc, prog)
            arguments(p)
            args = None
            try:
                args = p.parse_args(argv)
                if logs:
                    setup_logging()
                return body(args)
            except ArgumentsError as e:
                p.error(str(e))
            except KeyboardInterrupt:
                hint = interrupted(args) if interrupted is not None and args is not None else ""
                print("interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
                return 130
            except USAGE_ERRORS + usage_errors as e:  # a value, path, config or list: the message says which
                print(f"error: {describe_error(e)}", file=sys.stderr)
                return 2
            # The job could not go on: a full disk, no readable video, a read-only folder, a permission, ...
            except RUN_ERRORS + run_errors + (OSError,) as e:
                print(f"error: {describe_error(e)}", file=sys.stderr)
                return 1
            finally:
                leave_process_group()
        main.__doc__ = doc
        return main
    return build


def leave_process_group() -> None:
    """Leave the process group (of a launched command) before the interpreter exits. Left to the exit,
    gloo's threads now and then abort the process after its last word ("terminate called without an
    active exception", exit -6: 2 of 16 refused two-process launches here) instead of its exit code."""
    dist = sys.modules.get("torch.distributed")  # never imported for it: a command that used none has none
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - leaving is best effort; the exit code is what matters here
        pass


def describe_error(e: BaseException) -> str:
    """An error as one line: `[Errno 30] Read-only file system: 'x'` -> `x: read-only file system`; other
    messages as they are."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else str(e.filename)
        return f"{where}: {e.strerror[0].lower() + e.strerror[1:]}"
    return str(e)


def command_parser(doc: str | None, prog: str | None) -> argparse.ArgumentParser:
    """Every command's parser: the module docstring, examples and all, as its description."""
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_arguments(p: argparse.ArgumentParser, required: bool = False, overrides: bool = True) -> None:
    """`--cfg FILE|NAME` and trailing `key=value` overrides, the same in every command that reads a config."""
    p.add_argument("--cfg", required=required,
                   help="YAML config file, or the name of a shipped one (`hiera-video configs` lists them)")
    if overrides:
        p.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. data.num_workers=8")


def add_loader_arguments(p: argparse.ArgumentParser) -> None:
    """--batch-size and --workers of the commands that embed a list of videos (embed, probe)."""
    p.add_argument("--batch-size", type=positive_int, default=4, help="videos per process per step")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data workers per process")


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


def train_command(name: str, doc: str) -> Main:
    """The `main` of finetune and of pretrain: `--cfg FILE|NAME key=value ...`, the config's task checked
    to be one this command runs (each task names its command), then training; Ctrl-C says how to
    continue."""
    def run(args: argparse.Namespace) -> int:
        from .config import ConfigError, load_config
        from .tasks import task_class
        cfg = load_config(args.cfg, args.overrides)
        args.output_dir = cfg.output_dir  # named by the Ctrl-C hint
        tool = task_class(cfg.task).command
        if tool != name:
            raise ConfigError(f"{args.cfg} is a task {cfg.task!r} config, which `hiera-video {name}` does not run "
                              f"(use `hiera-video {tool}` or tools/{tool}.py)")
        from .engine.train import train  # here, not at the top: cli.py stays free of torch
        metrics = train(cfg)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
        return 0

    def resume_hint(args: argparse.Namespace) -> str:
        if not hasattr(args, "output_dir"):  # stopped before the config was read: nothing to continue
            return ""
        return (f"the last checkpoint in {args.output_dir}/checkpoints is kept: continue with the same command "
                f"and train.resume=true")

    return command(doc, functools.partial(add_config_arguments, required=True), logs=True,
                   interrupted=resume_hint)(run)
