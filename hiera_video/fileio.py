"""Atomic file writing, shared by everything that writes results, lists, frames, videos or weights.

A file is written under a temporary name beside its final one (`NAME.tmp-PID`, same folder, so the
rename is atomic) and renamed over it only when complete: a reader, or a run resumed after a crash,
sees the old file or the new one, never half of one. The temporary name does not keep the extension,
so globs for finished files (`*.jpg`, `*.mp4`) never pick up a half-written one. A write that fails
removes its temporary file; a full disk is reported as `DiskFullError` naming the path and the bytes
it needed, and only on evidence of one (ENOSPC/EDQUOT, or torch's opaque writer error with the free
space at the target below the need): any other failure, a read-only folder say, keeps its own error.
Temporaries left by a killed process are removed by `remove_stale_temporaries`.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFullError

# Temporaries of this module (`x.tmp-123`), of older versions (`.x.123.tmp`, `.x.abc.tmp`) and
# half-written training checkpoints (`.tmp_step_00000100`).
_STALE = re.compile(r"(.+\.tmp-\d+|\..+\.tmp|\.tmp_step_\d+)")

# torch's C++ writer (torch.save to a path, torch.export.save) reports every failure in these words,
# a full disk as much as a read-only folder or a missing one; alone they are no evidence of either.
_TORCH_WRITER = ("inline_container.cc", "PytorchStreamWriter", "iostream error")
_FULL_WORDS = ("No space left on device", "Disk quota exceeded", "ENOSPC", "EDQUOT")
# With no size to compare (`needed` unknown), this little free space means the disk filled up.
_NEARLY_FULL = 1 << 20
# errno numbers by their words, to read torch's "open file failed with strerror: Read-only file system".
_ERRNO_BY_WORDS = {os.strerror(n): n for n in sorted(errno.errorcode, reverse=True)}

logger = logging.getLogger("hiera_video")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc` and what caused it (`raise ... from`, or an exception raised while handling another)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _torch_writer_error(exc: BaseException) -> BaseException | None:
    """The first exception in the chain in the words of torch's C++ writer, else None."""
    return next((e for e in _chain(exc) if any(s in str(e) for s in _TORCH_WRITER)), None)


def _errno_in_words(text: str) -> int | None:
    """The errno a message names in words (torch's "strerror: Permission denied"), else None."""
    return next((n for words, n in _ERRNO_BY_WORDS.items() if words in text), None)


def _free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes in the nearest existing folder of `path`, or None if that cannot be asked."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def is_disk_full(exc: BaseException, path: str | os.PathLike | None = None, needed: int | None = None) -> bool:
    """Whether a failed write ran out of space, on evidence only: an OSError with ENOSPC or EDQUOT
    anywhere in the chain (torch writing to a Python file object keeps it as the context of its own
    RuntimeError), or a message naming it. torch's C++ writer says only "inline_container.cc" or
    "iostream error" whatever went wrong, so such an error counts only if the free space at `path` is
    below `needed` (below 1 MiB when `needed` is unknown); without `path` it does not count."""
    errors = list(_chain(exc))
    if any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in errors):
        return True
    if any(w in str(e) for e in errors for w in _FULL_WORDS):
        return True
    if path is None or _torch_writer_error(exc) is None:
        return False
    # Another named cause (EROFS, EACCES, ENOENT...) rules a full disk out whatever the free space.
    if any(isinstance(e, OSError) and e.errno is not None or _errno_in_words(str(e)) for e in errors):
        return False
    free = _free_bytes(path)
    return free is not None and free < (needed or _NEARLY_FULL)


def write_error(path: str | os.PathLike, exc: BaseException) -> OSError:
    """torch's C++ writer's RuntimeError as an OSError naming the file it could not write, with the
    errno of the OSError behind it or the one its message names in words, else EIO."""
    code = next((e.errno for e in _chain(exc) if isinstance(e, OSError) and e.errno), None)
    return OSError(code or _errno_in_words(str(exc)) or errno.EIO, f"cannot write {path}: {exc}")


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
        if is_disk_full(e, path, needed):
            raise disk_full_error(path, needed, e) from e
        if not isinstance(e, OSError) and _torch_writer_error(e) is not None:
            raise write_error(path, e) from e
        raise  # anything else keeps its own type, errno and path
    finally:
        _remove_temporary(tmp)


def _remove_temporary(tmp: Path) -> None:
    """Remove a write's temporary, quietly: on a read-only folder unlink fails too, and its error
    must not replace the one that says why the write failed."""
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass  # renamed into place, or never created
    except OSError as e:
        logger.warning("could not remove the temporary file %s: %s", tmp, e)


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
