"""Speech recognition in the worker: Whisper tiny.en (models/oris_whisper_*.onnx) turns audio into words,
which the transcript-guided alignment then places. No bpy; onnxruntime comes from the caller.

Audio goes through in windows of at most 30 s (Whisper's span), cut at the quietest moment near the limit
so that no word is split; each window is decoded greedily without timestamps. Each window reports the
recognizer's own confidence (the no-speech probability and the mean token log-probability) and how
repetitive the text is, so that the caller can refuse words it cannot trust.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
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


def trust(text: str, avg_logprob: float, no_speech_prob: float, compression: float,
          min_logprob: float = TRUST_LOGPROB) -> bool:
    """Whether a window's words can be used: some text, no decoding loop, not silence, and confident enough."""
    if not text.strip() or compression > COMPRESSION_THRESHOLD:
        return False
    silence = no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD
    return not silence and avg_logprob > min_logprob


@dataclass
class Heard:
    """What the recognizer made of one window of audio."""

    start: float  # seconds from the start of the request
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float

    @property
    def trusted(self) -> bool:
        return trust(self.text, self.avg_logprob, self.no_speech_prob, self.compression_ratio)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trusted": self.trusted}


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


class Recognizer:
    """Whisper's encoder and decoder in onnxruntime sessions, and its vocabulary."""

    def __init__(self, card_path: Path, make_session: Callable[[bytes], Any],
                 read_checked: Callable[[Path, str], bytes]) -> None:
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
        # the cache's shape says how deep and wide the decoder is: [layers, 2 (keys, values), 1, past, width]
        self.layers, _kv, _batch, _past, self.width = self.decoder.get_inputs()[2].shape
        self.suppress = np.zeros(len(self.tokens), bool)
        self.suppress[self.card["suppress"]] = True
        self.suppress[self.eot + 1 :] = True  # special and timestamp tokens: words only, then the end
        self.suppress_begin = self.suppress.copy()
        self.suppress_begin[self.card["suppress_at_begin"]] = True

    def decode_text(self, ids: list[int]) -> str:
        table = _byte_decoder()
        raw = bytes(table[c] for i in ids if i < self.eot for c in self.tokens[i] if c in table)
        return raw.decode("utf-8", errors="replace").strip()

    def window(self, audio: np.ndarray, start: float) -> Heard:
        """Recognize one window (at most 30 s), zero-padded to 30 s as Whisper was trained: with a
        shorter encoder input (measured on the held-out learners) it loses the end of speech and
        repeats the last sentence until its token limit."""
        seconds = len(audio) / SAMPLE_RATE
        frames = int(MAX_WINDOW_SECONDS * 100)
        cross = self.encoder.run(None, {"mel": log_mel(audio, frames)[None]})[0]
        tokens = [self.sot, self.no_timestamps]
        cache = np.zeros((self.layers, 2, 1, 0, self.width), np.float32)
        logits, cache = self.decoder.run(None, {"tokens": np.array([tokens], np.int64),
                                                "positions": np.arange(len(tokens), dtype=np.int64),
                                                "cache": cache, "cross_kv": cross})
        first = _log_softmax(logits[0, 0].astype(np.float64))
        no_speech_prob = float(np.exp(first[self.no_speech]))
        out: list[int] = []
        total_logprob = 0.0
        step_logits = logits[0, -1]
        limit = min(MAX_TOKENS, int(self.card.get("decoder_positions", 448)) - len(tokens) - 1)
        while len(out) < limit:
            lp = _log_softmax(step_logits.astype(np.float64))
            lp[self.suppress_begin if not out else self.suppress] = -np.inf
            token = int(np.argmax(lp))
            total_logprob += float(lp[token])
            if token == self.eot:
                break
            out.append(token)
            if len(out) % 32 == 0 and compression_ratio(self.decode_text(out)) > COMPRESSION_THRESHOLD:
                break  # a decoding loop ("I'm not sure if ... I'm not sure if ..."): it will not be trusted anyway
            position = len(tokens) + len(out) - 1
            logits, cache = self.decoder.run(None, {"tokens": np.array([[token]], np.int64),
                                                    "positions": np.array([position], np.int64),
                                                    "cache": cache, "cross_kv": cross})
            step_logits = logits[0, -1]
        text = self.decode_text(out)
        return Heard(round(start, 3), round(start + seconds, 3), text, total_logprob / (len(out) + 1), no_speech_prob,
                     compression_ratio(text))


class Listener:
    """One request's audio on its way to the recognizer, in windows of at most 30 s cut at quiet
    moments; audio is held only until its window is recognized, so memory stays flat."""

    SEARCH_SECONDS = 5.0  # where to look for a quiet moment before the 30 s limit

    def __init__(self, recognizer: Recognizer, total: int) -> None:
        self.recognizer, self.total = recognizer, total
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
            return Heard(round(start, 3), round(start + len(window) / SAMPLE_RATE, 3), "", 0.0, 1.0, 0.0)
        return self.recognizer.window(window, start)
