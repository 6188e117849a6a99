"""The languages Oris lip-syncs from a transcript, and how each is read. No bpy.

English is read with CMUdict (espeak-ng for the words it lacks); the others with espeak-ng's own rules and
dictionaries (core.espeak), its IPA mapped to Oris's phones and visemes (core.ipa).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# ISO 639-1 code (pt-br: Brazilian Portuguese) -> (espeak-ng voice, name)
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("en-us", "English"),
    "fr": ("fr", "French"),
    "es": ("es", "Spanish"),
    "de": ("de", "German"),
    "it": ("it", "Italian"),
    "pt": ("pt", "Portuguese"),
    "pt-br": ("pt-br", "Brazilian Portuguese"),
    "ru": ("ru", "Russian"),
    "ja": ("ja", "Japanese"),  # kanji read through Janome's dictionary (japanese_words)
    "zh": ("cmn", "Mandarin Chinese"),
}
# How far a transcript in another language may sit from the English-trained model's phone posteriors before it is
# judged not to match the audio (alignment gap, agreement): English keeps the values tuned with its model (its
# card). Chosen on 120 French prompts of the Asterisk voice, each aligned with its own script and with another
# prompt's: 95% of the right scripts kept, 99% of the wrong ones refused. On 80 prompts each of the Spanish,
# Italian and Russian voices, not used to choose them: 99%/92%, 88%/99%, 91%/98%
# (models/recipe/language_thresholds.py).
OTHER_LANGUAGE_MISMATCH = (2.3, 0.31)


class LanguageError(ValueError):
    """A language Oris cannot read; the message lists the ones it can."""


def supported() -> str:
    return ", ".join(f"{code} ({name})" for code, (_voice, name) in LANGUAGES.items())


def check_language(code: str) -> str:
    """The code, lower-cased, or LanguageError naming the supported ones."""
    key = code.strip().lower().replace("_", "-")
    if key not in LANGUAGES:
        raise LanguageError(f"unknown language {code!r}; Oris reads transcripts in {supported()}")
    return key


def language_name(code: str) -> str:
    return LANGUAGES.get(code, ("", code))[1]


def voice_of(language: str) -> str:
    """The espeak-ng voice that reads `language`."""
    return LANGUAGES[check_language(language)][0]


@lru_cache(maxsize=1)
def _japanese_tokenizer() -> Any:
    from janome.tokenizer import Tokenizer  # IPADIC in its wheel: no download; loaded once (0.3 s)

    return Tokenizer()


def japanese_words(text: str) -> list[tuple[str, str]]:
    """A Japanese script as (word as written, its pronunciation in katakana): Janome's dictionary reads the kanji
    that espeak-ng cannot, and gives particles their spoken form (は as wa, へ as e). A word the dictionary does
    not know keeps its spelling; punctuation and spaces are left out."""
    words = []
    for token in _japanese_tokenizer().tokenize(text):
        if token.part_of_speech.startswith("記号"):  # symbols, punctuation, spaces
            continue
        spoken = token.phonetic if token.phonetic not in ("", "*") else token.surface
        words.append((token.surface, spoken))
    return words
