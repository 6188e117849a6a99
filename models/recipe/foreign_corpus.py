"""Training sets of real non-English speech (issue 25): Asterisk fr, es, ru prompts and festvox-ru, in corpus.py's format.

    python models/recipe/foreign_corpus.py [--out models/.cache/foreign]

  * Asterisk fr, es, ru (8 kHz, decoded to 16 kHz as the product decodes): every prompt with a script EXCEPT those
    language_thresholds.py uses (the first THRESHOLD_PROMPTS of the Random(1) shuffle) and those languages_corpus.py
    holds out for evaluation, and any prompt whose script is a held-out one's. Labels: Oris's own transcript-mode alignment in that language (the shipped model's phone
    posteriors, the other-language mismatch thresholds); a prompt whose script the alignment refuses is left out.
    Where the language's mouth for a phone differs from English's, the segment is stored as a phone of that viseme.
  * festvox-ru: every utterance but the held-out sample of languages_corpus.festvox_ru_set, with its own festival
    phone labels mapped as languages_corpus.py maps them.
Italian is never used: it stays a language training never heard.
"""

from __future__ import annotations

import argparse
import gzip
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
from languages_corpus import (  # noqa: E402
    ASTERISK_ROOT,
    FESTVOX_RU,
    HELDOUT_SEED,
    THRESHOLD_PROMPTS,
    THRESHOLD_SEED,
    asterisk_heldout,
    festvox_labels,
    festvox_ru_names,
)

from addon.core.align import AlignmentError, Transcript, align_transcript  # noqa: E402
from addon.core.audio import decode_file  # noqa: E402
from addon.core.languages import OTHER_LANGUAGE_MISMATCH  # noqa: E402
from addon.core.visemes import VISEMES, phone_viseme, phones_to_visemes  # noqa: E402

TRAIN_LANGUAGES = ("fr", "es", "ru")  # never "it"
# one phone per viseme, as evaluate.py writes a viseme sequence as phones
VISEME_PHONE = {v: next(p for p in ("sil", "p", "f", "th", "t", "k", "ch", "s", "n", "r", "aa", "eh", "ih", "ao", "uw")
                        if phone_viseme(p) == v) for v in VISEMES}


def excluded(language: str) -> set[str]:
    """The prompts language_thresholds.py chose thresholds on and those evaluate.py scores."""
    _folder, scripts = asterisk_prompts(ASTERISK_ROOT, language)
    names = sorted(scripts)
    random.Random(THRESHOLD_SEED).shuffle(names)
    held = {name for name, _p, _t in asterisk_heldout(language)}
    return set(names[:THRESHOLD_PROMPTS.get(language, 0)]) | held


def all_scripts(language: str) -> tuple[Path, dict[str, str]]:
    """Every prompt with a script and audio, one-word prompts included."""
    folder, _ = asterisk_prompts(ASTERISK_ROOT, language)
    listing = ASTERISK_ROOT / "usr" / "share" / "doc" / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
    found = {}
    with gzip.open(listing, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            text = text.strip().strip("“”\"")
            if sep and not line.startswith(";") and text and (folder / f"{name.strip()}.wav").exists():
                found[name.strip()] = text
    return folder, found


def asterisk_set(language: str, worker) -> tuple[list[Utterance], int, int]:
    folder, scripts = all_scripts(language)
    skip = excluded(language)
    held_scripts = {text.strip().lower() for _n, _p, text in asterisk_heldout(language)}
    skip |= {name for name, text in scripts.items() if text.strip().lower() in held_scripts}  # same words, another take
    utts, refused = [], 0
    for name in sorted(set(scripts) - skip):
        audio = decode_file(str(folder / f"{name}.wav")).samples
        post = worker.infer(audio)
        try:
            aligned = align_transcript(Transcript(scripts[name], language), post.phones, post.frame_rate,
                                       *OTHER_LANGUAGE_MISMATCH)
        except AlignmentError:
            refused += 1
            continue
        english = phones_to_visemes([ph for _s, _e, ph in aligned.phone_segments])
        segments = [(s, e, ph if VISEMES[vis] == own else VISEME_PHONE[VISEMES[vis]])
                    for (s, e, ph), (_s, _e, vis), own in zip(aligned.phone_segments, aligned.viseme_segments, english)]
        duration = len(audio) / 16000
        if segments and segments[-1][1] < duration:
            segments.append((segments[-1][1], duration, "sil"))
        audio16 = to_int16_16k(audio, 16000)
        utts.append(Utterance(f"asterisk-{language}__{name.replace('/', '_')}", audio16, segments, scripts[name]))
    return utts, refused, len(skip)


def festvox_train(heldout: int = 80) -> list[Utterance]:
    texts = {name: text.replace("+", "") for name, text in read_prompts(FESTVOX_RU / "etc" / "txt.done.data")}
    names = [n for n in festvox_ru_names(FESTVOX_RU) if n in texts]
    held = set(random.Random(HELDOUT_SEED).sample(names, min(heldout, len(names))))  # as festvox_ru_set chooses
    utts = []
    for name in names:
        if name in held:
            continue
        audio, sr = sf.read(FESTVOX_RU / "wav" / f"{name}.wav", dtype="float32")
        audio16 = to_int16_16k(audio, sr)
        segments = segments_from_end_times(festvox_labels(FESTVOX_RU / "lab" / f"{name}.lab"), len(audio16) / 16000)
        utts.append(Utterance(f"festvox-ru__{name}", audio16, segments, texts[name]))
    return utts


def main(argv: list[str] | None = None) -> int:
    from addon.engine.client import WorkerClient

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "models" / ".cache" / "foreign")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "festvox_ru_train.npz").exists():
        utts = festvox_train()
        save_set(args.out / "festvox_ru_train.npz", utts)
        print(f"festvox-ru: {len(utts)} utterances, {sum(len(u.audio) for u in utts) / 16000 / 3600:.2f} h", flush=True)
    with WorkerClient(device="cpu") as worker:
        for language in TRAIN_LANGUAGES:
            utts, refused, skipped = asterisk_set(language, worker)
            save_set(args.out / f"asterisk_{language}_train.npz", utts)
            print(f"asterisk {language}: {len(utts)} utterances ({sum(len(u.audio) for u in utts) / 16000 / 60:.1f} min), "
                  f"{refused} refused by the alignment, {skipped} held out (thresholds + evaluation)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
