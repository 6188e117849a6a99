"""Scriptable lip-sync API, shared by the command line and the Blender operators. No bpy.

    from oris.lipsync import analyze
    with WorkerClient() as worker:
        result = analyze(samples_16k, worker, fps=24, settings=CurveSettings())
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .core.align import AlignmentError, Transcript, align_transcript, pronounce
from .core.curves import (
    NOTHING_SAID,
    Animation,
    Articulation,
    Cue,
    CurveSettings,
    animate,
    cues_from_posteriors,
    cues_from_segments,
    cut_to,
    heard_glides,
    remove_flicker,
    splice,
)
from .core.languages import (
    AUTO,
    OTHER_LANGUAGE_MISMATCH,
    from_recognizer,
    guess_language,
    language_name,
    recognizer_code,
    recognizer_languages,
)
from .engine.client import Posteriors, WorkerClient


@dataclass
class LipSyncResult:
    animation: Animation
    posteriors: Posteriors
    words: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "audio"  # or "transcript", or "recognized" (the recognizer's words, aligned)
    warnings: list[str] = field(default_factory=list)
    heard: list[dict[str, Any]] = field(default_factory=list)  # recognized windows: start, end, text, used
    language: str = ""  # the language of the words used ("" where the audio alone was used and none was named)

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
            cancel: threading.Event | None = None, recognize: bool = False, language: str = AUTO) -> LipSyncResult:
    """16 kHz mono float32 audio -> viseme cues and per-frame weights at `fps`. Without a transcript and
    with `recognize`, the worker's speech recognizer supplies the words, in `language` or (auto) in the
    language it hears. A transcript in the auto language is read in the language its words show, or, where
    they do not say, the one the recognizer hears."""
    duration = len(samples) / 16000.0
    if transcript is not None and transcript.language == AUTO:
        guessed = guess_language(transcript.text)
        if guessed is None and any(c.isalpha() for c in transcript.text):
            named = worker.infer(samples, on_progress=on_progress, cancel=cancel, recognize="language",
                                 languages=recognizer_languages())
            result = animate_posteriors(named, duration, fps, settings, Transcript(transcript.text, _named(named)))
            return result
        transcript = Transcript(transcript.text, guessed or "en")
    listen = recognize and transcript is None
    spoken = transcript.language if transcript is not None else language  # picks the viseme model too
    posteriors = worker.infer(samples, on_progress=on_progress, cancel=cancel, recognize=listen,
                              language=recognizer_code(spoken) if spoken != AUTO else AUTO,
                              languages=recognizer_languages())
    if listen:
        return animate_recognized(posteriors, duration, fps, settings, language)
    result = animate_posteriors(posteriors, duration, fps, settings, transcript)
    if transcript is None and language != AUTO:
        result.language = language
    return result


def _named(posteriors: Posteriors) -> str:
    """The language the recognizer named for most of the speech, among Oris's (English where it named none)."""
    seconds: dict[str, float] = {}
    for h in posteriors.heard:
        code = from_recognizer(h.get("language", ""))
        if code:
            seconds[code] = seconds.get(code, 0.0) + h["end"] - h["start"]
    return max(seconds, key=seconds.__getitem__) if seconds else "en"


def _span(start: float, end: float) -> str:
    return f"{start:.1f}-{end:.1f} s"


def _mismatch(language: str, settings: CurveSettings) -> tuple[float, float]:
    """How far a script may sit from the audio before it is judged not to match: English keeps the values tuned
    with the model (its card); other languages, the ones chosen on their prompt voices."""
    return (settings.mismatch_gap, settings.mismatch_agreement) if language == "en" else OTHER_LANGUAGE_MISMATCH


def _unsure_stretches(h: dict[str, Any], words: list[dict[str, Any]], language: str) -> list[tuple[float, float]] | None:
    """Where, within a window's aligned words, a sentence the recognizer was unsure of was said (seconds
    relative to the window); None where the sentences cannot be matched to the words (then the window's
    words stand or fall together)."""
    sentences = h.get("sentences") or []
    counts = [len(pronounce(s["text"], language)[0]) for s in sentences]
    if not sentences or sum(counts) != len(words):
        return None
    stretches, first = [], 0
    for sentence, count in zip(sentences, counts):
        if count and not sentence["trusted"]:
            stretches.append((words[first]["start"], words[first + count - 1]["end"]))
        first += count
    return stretches


def _without(span: tuple[float, float], holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of `span` outside the sorted, disjoint `holes`."""
    parts, at = [], span[0]
    for lo, hi in holes:
        if lo > at:
            parts.append((at, min(lo, span[1])))
        at = max(at, hi)
    if at < span[1]:
        parts.append((at, span[1]))
    return [(lo, hi) for lo, hi in parts if hi > lo]


def animate_recognized(posteriors: Posteriors, duration: float, fps: float, settings: CurveSettings,
                       language: str = AUTO) -> LipSyncResult:
    """The recognizer's words, window by window, aligned like a transcript in the language it heard. Where
    the words cannot be trusted (no speech, unsure, repetitive, a language Oris does not read, or not matching
    the audio), the audio-only cues stay: for a window, or for one sentence the recognizer was unsure of."""
    rate = posteriors.frame_rate
    audio_cues = cues_from_posteriors(posteriors.visemes, settings, rate)
    spans: list[tuple[float, float]] = []
    inside: list[Cue] = []
    said = NOTHING_SAID
    words: list[dict[str, Any]] = []
    warnings: list[str] = []
    spoken: dict[str, float] = {}
    heard = [dict(h, used=False) for h in posteriors.heard]
    for h in heard:
        lo, hi = int(round(h["start"] * rate)), min(len(posteriors.phones), int(round(h["end"] * rate)) + 1)
        if not h["text"]:
            continue
        where = _span(h["start"], h["end"])
        code = from_recognizer(h.get("language", "en"), language)
        if code is None:
            warnings.append(f"{where}: the recognizer heard {language_name(h['language'])}, which Oris does not read "
                            f"yet; used the audio alone there (Oris reads the languages that --language lists)")
            continue
        if not h["trusted"]:
            warnings.append(f"{where}: the recognizer was unsure of what it heard ({h['text'][:60]!r}); used the "
                            "audio alone there")
            continue
        try:
            aligned = align_transcript(Transcript(h["text"], code), posteriors.phones[lo:hi], rate,
                                       *_mismatch(code, settings))
        except AlignmentError as exc:
            warnings.append(f"{where}: the recognized words {h['text'][:60]!r} were not used ({exc}); used the audio "
                            "alone there")
            continue
        offset = lo / rate
        unsure = _unsure_stretches(h, aligned.words, code)
        if unsure is None and not all(s["trusted"] for s in h.get("sentences") or []):
            warnings.append(f"{where}: the recognizer was unsure of part of what it heard ({h['text'][:60]!r}); used "
                            "the audio alone there")
            continue
        for s, e in unsure or []:
            warnings.append(f"{_span(s + offset, e + offset)}: the recognizer was unsure of these words; used the "
                            "audio alone there")
        kept = _without((0.0, (hi - lo) / rate), unsure or [])
        h["used"] = True
        spans += [(s + offset, e + offset) for s, e in kept]
        inside += cues_from_segments([(s + offset, e + offset, v) for s, e, v in cut_to(aligned.viseme_segments, kept)],
                                     settings)
        said += aligned.articulation.within(kept).moved(offset)
        words += [{**w, "start": round(w["start"] + offset, 3), "end": round(w["end"] + offset, 3)}
                  for w in aligned.words if any(lo_ <= w["start"] < hi_ for lo_, hi_ in kept)]
        warnings += aligned.warnings
        spoken[code] = spoken.get(code, 0.0) + h["end"] - h["start"]
    named = max(spoken, key=spoken.__getitem__) if spoken else ("" if language == AUTO else language)
    if not spans:
        animation = animate(audio_cues, duration, fps, settings, posteriors.loudness,
                            articulation=_heard_glides(posteriors, audio_cues))
        return LipSyncResult(animation, posteriors, [], "audio", warnings, heard, named)
    cues = remove_flicker(splice(audio_cues, sorted(spans), inside), settings.min_seconds, settings.hold_pause_seconds)
    said += _heard_glides(posteriors, audio_cues).within(_without((0.0, duration), sorted(spans)))
    animation = animate(cues, duration, fps, settings, posteriors.loudness, articulation=said)
    return LipSyncResult(animation, posteriors, words, "recognized", warnings, heard, named)


def animate_posteriors(posteriors: Posteriors, duration: float, fps: float, settings: CurveSettings,
                       transcript: Transcript | None = None) -> LipSyncResult:
    warnings: list[str] = []
    if transcript is not None:
        try:
            aligned = align_transcript(transcript, posteriors.phones, posteriors.frame_rate,
                                       *_mismatch(transcript.language, settings))
        except AlignmentError as exc:
            warnings.append(f"{exc}; used the audio alone")
        else:
            warnings += aligned.warnings
            cues = cues_from_segments(aligned.viseme_segments, settings)
            anim = animate(cues, duration, fps, settings, posteriors.loudness, articulation=aligned.articulation)
            return LipSyncResult(anim, posteriors, aligned.words, "transcript", warnings, language=transcript.language)
    cues = cues_from_posteriors(posteriors.visemes, settings, posteriors.frame_rate)
    animation = animate(cues, duration, fps, settings, posteriors.loudness, articulation=_heard_glides(posteriors, cues))
    return LipSyncResult(animation, posteriors, [], "audio", warnings,
                         language=transcript.language if transcript is not None else "")


def _heard_glides(posteriors: Posteriors, cues: list[Cue]) -> Articulation:
    """Where audio alone decides the cues, the diphthongs the English model's phone head hears (the multilingual
    model's phone classes are not English diphthongs: a French o is no ow)."""
    return heard_glides(posteriors.phones, cues, posteriors.frame_rate) if posteriors.model == "en" else NOTHING_SAID
