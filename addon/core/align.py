"""Transcript-guided mode: words -> phones (CMUdict, letter-to-sound fallback) -> forced
alignment to the model's 100 Hz phone posteriors (Viterbi) -> viseme segments and word times."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .audio import read_text_input
from .curves import Articulation, diphthong_end
from .espeak import EspeakError, word_phonemes
from .ipa import phones_of
from .languages import japanese_words, language_name, script_mismatch, voice_of
from .visemes import (
    DIPHTHONG_GLIDES,
    PHONE_INDEX,
    PHONE_TO_VISEME_INDEX,
    VISEME_INDEX,
    normalize_phone,
    phones_to_visemes,
)
from .visemes import (
    VOWELS as PHONE_VOWELS,
)

_DICT_PATH = Path(__file__).resolve().parent / "data" / "cmudict.txt.gz"
_WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|\d+")
_ANY_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # letters of any script, and numbers
MIN_FRAMES_PER_PHONE = 3  # 30 ms: shorter phones are rare, and a floor stops words being crushed
# Posteriors are divided by the clip's own phone priors (scaled likelihoods, as in hybrid ASR) so the
# frequent silence class cannot swallow quiet speech, and each inserted pause costs PAUSE_COST.
PRIOR_WEIGHT = 1.0
PAUSE_COST = 2.0
MAX_ALIGN_CELLS = 400_000_000  # frames x states; beyond this, split the audio


class AlignmentError(ValueError):
    """The transcript cannot be used (empty, no English words, or it does not match)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str = "en"  # an ISO 639-1 code of languages.LANGUAGES


def transcript_from(text: str | None, text_file: str | Path | None, language: str = "en") -> Transcript | None:
    """The one rule for every command: the transcript given as text, or read from a file (a pipe such as
    /dev/stdin too); None when neither was given. A given one that is empty is kept, so that the alignment
    says so and the audio alone is used, rather than silently recognizing the words instead."""
    if text is not None:
        return Transcript(text, language)
    if text_file:
        return Transcript(read_text_input(str(text_file), "the transcript file"), language)
    return None


@dataclass
class Alignment:
    viseme_segments: list[tuple[float, float, int]]
    phone_segments: list[tuple[float, float, str]]
    words: list[dict[str, Any]]
    gap: float  # mean log-posterior lost to the transcript over speech frames
    agreement: float  # share of speech frames where the transcript's viseme is the audio's best guess
    warnings: list[str] = field(default_factory=list)
    articulation: Articulation = field(default_factory=Articulation)  # diphthongs' glides, unstressed vowels


def diphthong_glides(phone_segments: list[tuple[float, float, str]], own: list[bool]) -> list[tuple[float, float, int]]:
    """Where the lips glide toward a diphthong's second vowel: the last part of each English diphthong. A phone
    with a language's own viseme is left alone: espeak-ng already splits diphthongs into their vowels, and its
    `ey` or `ow` is a plain e or o (French, Spanish...)."""
    return [diphthong_end(s, e, p) for (s, e, p), mine in zip(phone_segments, own) if p in DIPHTHONG_GLIDES and not mine]


def dictionary_stress(word: str) -> tuple[int | None, ...] | None:
    """CMUdict's lexical stress of a (lower-case) word, phone by phone: 0 unstressed, 1 primary, 2 secondary, None
    for a consonant or where the dictionary gives none; None when the word is not in it."""
    raw = _cmudict_lines().get(word)
    return None if raw is None else tuple(int(p[-1]) if p[-1].isdigit() else None for p in raw.split())


# Languages whose unstressed vowels are weakened (stress-timed): English's "about", German's "Wasser", Russian's
# "хорошо". French, Spanish, Italian, Japanese and Mandarin say every vowel full, so stress changes no opening there.
STRESS_REDUCES = frozenset({"en", "de", "ru", "pt", "pt-br"})


def word_stress(token: str, language: str) -> tuple[int | None, ...] | None:
    """A word's stress phone by phone, as pronounce() reads it, where the language weakens its unstressed vowels:
    CMUdict's for English, espeak-ng's marks (ˈ primary, ˌ secondary, none: unstressed) for the rest and for English
    words the dictionary lacks; None where the language says every vowel full."""
    if language not in STRESS_REDUCES:
        return None
    words, _ = _pronounce(token, language)
    return tuple(words[0][2]) if words else None


@lru_cache(maxsize=1)
def _cmudict_lines() -> dict[str, str]:
    """Each CMUdict word's first pronunciation, unparsed (a farm task that reads a few lines should not
    spend a second parsing 126,000 entries: they are parsed as they are looked up)."""
    with gzip.open(_DICT_PATH, "rt", encoding="utf-8") as f:
        entries = (line.partition(" ") for line in f.read().splitlines())
        return {word.lower(): rest for word, _, rest in entries if rest and "(" not in word}


@lru_cache(maxsize=65536)
def dictionary_phones(word: str) -> tuple[str, ...] | None:
    """The first CMUdict pronunciation of a (lower-case) word, stress removed, as Oris phones."""
    raw = _cmudict_lines().get(word)
    return None if raw is None else tuple(normalize_phone(p) for p in raw.split())


_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# A pronounced phone: the acoustic model's class (what it sounds like) and, where the language's mouth differs
# from English's for that class, its own viseme (None: the class's English viseme).
Phone = tuple[str, str | None]


Stress = list[int | None]  # per phone: 0 unstressed, 1 primary, 2 secondary, None a consonant or not known


def _espeak_word(said: str, voice: str, language: str) -> tuple[list[Phone], Stress]:
    """espeak-ng's phonemes of a word as Oris phones, and the stress its marks put on their vowels."""
    phones: list[Phone] = []
    stress: Stress = []
    for phoneme in word_phonemes(said, voice):
        level = 1 if "ˈ" in phoneme else 2 if "ˌ" in phoneme else 0
        got = phones_of(phoneme, language)
        phones += got
        stress += [level if ph in PHONE_VOWELS else None for ph, _v in got]
    return phones, stress


def _dictionary_word(word: str) -> tuple[list[Phone], Stress] | None:
    found = dictionary_phones(word)
    if found is None:
        return None
    stress = dictionary_stress(word)
    return [(p, None) for p in found], list(stress) if stress is not None else [None] * len(found)


def _pronounce(text: str, language: str) -> tuple[list[tuple[str, list[Phone], Stress]], list[str]]:
    """pronounce(), each word with its stress phone by phone (all None where the language says every vowel full)."""
    words: list[tuple[str, list[Phone], Stress]] = []
    guessed: list[str] = []
    reduces = language in STRESS_REDUCES
    if language != "en":
        voice = voice_of(language)
        spoken = japanese_words(text) if language == "ja" else [(t, t) for t in _ANY_WORD_RE.findall(text)]
        for token, said in spoken:
            phones, stress = _espeak_word(said, voice, language)
            if phones:
                words.append((token, phones, stress if reduces else [None] * len(phones)))
        return words, guessed
    for token in _WORD_RE.findall(text):
        if token.isdigit():
            for d in token:
                digit = _dictionary_word(_DIGITS[int(d)]) or ([], [])
                words.append((_DIGITS[int(d)], *digit))
            continue
        found = _dictionary_word(token.lower())
        if found is None:  # CMUdict lacks it: espeak-ng (US English) reads it
            guessed.append(token)
            found = _espeak_word(token, "en-us", "")
        if found[0]:
            words.append((token, *found))
    return words, guessed


def pronounce(text: str, language: str = "en") -> tuple[list[tuple[str, list[Phone]]], list[str]]:
    """(word, phones) pairs for a transcript, and the English words the dictionary lacked (espeak-ng read them).
    English uses CMUdict; every other language, espeak-ng (languages.py)."""
    words, guessed = _pronounce(text, language)
    return [(token, phones) for token, phones, _stress in words], guessed


def _no_words(transcript: Transcript) -> str:
    """Why a transcript gave no words to align: it holds no letters, or none the language has."""
    if not any(c.isalpha() for c in transcript.text):
        return "the transcript has no words (only punctuation or symbols)"
    return f"the transcript has no {language_name(transcript.language)} words Oris can pronounce"


def _wrong_script(transcript: Transcript) -> str | None:
    """A script whose writing system cannot be the language it is read in: named as the language it looks like,
    before espeak-ng spells it out letter by letter."""
    written = script_mismatch(transcript.text, transcript.language)
    if written is None:
        return None
    name = language_name(transcript.language)
    if written == "latin":
        return (f"the transcript is in the Latin alphabet, not {name}: it does not match --language "
                f"{transcript.language} (give its --language, or auto)")
    return (f"the transcript looks like {language_name(written)}, not {name}: it does not match --language "
            f"{transcript.language} (give --language {written}, or auto)")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def align_transcript(transcript: Transcript, phone_logits: np.ndarray, rate: float,
                     mismatch_gap: float = float("inf"), min_agreement: float = 0.0, min_frames: int = MIN_FRAMES_PER_PHONE,
                     prior_weight: float = PRIOR_WEIGHT, pause_cost: float = PAUSE_COST) -> Alignment:
    """Force-align the transcript's phones to the posteriors. The transcript is judged not to
    match the audio when the mean log-posterior lost to it exceeds `mismatch_gap`, or when its
    visemes agree with the audio's best guess on fewer than `min_agreement` of the speech frames."""
    if not transcript.text.strip():
        raise AlignmentError("the transcript is empty")
    wrong = _wrong_script(transcript)
    if wrong:
        raise AlignmentError(wrong)
    try:
        words, guessed = _pronounce(transcript.text, transcript.language)
    except EspeakError as exc:  # the library or a voice missing from a broken install: the audio alone serves
        raise AlignmentError(str(exc)) from None
    if not words:
        raise AlignmentError(_no_words(transcript))
    sil = PHONE_INDEX["sil"]
    # States: optional sil, then each word's phones (MIN_FRAMES_PER_PHONE states each), optional sil after every word.
    state_phone: list[int] = [sil]
    optional: list[bool] = [True]
    state_word: list[int] = [-1]
    state_pos: list[int] = [-1]  # index into the flat phone list
    flat: list[str] = []
    own_visemes: list[str | None] = []  # where the language's mouth differs from English's for the phone
    stress: Stress = []  # per phone, where the language weakens unstressed vowels
    for w, (_token, phones, levels) in enumerate(words):
        stress += levels
        for ph, viseme in phones:
            own_visemes.append(viseme)
            for _ in range(min_frames):
                state_phone.append(PHONE_INDEX[ph])
                optional.append(False)
                state_word.append(w)
                state_pos.append(len(flat))
            flat.append(ph)
        state_phone.append(sil)
        optional.append(True)
        state_word.append(-1)
        state_pos.append(-1)
    n_states, n_frames = len(state_phone), len(phone_logits)
    if n_frames < (n_states - len(words) - 1):
        raise AlignmentError(f"the transcript has more sounds ({len(flat)} phones) than the audio can hold")
    if n_frames * n_states > MAX_ALIGN_CELLS:
        raise AlignmentError("the audio and transcript are too long to align together; split them into lines of a few minutes")
    log_post = _log_softmax(phone_logits.astype(np.float64))
    log_prior = np.log(np.exp(log_post).mean(axis=0) + 1e-6)
    emit = (log_post - prior_weight * log_prior)[:, state_phone]  # [T, S] scaled likelihoods
    opt = np.array(optional)
    neg = -1e18
    score = np.full(n_states, neg)
    score[0] = emit[0, 0]
    if opt[0] and n_states > 1:
        score[1] = emit[0, 1]
    back = np.zeros((n_frames, n_states), np.int8)  # 0 stay, 1 from s-1, 2 from s-2 (skipping an optional sil)
    skip_ok = np.zeros(n_states, bool)
    skip_ok[2:] = opt[1:-1]
    entry_cost = np.where(opt, pause_cost, 0.0)  # entering an optional pause
    for t in range(1, n_frames):
        stay = score
        step = np.concatenate([[neg], score[:-1]]) - entry_cost
        skip = np.where(skip_ok, np.concatenate([[neg, neg], score[:-2]]), neg)
        best = np.maximum(np.maximum(stay, step), skip)
        back[t] = np.where(best == stay, 0, np.where(best == step, 1, 2))
        score = best + emit[t]
    end = n_states - 1 if not opt[-1] or score[-1] >= score[-2] else n_states - 2
    path = np.zeros(n_frames, np.int64)
    path[-1] = end
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = path[t] - back[t, path[t]]
    # Mean log-posterior lost by following the transcript, over the frames where either the
    # transcript or the audio says someone speaks (silence would dilute a mismatch).
    forced_lp = log_post[np.arange(n_frames), np.array(state_phone)[path]]
    free_lp = log_post.max(axis=1)
    speech = (np.array(state_phone)[path] != sil) | (log_post.argmax(axis=1) != sil)
    gap = float((free_lp - forced_lp)[speech].mean()) if speech.any() else 0.0
    to_viseme = np.array(PHONE_TO_VISEME_INDEX)
    agreement = float((to_viseme[np.array(state_phone)[path]] == to_viseme[log_post.argmax(axis=1)])[speech].mean()) if speech.any() else 1.0
    if gap > mismatch_gap or agreement < min_agreement:
        raise AlignmentError(f"the transcript does not seem to match the audio (alignment gap {gap:.2f}, "
                             f"agreement {agreement:.0%})")

    # Frames -> phone segments (consecutive states of one phone form one segment).
    pos = np.array(state_pos)[path]
    phone_segments: list[tuple[float, float, str]] = []
    word_spans: dict[int, list[float]] = {}
    t = 0
    while t < n_frames:
        u = t
        while u + 1 < n_frames and pos[u + 1] == pos[t] and state_phone[path[u + 1]] == state_phone[path[t]]:
            u += 1
        ph = "sil" if pos[t] < 0 else flat[pos[t]]
        phone_segments.append((t / rate, (u + 1) / rate, ph))
        w = state_word[path[t]]
        if w >= 0:
            span = word_spans.setdefault(w, [t / rate, (u + 1) / rate])
            span[1] = (u + 1) / rate
        t = u + 1
    visemes = phones_to_visemes([p for _s, _e, p in phone_segments])
    segment_pos = [int(pos[int(round(s * rate))]) for s, _e, _p in phone_segments]
    visemes = [own_visemes[k] or v if k >= 0 else v for k, v in zip(segment_pos, visemes)]
    viseme_segments = [(s, e, VISEME_INDEX[v]) for (s, e, _p), v in zip(phone_segments, visemes)]
    word_list = [{"word": words[w][0], "start": round(s, 3), "end": round(e, 3)} for w, (s, e) in sorted(word_spans.items())]
    warnings = []
    if guessed:
        shown = ", ".join(guessed[:8]) + (" ..." if len(guessed) > 8 else "")
        warnings.append(f"{len(guessed)} word(s) not in the dictionary were pronounced by espeak-ng: {shown}")
    own = [k >= 0 and own_visemes[k] is not None for k in segment_pos]
    unstressed = [(s, e) for (s, e, _p), k in zip(phone_segments, segment_pos) if k >= 0 and stress[k] == 0]
    said = Articulation(tuple(diphthong_glides(phone_segments, own)), tuple(unstressed))
    return Alignment(viseme_segments, phone_segments, word_list, gap, agreement, warnings, said)
