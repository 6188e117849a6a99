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
    """Refuse a missing, folder or empty path with a message that says which."""
    if not os.path.exists(path):
        raise AudioError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise AudioError(f"{path} is a folder, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes)")


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
        if rate < 4000 or rate > 384000:
            raise AudioError(f"{path} has an unusable sample rate of {rate} Hz")
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
    return DecodedAudio(sanitize(samples, warnings), rate, channels, warnings)
