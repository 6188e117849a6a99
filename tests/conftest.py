"""Shared fixtures: real audio files written on the fly, and one warm worker per session."""

from __future__ import annotations

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
