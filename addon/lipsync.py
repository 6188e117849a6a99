"""Scriptable lip-sync API, shared by the command line and the Blender operators. No bpy.

    from oris.lipsync import analyze
    with WorkerClient() as worker:
        result = analyze(samples_16k, worker, fps=24, settings=CurveSettings(lead_seconds=0.06))
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .core.align import AlignmentError, Transcript, align_transcript
from .core.curves import Animation, CurveSettings, animate, cues_from_posteriors, cues_from_segments
from .engine.client import Posteriors, WorkerClient


@dataclass
class LipSyncResult:
    animation: Animation
    posteriors: Posteriors
    words: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "audio"  # or "transcript"
    warnings: list[str] = field(default_factory=list)


def decoding_settings(card: dict[str, Any], base: CurveSettings) -> CurveSettings:
    """Apply the decoding constants tuned for this model (stored in its card)."""
    tuned = card.get("decoding", {})
    return replace(
        base,
        switch_cost=float(tuned.get("switch_cost", base.switch_cost)),
        closure_threshold=float(tuned.get("closure_threshold", base.closure_threshold)),
        mismatch_gap=float(tuned.get("mismatch_gap", base.mismatch_gap)),
        mismatch_agreement=float(tuned.get("mismatch_agreement", base.mismatch_agreement)),
    )


def analyze(samples: np.ndarray, worker: WorkerClient, fps: float, settings: CurveSettings,
            transcript: Transcript | None = None, on_progress: Callable[[float], None] | None = None,
            cancel: threading.Event | None = None) -> LipSyncResult:
    """16 kHz mono float32 audio -> viseme cues and per-frame weights at `fps`."""
    duration = len(samples) / 16000.0
    posteriors = worker.infer(samples, on_progress=on_progress, cancel=cancel)
    return animate_posteriors(posteriors, duration, fps, settings, transcript)


def animate_posteriors(posteriors: Posteriors, duration: float, fps: float, settings: CurveSettings,
                       transcript: Transcript | None = None) -> LipSyncResult:
    warnings: list[str] = []
    if transcript is not None:
        try:
            aligned = align_transcript(transcript, posteriors.phones, posteriors.frame_rate, settings.mismatch_gap,
                                       settings.mismatch_agreement)
        except AlignmentError as exc:
            warnings.append(f"{exc}; used the audio alone")
        else:
            warnings += aligned.warnings
            cues = cues_from_segments(aligned.viseme_segments, settings)
            anim = animate(cues, duration, fps, settings)
            return LipSyncResult(anim, posteriors, aligned.words, "transcript", warnings)
    cues = cues_from_posteriors(posteriors.visemes, settings, posteriors.frame_rate)
    return LipSyncResult(animate(cues, duration, fps, settings), posteriors, [], "audio", warnings)
