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


AUTO = "auto"  # the language option's default: the script's words or the recognizer name the language

# The languages the recognizer (Whisper) can name, for messages about a language Oris does not read
WHISPER_LANGUAGES = dict(pair.split(":") for pair in (
    "en:English zh:Chinese de:German es:Spanish ru:Russian ko:Korean fr:French ja:Japanese pt:Portuguese tr:Turkish "
    "pl:Polish ca:Catalan nl:Dutch ar:Arabic sv:Swedish it:Italian id:Indonesian hi:Hindi fi:Finnish vi:Vietnamese "
    "he:Hebrew uk:Ukrainian el:Greek ms:Malay cs:Czech ro:Romanian da:Danish hu:Hungarian ta:Tamil no:Norwegian "
    "th:Thai ur:Urdu hr:Croatian bg:Bulgarian lt:Lithuanian la:Latin mi:Maori ml:Malayalam cy:Welsh sk:Slovak "
    "te:Telugu fa:Persian lv:Latvian bn:Bengali sr:Serbian az:Azerbaijani sl:Slovenian kn:Kannada et:Estonian "
    "mk:Macedonian br:Breton eu:Basque is:Icelandic hy:Armenian ne:Nepali mn:Mongolian bs:Bosnian kk:Kazakh "
    "sq:Albanian sw:Swahili gl:Galician mr:Marathi pa:Punjabi si:Sinhala km:Khmer sn:Shona yo:Yoruba so:Somali "
    "af:Afrikaans oc:Occitan ka:Georgian be:Belarusian tg:Tajik sd:Sindhi gu:Gujarati am:Amharic yi:Yiddish lo:Lao "
    "uz:Uzbek fo:Faroese ht:Haitian_Creole ps:Pashto tk:Turkmen nn:Nynorsk mt:Maltese sa:Sanskrit "
    "lb:Luxembourgish my:Burmese bo:Tibetan tl:Tagalog mg:Malagasy as:Assamese tt:Tatar haw:Hawaiian ln:Lingala "
    "ha:Hausa ba:Bashkir jw:Javanese su:Sundanese yue:Cantonese").split())


class LanguageError(ValueError):
    """A language Oris cannot read; the message lists the ones it can."""


def supported() -> str:
    return ", ".join(f"{code} ({name})" for code, (_voice, name) in LANGUAGES.items())


def check_language(code: str, allow_auto: bool = True) -> str:
    """The code, lower-cased ("auto" too, where allowed), or LanguageError naming the supported ones."""
    key = code.strip().lower().replace("_", "-")
    if key == AUTO and allow_auto:
        return key
    if key not in LANGUAGES:
        auto = f", or {AUTO} (the default: the script or the recognizer names it)" if allow_auto else ""
        raise LanguageError(f"unknown language {code!r}; Oris reads {supported()}{auto}")
    return key


def language_name(code: str) -> str:
    if code in LANGUAGES:
        return LANGUAGES[code][1]
    return WHISPER_LANGUAGES.get(code, code).replace("_", " ")


def recognizer_code(language: str) -> str:
    """The recognizer's code for one of Oris's languages (it has one Portuguese)."""
    return "pt" if language == "pt-br" else language


def recognizer_languages() -> tuple[str, ...]:
    return tuple(dict.fromkeys(recognizer_code(code) for code in LANGUAGES))


def from_recognizer(code: str, asked: str = AUTO) -> str | None:
    """Oris's language for a language the recognizer named (Brazilian Portuguese where that was asked for), or
    None for one Oris does not read."""
    if asked != AUTO and recognizer_code(asked) == code:
        return asked
    return code if code in LANGUAGES else None


# Words that are frequent in one language's speech and rare in the others' (a script's language by its words)
_COMMON_WORDS = {
    "en": "the and is are of to you it that this with for was have not what my your be we i me he she they "
          "please will can do don't there here",
    "fr": "le les des et est un une du je vous nous pas que qui dans pour sur ce il elle au avec mais ne votre "
          "c'est n'est j'ai l d qu s'il cette sont",
    "es": "el los las y es un una que en no por para con su se del al lo usted está favor gracias pero como muy",
    "de": "der die das und ist nicht ein eine ich sie wir mit zu auf den dem es du sind bitte für ihr haben",
    "it": "il lo gli e è un una di che non per con sono del della mi ti si questo questa ho grazie al alla sul nel ci ha anche",
    "pt": "o os as e é um uma de que não para com do da dos das em no na você obrigado isso está muito",
}
_WORD_SETS = {code: set(words.split()) for code, words in _COMMON_WORDS.items()}
_LETTER_HINTS = {"es": "ñ¿¡", "pt": "ãõ", "de": "ßäöü", "fr": "œêûîëç"}


def _script_language(text: str) -> str | None:
    """The language a writing system says (kana: Japanese, Han: Mandarin, Cyrillic: Russian), "latin" for the
    Latin alphabet, None without letters."""
    kana = sum("\u3040" <= c <= "\u30ff" for c in text)
    han = sum("\u4e00" <= c <= "\u9fff" for c in text)
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in text)
    latin = sum(c.isalpha() and c.isascii() for c in text)
    if kana:
        return "ja"
    if han > latin:
        return "zh"
    if cyrillic > latin:
        return "ru"
    return "latin" if latin else None


def script_mismatch(text: str, language: str) -> str | None:
    """The language a script's writing system shows when `language` is not written that way (Han or Cyrillic
    text said to be French, Latin text said to be Russian); None when it can be."""
    written = _script_language(text)
    if written is None or written == language or (written == "zh" and language == "ja"):  # kanji are Japanese too
        return None
    if written == "latin":
        return (guess_language(text) or "latin") if language in ("ja", "zh", "ru") else None
    return written


def guess_language(text: str) -> str | None:
    """The language a script is written in, from its writing system and its most common words; None when the
    text does not say (a word or two, or names alone): then the recognizer names the language from the audio."""
    written = _script_language(text)
    if written in ("ja", "zh", "ru"):
        return written
    words = [w.strip("'’") for w in text.lower().replace("’", "'").replace("'", "' ").split()]
    words = [w.strip(".,;:!?¡¿\"()«»—-") for w in words]
    score = {code: sum(w in common or w.rstrip("'") in common for w in words) for code, common in _WORD_SETS.items()}
    for code, letters in _LETTER_HINTS.items():
        score[code] += 2 * any(c in letters for c in text.lower())
    ranked = sorted(score.items(), key=lambda kv: -kv[1])
    (best, top), (_second, runner_up) = ranked[0], ranked[1]
    return best if top >= 2 and top > runner_up else None


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
