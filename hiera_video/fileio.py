"""Atomic file writing, shared by everything that writes results, lists, frames, videos or weights.

A file is written under a temporary name beside its final one (`NAME.tmp-PID`, same folder, so the
rename is atomic) and renamed over it only when complete: a reader, or a run resumed after a crash,
sees the old file or the new one, never half of one. The temporary name does not keep the extension,
so globs for finished files (`*.jpg`, `*.mp4`) never pick up a half-written one. A write that fails
removes its temporary file; a full disk is reported as `DiskFullError` naming the path and the bytes
it needed. Temporaries left by a killed process are removed by `remove_stale_temporaries`.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Temporaries of this module (`x.tmp-123`), of older versions (`.x.123.tmp`, `.x.abc.tmp`) and
# half-written training checkpoints (`.tmp_step_00000100`).
_STALE = re.compile(r"(.+\.tmp-\d+|\..+\.tmp|\.tmp_step_\d+)")


class DiskFullError(OSError):
    """A write that did not fit on its filesystem; the message names the path and the bytes."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def is_disk_full(exc: BaseException) -> bool:
    """A full disk or quota, however it surfaced: OSError(ENOSPC) from Python's own writes, or torch's
    C++ writer's words for the same failure ("iostream error", a PytorchStreamWriter enforce)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)
        if any(s in text for s in ("No space left on device", "Disk quota exceeded", "iostream error",
                                   "PytorchStreamWriter failed writing", "inline_container.cc")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_error(path: str | os.PathLike, needed: int | None, exc: BaseException) -> DiskFullError:
    folder = Path(path).parent
    try:
        free = human_bytes(shutil.disk_usage(folder).free)
    except OSError:
        free = "unknown"
    need = f"about {human_bytes(needed)}" if needed else "more space"
    return DiskFullError(errno.ENOSPC, f"no space left on device writing {path}: it needs {need}, "
                                       f"{free} free in {folder} ({type(exc).__name__}: {exc})")


def open_for_write(path: str | os.PathLike):
    """The one place binary results are opened for writing (tests replace it to simulate a full
    disk). Plain `open`, so the file gets the usual permissions under the umask."""
    return open(path, "wb")


def temporary_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's (or a folder's) data to the disk, so a rename after it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, needed: int | None = None, durable: bool = False) -> Iterator[Path]:
    """Yields the temporary path to write to; renames it over `path` when the block succeeds and
    removes it when the block fails. Creates the parent folder. `needed` (bytes, optional) goes into
    the message of a full disk; `durable` fsyncs the file before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
    except Exception as e:
        if is_disk_full(e):
            raise disk_full_error(path, needed, e) from e
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write bytes, or text as UTF-8, atomically. Returns the path."""
    payload = data if isinstance(data, bytes) else data.encode("utf-8")
    with atomic_path(path, needed=len(payload)) as tmp:
        with open_for_write(tmp) as f:
            f.write(payload)
    return Path(path)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed writers left directly in `folder` (never anything else).
    Call it only where no other process is writing. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if _STALE.fullmatch(p.name):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed
