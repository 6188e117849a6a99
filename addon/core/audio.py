"""Audio files to 16 kHz mono float32, outside Blender (soundfile + scipy).

Inside Blender the decoding goes through `aud` instead; both end in `sanitize`.
Long files are read and resampled block by block, so memory holds only the 16 kHz
result, never the whole file at its own rate.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

TARGET_RATE = 16000
MIN_RATE, MAX_RATE = 4000, 384000
SUPPORTED = "WAV, FLAC, OGG/Vorbis, Opus and MP3"


class AudioError(ValueError):
    """A user-facing problem with an audio file; the message says what to do."""


@dataclass
class DecodedAudio:
    samples: np.ndarray  # float32, 16 kHz mono, in [-1, 1]
    source_rate: int
    channels: int
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / TARGET_RATE


class LoudnessMeter:
    """The level of 16 kHz mono audio in dB (full scale), one RMS value per 10 ms frame, fed in blocks of any size."""

    frame_rate = 100.0

    def __init__(self, rate: int = 16000) -> None:
        self.hop = max(1, int(round(rate / self.frame_rate)))
        self._levels: list[np.ndarray] = []
        self._rest = np.zeros(0, np.float64)

    def add(self, block: np.ndarray) -> None:
        x = np.concatenate([self._rest, np.asarray(block, np.float64)])
        n = len(x) // self.hop
        frames = x[: n * self.hop].reshape(n, self.hop)
        self._levels.append(10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-10))
        self._rest = x[n * self.hop:]

    def levels(self) -> np.ndarray:
        out = np.concatenate(self._levels) if self._levels else np.zeros(0)
        return out if len(out) else np.full(1, -100.0)


def sanitize(mono: np.ndarray, warnings: list[str]) -> np.ndarray:
    """Replace NaN/Inf with silence and clip to [-1, 1], noting what was changed."""
    mono = np.asarray(mono, np.float32)
    bad = ~np.isfinite(mono)
    if bad.any():
        warnings.append(f"{int(bad.sum())} NaN/Inf samples were replaced by silence")
        mono = np.where(bad, np.float32(0.0), mono)
    if mono.size and float(np.max(np.abs(mono))) > 1.0:
        warnings.append("samples beyond full scale were clipped to [-1, 1]")
        mono = np.clip(mono, -1.0, 1.0)
    return mono


def check_path(path: str) -> None:
    """Refuse a missing, folder, unreadable or empty path with a message that says which."""
    if not os.path.exists(path):
        raise AudioError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise AudioError(f"{path} is a folder, not an audio file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise AudioError(f"cannot read the audio file {path}: permission denied; check its permissions "
                         f"(e.g. chmod a+r {path})") from None
    except OSError as exc:
        raise AudioError(f"cannot read the audio file {path}: {exc.strerror or exc}") from None
    if os.path.getsize(path) == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes)")


def check_rate(path: str, rate: int) -> None:
    """One rule for both decoders (soundfile here, aud in Blender): speech needs at least 4 kHz."""
    if rate < MIN_RATE or rate > MAX_RATE:
        raise AudioError(f"{path} has a sample rate of {rate} Hz, which cannot hold speech; Oris reads "
                         f"{MIN_RATE} Hz to {MAX_RATE} Hz (8 kHz telephone audio works)")


def wav_missing_bytes(path: str) -> int:
    """For a RIFF WAVE file, how many bytes its data chunk promises beyond the end of the file.
    libsndfile quietly shortens such a file to what it holds, so a cut-off copy would pass unnoticed."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return 0
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return 0
                length = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"data":
                    if length in (0, 0xFFFFFFFF):  # streamed WAVs leave the size open
                        return 0
                    return max(0, f.tell() + length - size)
                f.seek(length + (length & 1), os.SEEK_CUR)
    except OSError:
        return 0


def truncation_warnings(path: str, seconds: float) -> list[str]:
    missing = wav_missing_bytes(path)
    if not missing:
        return []
    return [f"the file is truncated: its header promises {missing} more bytes of audio than it holds "
            f"(it ends at {seconds:.2f} s); re-export or re-copy it"]


def read_text_input(path: str, what: str) -> str:
    """A transcript or other text input, as text; AudioError with the reason when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except IsADirectoryError:
        raise AudioError(f"cannot read {what}: {path} is a folder") from None
    except FileNotFoundError:
        raise AudioError(f"cannot read {what}: {path} does not exist") from None
    except PermissionError:
        raise AudioError(f"cannot read {what} {path}: permission denied; check its permissions") from None
    except OSError as exc:
        raise AudioError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def decode_file(path: str | os.PathLike[str], block_seconds: float = 20.0) -> DecodedAudio:
    """Decode any rate and channel count to 16 kHz mono float32."""
    import soundfile as sf  # local: the worker and Blender never need it

    path = os.fspath(path)
    check_path(path)
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"could not read {path} as audio ({exc}). Oris reads {SUPPORTED}; "
                         f"convert other formats first, e.g. ffmpeg -i INPUT out.wav") from None
    warnings: list[str] = []
    with f:
        rate, channels = f.samplerate, f.channels
        check_rate(path, rate)
        g = math.gcd(rate, TARGET_RATE)
        up, down = TARGET_RATE // g, rate // g
        block = max(1, round(block_seconds * rate / down)) * down  # a multiple of `down`: block edges map to whole samples
        context = max(1, math.ceil(2048 / down)) * down
        out: list[np.ndarray] = []
        pending = np.zeros(0, np.float32)  # input samples from `pending_start` on
        pending_start, start, eof = 0, 0, False
        while True:
            while not eof and pending_start + len(pending) < start + block + context:
                try:
                    x = f.read(block, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    warnings.append(f"decoding stopped early ({exc}); the file may be truncated")
                    x = np.zeros((0, channels), np.float32)
                if len(x) == 0:
                    eof = True
                    break
                pending = np.concatenate([pending, x.mean(axis=1, dtype=np.float32)])  # average, not sum, channels
            available = pending_start + len(pending)
            if start >= available:
                break
            end = min(start + block, available)
            if up == down:
                out.append(pending[start - pending_start : end - pending_start].copy())
            else:
                from scipy.signal import resample_poly

                lo, hi = max(0, start - context), min(available, start + block + context)
                y = resample_poly(pending[lo - pending_start : hi - pending_start], up, down).astype(np.float32)
                first, last = start * up // down, -(-end * up // down)
                offset = first - lo * up // down
                out.append(y[offset : offset + last - first])
            start = end
            keep_from = max(0, start - context)
            pending = pending[keep_from - pending_start :]
            pending_start = keep_from
    samples = np.concatenate(out) if out else np.zeros(0, np.float32)
    if samples.size == 0:
        raise AudioError(f"{path} contains no audio samples")
    warnings += truncation_warnings(path, len(samples) / TARGET_RATE)
    return DecodedAudio(sanitize(samples, warnings), rate, channels, warnings)
