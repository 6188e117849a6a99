"""Shared fixtures: real audio files written on the fly, and one warm worker per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from oris.engine.client import WorkerClient

from . import procs

REPO = Path(__file__).resolve().parents[1]
DEMO_AUDIO = REPO / "demo" / "speech.flac"
DEMO_TEXT = REPO / "demo" / "speech.txt"
DATA = Path(__file__).resolve().parent / "data"


_exit_status = [0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status[0] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """bpy 4.5 as a module can hang forever at process exit: a static destructor destroys the condition variable its
    own sound-device thread (started once a test plays with sound strips) still waits on; bpy 5 does not. Every
    result is reported by now, so the test process ends here, before those destructors run."""
    bpy = sys.modules.get("bpy")
    if bpy is not None and bpy.app.version < (5, 0, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[0])


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    """A child from procs.start that its test did not finish (the test failed first) is killed, with its group."""
    yield
    procs.kill_leftovers()


@pytest.fixture(scope="session")
def worker():
    with WorkerClient(device="cpu", timeout=60) as client:
        client.start()
        yield client


@pytest.fixture(scope="session")
def speech_16k() -> np.ndarray:
    audio, rate = sf.read(DEMO_AUDIO, dtype="float32")
    assert rate == 16000
    return audio


def write_audio(path: Path, audio: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    sf.write(path, audio, rate, subtype=subtype)
    return path
