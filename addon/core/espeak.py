"""Words to IPA phonemes in any of espeak-ng's languages, through its C library (ctypes). No bpy.

The library and its language data come from the `espeakng-loader` wheel (libespeak-ng 1.52, GPL-3.0-or-later):
nothing is installed on the system and nothing is downloaded. espeak-ng keeps one global state, so every call
holds one lock; a word is read on its own, so each word's phonemes stay with it.
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache

_IPA = 0x02  # espeakPHONEMES_IPA
_SEPARATOR = ord("_") << 8  # between phonemes, in bits 8-23
_UTF8 = 1  # espeakCHARS_UTF8
_RETRIEVAL = 1  # AUDIO_OUTPUT_RETRIEVAL: no sound device is opened
_lock = threading.Lock()


class EspeakError(RuntimeError):
    """espeak-ng is not there, or cannot read a language; the message says which."""


class _Library:
    def __init__(self) -> None:
        try:
            import espeakng_loader  # the wheel that carries libespeak-ng and its data
        except ImportError:
            raise EspeakError("espeak-ng is not installed (pip install espeakng-loader); Oris needs it for "
                              "languages other than English") from None
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        data = espeakng_loader.get_data_path().encode()
        if self.lib.espeak_Initialize(_RETRIEVAL, 0, data, 0) <= 0:
            raise EspeakError(f"espeak-ng could not start with its data in {data.decode()}")
        self.voice = ""

    def phonemes(self, text: str, voice: str) -> list[str]:
        """The IPA phonemes of `text` in `voice`, stress and syllable marks kept (the caller reads them)."""
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice {voice!r}")
            self.voice = voice
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        out: list[str] = []
        while pointer.value:  # one clause a call; espeak-ng moves the pointer on, and sets it to NULL at the end
            chunk = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _UTF8, _IPA | _SEPARATOR)
            if chunk:
                # "(en)" ... "(fr)": espeak-ng switching language for a foreign word; not a phoneme
                out += [p for p in chunk.decode("utf-8", "replace").replace(" ", "_").split("_")
                        if p and not (p.startswith("(") and p.endswith(")"))]
        return out


@lru_cache(maxsize=1)
def _library() -> _Library:
    return _Library()


@lru_cache(maxsize=65536)
def word_phonemes(word: str, voice: str) -> tuple[str, ...]:
    """One word's IPA phonemes in an espeak-ng voice ('fr', 'es', 'en-us', 'cmn'...)."""
    with _lock:
        return tuple(_library().phonemes(word, voice))
