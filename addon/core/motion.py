"""Mouth motion between the shapes: coarticulation on top of the cue timeline (no bpy).

The cue timeline (curves.frame_weights) says which mouth shape is due when. A real mouth does not jump there and
hold: its articulators move continuously, each shape reached only as far as time allows, and some sounds barely
show on the lips at all. These rules reshape the per-frame viseme weights, keeping every cue's own shape as the
strongest on its frames (what the accuracy figures score):

  1. tongue consonants (t d n l s z k g, ch/sh, th, r: DD nn kk SS CH TH RR) carry little of their own on the lips:
     they take the shape of the vowels around them, by nearness (Cohen-Massaro dominance);
  2. rounding anticipates: a rounded vowel (oh, ou) rounds the consonants before it, up to 200 ms ahead
     ("stew": round on the s), closures and f/v aside;
  2b. diphthongs glide: over a diphthong's last part the lips move toward its second vowel ("now" rounds,
     "five" spreads), the first vowel's shape still the strongest (the words say where; with audio alone, the
     model's phone head: curves.heard_glides);
  3. short pauses (under 300 ms) inside speech keep the lips slightly parted, as speakers do; the mouth rests only
     in longer silences;
  4. stress and loudness: vowels the words leave unstressed (CMUdict's 0: the "a" of "about", "towards") open
     less, open vowels open with the voice (loud syllables wider), and a frame within 15 dB of the clip's peak is
     never shown at rest;
  5. the articulators move smoothly: every open and rounded shape is low-passed (zero-phase, about 40 ms), so a
     40 ms vowel is under-reached rather than flashed and a long one keeps moving, while closures (p b m) stay
     full and on time.
Stepped mode (one held shape at a time, for 2D rigs) does not use them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .curves import NOTHING_SAID, Articulation, Cue, smoothstep
from .visemes import PP, SIL, VISEME_INDEX

TONGUE = frozenset(VISEME_INDEX[v] for v in ("DD", "nn", "kk", "SS", "CH", "TH", "RR"))
VOWELS = frozenset(VISEME_INDEX[v] for v in ("aa", "E", "ih", "oh", "ou"))
ROUNDED = frozenset(VISEME_INDEX[v] for v in ("oh", "ou"))
OPEN = frozenset(VISEME_INDEX[v] for v in ("aa", "E", "oh"))
LIP_CONSONANTS = frozenset({PP, VISEME_INDEX["FF"]})


@dataclass(frozen=True)
class MotionSettings:
    tongue_own: float = 0.55  # the share of its own shape a tongue consonant keeps; the vowels around take the rest
    vowel_reach_seconds: float = 0.15  # how far a vowel's shape reaches into the consonants beside it
    rounding_ahead_seconds: float = 0.20  # how early a rounded vowel starts rounding the consonants before it
    rounding_share: float = 0.40  # how far anticipation rounds a consonant, at most
    parted_pause_seconds: float = 0.30  # pauses shorter than this keep the lips parted
    parted_share: float = 0.30  # how parted: the share of the neighbouring shapes shown in such a pause
    breath_seconds: float = 0.4  # before speech after a longer silence, the lips part this early (the breath in)
    release_seconds: float = 0.3  # after speech, the lips close to rest over this long
    loud_db: float = 15.0  # frames within this of the clip's peak are never shown at rest
    smooth_seconds: float = 0.03  # the articulators' time constant (Gaussian sigma of the low-pass)
    loudness_gain: float = 0.25  # open vowels open this much wider (or less wide) per 10 dB above (below) speech level
    glide_share: float = 0.5  # how far a diphthong's lips reach its second vowel by its end
    unstressed_reach: float = 0.6  # how far an unstressed vowel opens, of its shape (never below the rest beside it)


def _dominance(times: np.ndarray, lo: float, hi: float, reach: float) -> np.ndarray:
    """1 inside [lo, hi], falling off exponentially over `reach` outside (Cohen-Massaro's dominance)."""
    outside = np.maximum(lo - times, 0.0) + np.maximum(times - hi, 0.0)
    return np.exp(-outside / max(reach, 1e-6))


def _gaussian_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Zero-phase low-pass along time (axis 0), edges held."""
    if sigma_frames < 0.5:
        return x
    radius = int(np.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, axis=0), x, np.repeat(x[-1:], radius, axis=0)])
    out = np.empty_like(x)
    for col in range(x.shape[1]):
        out[:, col] = np.convolve(padded[:, col], k, mode="valid")
    return out


def _speech_neighbours(cues: list[Cue], i: int) -> tuple[int | None, int | None]:
    """The nearest vowel cues before and after cue i, within the same stretch of speech (no long pause between)."""
    before = after = None
    for j in range(i - 1, -1, -1):
        if cues[j].viseme == SIL and cues[j].duration >= 0.3:
            break
        if cues[j].viseme in VOWELS:
            before = j
            break
    for j in range(i + 1, len(cues)):
        if cues[j].viseme == SIL and cues[j].duration >= 0.3:
            break
        if cues[j].viseme in VOWELS:
            after = j
            break
    return before, after


def coarticulate(weights: np.ndarray, cues: list[Cue], fps: float, settings: MotionSettings = MotionSettings(),
                 loudness_db: np.ndarray | None = None, loudness_rate: float = 100.0,
                 articulation: Articulation = NOTHING_SAID) -> np.ndarray:
    """[frames, 15] viseme weights (rows summing to 1, sil the remainder) reshaped by the rules above.
    articulation: what the words say beyond the cues (diphthongs' glides, unstressed vowels)."""
    n = len(weights)
    if n == 0 or not cues:
        return weights
    times = np.arange(n) / fps
    w = weights.astype(np.float64).copy()
    due = w.argmax(axis=1)  # the shape the cue timeline puts first on each frame
    owner = np.searchsorted([c.end for c in cues], times, side="right").clip(0, len(cues) - 1)
    # 1. tongue consonants take the lips of the vowels around them
    for i, cue in enumerate(cues):
        if cue.viseme not in TONGUE:
            continue
        rows = np.flatnonzero(owner == i)
        if not len(rows):
            continue
        before, after = _speech_neighbours(cues, i)
        donors = [(j, _dominance(times[rows], cues[j].start, cues[j].end, settings.vowel_reach_seconds))
                  for j in (before, after) if j is not None]
        if not donors:
            continue
        total = sum(d for _j, d in donors)
        own = w[rows, cue.viseme].copy()
        give = own * (1.0 - settings.tongue_own) * np.minimum(total, 1.0)
        w[rows, cue.viseme] -= give
        for j, d in donors:
            w[rows, cues[j].viseme] += give * d / np.maximum(total, 1e-9)
    # 2. rounding anticipates across the consonants before a rounded vowel
    for i, cue in enumerate(cues):
        if cue.viseme not in ROUNDED:
            continue
        j = i - 1
        while j >= 0 and cues[j].viseme not in VOWELS | LIP_CONSONANTS | {SIL} \
                and cue.start - cues[j].start <= settings.rounding_ahead_seconds + 1e-9:
            rows = np.flatnonzero(owner == j)
            ahead = cue.start - times[rows]
            share = settings.rounding_share * np.clip(1.0 - ahead / settings.rounding_ahead_seconds, 0.0, 1.0)
            moved = w[rows, cues[j].viseme] * share
            moved = np.minimum(moved, np.maximum(w[rows, cues[j].viseme] - w[rows, cue.viseme] - 1e-3, 0.0) / 2)
            w[rows, cues[j].viseme] -= moved
            w[rows, cue.viseme] += moved
            j -= 1
    # 2b. diphthongs glide toward their second vowel, the due shape keeping the lead
    for start, end, v in articulation.glides:
        rows = np.flatnonzero((times >= start) & (times < end))
        if not len(rows):
            continue
        share = settings.glide_share * smoothstep((times[rows] - start) / max(end - start, 1e-6))
        moved = w[rows, due[rows]] * share * (due[rows] != SIL)
        w[rows, due[rows]] -= moved
        w[rows, v] += moved
    # 3. short pauses inside speech keep the lips parted
    for i, cue in enumerate(cues):
        if cue.viseme != SIL or not 0 < i < len(cues) - 1 or cue.duration >= settings.parted_pause_seconds:
            continue
        rows = np.flatnonzero(owner == i)
        shapes = [cues[k].viseme for k in (i - 1, i + 1) if cues[k].viseme not in (SIL, PP)]
        for v in shapes:
            w[rows, v] = np.maximum(w[rows, v], settings.parted_share / len(shapes))
    # 3b. around longer silences: the lips part before speech (a breath) and close after it, gradually
    for i, cue in enumerate(cues):
        if cue.viseme != SIL or cue.duration < settings.parted_pause_seconds:
            continue
        rows = np.flatnonzero(owner == i)
        if i + 1 < len(cues) and settings.breath_seconds > 0:
            _, after = _speech_neighbours(cues, i)
            if after is not None:
                ahead = np.clip((cue.end - times[rows]) / settings.breath_seconds, 0.0, 1.0)
                share = settings.parted_share * 0.5 * (1.0 + np.cos(np.pi * ahead))
                w[rows, cues[after].viseme] = np.maximum(w[rows, cues[after].viseme], share)
        if i > 0 and settings.release_seconds > 0:
            before, _ = _speech_neighbours(cues, i)
            if before is not None:
                since = np.clip((times[rows] - cue.start) / settings.release_seconds, 0.0, 1.0)
                share = settings.parted_share * 0.5 * (1.0 + np.cos(np.pi * since))
                w[rows, cues[before].viseme] = np.maximum(w[rows, cues[before].viseme], share)
    # 4. loudness: open vowels with the voice; loud frames never at rest
    if loudness_db is not None and len(loudness_db):
        level = np.interp(times * loudness_rate, np.arange(len(loudness_db)), loudness_db)
        peak = float(np.max(loudness_db))
        speech = level[level > peak - 30.0]
        typical = float(np.median(speech)) if len(speech) else peak
        gain = np.clip(1.0 + settings.loudness_gain * (level - typical) / 10.0, 0.6, 1.25)
        for v in OPEN:
            w[:, v] *= gain
        loud = level >= peak - settings.loud_db
        at_rest = loud & (due == SIL) & (w[:, PP] < 0.999)  # where the timeline would show rest (closures aside)
        for row in np.flatnonzero(at_rest):
            cue = cues[owner[row]]
            before, after = _speech_neighbours(cues, int(owner[row]))
            near = [cues[k] for k in (before, after) if k is not None]
            v = min(near, key=lambda c: min(abs(times[row] - c.start), abs(times[row] - c.end))).viseme if near \
                else VISEME_INDEX["E"] if cue.viseme == SIL else cue.viseme
            w[row, v] = max(w[row, v], w[row, SIL] + 0.02)
            due[row] = v  # and it stays first through the smoothing
    # 5. smooth articulators; closures stay exact
    closed = w[:, PP] >= 0.999
    speech_part = w.copy()
    speech_part[:, SIL] = 0.0
    speech_part = _gaussian_smooth(speech_part, settings.smooth_seconds * fps)
    speech_part[closed] = 0.0
    speech_part[closed, PP] = 1.0
    speech_part[speech_part < 0.02] = 0.0  # the low-pass's far tails: barely visible, and each would cost keys
    total = speech_part.sum(axis=1, keepdims=True)
    speech_part = np.where(total > 1.0, speech_part / np.maximum(total, 1e-9), speech_part)
    if articulation.unstressed and settings.unstressed_reach < 1.0:
        speech_part = _reach(speech_part, due, _unstressed_amplitude(times, articulation, settings, fps))
    speech_part[:, SIL] = np.maximum(1.0 - speech_part.sum(axis=1), 0.0)
    return _keep_due_first(speech_part, due).astype(np.float32)


def _unstressed_amplitude(times: np.ndarray, articulation: Articulation, settings: MotionSettings,
                          fps: float) -> np.ndarray:
    """Per frame, how far the mouth opens of its shapes: less on unstressed vowels, moving as the articulators do."""
    amplitude = np.ones(len(times))
    for start, end in articulation.unstressed:
        amplitude[(times >= start) & (times < end)] = settings.unstressed_reach
    return _gaussian_smooth(amplitude[:, None], settings.smooth_seconds * fps)[:, 0]


def _reach(speech: np.ndarray, due: np.ndarray, amplitude: np.ndarray, margin: float = 0.01) -> np.ndarray:
    """The speech shapes scaled by a per-frame amplitude, the rest taking what they give up, but never so far that
    rest outgrows the shape due (a mouth half open on a weak vowel is still that vowel, not a mouth at rest)."""
    total = speech.sum(axis=1)
    own = speech[np.arange(len(speech)), due]
    floor = np.where((due != SIL) & (own > 0), 1.0 / np.maximum(own + total, 1e-9) + margin, 0.0)
    scale = np.clip(np.maximum(amplitude, floor), 0.0, 1.0)
    scale[speech[:, PP] >= 0.999] = 1.0  # closures stay full
    return speech * scale[:, None]


def _keep_due_first(w: np.ndarray, due: np.ndarray, margin: float = 0.01) -> np.ndarray:
    """The blend moves the mouth between shapes, but each frame keeps the shape its cue is due as the strongest:
    where a neighbour's share outgrows it, the due shape is raised just above (a pause: the others lowered)."""
    w = w.copy()
    for row in np.flatnonzero((due >= 0) & (w.argmax(axis=1) != due)):
        v = due[row]
        others = np.delete(w[row], v)
        if v == SIL:  # rest is what the other shapes leave: scale them down until it leads
            speech = 1.0 - w[row, SIL]
            top = others.max()
            # after scaling by k: rest = 1 - k * speech >= k * top + margin
            k = (1.0 - margin) / max(speech + top, 1e-9)
            w[row] *= k
            w[row, SIL] = 1.0 - (w[row].sum() - w[row, SIL])
        else:
            w[row, v] = others.max() + margin
            speech = w[row].sum() - w[row, SIL]
            if speech > 1.0:
                w[row] /= speech
                w[row, SIL] = 0.0
            w[row, SIL] = max(1.0 - (w[row].sum() - w[row, SIL]), 0.0)
            if w[row, SIL] >= w[row, v]:  # rest outgrew it too: give the due shape the rest's share
                w[row, v] += w[row, SIL]
                w[row, SIL] = 0.0
    return w
