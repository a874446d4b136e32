"""Failed writes say what went wrong: a full disk only on evidence of one (ENOSPC, or torch's opaque
writer error with too little free space at the target); a read-only folder keeps its own error, and a
temporary that cannot be removed never hides it. We run as root, where chmod stops nothing, so the
failures are simulated by replacing what writes."""

import errno
import os
import shutil
from collections import namedtuple

import pytest

from hiera_video import fileio

Usage = namedtuple("Usage", "total used free")
TORCH_OPAQUE = "[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0"


def free_space(monkeypatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10 * free + 1, 9 * free, free))


def raising(exc):
    def write(*_args, **_kwargs):
        raise exc
    return write


def no_temporaries(folder) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


def read_only(monkeypatch, tmp_path) -> None:
    """A read-only mount: the temporary cannot be removed either (unlink fails with EROFS)."""
    real_unlink = type(tmp_path).unlink

    def unlink(self, *args, **kwargs):
        if ".tmp-" in self.name:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "unlink", unlink)


def test_a_read_only_folder_keeps_its_own_error(tmp_path, monkeypatch):
    read_only(monkeypatch, tmp_path)
    first = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "m.pt.tmp-1"))
    monkeypatch.setattr(fileio, "open_for_write", raising(first))
    with pytest.raises(OSError) as info:
        fileio.atomic_write(tmp_path / "m.pt", b"x" * 100)
    assert info.value is first  # not a DiskFullError, not the cleanup's error: errno and path kept


def test_a_permission_error_on_the_rename_is_not_a_full_disk(tmp_path, monkeypatch):
    read_only(monkeypatch, tmp_path)
    first = PermissionError(errno.EACCES, "Permission denied", "ro/m2.pt2")
    monkeypatch.setattr(os, "replace", raising(first))
    with pytest.raises(PermissionError) as info:
        fileio.atomic_write(tmp_path / "m2.pt2", b"x")
    assert info.value is first


def test_torchs_opaque_error_with_room_to_spare_is_not_a_full_disk(tmp_path, monkeypatch):
    free_space(monkeypatch, 80 * 10**9)
    with pytest.raises(OSError, match=r"cannot write .*m2\.pt2: .*inline_container\.cc") as info:
        with fileio.atomic_path(tmp_path / "m2.pt2", needed=1000):
            raise RuntimeError(TORCH_OPAQUE)
    assert not isinstance(info.value, fileio.DiskFullError)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_torchs_open_failure_keeps_the_errno_it_names(tmp_path, monkeypatch):
    free_space(monkeypatch, 0)  # even a full disk: the message names another cause
    with pytest.raises(OSError, match="cannot write .*m2.pt2") as info:
        with fileio.atomic_path(tmp_path / "m2.pt2", needed=1000):
            raise RuntimeError("[enforce fail at inline_container.cc:747] . open file failed with strerror: "
                               "Read-only file system")
    assert not isinstance(info.value, fileio.DiskFullError) and info.value.errno == errno.EROFS


def test_torchs_opaque_error_with_too_little_room_is_a_full_disk(tmp_path, monkeypatch):
    free_space(monkeypatch, 500)
    with pytest.raises(fileio.DiskFullError, match=r"writing .*m2\.pt2: it needs about 1\.00 KB, 500 B free"):
        with fileio.atomic_path(tmp_path / "m2.pt2", needed=1000):
            raise RuntimeError(TORCH_OPAQUE)
    assert fileio.is_disk_full(RuntimeError(TORCH_OPAQUE), tmp_path / "x", None)  # < 1 MiB, size unknown
    assert not fileio.is_disk_full(RuntimeError(TORCH_OPAQUE))  # no path: nothing to check


def test_a_real_enospc_is_a_full_disk(tmp_path, monkeypatch):
    free_space(monkeypatch, 80 * 10**9)  # what a filesystem says, however much space it claims
    monkeypatch.setattr(fileio, "open_for_write", raising(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(fileio.DiskFullError, match=r"no space left on device writing .*w\.bin: it needs about"):
        fileio.atomic_write(tmp_path / "w.bin", b"x" * 100)
    # torch.save to a Python file object: its RuntimeError has the OSError as context.
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError(TORCH_OPAQUE)
    except RuntimeError as e:
        assert fileio.is_disk_full(e, tmp_path / "w.bin", 10)
    assert fileio.is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))


def test_a_failing_cleanup_never_hides_the_first_error(tmp_path, monkeypatch, caplog):
    read_only(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="the block's own error"):
        with fileio.atomic_path(tmp_path / "v.txt") as tmp:
            tmp.write_text("half")
            raise ValueError("the block's own error")
    assert "could not remove the temporary file" in caplog.text
    monkeypatch.undo()
    assert [p.name for p in fileio.remove_stale_temporaries(tmp_path)] == [f"v.txt.tmp-{os.getpid()}"]
    fileio.atomic_write(tmp_path / "ok.txt", "fine")  # renamed away: nothing left to remove
    assert (tmp_path / "ok.txt").read_text() == "fine" and no_temporaries(tmp_path)
