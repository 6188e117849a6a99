"""Audio decoding inside Blender, through `aud` (no soundfile or scipy in Blender's Python).

`aud.Sound(path).data()` aborts the whole process on an unreadable file, so the file is
probed first (`specs` raises a catchable aud.error), and the path checks run before that.
"""

from __future__ import annotations

import os

import aud  # noqa: E402
import bpy  # noqa: F401  (the pip build of bpy registers `aud` on import)
import numpy as np

from ..core.audio import (
    SUPPORTED,
    TARGET_RATE,
    AudioError,
    DecodedAudio,
    check_path,
    check_rate,
    sanitize,
    truncation_warnings,
)


def decode_with_aud(path: str) -> DecodedAudio:
    path = os.fspath(path)
    check_path(path)
    try:
        sound = aud.Sound(path)  # type: ignore[call-arg]  # the stubs miss the filename argument
        rate, channels = sound.specs
        length = sound.length
    except aud.error as exc:  # type: ignore[misc]  # aud.error is an exception class at run time
        raise AudioError(f"Blender could not read {path} as audio ({exc}). Oris reads {SUPPORTED}; "
                         "convert other formats first, e.g. ffmpeg -i INPUT out.wav") from None
    if length <= 0:
        raise AudioError(f"{path} contains no audio samples")
    check_rate(path, int(rate))
    if int(rate) != TARGET_RATE:
        sound = sound.resample(TARGET_RATE, 2)
    data = np.asarray(sound.data(), dtype=np.float32)
    mono = data.mean(axis=1) if data.ndim == 2 else data  # average channels (aud's rechannel sums them)
    warnings: list[str] = []
    samples = sanitize(mono, warnings)
    if samples.size == 0:
        raise AudioError(f"{path} contains no audio samples")
    warnings += truncation_warnings(path, len(samples) / TARGET_RATE)
    return DecodedAudio(samples, int(rate), int(channels), warnings)
