"""Corpus sets with 100 Hz reference labels, and the accuracy measures of the model card.
numpy only (no torch), so evaluation runs where the product runs."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from addon.core.visemes import (  # noqa: E402
    MOUTH_SHAPES,
    PHONES,
    PP,
    VISEME_INDEX,
    VISEME_TO_MOUTH_INDEX,
    VOWELS,
    phones_to_visemes,
)

HOP, SAMPLE_RATE = 160, 16000
BILABIALS = {PHONES.index(p) for p in ("p", "b", "m")}
VOWEL_IDS = {PHONES.index(p) for p in VOWELS}
CLOSURE_WINDOW = 0.04  # a reference p/b/m is hit by a PP frame within the phone +- 40 ms


class LabelledSet:
    """Utterances of one corpus .npz: int16 audio, phone segments, and 100 Hz viseme and
    phone labels (frame t is the phone sounding at t*10 ms)."""

    def __init__(self, path: Path, keep: Callable[[str], bool] | None = None) -> None:
        d = np.load(path)
        names = [str(n) for n in d["names"]]
        texts = [str(t) for t in d["text"]] if "text" in d else [""] * len(names)
        offsets, audio = d["offsets"], d["audio"]
        seg_utt, seg_start, seg_end, seg_phone = d["seg_utt"], d["seg_start"], d["seg_end"], d["seg_phone"]
        self.names: list[str] = []
        self.texts: list[str] = []
        self.audio: list[np.ndarray] = []
        self.visemes: list[np.ndarray] = []
        self.phones: list[np.ndarray] = []
        self.segments: list[list[tuple[float, float, int]]] = []
        bounds = np.searchsorted(seg_utt, np.arange(len(names) + 1))
        for i, name in enumerate(names):
            if keep is not None and not keep(name):
                continue
            a = audio[offsets[i] : offsets[i + 1]]
            lo, hi = bounds[i], bounds[i + 1]
            ends, phone_ids = seg_end[lo:hi], seg_phone[lo:hi]
            vis_ids = np.array([VISEME_INDEX[v] for v in phones_to_visemes([PHONES[p] for p in phone_ids])])
            n_frames = len(a) // HOP + 1
            idx = np.minimum(np.searchsorted(ends, np.arange(n_frames) * HOP / SAMPLE_RATE, side="right"), hi - lo - 1)
            self.names.append(name)
            self.texts.append(texts[i])
            self.audio.append(a)
            self.phones.append(phone_ids[idx].astype(np.int64))
            self.visemes.append(vis_ids[idx].astype(np.int64))
            self.segments.append([(float(s), float(e), int(p)) for s, e, p in zip(seg_start[lo:hi], ends, phone_ids)])

    def __len__(self) -> int:
        return len(self.audio)

    def float_audio(self, i: int) -> np.ndarray:
        return self.audio[i].astype(np.float32) / 32768.0


_MOUTH = np.array(VISEME_TO_MOUTH_INDEX)


@dataclass
class Closure:
    lo: float  # the reference p/b/m +- CLOSURE_WINDOW, seconds
    hi: float
    hit: bool  # PP is the predicted viseme on a frame in that window
    before_vowel: bool  # else it ends a syllable (a consonant or a pause follows)


def closures(predicted: np.ndarray, segments: list[tuple[float, float, int]], rate: float = 100.0) -> list[Closure]:
    """Each reference bilabial closure, and whether the prediction (a viseme per frame) hits it."""
    times = np.arange(len(predicted)) / rate
    is_pp = predicted == PP
    found = []
    for k, (start, end, phone) in enumerate(segments):
        if phone in BILABIALS:
            lo, hi = start - CLOSURE_WINDOW, end + CLOSURE_WINDOW
            found.append(Closure(lo, hi, bool(is_pp[(times >= lo) & (times <= hi)].any()),
                                 k + 1 < len(segments) and segments[k + 1][2] in VOWEL_IDS))
    return found


def phone_at(segments: list[tuple[float, float, int]], times: np.ndarray) -> np.ndarray:
    """The reference phone sounding at each time (start <= t < end), or -1 outside every segment."""
    if not segments:
        return np.full(len(times), -1)
    starts, ends, phones = (np.array(column) for column in zip(*segments))
    k = np.searchsorted(ends, times, side="right")
    inside = k < len(ends)
    k = np.minimum(k, len(ends) - 1)
    return np.where(inside & (times >= starts[k]), phones[k].astype(np.int64), -1)


@dataclass
class Score:
    frames: int = 0
    viseme_hits: int = 0
    mouth_hits: int = 0
    bilabials: int = 0
    bilabials_hit: int = 0
    pp_runs: int = 0
    pp_runs_true: int = 0
    onsets: int = 0  # bilabials followed by a vowel (the rest end a syllable: before a consonant or a pause)
    onsets_hit: int = 0
    per_utterance: list[float] = field(default_factory=list)
    # where the errors are: reference mouth shape x predicted mouth shape, and the reference phone under each
    # closure that hits no reference bilabial
    mouth_confusion: np.ndarray = field(default_factory=lambda: np.zeros((len(MOUTH_SHAPES),) * 2, np.int64))
    false_closure_phones: Counter = field(default_factory=Counter)
    vowel_frames: Counter = field(default_factory=Counter)  # per reference vowel: its frames, and those shown
    vowel_hits: Counter = field(default_factory=Counter)  # in its reference mouth shape

    def add(self, predicted: np.ndarray, reference: np.ndarray, segments: list[tuple[float, float, int]],
            rate: float = 100.0) -> None:
        n = min(len(predicted), len(reference))
        pred, ref = predicted[:n], reference[:n]
        self.frames += n
        self.viseme_hits += int((pred == ref).sum())
        shape_right = _MOUTH[pred] == _MOUTH[ref]
        self.mouth_hits += int(shape_right.sum())
        np.add.at(self.mouth_confusion, (_MOUTH[ref], _MOUTH[pred]), 1)
        under = phone_at(segments, np.arange(n) / rate)
        for phone in set(np.unique(under).tolist()) & VOWEL_IDS:
            at = under == phone
            self.vowel_frames[PHONES[phone]] += int(at.sum())
            self.vowel_hits[PHONES[phone]] += int(shape_right[at].sum())
        self.per_utterance.append(float((pred == ref).mean()) if n else 0.0)
        found = closures(pred, segments, rate)
        windows = [(c.lo, c.hi) for c in found]
        is_pp = pred == PP
        for c in found:
            self.bilabials += 1
            self.bilabials_hit += c.hit
            if c.before_vowel:
                self.onsets += 1
                self.onsets_hit += c.hit
        edges = np.flatnonzero(np.diff(np.concatenate([[0], is_pp.astype(np.int8), [0]])))
        false_mids = []
        for s, e in zip(edges[::2], edges[1::2]):
            self.pp_runs += 1
            run_lo, run_hi = s / rate, e / rate
            true = any(run_lo <= hi and run_hi >= lo for lo, hi in windows)
            self.pp_runs_true += true
            if not true:
                false_mids.append((run_lo + run_hi) / 2)
        for phone in phone_at(segments, np.array(false_mids)).tolist():
            self.false_closure_phones[PHONES[phone] if phone >= 0 else "sil"] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "viseme15_frame_accuracy": round(self.viseme_hits / max(1, self.frames), 4),
            "mouth6_frame_accuracy": round(self.mouth_hits / max(1, self.frames), 4),
            "bilabial_recall": round(self.bilabials_hit / max(1, self.bilabials), 4),
            "bilabial_precision": round(self.pp_runs_true / max(1, self.pp_runs), 4),
            "bilabials": self.bilabials,
            "bilabial_recall_before_vowel": round(self.onsets_hit / max(1, self.onsets), 4),
            "bilabial_recall_syllable_final": round((self.bilabials_hit - self.onsets_hit)
                                                    / max(1, self.bilabials - self.onsets), 4),
            "bilabials_before_vowel": self.onsets,
            "frames": self.frames,
            "mouth_recall": {shape: round(float(row[k] / max(1, row.sum())), 4)
                             for k, (shape, row) in enumerate(zip(MOUTH_SHAPES, self.mouth_confusion))},
            "false_closures_on": dict(self.false_closure_phones.most_common(5)),
            "vowel_mouth_recall": {v: round(self.vowel_hits[v] / n, 4) for v, n in sorted(self.vowel_frames.items()) if n},
        }
