"""The run-folder lock: one launch (one group of processes) writes a run folder at a time.

The main process of a training run holds a POSIX record lock (`fcntl.lockf`) on `output_dir/.lock` from
before it reads the folder until the run ends; the file says who holds it (host, pid, start, command),
so that a second launch on the same folder waits `train.lock_wait` seconds (a restarting group may
overlap the old one's exit) and is then refused naming the holder. Why a record lock and not `flock`:
record locks belong to a process, are not inherited by `fork` (DataLoader workers, the decode-timeout
helper), and the kernel drops them when the process dies, so a crashed or SIGKILLed run never leaves
the folder locked, even while its orphaned workers live on. The catch is that closing ANY descriptor
of the file in the holding process drops the lock: the file is opened once (O_CLOEXEC), and a process
never takes a second lock on a folder it already holds.

Shared filesystems: on NFS the lock goes through the lock manager (NLM for NFSv3, the protocol itself
for NFSv4), unless the folder is mounted `nolock` or `local_lock=posix|all`, where it only excludes
processes of the same node; on Lustre it needs the client mount option `flock` (`localflock` is
node-local, `noflock` refuses locks). Where the filesystem refuses locks the run goes on unlocked,
with a warning saying so. Details: docs/distributed.md (hiera_video/engine/runlock.py).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import RunFolderLocked

logger = logging.getLogger("hiera_video")

LOCK_FILE = ".lock"
# How often a waiting launch tries again: short, since a restarting group waits on it.
_POLL_S = 0.2
# (st_dev, st_ino) of the lock files this process holds: taking one again would succeed (the lock is
# the process's) and closing that second descriptor would silently drop the first.
_held: dict[tuple[int, int], Path] = {}


class RunLock:
    """A held lock on `path`; `release()` (idempotent) removes the file and drops the lock."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = path, fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _held.pop(_key(os.fstat(fd)), None)
        try:
            # Removed while still held: a launch that opened this file meanwhile finds, once it gets the
            # lock, that the file is gone, and starts over with a new one (see lock_run_folder).
            if _is_file_at(fd, self.path):
                os.unlink(self.path)
        except OSError as e:
            logger.warning("could not remove %s (harmless: the lock is dropped anyway): %s", self.path, e)
        finally:
            os.close(fd)


def lock_run_folder(folder: str | Path, wait_s: float = 30.0) -> RunLock:
    """Lock `folder` (created if missing) for this process. Held by another process: try again for
    `wait_s` seconds, then raise RunFolderLocked naming the holder. A filesystem without locks: a
    warning, and an unheld RunLock."""
    folder = Path(folder)
    path = folder / LOCK_FILE
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if _key(os.stat(path)) in _held:
            raise RunFolderLocked(f"{folder} is already being written by this process (pid {os.getpid()}): one "
                                  f"run per output_dir; finish or close the first (Trainer.fit releases it)")
    except FileNotFoundError:
        pass
    deadline, told = time.monotonic() + wait_s, False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _holder(fd)
            os.close(fd)  # never held by this process: closing it drops nothing
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                logger.warning("%s: this filesystem refused a lock (%s); the run goes on WITHOUT protection from "
                               "a second launch writing the same folder (NFS: mount without nolock/local_lock; "
                               "Lustre: mount with -o flock)", path, os.strerror(e.errno or 0) or e)
                return RunLock(path, None)
            if time.monotonic() >= deadline:
                raise RunFolderLocked(f"{folder} is being written by another run ({holder}); waited {wait_s:g} s "
                                      f"(train.lock_wait). Let that run finish or stop it, or choose another "
                                      f"output_dir. A run that died holds no lock: the kernel drops it with "
                                      f"the process") from None
            if not told:
                logger.info("%s is locked by %s; waiting up to %g s (train.lock_wait)", folder, holder, wait_s)
                told = True
            time.sleep(_POLL_S)
            continue
        if not _is_file_at(fd, path):  # the holder removed the file between our open and our lock
            os.close(fd)
            continue
        _write_holder(fd)
        _held[_key(os.fstat(fd))] = path
        return RunLock(path, fd)


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        return _key(os.stat(path)) == _key(os.fstat(fd))
    except FileNotFoundError:
        return False


def _write_holder(fd: int) -> None:
    """Who holds the lock, for the message of a refused launch (one JSON line)."""
    info = {"host": socket.gethostname(), "pid": os.getpid(),
            "since": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)}
    data = (json.dumps(info) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _holder(fd: int) -> str:
    """The holder as written by `_write_holder`, in words (it may not have written it yet)."""
    try:
        info = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8"))
        return f"pid {info['pid']} on {info['host']}, since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"
