"""Viseme and phone inventories, and the mappings between them.

The model's output order (contract v1, see DESIGN.md) is VISEMES. PHONES is the
phone head's order: silence plus the 39 ARPAbet phones of CMUdict.
"""

from __future__ import annotations

from collections.abc import Sequence

VISEMES: tuple[str, ...] = (
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
)
VISEME_INDEX = {name: i for i, name in enumerate(VISEMES)}
SIL = VISEME_INDEX["sil"]
PP = VISEME_INDEX["PP"]

# How much of each shape is the jaw opening rather than the lips' own shape (JALI's two channels, mapped onto the
# visemes): the `jaw` intensity scales that share, `lips` the rest. Closures and rest are neither: p/b/m always close.
JAW_SHARE = {"FF": 0.2, "TH": 0.5, "DD": 0.6, "kk": 0.7, "CH": 0.3, "SS": 0.3, "nn": 0.6, "RR": 0.3,
             "aa": 0.8, "E": 0.6, "ih": 0.5, "oh": 0.5, "ou": 0.2}


def shape_gains(intensity: float = 1.0, jaw: float = 1.0, lips: float = 1.0) -> list[float]:
    """The factor on each viseme's weight: intensity times its jaw share scaled by `jaw` and the rest by `lips`."""
    return [1.0 if v in ("sil", "PP") else intensity * (jaw * JAW_SHARE[v] + lips * (1.0 - JAW_SHARE[v]))
            for v in VISEMES]


# Diphthongs move: their viseme is the first vowel's, and over their last part the lips glide toward the second
# ("now": open, then rounding; "five": open, then spread)
DIPHTHONG_GLIDES = {"aw": "ou", "ay": "ih", "ey": "ih", "ow": "ou", "oy": "ih"}
GLIDE_SHARE_OF_DIPHTHONG = 0.4  # the glide is its last 40%

PHONES: tuple[str, ...] = (
    "sil",
    "aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g",
    "hh", "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh",
    "t", "th", "uh", "uw", "v", "w", "y", "z", "zh",
)
PHONE_INDEX = {name: i for i, name in enumerate(PHONES)}

VOWELS = frozenset({"aa", "ae", "ah", "ao", "aw", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"})

# Variants used by flite, festival and pocketsphinx, folded onto PHONES.
_PHONE_ALIASES = {
    "pau": "sil", "h#": "sil", "brth": "sil", "sp": "sil", "spn": "sil", "nsn": "sil",
    "+nsn+": "sil", "+spn+": "sil", "<sil>": "sil", "</s>": "sil", "<s>": "sil",
    "ax": "ah", "axr": "er", "ix": "ih", "dx": "d", "el": "l", "em": "m", "en": "n",
    "nx": "n", "hv": "hh", "ux": "uw",
}

_PHONE_TO_VISEME = {
    "sil": "sil",
    "p": "PP", "b": "PP", "m": "PP",
    "f": "FF", "v": "FF",
    "th": "TH", "dh": "TH",
    "t": "DD", "d": "DD",
    "k": "kk", "g": "kk", "ng": "kk",
    "ch": "CH", "jh": "CH", "sh": "CH", "zh": "CH",
    "s": "SS", "z": "SS",
    "n": "nn", "l": "nn",
    "r": "RR", "er": "RR",
    "aa": "aa", "ae": "aa", "ah": "aa", "aw": "aa", "ay": "aa",
    "eh": "E", "ey": "E",
    "ih": "ih", "iy": "ih", "y": "ih",
    "ao": "oh", "ow": "oh", "oy": "oh",
    "uh": "ou", "uw": "ou", "w": "ou",
}

# Six mouth shapes used for the coarse accuracy figure.
MOUTH_SHAPES: tuple[str, ...] = ("closed", "labiodental", "open", "rounded", "rest", "spread")
_VISEME_TO_MOUTH = {
    "PP": "closed", "FF": "labiodental", "aa": "open", "oh": "rounded", "ou": "rounded", "sil": "rest",
}
VISEME_TO_MOUTH_INDEX = tuple(
    MOUTH_SHAPES.index(_VISEME_TO_MOUTH.get(v, "spread")) for v in VISEMES
)


def normalize_phone(raw: str) -> str:
    """Fold an engine's phone label (any case, stress digits) onto PHONES."""
    name = raw.strip().lower().rstrip("012")
    name = _PHONE_ALIASES.get(name, name)
    if name not in PHONE_INDEX:
        raise KeyError(f"unknown phone label {raw!r}")
    return name


def phone_viseme(phone: str) -> str:
    """Viseme of a phone; 'hh' has none of its own (see phones_to_visemes)."""
    return _PHONE_TO_VISEME[phone]


def phones_to_visemes(phones: Sequence[str]) -> list[str]:
    """Map a phone sequence to visemes. 'hh' takes the viseme of the next vowel,
    because the mouth already shapes that vowel while the breath is heard."""
    out: list[str] = []
    for i, ph in enumerate(phones):
        if ph != "hh":
            out.append(_PHONE_TO_VISEME[ph])
            continue
        nxt = next((p for p in phones[i + 1 :] if p in VOWELS or p == "sil"), "sil")
        out.append(_PHONE_TO_VISEME[nxt] if nxt != "sil" else "aa")
    return out


PHONE_TO_VISEME_INDEX = tuple(
    VISEME_INDEX[_PHONE_TO_VISEME[p]] if p != "hh" else VISEME_INDEX["aa"] for p in PHONES
)
