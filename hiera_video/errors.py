"""The errors a user can meet, and the value checks of config sections that raise `ConfigError`.

One module that imports nothing: the CLI's one error handler sorts the errors (`USAGE_ERRORS` exit 2,
`RUN_ERRORS` exit 1) without importing torch, and every layer raises them (and a task's config section
checks its values) without importing the layer that defines the rest. Each message names its culprit:
the config key, the file and line, the checkpoint key and both shapes."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad config file, key or value; the message names the key."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the culprit."""


class ListError(ValueError):
    """A malformed list or class file; the message names the file and line."""


class DiskFullError(OSError):
    """A write that did not fit on its filesystem; the message names the path and the bytes."""


class RunFolderLocked(FileExistsError):
    """Another launch is writing the run folder (engine/runlock.py); the message names the folder and
    the holder. A FileExistsError, like the refusal of a folder that already holds a run: exit 2."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (the message says why, e.g. the disk is full)."""


class TooManyBadVideos(RuntimeError):
    """Training met `max_retries + 1` unreadable videos in a row: the list or the data root is wrong."""

    @staticmethod
    def message_of(e: BaseException) -> str:
        """The message itself, without the worker traceback a DataLoader wraps around it."""
        lines = [line for line in str(e).splitlines() if line.strip()]
        last = lines[-1] if lines else str(e)
        prefix = "TooManyBadVideos: "
        return last.split(prefix, 1)[1] if prefix in last else last


# What a command reports as one line. Usage (exit 2): the input was wrong: a value, a path, a config, a
# list, or a checkpoint that cannot be read or does not fit (CheckpointError is a ValueError: the user
# or the config named it). Run (exit 1): the job could not go on: a full disk, a checkpoint that could
# not be written, no readable video.
USAGE_ERRORS: tuple[type[BaseException], ...] = (FileExistsError, FileNotFoundError, ValueError)
RUN_ERRORS: tuple[type[BaseException], ...] = (CheckpointWriteError, DiskFullError, TooManyBadVideos)


def check_range(key: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    if not (low < value <= high if low_open else low <= value <= high):
        raise ConfigError(f"{key} must be in {'(' if low_open else '['}{low}, {high}], got {value}")


def at_least(key: str, value: float, low: float) -> None:
    if not value >= low:
        raise ConfigError(f"{key} must be >= {low}, got {value}")


def positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key} must be > 0, got {value}")
