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
from .core.curves import (
    Animation,
    Cue,
    CurveSettings,
    animate,
    cues_from_posteriors,
    cues_from_segments,
    remove_flicker,
    splice,
)
from .core.languages import OTHER_LANGUAGE_MISMATCH, language_name
from .engine.client import Posteriors, WorkerClient


@dataclass
class LipSyncResult:
    animation: Animation
    posteriors: Posteriors
    words: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "audio"  # or "transcript", or "recognized" (the recognizer's words, aligned)
    warnings: list[str] = field(default_factory=list)
    heard: list[dict[str, Any]] = field(default_factory=list)  # recognized windows: start, end, text, used

    @property
    def recognized_text(self) -> str:
        """The words the recognizer heard where they were used: what an artist would review and correct."""
        return " ".join(h["text"] for h in self.heard if h.get("used")).strip()


def decoding_settings(card: dict[str, Any], base: CurveSettings) -> CurveSettings:
    """Apply the decoding constants tuned for this model (stored in its card)."""
    tuned = card.get("decoding", {})
    return replace(
        base,
        switch_cost=float(tuned.get("switch_cost", base.switch_cost)),
        closure_threshold=float(tuned.get("closure_threshold", base.closure_threshold)),
        min_seconds=float(tuned.get("min_seconds", base.min_seconds)),
        mismatch_gap=float(tuned.get("mismatch_gap", base.mismatch_gap)),
        mismatch_agreement=float(tuned.get("mismatch_agreement", base.mismatch_agreement)),
    )


def analyze(samples: np.ndarray, worker: WorkerClient, fps: float, settings: CurveSettings,
            transcript: Transcript | None = None, on_progress: Callable[[float], None] | None = None,
            cancel: threading.Event | None = None, recognize: bool = False, language: str = "en") -> LipSyncResult:
    """16 kHz mono float32 audio -> viseme cues and per-frame weights at `fps`. Without a transcript and
    with `recognize`, the worker's speech recognizer supplies the words (English only so far: in another
    `language`, the audio alone is used, and a warning says to pass the script)."""
    duration = len(samples) / 16000.0
    listen = recognize and transcript is None and language == "en"
    posteriors = worker.infer(samples, on_progress=on_progress, cancel=cancel, recognize=listen)
    if listen:
        return animate_recognized(posteriors, duration, fps, settings)
    result = animate_posteriors(posteriors, duration, fps, settings, transcript)
    if recognize and transcript is None and language != "en":
        result.warnings.append(f"Oris recognizes English words only so far; for {language_name(language)} pass the "
                               "script (--text or --text-file, a manifest's text column, or the panel's Words): "
                               "used the audio alone")
    return result


def _span(start: float, end: float) -> str:
    return f"{start:.1f}-{end:.1f} s"


def animate_recognized(posteriors: Posteriors, duration: float, fps: float, settings: CurveSettings) -> LipSyncResult:
    """The recognizer's words, window by window, aligned like a transcript; a window whose words cannot be
    trusted (no speech, unsure, repetitive, or not matching the audio) keeps the audio-only cues."""
    rate = posteriors.frame_rate
    audio_cues = cues_from_posteriors(posteriors.visemes, settings, rate)
    spans: list[tuple[float, float]] = []
    inside: list[Cue] = []
    words: list[dict[str, Any]] = []
    warnings: list[str] = []
    heard = [dict(h, used=False) for h in posteriors.heard]
    for h in heard:
        lo, hi = int(round(h["start"] * rate)), min(len(posteriors.phones), int(round(h["end"] * rate)) + 1)
        if not h["text"]:
            continue
        if not h["trusted"]:
            warnings.append(f"{_span(h['start'], h['end'])}: the recognizer was unsure of what it heard "
                            f"({h['text'][:60]!r}); used the audio alone there")
            continue
        try:
            aligned = align_transcript(Transcript(h["text"]), posteriors.phones[lo:hi], rate, settings.mismatch_gap,
                                       settings.mismatch_agreement)
        except AlignmentError as exc:
            warnings.append(f"{_span(h['start'], h['end'])}: the recognized words {h['text'][:60]!r} were not used "
                            f"({exc}); used the audio alone there")
            continue
        offset = lo / rate
        h["used"] = True
        spans.append((offset, hi / rate))
        inside += cues_from_segments([(s + offset, e + offset, v) for s, e, v in aligned.viseme_segments], settings)
        words += [{**w, "start": round(w["start"] + offset, 3), "end": round(w["end"] + offset, 3)} for w in aligned.words]
        warnings += aligned.warnings
    if not spans:
        return LipSyncResult(animate(audio_cues, duration, fps, settings), posteriors, [], "audio", warnings, heard)
    cues = remove_flicker(splice(audio_cues, spans, inside), settings.min_seconds, settings.hold_pause_seconds)
    return LipSyncResult(animate(cues, duration, fps, settings), posteriors, words, "recognized", warnings, heard)


def animate_posteriors(posteriors: Posteriors, duration: float, fps: float, settings: CurveSettings,
                       transcript: Transcript | None = None) -> LipSyncResult:
    warnings: list[str] = []
    if transcript is not None:
        try:
            gap, agreement = ((settings.mismatch_gap, settings.mismatch_agreement) if transcript.language == "en"
                              else OTHER_LANGUAGE_MISMATCH)
            aligned = align_transcript(transcript, posteriors.phones, posteriors.frame_rate, gap, agreement)
        except AlignmentError as exc:
            warnings.append(f"{exc}; used the audio alone")
        else:
            warnings += aligned.warnings
            cues = cues_from_segments(aligned.viseme_segments, settings)
            anim = animate(cues, duration, fps, settings)
            return LipSyncResult(anim, posteriors, aligned.words, "transcript", warnings)
    cues = cues_from_posteriors(posteriors.visemes, settings, posteriors.frame_rate)
    return LipSyncResult(animate(cues, duration, fps, settings), posteriors, [], "audio", warnings)
