"""The run-folder lock (engine/runlock.py): a second launch on a folder in use waits, then is refused
naming the holder, on every one of its processes; a holder killed with SIGKILL, or whose forked child
lives on, leaves a folder the next run takes at once."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import load_tool
from hiera_video.errors import RunFolderLocked
from hiera_video.engine import runlock
from test_train import overrides

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "synthetic_hiera_tiny.yaml"

# Takes the lock on argv[1], forks a child that only sleeps (as a DataLoader worker would), prints
# "CHILD_PID", then holds until its stdin closes, and releases.
HOLDER = """
import os, sys, time
from hiera_video.engine.runlock import lock_run_folder
lock = lock_run_folder(sys.argv[1], 0)
child = os.fork()
if child == 0:
    time.sleep(300)
    os._exit(0)
print(child, flush=True)
sys.stdin.read()
lock.release()
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding the lock on tmp_path/run, with a forked child: (process, child pid, folder)."""
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    yield proc, child, folder
    for pid in (proc.pid, child):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_second_run_is_refused_naming_the_holder_and_a_killed_holder_frees_the_folder_at_once(
        data, holder, capsys, fresh_accelerate):
    proc, child, folder = holder
    args = ["--cfg", str(TINY), *overrides(data, folder, **{"train.lock_wait": 0.5})]
    started = time.monotonic()
    rc = load_tool("finetune").main(args)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert f"{folder} is being written by another run (pid {proc.pid} on " in err
    assert "-c " + str(folder) in err and "waited 0.5 s (train.lock_wait)" in err and "another output_dir" in err
    assert time.monotonic() - started < 60
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # the refused run wrote nothing

    proc.kill()
    proc.wait()
    assert alive(child)  # the holder's forked child lives on, and does not keep the lock
    started = time.monotonic()
    lock = runlock.lock_run_folder(folder, wait_s=0)
    assert time.monotonic() - started < 1
    assert f'"pid": {os.getpid()}' in (folder / ".lock").read_text()
    lock.release()
    assert not (folder / ".lock").exists()


def test_a_launch_waits_for_the_holder_to_finish(holder):
    proc, child, folder = holder
    with pytest.raises(RunFolderLocked, match=f"pid {proc.pid}"):
        runlock.lock_run_folder(folder, wait_s=0)
    proc.stdin.close()  # the holder releases, as a restarted group's old main process exits
    lock = runlock.lock_run_folder(folder, wait_s=30)
    assert proc.wait(timeout=30) == 0 and alive(child)
    lock.release()


def test_one_process_never_locks_a_folder_twice(tmp_path):
    # A second lockf by the holding process would succeed, and closing it would drop the first.
    lock = runlock.lock_run_folder(tmp_path, wait_s=0)
    with pytest.raises(RunFolderLocked, match="already being written by this process"):
        runlock.lock_run_folder(tmp_path, wait_s=0)
    lock.release()
    lock.release()  # idempotent
    runlock.lock_run_folder(tmp_path, wait_s=0).release()


def test_a_filesystem_without_locks_warns_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    def refuse(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(runlock.fcntl, "lockf", refuse)
    lock = runlock.lock_run_folder(tmp_path, wait_s=5)
    assert "WITHOUT protection" in caplog.text and "-o flock" in caplog.text
    lock.release()


@pytest.mark.slow
def test_every_process_of_a_refused_launch_stops(data, holder):
    proc, child, folder = holder
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / "tools" / "finetune.py"), "--cfg", str(TINY),
           *overrides(data, folder, **{"train.batch_size": 2, "train.lock_wait": 1})]
    launch = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    log = launch.stdout + launch.stderr
    assert launch.returncode != 0, log
    # Both processes print the refusal (the main one's, sent to the other), and the launch fails: the
    # first process out exits 2 (the launcher then stops the other). Before the CLI left the process group
    # on its way out (cli.leave_process_group), 1 run in 8 had one abort there instead ("terminate called
    # without an active exception", exit -6: gloo's threads at interpreter exit).
    assert log.count(f"is being written by another run (pid {proc.pid} on ") == 2, log
    assert "(exitcode: 2)" in log and "terminate called" not in log, log
