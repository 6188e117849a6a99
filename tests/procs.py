"""Every subprocess the tests start goes through here, so that no test can hang or leave processes behind.

A child is started in a session (and so a process group) of its own. When waiting for it runs out of time,
or anything else goes wrong while waiting, the whole group is killed, the worker the child started included,
the child is reaped, and the test fails saying which command it was. A process started with `start` that is
still running when its test ends is killed by the autouse fixture in conftest.py.

`machine_factor()` says how much slower than an idle 2-core machine this one is right now; a test's start-up
limits are `base * machine_factor()`.
"""

from __future__ import annotations

import functools
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

# `python -c "import numpy, onnxruntime"`, the best of two, on an idle 2-core machine: 0.20-0.33 s
REFERENCE_SECONDS = 0.30
MAX_FACTOR = 10.0  # beyond this the machine is too busy for any limit to mean much
REAP_SECONDS = 10.0  # after the kill, how long the pipes may stay open (held by something outside the group)

_open: set[subprocess.Popen] = set()  # started here, not yet finished here


def _show(args: object) -> str:
    return shlex.join(map(str, args)) if isinstance(args, Sequence) and not isinstance(args, str | bytes) else str(args)


def start(cmd: Sequence[object], *, capture: bool = True, text: bool = True, **kw) -> subprocess.Popen:
    """Popen(cmd) in a new session; stdout and stderr are captured (as text) unless capture=False."""
    if capture:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen([str(c) for c in cmd], text=text, start_new_session=True, **kw)
    proc.pgid = proc.pid  # type: ignore[attr-defined]
    _open.add(proc)
    return proc


def _group_of(proc: subprocess.Popen) -> int:
    pgid = getattr(proc, "pgid", None)
    if pgid is None:
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            pgid = proc.pid
        if pgid != proc.pid:
            raise ValueError(f"{_show(proc.args)} shares a process group with others: start it with procs.start")
    return pgid


def kill(proc: subprocess.Popen) -> tuple[str | bytes | None, str | bytes | None]:
    """Kill proc's whole process group and reap proc; what it had written, when its output was captured."""
    try:
        os.killpg(_group_of(proc), signal.SIGKILL)
    except ProcessLookupError:
        pass
    _open.discard(proc)
    try:
        return proc.communicate(timeout=REAP_SECONDS)
    except (subprocess.TimeoutExpired, ValueError, OSError):  # the pipes are held open outside the group
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
        proc.wait()
        return None, None


def _tail(name: str, data: str | bytes | None, n: int = 2000) -> str:
    if not data:
        return ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return f"\n--- {name} (last {n} characters) ---\n{text[-n:]}"


def _timed_out(proc: subprocess.Popen, timeout: float, out, err) -> None:
    pytest.fail(f"`{_show(proc.args)}` did not finish within {timeout:g} s (machine factor {machine_factor():.1f}); "
                f"its process group was killed{_tail('stdout', out)}{_tail('stderr', err)}")


def finish(proc: subprocess.Popen, timeout: float, input: str | bytes | None = None) -> subprocess.CompletedProcess:
    """Wait for a child from `start` (communicate); past `timeout` s, kill its group and fail the test."""
    _group_of(proc)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = kill(proc)
        _timed_out(proc, timeout, out, err)
    except BaseException:
        kill(proc)
        raise
    _open.discard(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(cmd: Sequence[object], *, timeout: float, check: bool = False, input: str | bytes | None = None,
        **kw) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True, timeout=timeout), killing the whole group on timeout."""
    if input is not None:
        kw.setdefault("stdin", subprocess.PIPE)
    result = finish(start(cmd, **kw), timeout, input)
    if check:
        result.check_returncode()
    return result


@contextmanager
def watch(proc: subprocess.Popen, timeout: float) -> Iterator[subprocess.Popen]:
    """For a child the test talks to itself: past `timeout` s, or on any error in the block, its group is killed
    (which ends any read blocked on its pipes) and the test fails."""
    pgid = _group_of(proc)
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        yield proc
    except BaseException:
        timer.cancel()
        out, err = kill(proc)
        if fired.is_set():
            _timed_out(proc, timeout, out, err)
        raise
    timer.cancel()
    if fired.is_set():
        out, err = kill(proc)
        _timed_out(proc, timeout, out, err)
    if proc.poll() is not None:
        _open.discard(proc)


def kill_leftovers() -> list[str]:
    """Kill the group of every child from `start` that its test never finished; their commands."""
    left = []
    for proc in list(_open):
        if proc.poll() is None:
            left.append(_show(proc.args))
        kill(proc)
    return left


@functools.cache
def machine_factor() -> float:
    """How many times slower than an idle 2-core machine this one is now (>= 1), measured once per session
    as the time Python takes to import numpy and onnxruntime, the start of every worker."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        proc = start([sys.executable, "-c", "import numpy, onnxruntime"], capture=False,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=REFERENCE_SECONDS * MAX_FACTOR)
        except subprocess.TimeoutExpired:
            kill(proc)
            return MAX_FACTOR
        _open.discard(proc)
        best = min(best, time.perf_counter() - t0)
    return min(MAX_FACTOR, max(1.0, best / REFERENCE_SECONDS))
