"""From model posteriors (or aligned phones) to animation: viseme cues and per-frame weights.

The rules, in order:
  1. decode: a Viterbi pass with a switching cost turns 100 Hz posteriors into segments;
     bilabial closures are found separately from peaks of the PP posterior, because a
     p/b/m lasts 30-80 ms and plain argmax misses many of them;
  2. anti-flicker: segments shorter than `min_seconds` (tuned per model, 30-70 ms) merge into a neighbour,
     closures excepted; pauses shorter than `hold_pause_seconds` hold the previous shape;
  3. anticipation: every cue moves `lead_seconds` earlier (the mouth leads the sound);
  4. curves: smooth crossfades between cues (3D rigs) or one held shape at a time
     (stepped, for 2D and cut-out rigs), sampled at any frame rate; each closure puts a
     fully closed mouth on at least one frame whatever the rate;
  5. the motion between the shapes (core.motion), then the intensities: `intensity` scales every open shape,
     `jaw` and `lips` its jaw opening and its lips' own shape (visemes.JAW_SHARE), and the rest shape ('sil')
     takes up the remainder so a frame sums to 1.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from .visemes import (
    DIPHTHONG_GLIDES,
    GLIDE_SHARE_OF_DIPHTHONG,
    PHONE_INDEX,
    PHONE_TO_VISEME_INDEX,
    PP,
    SIL,
    VISEME_INDEX,
    VISEMES,
    shape_gains,
)

if TYPE_CHECKING:
    from .motion import MotionSettings


def _default_motion() -> MotionSettings:
    from .motion import MotionSettings  # motion builds on Cue: imported when first needed

    return MotionSettings()


# the mouth leads the sound: 30 ms puts the animation on real lips (GRID faces, benchmarks/motion.py)
DEFAULT_LEAD_MS = 30.0


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    viseme: int  # index into VISEMES

    @property
    def name(self) -> str:
        return VISEMES[self.viseme]

    @property
    def duration(self) -> float:
        return self.end - self.start


def cut_to(segments: Sequence[tuple[float, float, int]], spans: Sequence[tuple[float, float]]) -> list[tuple[float, float, int]]:
    """The (start, end, viseme) segments cut to the spans."""
    return [(max(s, lo), min(e, hi), v) for s, e, v in segments for lo, hi in spans if s < hi and e > lo]


@dataclass(frozen=True)
class Articulation:
    """What the words say about the mouth beyond the cue timeline (transcript and recognized modes), in seconds."""

    glides: tuple[tuple[float, float, int], ...] = ()  # (start, end, viseme): a diphthong's end moves toward it
    unstressed: tuple[tuple[float, float], ...] = ()  # (start, end): vowels the words leave unstressed

    def moved(self, seconds: float) -> Articulation:
        return Articulation(tuple((s + seconds, e + seconds, v) for s, e, v in self.glides),
                            tuple((s + seconds, e + seconds) for s, e in self.unstressed))

    def within(self, spans: Sequence[tuple[float, float]]) -> Articulation:
        """Only what lies in the spans (cut to them)."""
        return Articulation(tuple(cut_to(self.glides, spans)),
                            tuple((max(s, lo), min(e, hi)) for s, e in self.unstressed for lo, hi in spans
                                  if s < hi and e > lo))

    def __add__(self, other: Articulation) -> Articulation:
        return Articulation(self.glides + other.glides, self.unstressed + other.unstressed)


NOTHING_SAID = Articulation()  # audio alone: no words, nothing beyond the cues


@dataclass(frozen=True)
class CurveSettings:
    lead_seconds: float = DEFAULT_LEAD_MS / 1000.0
    min_seconds: float = 0.07  # the model card's decoding.min_seconds replaces it (decoding_settings)
    hold_pause_seconds: float = 0.12
    crossfade_seconds: float = 0.06
    intensity: float = 1.0
    jaw: float = 1.0  # how far the jaw opens (0-2), on top of intensity
    lips: float = 1.0  # how far the lips shape (0-2), on top of intensity
    stepped: bool = False
    # decoding (tuned on development speakers; see models/recipe/tune_curves.py)
    switch_cost: float = 2.0
    closure_threshold: float = 0.3
    closure_min_seconds: float = 0.03
    mismatch_gap: float = 1.6  # transcript judged not to match the audio beyond this alignment gap...
    mismatch_agreement: float = 0.0  # ...or below this viseme agreement with the audio
    motion: MotionSettings | None = field(default_factory=_default_motion)  # coarticulation; None: the cue curves

    def validated(self) -> CurveSettings:
        for name in ("intensity", "jaw", "lips"):
            if not 0.0 <= getattr(self, name) <= 2.0:
                raise ValueError(f"{name} must be between 0 and 2")
        if not -0.5 <= self.lead_seconds <= 0.5:
            raise ValueError("lead must be between -500 and 500 ms")
        return self


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def viterbi_path(log_probs: np.ndarray, switch_cost: float) -> np.ndarray:
    """Best state sequence when every change of state costs `switch_cost` (log units)."""
    frames, states = log_probs.shape
    if frames == 0:
        return np.zeros(0, np.int64)
    # Only two moves exist: stay, or switch from the best previous state. Store which, per frame.
    stayed = np.zeros((frames, states), bool)
    best_prev = np.zeros(frames, np.int64)
    score = log_probs[0].astype(np.float64)
    for t in range(1, frames):
        b = int(score.argmax())
        switch = score[b] - switch_cost
        stayed[t] = score >= switch
        best_prev[t] = b
        np.maximum(score, switch, out=score)
        score += log_probs[t]
    path = np.zeros(frames, np.int64)
    state = int(score.argmax())
    for t in range(frames - 1, -1, -1):
        path[t] = state
        if t and not stayed[t, state]:
            state = int(best_prev[t])
    return path


def runs(labels: np.ndarray, rate: float) -> list[Cue]:
    """Constant runs of a per-frame label sequence as cues (frame t spans [t, t+1)/rate)."""
    if len(labels) == 0:
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    values = labels[starts].tolist()
    return [Cue(s / rate, e / rate, v) for s, e, v in zip(starts.tolist(), ends.tolist(), values)]


def closures_from_posteriors(pp: np.ndarray, rate: float, threshold: float, min_seconds: float) -> list[tuple[float, float]]:
    """Bilabial closures: stretches where P(PP) rises above threshold, each at least min_seconds long."""
    above = np.concatenate([[False], pp >= threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    found = []
    for s, e in zip(edges[::2], edges[1::2]):
        centre = (s + int(np.argmax(pp[s:e]))) + 0.5
        half = max((e - s) / 2.0, min_seconds * rate / 2.0)
        lo, hi = max(s, centre - half), min(e, centre + half)
        if hi - lo < min_seconds * rate:
            lo, hi = centre - min_seconds * rate / 2, centre + min_seconds * rate / 2
        found.append((max(0.0, lo / rate), min(len(pp) / rate, hi / rate)))
    return found


def overlay(cues: list[Cue], spans: list[tuple[float, float]], viseme: int) -> list[Cue]:
    """Put a cue of `viseme` over each (sorted, disjoint) span, cutting what they cover."""
    return splice(cues, spans, [Cue(s, e, viseme) for s, e in spans])


def splice(cues: list[Cue], spans: list[tuple[float, float]], inside: list[Cue]) -> list[Cue]:
    """Replace what `cues` say within each (sorted, disjoint) span by the `inside` cues. One pass."""
    out: list[Cue] = []
    k = 0
    for c in cues:
        start = c.start
        while k < len(spans) and spans[k][1] <= start:
            k += 1
        j = k
        while j < len(spans) and spans[j][0] < c.end:
            if spans[j][0] > start:
                out.append(replace(c, start=start, end=spans[j][0]))
            start = max(start, spans[j][1])
            j += 1
        if start < c.end:
            out.append(replace(c, start=start))
    return sorted(out + inside, key=lambda c: (c.start, c.end))


def merge_adjacent(cues: list[Cue]) -> list[Cue]:
    out: list[Cue] = []
    for c in cues:
        if c.duration <= 0:
            continue
        if out and out[-1].viseme == c.viseme and abs(out[-1].end - c.start) < 1e-9:
            out[-1] = replace(out[-1], end=c.end)
        else:
            out.append(c)
    return out


def remove_flicker(cues: list[Cue], min_seconds: float, hold_pause_seconds: float,
                   score: np.ndarray | None = None, rate: float = 100.0) -> list[Cue]:
    """Merge cues shorter than min_seconds into a neighbour (closures are kept), and let
    short pauses inside speech hold the shape before them."""
    cues = merge_adjacent(cues)
    for i, c in enumerate(cues):  # short pauses between speech hold the previous shape
        if c.viseme == SIL and 0 < i < len(cues) - 1 and c.duration < hold_pause_seconds and cues[i - 1].viseme != PP:
            cues[i] = replace(c, viseme=cues[i - 1].viseme)
    cues = merge_adjacent(cues)
    # Merge the shortest offending cue first (a heap with lazy deletion keeps this O(n log n)).
    n = len(cues)
    start = [c.start for c in cues]
    end = [c.end for c in cues]
    vis = [c.viseme for c in cues]
    prev = list(range(-1, n - 1))
    nxt = list(range(1, n + 1))
    if n:
        nxt[-1] = -1
    alive = [True] * n

    def is_short(i: int) -> bool:
        return end[i] - start[i] < min_seconds - 1e-9 and vis[i] != PP

    def unlink(i: int) -> None:
        alive[i] = False
        if prev[i] != -1:
            nxt[prev[i]] = nxt[i]
        if nxt[i] != -1:
            prev[nxt[i]] = prev[i]

    cumulative = None if score is None else np.concatenate([np.zeros((1, score.shape[1])), np.cumsum(score, axis=0)])
    heap = [(end[i] - start[i], i) for i in range(n) if is_short(i)]
    heapq.heapify(heap)
    while heap:
        duration, i = heapq.heappop(heap)
        if not alive[i] or not is_short(i) or abs(end[i] - start[i] - duration) > 1e-12:
            continue  # stale entry
        # a short cue squeezed between two closures (or alone) has nowhere to go and stays
        candidates = [j for j in (prev[i], nxt[i]) if j != -1 and vis[j] != PP]
        if not candidates:
            continue
        if cumulative is not None:  # join the neighbour the model believed in more over this stretch
            lo = min(int(start[i] * rate), len(cumulative) - 2)
            hi = min(max(lo + 1, int(end[i] * rate)), len(cumulative) - 1)
            j = max(candidates, key=lambda k: float(cumulative[hi, vis[k]] - cumulative[lo, vis[k]]))
        else:
            j = max(candidates, key=lambda k: end[k] - start[k])
        start[j], end[j] = min(start[j], start[i]), max(end[j], end[i])
        unlink(i)
        for k in (prev[j], nxt[j]):  # a neighbour of the same shape joins too
            if k != -1 and vis[k] == vis[j]:
                start[j], end[j] = min(start[j], start[k]), max(end[j], end[k])
                unlink(k)
        if is_short(j):
            heapq.heappush(heap, (end[j] - start[j], j))
    return [Cue(start[i], end[i], vis[i]) for i in range(n) if alive[i]]


def cues_from_posteriors(viseme_logits: np.ndarray, settings: CurveSettings, rate: float = 100.0) -> list[Cue]:
    """Audio-only decoding: posteriors -> cues (before the lead shift)."""
    probs = softmax(viseme_logits.astype(np.float64))
    log_probs = np.log(probs + 1e-9)
    cues = runs(viterbi_path(log_probs, settings.switch_cost), rate)
    cues = [replace(c, viseme=SIL) if c.viseme == PP else c for c in cues]  # closures come from the PP peaks below
    spans = closures_from_posteriors(probs[:, PP], rate, settings.closure_threshold, settings.closure_min_seconds)
    cues = overlay(cues, spans, PP)
    return remove_flicker(cues, settings.min_seconds, settings.hold_pause_seconds, probs, rate)


def diphthong_end(start: float, end: float, phone: str) -> tuple[float, float, int]:
    """A diphthong's last part and the viseme its lips glide toward there (an Articulation glide)."""
    return round(end - GLIDE_SHARE_OF_DIPHTHONG * (end - start), 4), end, VISEME_INDEX[DIPHTHONG_GLIDES[phone]]


def heard_glides(phone_logits: np.ndarray, cues: list[Cue], rate: float = 100.0, most: float = 0.5) -> Articulation:
    """Diphthongs from audio alone: a vowel cue over most of which the model's phone head hears an English
    diphthong of that cue's shape glides toward the diphthong's second vowel, as the words would make it."""
    heard = phone_logits.argmax(axis=1)
    glides = []
    for c in cues:
        lo = min(int(c.start * rate), len(heard) - 1)
        frames = heard[lo:max(lo + 1, int(c.end * rate))]
        for phone in DIPHTHONG_GLIDES:
            k = PHONE_INDEX[phone]
            if PHONE_TO_VISEME_INDEX[k] == c.viseme and (frames == k).mean() >= most:
                glides.append(diphthong_end(c.start, c.end, phone))
                break
    return Articulation(glides=tuple(glides))


def cues_from_segments(segments: Sequence[tuple[float, float, int]], settings: CurveSettings) -> list[Cue]:
    """Transcript-guided decoding: aligned viseme segments -> cues (before the lead shift)."""
    cues = [Cue(s, e, v) for s, e, v in segments if e > s]
    return remove_flicker(cues, settings.min_seconds, settings.hold_pause_seconds)


def shift(cues: list[Cue], lead_seconds: float, duration: float) -> list[Cue]:
    """Move every cue earlier by the lead; the timeline still starts at 0 and ends at `duration`."""
    out = []
    for c in cues:
        s, e = max(0.0, c.start - lead_seconds), min(duration, c.end - lead_seconds)
        if e > s:
            out.append(replace(c, start=s, end=e))
    if not out:
        return [Cue(0.0, duration, SIL)]
    if out[0].start > 0:
        out.insert(0, Cue(0.0, out[0].start, out[0].viseme if out[0].viseme == SIL else SIL))
    if out[-1].end < duration:
        out.append(Cue(out[-1].end, duration, SIL))
    return merge_adjacent(out)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def frame_weights(cues: list[Cue], fps: float, duration: float, settings: CurveSettings) -> np.ndarray:
    """Sample the cue timeline at `fps`: [frames, 15] weights, frame k at time k/fps."""
    n = int(np.floor(duration * fps + 1e-9)) + 1
    times = np.arange(n) / fps
    weights = np.zeros((n, len(VISEMES)))
    if settings.stepped:
        idx = np.searchsorted([c.end for c in cues], times, side="right").clip(0, len(cues) - 1)
        weights[np.arange(n), [cues[i].viseme for i in idx]] = 1.0
    else:
        # A cue's weight is 1 inside it and ramps across its boundaries; the ramps on either side
        # of a boundary are mirror images no wider than either cue, so every frame is shared by at
        # most two cues and the weights sum to 1. Vectorised over frames, linear in clip length.
        starts = np.array([c.start for c in cues])
        ends = np.array([c.end for c in cues])
        vis = np.array([c.viseme for c in cues])
        dur = ends - starts
        half = np.minimum(settings.crossfade_seconds, np.minimum(dur[:-1], dur[1:])) / 2  # per boundary
        half_in = np.concatenate([[0.0], half])
        half_out = np.concatenate([half, [0.0]])
        k = np.searchsorted(ends, times, side="right").clip(0, len(cues) - 1)
        ramp_in = np.where(half_in[k] > 0, smoothstep((times - (starts[k] - half_in[k])) / np.maximum(2 * half_in[k], 1e-9)), 1.0)
        ramp_out = np.where(half_out[k] > 0, 1.0 - smoothstep((times - (ends[k] - half_out[k])) / np.maximum(2 * half_out[k], 1e-9)), 1.0)
        own = np.minimum(ramp_in, ramp_out)
        neighbour = np.where(ramp_in < ramp_out, k - 1, k + 1).clip(0, len(cues) - 1)
        rows = np.arange(n)
        weights[rows, vis[k]] += own
        weights[rows, vis[neighbour]] += 1.0 - own
    closed = np.zeros(len(VISEMES))
    closed[PP] = 1.0
    for c in cues:  # every closure shows a fully closed mouth on at least one frame
        if c.viseme == PP:
            lo, hi = int(np.searchsorted(times, c.start)), int(np.searchsorted(times, c.end))
            if hi > lo:
                weights[lo:hi] = closed
            else:
                weights[int(np.clip(round((c.start + c.end) / 2 * fps), 0, n - 1))] = closed
    return weights.astype(np.float32)


def scaled(weights: np.ndarray, settings: CurveSettings) -> np.ndarray:
    """The intensities on the final weights: every shape but rest and closures, by its jaw and lip shares."""
    return with_gains(weights, shape_gains(settings.intensity, settings.jaw, settings.lips))


def with_gains(weights: np.ndarray, gains: list[float]) -> np.ndarray:
    """Each viseme's weight times its gain (rest and closures keep 1), a frame never past a full pose, rest the
    remainder."""
    speech = weights.astype(np.float64)
    speech[:, SIL] = 0.0
    speech *= np.asarray(gains)
    speech = np.clip(speech, 0.0, None)
    total = speech.sum(axis=1, keepdims=True)
    speech = np.where(total > 1.0, speech / np.maximum(total, 1e-9), speech)  # a frame never exceeds a full pose
    speech[:, SIL] = 1.0 - speech.sum(axis=1)
    return speech.astype(np.float32)


@dataclass(frozen=True)
class Animation:
    cues: list[Cue]
    frames: np.ndarray  # [n, 15], frame k at k/fps seconds
    fps: float
    duration: float


def animate(cues: list[Cue], duration: float, fps: float, settings: CurveSettings,
            loudness_db: np.ndarray | None = None, loudness_rate: float = 100.0,
            articulation: Articulation = NOTHING_SAID) -> Animation:
    """Anticipation, then curves at the requested rate (12 to 120 fps, fractional rates included), then the
    motion between the shapes (core.motion; not in stepped mode). loudness_db: the audio's level, per frame at
    loudness_rate, where known; articulation: what the words say beyond the cues (align.Alignment's)."""
    if not 1.0 <= fps <= 1000.0:
        raise ValueError(f"fps must be between 1 and 1000, got {fps}")
    settings = settings.validated()
    shifted = shift(cues, settings.lead_seconds, duration)
    weights = frame_weights(shifted, fps, duration, settings)
    if settings.motion is not None and not settings.stepped:
        from .motion import coarticulate

        weights = coarticulate(weights, shifted, fps, settings.motion, loudness_db, loudness_rate,
                               articulation.moved(-settings.lead_seconds))
    return Animation(shifted, scaled(weights, settings), fps, duration)
