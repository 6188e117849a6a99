"""Held-out speech in other languages for models/evaluate.py (--languages, --languages-only).

    apt-get download festvox-ru asterisk-core-sounds-{fr,es,it,ru} asterisk-core-sounds-{fr,es,it,ru}-wav
    dpkg -x festvox-ru_*.deb models/.cache/festvox-ru/x; for f in asterisk*.deb; do dpkg -x "$f" models/.cache/asterisk/x; done
    python models/recipe/languages_corpus.py [--utterances 80]

Sets (the viseme model was trained on none of them; the recognizer's thresholds were chosen on none of them):
  * festvox-ru (msu_ru_nsh, one male speaker, 16 kHz, BSD-style licence): a fixed sample of its utterances with
    the voice's own festival phone labels, mapped to Oris's phones by the mouth shape each festvox phone makes
    (FESTVOX_RU_PHONES). An independent reference: written to festvox_ru_heldout.npz in corpus.py's format.
  * Asterisk prompt voices fr, es, it, ru (8 kHz telephone audio): the prompts models/recipe/language_thresholds.py
    did NOT use to choose the other-language mismatch thresholds (it takes the first THRESHOLD_PROMPTS of the
    prompts shuffled with random.Random(1)), a fixed sample of the rest. No phone labels: evaluate.py scores them
    against Oris's own transcript-mode alignment.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from corpus import Utterance, read_prompts, save_set, segments_from_end_times, to_int16_16k  # noqa: E402
from language_thresholds import prompts as asterisk_prompts  # noqa: E402

CACHE = ROOT / "models" / ".cache"
ASTERISK_ROOT = CACHE / "asterisk" / "x"
FESTVOX_RU = CACHE / "festvox-ru" / "x" / "usr" / "share" / "festival" / "voices" / "russian" / "msu_ru_nsh_clunits"
OUT = CACHE / "languages"
ASTERISK_LANGUAGES = ("fr", "es", "it", "ru")
THRESHOLD_PROMPTS = {"fr": 120, "es": 80, "it": 80, "ru": 80}  # used by language_thresholds.py: never evaluated on
THRESHOLD_SEED = 1
HELDOUT_SEED = 0

# festvox msu_ru phone -> Oris phone(s) (PHONES, whose viseme is the mouth shape of the Russian sound), chosen as
# addon/core/ipa.py maps the IPA espeak-ng writes for the same sound. A pair splits the phone's time (an affricate).
# Soft (palatalized, doubled) consonants keep their plain consonant's shape, as ipa.py drops the palatal mark.
# The reduced vowels: in the labels `ae` follows soft consonants (nn ll rr ch tt...) and is [ɪ] (espeak-ng's ɪ:
# spread), `ay` follows hard ones and is [ə] (ipa.py's ə: open); the phone set's comments name them the other way
# round, the labels decide.
FESTVOX_RU_PHONES: dict[str, tuple[str, ...]] = {
    "pau": ("sil",),
    # vowels: stressed, first and second level of reduction
    "aa": ("aa",), "a": ("ah",), "ay": ("ah",), "ae": ("ih",),
    "ee": ("eh",), "e": ("eh",),
    "ii": ("iy",), "i": ("ih",), "yy": ("ih",), "y": ("ih",),  # ы: ɨ, spread
    "oo": ("ao",),  # stressed о: rounded (unstressed о is reduced to a or ay)
    "uu": ("uw",), "u": ("uw",), "ur": ("uh",),  # rounded
    # lips
    "p": ("p",), "pp": ("p",), "b": ("b",), "bb": ("b",), "m": ("m",), "mm": ("m",),
    "f": ("f",), "ff": ("f",), "v": ("v",), "vv": ("v",),
    # tongue tip; the trilled Russian r is a tongue-tip sound (ipa.py: r -> DD, shown by the phone d)
    "t": ("t",), "tt": ("t",), "d": ("d",), "dd": ("d",), "r": ("d",), "rr": ("d",),
    "n": ("n",), "nn": ("n",), "l": ("l",), "ll": ("l",),
    "s": ("s",), "ss": ("s",), "z": ("z",), "zz": ("z",), "c": ("t", "s"),  # ц: ts
    # hushing
    "sh": ("sh",), "zh": ("zh",), "sch": ("sh",), "ch": ("ch",),
    # back of the tongue; х is x (ipa.py: x -> kk)
    "k": ("k",), "kk": ("k",), "g": ("g",), "gg": ("g",), "h": ("k",), "hh": ("k",),
    "j": ("y",),
}


def festvox_labels(path: Path) -> list[tuple[str, float]]:
    """A festival .lab file as (Oris phone, end time s), an affricate split in two."""
    ends: list[tuple[str, float]] = []
    start = 0.0
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[0] == "#":
            continue
        end, phone = float(parts[0]), parts[2]
        mapped = FESTVOX_RU_PHONES[phone]
        for k, oris in enumerate(mapped, 1):
            ends.append((oris, start + (end - start) * k / len(mapped)))
        start = end
    return ends


def festvox_ru_names(root: Path = FESTVOX_RU) -> list[str]:
    return sorted(p.stem for p in (root / "lab").glob("*.lab") if (root / "wav" / f"{p.stem}.wav").is_file())


def festvox_ru_set(out: Path, utterances: int = 80, root: Path = FESTVOX_RU, seed: int = HELDOUT_SEED) -> Path:
    """Write a fixed sample of festvox-ru, with its phone labels, as one corpus .npz."""
    texts = {name: text.replace("+", "") for name, text in read_prompts(root / "etc" / "txt.done.data")}
    names = [n for n in festvox_ru_names(root) if n in texts]
    chosen = sorted(random.Random(seed).sample(names, min(utterances, len(names))))
    utts = []
    for name in chosen:
        audio, sr = sf.read(root / "wav" / f"{name}.wav", dtype="float32")
        audio16 = to_int16_16k(audio, sr)
        segments = segments_from_end_times(festvox_labels(root / "lab" / f"{name}.lab"), len(audio16) / 16000)
        utts.append(Utterance(name, audio16, segments, texts[name]))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_set(out, utts)
    return out


def asterisk_heldout(language: str, prompts: int = 60, root: Path = ASTERISK_ROOT,
                     seed: int = HELDOUT_SEED) -> list[tuple[str, Path, str]]:
    """(name, wav, script) of a fixed sample of the voice's prompts that the threshold choice did not see."""
    folder, scripts = asterisk_prompts(root, language)
    names = sorted(scripts)
    random.Random(THRESHOLD_SEED).shuffle(names)  # exactly as language_thresholds.py
    rest = sorted(names[THRESHOLD_PROMPTS.get(language, 0):])
    chosen = sorted(random.Random(seed).sample(rest, min(prompts, len(rest))))
    return [(name, folder / f"{name}.wav", scripts[name]) for name in chosen]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--utterances", type=int, default=80, help="festvox-ru utterances to hold out")
    args = ap.parse_args(argv)
    festvox_ru_set(args.out / "festvox_ru_heldout.npz", args.utterances)
    if ASTERISK_ROOT.is_dir():
        for language in ASTERISK_LANGUAGES:
            clips = asterisk_heldout(language)
            seconds = sum(sf.info(str(path)).duration for _n, path, _t in clips)
            print(f"  asterisk {language}: {len(clips)} held-out prompts, {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
