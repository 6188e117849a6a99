"""Run the shipped pipeline (real worker process, ONNX model) over a labelled set."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from labels import LabelledSet  # noqa: E402

from addon.engine.client import Posteriors, WorkerClient  # noqa: E402


def posteriors_for(ds: LabelledSet, model: str | None = None, recognize: bool = False) -> list[Posteriors]:
    """The worker's output for each utterance; with recognize, the recognizer's words too (Posteriors.heard)."""
    with WorkerClient(device="cpu", model=model) as worker:
        return [worker.infer(ds.float_audio(i), recognize=recognize) for i in range(len(ds))]


def english_posteriors(ds: LabelledSet, posts: list[Posteriors], model: str | None = None) -> list[Posteriors]:
    """The English viseme model's output for each utterance of an English set: `posts` where it ran there, and a
    run told the language where the recognizer named another one (recognized mode then ran the multilingual
    model; audio alone and an English script run the English one)."""
    again = [i for i, post in enumerate(posts) if post.model != "en"]
    if not again:
        return posts
    out = list(posts)
    with WorkerClient(device="cpu", model=model) as worker:
        for i in again:
            out[i] = worker.infer(ds.float_audio(i), language="en")
    return out
