"""Atomic file writing, shared by everything that writes results, lists, frames or videos.

A file is written under a temporary name beside its final one (`NAME.tmp-PID`, same folder, so the
rename is atomic) and renamed over it only when complete: a reader, or a run resumed after a crash,
sees the old file or the new one, never half of one. The temporary name does not keep the extension,
so globs for finished files (`*.jpg`, `*.mp4`) never pick up a half-written one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields the temporary path to write to; renames it over `path` when the block succeeds and
    removes it when the block fails. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write bytes, or text as UTF-8, atomically. Returns the path."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)
