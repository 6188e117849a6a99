"""Speech recognition in the worker: Whisper (models/oris_whisper_*.onnx) turns audio into words, which the
transcript-guided alignment then places. No bpy; onnxruntime comes from the caller.

Audio goes through in windows of at most 30 s (Whisper's span), cut at the quietest moment near the limit
so that no word is split; each window is decoded greedily without timestamps, and again by beam search where
greedy decoding is unsure of a sentence. A multilingual model first
names the window's language from its own language token (or is told the language), then writes in it.
Each window reports the recognizer's own confidence (the no-speech probability and the mean token
log-probability, for the window and for each sentence in it) and how repetitive the text is, so that the
caller can refuse words it cannot trust, one sentence at a time.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
HOP = 160
N_FFT = 400
MAX_WINDOW_SECONDS = 30.0
MAX_TOKENS = 224  # Whisper's own limit per 30 s window
# Whisper's rule for a window with nothing to say: likely silence and unsure of its words
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_THRESHOLD = 2.4  # text that zlib squeezes this much is a decoding loop
# Words are trusted above this mean log-probability: stricter than Whisper's -1, which let English-sounding
# guesses at other languages through. Chosen by models/recipe/tune_recognizer.py on training-split learners and
# espeak-ng readings in French, Italian, Dutch and Portuguese (not the held-out speakers, not the German and
# Spanish readings of the evaluation): the least strict value at which no foreign reading's words were used.
TRUST_LOGPROB = -0.8


class RecognizerError(RuntimeError):
    """The recognizer's files are missing, damaged or cannot be loaded; the message says what to do."""


# The encoder's input: the window and this much silence, rounded up to a step (recognizer_wer.py chose them)
CONTEXT_MARGIN_SECONDS = 5.0
CONTEXT_STEP_SECONDS = 5.0
# Where the model names a language Oris does not read, a language it does that is at least this likely instead;
# below SURE_LANGUAGE, the runner-up (if this likely) is written too, and the more confident text kept
NEAR_LANGUAGE = 0.5
SURE_LANGUAGE = 0.8
SENTENCE_ENDS = (".", "!", "?", "。", "！", "？", "…")
# Where greedy decoding is unsure of a sentence, the window is decoded again by beam search (Whisper's own
# search: this many beams, the best finished text by mean log-probability): accented speech that greedy
# decoding garbles often comes out right, and clear speech never pays for it
BEAM_SIZE = 5


def trust(text: str, avg_logprob: float, no_speech_prob: float, compression: float,
          min_logprob: float = TRUST_LOGPROB) -> bool:
    """Whether a window's words can be used: some text, no decoding loop, not silence, and confident enough."""
    if not text.strip() or compression > COMPRESSION_THRESHOLD:
        return False
    silence = no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD
    return not silence and avg_logprob > min_logprob


@dataclass
class Sentence:
    """One sentence of a window's text and the recognizer's mean log-probability over its tokens."""

    text: str
    avg_logprob: float

    @property
    def trusted(self) -> bool:
        return self.avg_logprob > TRUST_LOGPROB

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trusted": self.trusted}


@dataclass
class Heard:
    """What the recognizer made of one window of audio."""

    start: float  # seconds from the start of the request
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    language: str = "en"  # the language the words are written in (ISO 639-1, Whisper's codes)
    language_probability: float = 1.0  # how sure the recognizer was of it (1 where it was told or knows only one)
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """Whether any of the words can be used: the window as a whole is speech, not a decoding loop, and
        at least one sentence is confident (an unsure sentence keeps the audio alone over its own stretch)."""
        speech = trust(self.text, self.avg_logprob, self.no_speech_prob, self.compression_ratio, -math.inf)
        return speech and any(s.trusted for s in self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sentences": [s.to_dict() for s in self.sentences], "trusted": self.trusted}


@lru_cache(maxsize=1)
def mel_filters(n_mels: int = 80) -> np.ndarray:
    """librosa's Slaney-style mel filterbank for 16 kHz and a 400-point FFT, as Whisper was trained with."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def to_mel(f: np.ndarray) -> np.ndarray:
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    hz = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(SAMPLE_RATE / 2.0)), n_mels + 2))
    ramps = hz[:, None] - fft_freqs[None, :]
    fdiff = np.diff(hz)
    lower, upper = -ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (hz[2:] - hz[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(audio: np.ndarray, frames: int) -> np.ndarray:
    """Whisper's log-mel features [80, frames] of audio zero-padded (or cut) to frames * 10 ms."""
    padded = np.zeros(frames * HOP, np.float32)
    padded[: min(len(audio), len(padded))] = audio[: len(padded)]
    x = np.pad(padded, N_FFT // 2, mode="reflect")
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2  # [frames, 201]
    mel = np.log10(np.maximum(mel_filters() @ power.T.astype(np.float32), 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


def quiet_cut(audio: np.ndarray, limit: int, search: int) -> int:
    """Where to end a window of at most `limit` samples: the quietest 50 ms in its last `search` samples."""
    if len(audio) <= limit:
        return len(audio)
    lo = max(0, limit - search)
    block = 800  # 50 ms
    region = audio[lo:limit]
    n = len(region) // block
    if n == 0:
        return limit
    energy = (region[: n * block].reshape(n, block) ** 2).mean(axis=1)
    return lo + int(np.argmin(energy)) * block + block // 2


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: each byte as a printable character, inverted."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max()
    return z - np.log(np.exp(z).sum())


def encoder_frames(seconds: float, fitted: bool) -> int:
    """How many 10 ms frames the encoder sees for a window of `seconds`: Whisper's 30 s, or (fitted) the window
    and a margin of silence, in steps of 2.5 s (each shape runs once in a while, not once per length)."""
    full = int(MAX_WINDOW_SECONDS * 100)
    if not fitted:
        return full
    steps = math.ceil((seconds + CONTEXT_MARGIN_SECONDS) / CONTEXT_STEP_SECONDS)
    return min(full, int(steps * CONTEXT_STEP_SECONDS * 100))


class Recognizer:
    """Whisper's encoder and decoder in onnxruntime sessions, and its vocabulary."""

    def __init__(self, card_path: Path, make_session: Callable[[bytes], Any],
                 read_checked: Callable[[Path, str], bytes], fit_context: bool = True) -> None:
        self.fit_context = fit_context
        try:
            self.card = json.loads(card_path.read_text(encoding="utf-8"))
            files = self.card["files"]
        except (OSError, ValueError, KeyError) as exc:
            raise RecognizerError(f"the recognizer card {card_path} is missing or unreadable ({exc}); reinstall Oris") from None
        folder = card_path.parent
        self.encoder = make_session(read_checked(folder / files["encoder"]["file"], files["encoder"]["sha256"]))
        self.decoder = make_session(read_checked(folder / files["decoder"]["file"], files["decoder"]["sha256"]))
        vocab = read_checked(folder / files["vocabulary"]["file"], files["vocabulary"]["sha256"])
        self.tokens = gzip.decompress(vocab).decode("utf-8").splitlines()  # id = line number
        t = self.card["tokens"]
        self.eot, self.sot, self.no_speech = t["endoftext"], t["startoftranscript"], t["nospeech"]
        self.no_timestamps = t["notimestamps"]
        self.transcribe: int | None = t.get("transcribe")
        self.languages: dict[str, int] = dict(self.card.get("languages") or {})  # empty: an English-only model
        self.language_ids = np.array(sorted(self.languages.values()), np.int64)
        self.language_of = {i: code for code, i in self.languages.items()}
        # the cache's shape says how deep and wide the decoder is: [layers, 2 (keys, values), 1, past, width]
        cache = next(i for i in self.decoder.get_inputs() if i.name == "cache")
        self.layers, _kv, _batch, _past, self.width = cache.shape
        self.cross_names = [o.name for o in self.encoder.get_outputs()]  # the decoder's cross-attention inputs
        self.suppress = np.zeros(len(self.tokens), bool)
        self.suppress[self.card["suppress"]] = True
        self.suppress[self.eot + 1 :] = True  # special and timestamp tokens: words only, then the end
        self.suppress_begin = self.suppress.copy()
        self.suppress_begin[self.card["suppress_at_begin"]] = True

    def decode_text(self, ids: list[int]) -> str:
        table = _byte_decoder()
        raw = bytes(table[c] for i in ids if i < self.eot for c in self.tokens[i] if c in table)
        return raw.decode("utf-8", errors="replace").strip()

    def _step(self, tokens: list[int], past: int, cache: np.ndarray, cross: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        logits, cache = self.decoder.run(None, {"tokens": np.array([tokens], np.int64),
                                                "positions": np.arange(past, past + len(tokens), dtype=np.int64),
                                                "cache": cache, **cross})
        return logits[0], cache

    def window(self, audio: np.ndarray, start: float, language: str = "auto", allowed: tuple[str, ...] = (),
               words: bool = True) -> Heard:
        """Recognize one window (at most 30 s). `language`: a code the model knows, or "auto" (the model names
        it; where it names a language outside `allowed` and one inside is nearly as likely, that one). Without
        `words`, only the language is named (one decoding step), and the text is left empty.

        The encoder sees the window and a margin of silence (fit_context), not Whisper's whole 30 s: twice as
        fast on lines of a few seconds, as accurate where it does not loop (recognizer_wer.py). Without the
        30 s of padding it was trained with, Whisper sometimes misses where speech ends and says its last
        sentence again and again: a window that repeats a sentence is heard again with the full 30 s."""
        seconds = len(audio) / SAMPLE_RATE
        full = encoder_frames(seconds, False)
        frames = encoder_frames(seconds, self.fit_context)
        heard, looped = self._listen(audio, start, frames, language, allowed, watch_loops=frames < full, words=words)
        if looped and frames < full:
            heard, _ = self._listen(audio, start, full, language, allowed, watch_loops=False)
        return heard

    def _candidates(self, first: np.ndarray, language: str, allowed: tuple[str, ...]) -> list[tuple[str, float]]:
        """The languages to write in, with the model's probability of each, from the start token's logits:
        the one asked for; else the one named, or (where that is outside `allowed`) one inside nearly as
        likely; and where the model hesitates, the runner-up too (accented English named Chinese, say)."""
        odds = np.exp(first[self.language_ids] - first[self.language_ids].max())
        odds /= odds.sum()
        probability = {self.language_of[int(i)]: float(p) for i, p in zip(self.language_ids, odds)}
        if language in self.languages:
            return [(language, probability[language])]
        ranked = sorted(probability, key=probability.__getitem__, reverse=True)
        usable = [code for code in ranked if code in allowed] if allowed else ranked
        if not usable or probability[usable[0]] < NEAR_LANGUAGE * probability[ranked[0]]:
            return [(ranked[0], probability[ranked[0]])]  # a language Oris does not read, and clearly so
        chosen = usable[:1]
        if probability[chosen[0]] < SURE_LANGUAGE and len(usable) > 1 and \
                probability[usable[1]] >= NEAR_LANGUAGE * probability[chosen[0]]:
            chosen.append(usable[1])
        return [(code, probability[code]) for code in chosen]

    def _listen(self, audio: np.ndarray, start: float, frames: int, language: str, allowed: tuple[str, ...],
                watch_loops: bool, words: bool = True) -> tuple[Heard, bool]:
        """Encode `frames` of log-mel, name the language, decode greedily; True where the text went round in a
        loop (a sentence said twice in a row, when watch_loops, or text that compresses like a loop). Where
        the model hesitates between two languages, both are written and the more confident text is kept."""
        seconds = len(audio) / SAMPLE_RATE
        cross = dict(zip(self.cross_names, self.encoder.run(None, {"mel": log_mel(audio, frames)[None]})))
        cache = np.zeros((self.layers, 2, 1, 0, self.width), np.float32)
        logits, cache = self._step([self.sot], 0, cache, cross)
        first = _log_softmax(logits[0].astype(np.float64))  # at the start token: no speech, and which language
        no_speech_prob = float(np.exp(first[self.no_speech]))
        candidates = self._candidates(first, language, allowed) if self.languages else [("en", 1.0)]
        if not words:
            spoken, probability = candidates[0]
            return Heard(round(start, 3), round(start + seconds, 3), "", 0.0, no_speech_prob, 0.0, spoken,
                         round(probability, 4)), False
        best: tuple[Heard, bool] | None = None
        for spoken, probability in candidates:
            prompt = [self.languages[spoken], int(self.transcribe or 0), self.no_timestamps] if self.languages \
                else [self.no_timestamps]
            window = (round(start, 3), round(start + seconds, 3), no_speech_prob, spoken, round(probability, 4))
            tries = [self._heard(self._decode(prompt, cache, cross, watch_loops), *window)]
            greedy, looped = tries[0]
            if not looped and greedy.text and not all(s.trusted for s in greedy.sentences):  # unsure: beam search
                tries.append(self._heard(self._beam_decode(prompt, cache, cross), *window))
            for heard, looped in tries:
                if best is None or (not looped, heard.avg_logprob) > (not best[1], best[0].avg_logprob):
                    best = (heard, looped)
        assert best is not None
        return best

    def _decode(self, prompt: list[int], cache: np.ndarray, cross: dict[str, Any],
                watch_loops: bool) -> tuple[list[int], list[float], float, bool]:
        """Greedy decoding after the start token (whose cache is given) and `prompt`: the tokens, their
        log-probabilities, the mean log-probability (the end token's included), and whether it looped."""
        logits, cache = self._step(prompt, 1, cache, cross)
        past = 1 + len(prompt)
        out: list[int] = []
        logprobs: list[float] = []
        step_logits = logits[-1]
        limit = min(MAX_TOKENS, int(self.card.get("decoder_positions", 448)) - past - 1)
        end_logprob = 0.0
        looped = False
        sentence_start, last_sentence = 0, ""
        while len(out) < limit:
            lp = _log_softmax(step_logits.astype(np.float64))
            lp[self.suppress_begin if not out else self.suppress] = -np.inf
            token = int(np.argmax(lp))
            if token == self.eot:
                end_logprob = float(lp[token])
                break
            out.append(token)
            logprobs.append(float(lp[token]))
            if len(out) % 32 == 0 and compression_ratio(self.decode_text(out)) > COMPRESSION_THRESHOLD:
                looped = True
                break  # a decoding loop ("I'm not sure if ... I'm not sure if ..."): it will not be trusted anyway
            if watch_loops and self.decode_text([token]).endswith(SENTENCE_ENDS):
                sentence = self.decode_text(out[sentence_start:]).lower()
                if sentence == last_sentence:
                    looped = True
                    break
                sentence_start, last_sentence = len(out), sentence
            logits, cache = self._step([token], past + len(out) - 1, cache, cross)
            step_logits = logits[-1]
        return out, logprobs, (sum(logprobs) + end_logprob) / (len(out) + 1), looped

    def _heard(self, decoded: tuple[list[int], list[float], float, bool], start: float, end: float,
               no_speech_prob: float, spoken: str, probability: float) -> tuple[Heard, bool]:
        """A decoding as heard words, and True where it went round in a loop (or ended in one: its text compresses
        like a loop)."""
        out, logprobs, mean, looped = decoded
        text = self.decode_text(out)
        heard = Heard(start, end, text, mean, no_speech_prob, compression_ratio(text), spoken, probability,
                      self.sentences(out, logprobs))
        return heard, looped or heard.compression_ratio > COMPRESSION_THRESHOLD

    def _beam_decode(self, prompt: list[int], cache: np.ndarray, cross: dict[str, Any],
                     beams: int = BEAM_SIZE) -> tuple[list[int], list[float], float, bool]:
        """Beam search after the start token and `prompt`, as Whisper's decoder runs it: each step extends every
        beam by its most likely tokens, keeps the `beams` best unfinished texts by summed log-probability, and
        stops when `beams` texts have ended; the finished text with the best mean log-probability wins. The
        decoder takes one text at a time, so each beam keeps its own cache. Returns what _decode returns."""
        logits, cache = self._step(prompt, 1, cache, cross)
        past = 1 + len(prompt)
        limit = min(MAX_TOKENS, int(self.card.get("decoder_positions", 448)) - past - 1)
        # a beam: its tokens, their log-probabilities, their sum, its cache, the logits of its next token
        live: list[tuple[list[int], list[float], float, np.ndarray, np.ndarray]] = [([], [], 0.0, cache, logits[-1])]
        finished: list[tuple[list[int], list[float], float]] = []
        while live and len(finished) < beams:
            scored: list[tuple[float, int, int, float]] = []
            for k, (out, _lps, total, _cache, step_logits) in enumerate(live):
                lp = _log_softmax(step_logits.astype(np.float64))
                lp[self.suppress_begin if not out else self.suppress] = -np.inf
                for token in np.argpartition(-lp, beams)[: beams + 1]:
                    if np.isfinite(lp[token]):
                        scored.append((total + float(lp[token]), k, int(token), float(lp[token])))
            extended: list[tuple[list[int], list[float], float, int]] = []
            for total, k, token, logprob in sorted(scored, reverse=True):
                out, lps = live[k][0], live[k][1]
                if token == self.eot:
                    if len(finished) < beams:
                        finished.append((out, lps + [logprob], total))
                elif len(extended) < beams:
                    extended.append((out + [token], lps + [logprob], total, k))
                if len(extended) == beams:
                    break
            caches = [beam[3] for beam in live]
            live = []
            for out, lps, total, k in extended:
                if len(out) >= limit or (len(out) % 32 == 0 and
                                         compression_ratio(self.decode_text(out)) > COMPRESSION_THRESHOLD):
                    finished.append((out, lps, total))  # at the limit, or a loop: it ends here
                    continue
                logits, beam_cache = self._step([out[-1]], past + len(out) - 1, caches[k], cross)
                live.append((out, lps, total, beam_cache, logits[-1]))
        if not finished:
            finished = [(out, lps, total) for out, lps, total, _c, _l in live]
        out, lps, _total = max(finished, key=lambda f: sum(f[1]) / max(1, len(f[0])))
        mean = sum(lps) / len(lps) if lps else 0.0
        looped = compression_ratio(self.decode_text(out)) > COMPRESSION_THRESHOLD
        return out, lps[: len(out)], mean, looped

    def sentences(self, ids: list[int], logprobs: list[float]) -> list[Sentence]:
        """The text cut after each token that ends a sentence, each piece with its mean log-probability."""
        pieces: list[Sentence] = []
        begin = 0
        for i in range(len(ids)):
            if i == len(ids) - 1 or self.decode_text(ids[i : i + 1]).endswith(SENTENCE_ENDS):
                text = self.decode_text(ids[begin : i + 1])
                if text:
                    pieces.append(Sentence(text, float(np.mean(logprobs[begin : i + 1]))))
                begin = i + 1
        return pieces


class Listener:
    """One request's audio on its way to the recognizer, in windows of at most 30 s cut at quiet
    moments; audio is held only until its window is recognized, so memory stays flat."""

    SEARCH_SECONDS = 5.0  # where to look for a quiet moment before the 30 s limit

    def __init__(self, recognizer: Recognizer, total: int, language: str = "auto", allowed: tuple[str, ...] = (),
                 words: bool = True) -> None:
        self.recognizer, self.total, self.language, self.allowed, self.words = recognizer, total, language, allowed, words
        self.pieces: list[np.ndarray] = []
        self.start = 0  # sample index of the first held sample
        self.received = 0
        self.limit = int(MAX_WINDOW_SECONDS * SAMPLE_RATE)

    @property
    def finished(self) -> bool:
        return self.start >= self.total

    @property
    def done_frames(self) -> int:
        return self.start // HOP

    def add(self, audio: np.ndarray) -> None:
        self.pieces.append(np.asarray(audio, np.float32))
        self.received += len(audio)

    def ready(self, final: bool) -> bool:
        held = self.received - self.start
        return not self.finished and held > 0 and (held > self.limit or final and self.received >= self.total)

    def next_window(self) -> Heard:
        audio = np.concatenate(self.pieces) if len(self.pieces) != 1 else self.pieces[0]
        cut = quiet_cut(audio, self.limit, int(self.SEARCH_SECONDS * SAMPLE_RATE))
        window, start = audio[:cut], self.start / SAMPLE_RATE
        self.pieces = [audio[cut:]]
        self.start += cut
        if len(window) < SAMPLE_RATE // 10 or float(np.sqrt(np.mean(window**2))) < 1e-4:  # silence: nothing to hear
            return Heard(round(start, 3), round(start + len(window) / SAMPLE_RATE, 3), "", 0.0, 1.0, 0.0,
                         "" if self.language == "auto" else self.language, 0.0)
        return self.recognizer.window(window, start, self.language, self.allowed, self.words)
