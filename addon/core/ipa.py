"""IPA phonemes (as espeak-ng writes them) to Oris's phones and visemes. No bpy.

Each phone maps twice: to the acoustic model's phone class (the nearest of CMUdict's 39 English phones, for
alignment: what it sounds like), and to a viseme (what the mouth looks like). The two differ where a language has
sounds English lacks: rounded front vowels (y, ø, œ) sound like English front vowels but are rounded; nasal vowels
take the shape of their oral vowel; uvular r (ʁ, R) keeps the lips neutral; a tapped or trilled r is a tongue-tip
sound with no English lip rounding.
"""

from __future__ import annotations

import unicodedata

from .visemes import PHONE_INDEX, VISEME_INDEX

HH = None  # viseme None: the phone takes the viseme English gives its class (hh: the next vowel's shape)

# IPA symbol -> [(acoustic class, viseme or None)], one entry per phone it becomes (an affricate or a diphthong
# written as one symbol becomes two). Symbols are compared after stress, length, tone and most diacritics go.
TABLE: dict[str, list[tuple[str, str | None]]] = {
    # lips
    "p": [("p", "PP")], "b": [("b", "PP")], "m": [("m", "PP")], "β": [("b", "PP")], "ɸ": [("f", "ou")],
    "f": [("f", "FF")], "v": [("v", "FF")], "ʋ": [("v", "FF")], "ɱ": [("m", "FF")], "pf": [("p", "PP"), ("f", "FF")],
    # teeth and tongue tip
    "θ": [("th", "TH")], "ð": [("dh", "TH")],
    "t": [("t", "DD")], "d": [("d", "DD")], "ʈ": [("t", "DD")], "ɖ": [("d", "DD")],
    "ts": [("t", "DD"), ("s", "SS")], "dz": [("d", "DD"), ("z", "SS")],
    "n": [("n", "nn")], "ɳ": [("n", "nn")], "ɲ": [("n", "nn")], "l": [("l", "nn")], "ɫ": [("l", "nn")],
    "ɭ": [("l", "nn")], "ʎ": [("l", "nn")], "ɬ": [("l", "nn")],
    "r": [("r", "DD")], "ɾ": [("d", "DD")], "ɽ": [("d", "DD")], "ɹ": [("r", "RR")], "ɻ": [("r", "RR")],
    "ɚ": [("er", "RR")], "ɝ": [("er", "RR")],
    "ʁ": [("r", "kk")], "ʀ": [("r", "kk")], "R": [("r", "kk")],
    # hissing and hushing
    "s": [("s", "SS")], "z": [("z", "SS")],
    "ʃ": [("sh", "CH")], "ʒ": [("zh", "CH")], "ɕ": [("sh", "CH")], "ʑ": [("zh", "CH")], "ʂ": [("sh", "CH")],
    "ʐ": [("zh", "CH")], "tʃ": [("ch", "CH")], "dʒ": [("jh", "CH")], "tɕ": [("ch", "CH")], "dʑ": [("jh", "CH")],
    "tʂ": [("ch", "CH")], "dʐ": [("jh", "CH")], "ç": [("hh", "ih")], "ʝ": [("y", "ih")],
    # back of the tongue
    "k": [("k", "kk")], "g": [("g", "kk")], "ɡ": [("g", "kk")], "q": [("k", "kk")], "ɢ": [("g", "kk")],
    "c": [("k", "kk")], "ɟ": [("g", "kk")], "ŋ": [("ng", "kk")], "ɴ": [("ng", "kk")],
    "x": [("hh", "kk")], "χ": [("hh", "kk")], "ɣ": [("g", "kk")], "ɰ": [("w", "kk")],
    "h": [("hh", HH)], "ɦ": [("hh", HH)],
    # glides
    "j": [("y", "ih")], "w": [("w", "ou")], "ɥ": [("w", "ou")], "ʍ": [("w", "ou")],
    # front vowels: spread, or rounded where the lips round
    "i": [("iy", "ih")], "ɪ": [("ih", "ih")], "e": [("ey", "E")], "ɛ": [("eh", "E")], "æ": [("ae", "aa")],
    "y": [("iy", "ou")], "ʏ": [("ih", "ou")], "ø": [("ey", "oh")], "œ": [("eh", "oh")], "ɶ": [("ae", "oh")],
    # central vowels
    "ə": [("ah", "aa")], "ɐ": [("ah", "aa")], "ɜ": [("ah", "aa")], "ʌ": [("ah", "aa")], "ɨ": [("ih", "ih")],
    "ɘ": [("ah", "E")], "ɵ": [("uh", "oh")], "ʉ": [("uw", "ou")], "ɞ": [("ah", "oh")],
    # back vowels
    "a": [("aa", "aa")], "ɑ": [("aa", "aa")], "ä": [("aa", "aa")], "ɒ": [("ao", "oh")], "ɔ": [("ao", "oh")],
    "o": [("ow", "oh")], "ʊ": [("uh", "ou")], "u": [("uw", "ou")], "ɯ": [("uw", "ih")], "ɤ": [("ah", "E")],
}

# A language whose sound for a symbol looks other than the table's (French schwa is said with rounded lips).
LANGUAGE_TABLE: dict[str, dict[str, list[tuple[str, str | None]]]] = {
    "fr": {"ə": [("ah", "oh")]},
    # Mandarin: espeak-ng writes aspiration as a plain h (ph, th, kh, tsh...), and the rising tone of some finals
    # as ɜ (píng: iɜ); neither is a phone of its own
    "zh": {"ph": [("p", "PP")], "th": [("t", "DD")], "kh": [("k", "kk")], "tsh": [("t", "DD"), ("s", "SS")],
           "tɕh": [("ch", "CH")], "tʂh": [("ch", "CH")], "ɜ": []},
}

# Marks that change neither the class nor the mouth: stress, length, syllables, tones, release and voice marks.
_DROPPED = set("ˈˌːˑ.-‿|‖\"↗↘˥˦˧˨˩0123456789ʰʱʼʷᵝ̪̥̬̩̯̞̝̠̟̃̈̽̆̊̋̏̀́̂̌̚˞")
_PALATAL = "ʲ"  # Russian soft consonants: the consonant, then the tongue toward i (no phone of its own)

def _clean(phoneme: str) -> str:
    """The phoneme without the marks that change nothing here (decomposed to drop them, then composed again, so
    that ç stays ç)."""
    text = unicodedata.normalize("NFD", phoneme)
    return unicodedata.normalize("NFC", "".join(ch for ch in text if ch not in _DROPPED and ch != _PALATAL))


def phones_of(phoneme: str, language: str = "") -> list[tuple[str, str | None]]:
    """One espeak-ng phoneme as Oris phones: the longest known symbols first, left to right (a diphthong
    such as `aɪ` or Mandarin `iou` becomes its vowels). Unknown symbols are left out; `unknown_symbols` names them."""
    text = _clean(phoneme)
    table = {**TABLE, **LANGUAGE_TABLE.get(language, {})}
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(text):
        for size in (3, 2, 1):
            piece = text[i:i + size]
            if piece in table:
                out += table[piece]
                i += size
                break
        else:
            i += 1
    return out


def unknown_symbols(phoneme: str) -> list[str]:
    """The characters of a phoneme that no table entry covers (a test holds this empty for every language)."""
    text = _clean(phoneme)
    known = set("".join(TABLE))
    return [ch for ch in text if ch not in known]


def _check_table() -> None:
    for symbol, phones in [*TABLE.items(), *(kv for t in LANGUAGE_TABLE.values() for kv in t.items())]:
        for acoustic, viseme in phones:
            assert acoustic in PHONE_INDEX, (symbol, acoustic)
            assert viseme is None or viseme in VISEME_INDEX, (symbol, viseme)


_check_table()
