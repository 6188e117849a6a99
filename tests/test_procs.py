"""tests/procs.py itself: a child that overruns is killed with everything it started, and the test fails."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import procs

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="looks the processes up in /proc")


def alive(pid: int) -> bool:
    """Running (a zombie, killed but not yet reaped by init, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def gone(*pids: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def pids_in(path: Path, n: int, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while True:
        text = path.read_text() if path.exists() else ""
        if len(text.split()) == n and text.endswith("\n"):
            return [int(w) for w in text.split()]
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never held {n} pids: {text!r}")
        time.sleep(0.02)


def test_run_past_its_timeout_kills_the_child_and_the_grandchild(tmp_path):
    pids = tmp_path / "pids"
    # a shell starts in milliseconds, so 1 s is ample for it to start its grandchild and say so
    script = f"sleep 600 & echo $$ $! > {pids}; sleep 600"
    t0 = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"`sh -c .*sleep 600.*` did not finish within 1 s"):
        procs.run(["sh", "-c", script], timeout=1)
    assert time.monotonic() - t0 < 1 + procs.REAP_SECONDS
    child, grandchild = pids_in(pids, 2, within=0)
    assert gone(child, grandchild), "the child or the grandchild outlived the timeout"


def test_finish_past_its_timeout_kills_the_child_and_the_grandchild(tmp_path):
    pids = tmp_path / "pids"
    script = ("import os, subprocess, sys, time\n"
              "p = subprocess.Popen(['sleep', '600'])\n"
              "open(sys.argv[1], 'w').write(f'{os.getpid()} {p.pid}\\n')\n"
              "print('started', flush=True)\n"
              "time.sleep(600)\n")
    proc = procs.start([sys.executable, "-c", script, pids])
    child, grandchild = pids_in(pids, 2, within=30 * procs.machine_factor())
    assert child == proc.pid and alive(grandchild)
    with pytest.raises(pytest.fail.Exception, match=r"did not finish within 1 s(.|\n)*--- stdout .*\nstarted"):
        procs.finish(proc, timeout=1)
    assert proc.returncode == -9  # reaped
    assert gone(child, grandchild), "the child or the grandchild outlived the timeout"


def test_an_error_while_waiting_kills_the_group_and_is_raised_as_it_was(tmp_path):
    pids = tmp_path / "pids"
    proc = procs.start(["sh", "-c", f"sleep 600 & echo $$ $! > {pids}; sleep 600"])
    with pytest.raises(KeyError), procs.watch(proc, timeout=60):
        child, grandchild = pids_in(pids, 2, within=30 * procs.machine_factor())
        raise KeyError("the test itself failed")
    assert proc.returncode == -9 and gone(child, grandchild)


def test_a_child_that_finishes_in_time_is_an_ordinary_completed_process():
    result = procs.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                       timeout=60 * procs.machine_factor())
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(subprocess.CalledProcessError):
        procs.run(["false"], timeout=60, check=True)


def test_the_machine_factor_is_measured_once():
    factor = procs.machine_factor()
    t0 = time.monotonic()
    assert procs.machine_factor() == factor and time.monotonic() - t0 < 0.01
    assert 1.0 <= factor <= procs.MAX_FACTOR and procs.machine_factor.cache_info().misses == 1
