"""A time limit per video: decoding runs in a forked helper process, and a video that takes longer than
the limit is abandoned and reported like any unreadable one; the job goes on.

A decoder stuck in C (decord's `get_batch` looping with the GIL held) or a read stalled on a network
mount (state D: even SIGKILL waits for the mount) cannot be interrupted from Python, so the caller
never waits on it: it sends SIGKILL, walks away, and forks a fresh helper for the next video. The
abandoned process is reaped without blocking whenever the guard is next used or closed. Helpers are
plain `os.fork` children, not `multiprocessing` ones, whose exit handler would join a stuck one.
Details: docs/data.md (hiera_video/data/guard.py).
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import signal
import socket
from multiprocessing.connection import Connection

import numpy as np

from .decode import DecodeError

# The default time limit per video (data.decode_timeout), in seconds: a 10-s Kinetics clip decodes in well
# under one, a 30-min AVA video opened on a slow mount in a few; a stalled read waits forever.
DEFAULT_SECONDS = 60.0
# Frames come back through a buffer shared with the helper (no pickling, one copy): 64 MB holds the 5
# temporal views of a 16-frame clip at 480x640; a larger answer is pickled through the pipe instead.
SHARED_BYTES = 64 << 20


class TimeLimit:
    """Calls `getattr(target, name)(*args)` in a helper process forked from this one (so `target`, e.g.
    a dataset, is not pickled), with at most `seconds` for the answer; `seconds <= 0` calls it here.
    A call that overruns raises `DecodeError(path, "time limit", ...)`; a `DecodeError` raised in the
    helper is raised here as it was. One helper serves one process; a fork of this process (a DataLoader
    worker) starts its own."""

    def __init__(self, target, seconds: float):
        self.target, self.seconds = target, float(seconds)
        self._pid = self._conn = self._owner = self._shared = None
        self._abandoned: list[int] = []

    def __getstate__(self):  # a pickled copy (spawned DataLoader workers) starts without a helper
        return {"target": self.target, "seconds": self.seconds}

    def __setstate__(self, state):
        self.__init__(state["target"], state["seconds"])

    def call(self, path: str, name: str, *args):
        if self.seconds <= 0:
            return getattr(self.target, name)(*args)
        self._reap()
        if self._owner != os.getpid():  # none yet, or inherited from the process we were forked from
            self._start()
        try:
            self._conn.send_bytes(pickle.dumps((name, args), protocol=pickle.HIGHEST_PROTOCOL))
            ready = self._conn.poll(self.seconds)
        except (OSError, EOFError):  # the helper died (killed, out of memory): a fresh one next time
            self._abandon()
            raise DecodeError(path, "time limit", "the decoding process died") from None
        if not ready:
            self._abandon()
            raise DecodeError(path, "time limit", f"not decoded within data.decode_timeout={self.seconds:g} s "
                                                  f"(a stalled file system, or a decoder caught in a loop)")
        try:
            status, value = _loads(self._conn.recv_bytes())
            value = _unpack(value, self._shared)
        except (OSError, EOFError):
            self._abandon()
            raise DecodeError(path, "time limit", "the decoding process died") from None
        if status == "decode_error":
            raise DecodeError(*value)
        if status == "error":
            raise RuntimeError(f"{path}: {value}")
        return value

    def close(self) -> None:
        """Stop the helper (it exits when its end of the pipe closes) and reap what can be reaped."""
        if self._conn is not None and self._owner == os.getpid():
            self._conn.close()
            self._abandoned.append(self._pid)
        self._pid = self._conn = self._owner = None
        self._reap()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass

    def _start(self) -> None:
        if self._shared is None or self._owner != os.getpid():
            self._shared = mmap.mmap(-1, SHARED_BYTES)  # anonymous and shared: the helper writes, we read
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the helper: serve calls until the pipe closes; never return into the caller's code
            parent.close()
            code = 0
            try:
                _serve(Connection(child.detach()), self.target, self._shared)
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        child.close()
        self._pid, self._conn, self._owner = pid, Connection(parent.detach()), os.getpid()

    def _abandon(self) -> None:
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._conn.close()
        self._abandoned.append(self._pid)
        self._pid = self._conn = self._owner = None

    def _reap(self) -> None:
        left = []
        for pid in self._abandoned:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # already reaped (or not ours: a fork inherited the list)
                continue
            if done == 0:
                left.append(pid)
        self._abandoned = left


# What a call or an answer may hold besides plain values: arrays, and the records the datasets pass.
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"), ("hiera_video.data.lists", "Entry"),
            ("hiera_video.tasks.ava.dataset", "Keyframe")}


class _Unpickler(pickle.Unpickler):
    """Only `_ALLOWED` globals: the pipe's other end is this program's own fork, but nothing is ever
    unpickled that could construct anything else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"time limit: refused to construct {module}.{name}")
        return super().find_class(module, name)


def _loads(data: bytes):
    return _Unpickler(io.BytesIO(data)).load()


def _pack(value, shared: mmap.mmap, offset: list[int]):
    """Arrays in `value` (itself, or in a tuple) go into `shared` while they fit; the rest is pickled."""
    if isinstance(value, tuple):
        return tuple(_pack(v, shared, offset) for v in value)
    if isinstance(value, np.ndarray) and offset[0] + value.nbytes <= len(shared):
        start = offset[0]
        np.frombuffer(shared, np.uint8, value.nbytes, start)[:] = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        offset[0] += value.nbytes
        return ("__shared__", start, value.shape, value.dtype.str)
    return value


def _unpack(value, shared: mmap.mmap):
    if isinstance(value, tuple) and len(value) == 4 and value[0] == "__shared__":
        _, start, shape, dtype = value
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer(shared, np.uint8, n, start).view(dtype).reshape(shape).copy()
    if isinstance(value, tuple):
        return tuple(_unpack(v, shared) for v in value)
    return value


def _serve(conn: Connection, target, shared: mmap.mmap) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    while True:
        try:
            name, args = _loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", _pack(getattr(target, name)(*args), shared, [0]))
        except DecodeError as e:  # rebuilt in the caller (its constructor takes more than a message)
            reply = ("decode_error", (e.path, e.backend, e.reason, e.missing_data))
        except Exception as e:  # noqa: BLE001
            reply = ("error", f"{type(e).__name__}: {e}")
        # Plain pickle, not multiprocessing's: that one would pass tensors as shared-memory handles,
        # which need a resource sharer this pipe does not have.
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
