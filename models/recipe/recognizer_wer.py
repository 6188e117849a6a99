"""Which Whisper the worker ships, and how it listens: word error rates and speed on held-out speech.

    apt-get download asterisk-core-sounds-{fr,es,it,ru} asterisk-core-sounds-{fr,es,it,ru}-wav
    for f in *.deb; do dpkg -x "$f" x; done
    python models/recipe/recognizer_wer.py --asterisk x --card base=path/oris_whisper.json [--card tiny.en=...]

Sets (none of them trained either recognizer or chose its settings):
  * learners: the speechocean762 speakers the viseme model holds out (every 8th), English;
  * en-AU: the Australian prompt voice the viseme model holds out, English;
  * the Asterisk prompt voices in French, Spanish, Italian and Russian (8 kHz telephone recordings).
For each recognizer card, each way of listening (the encoder sees Whisper's full 30 s, or the window fitted
with a margin: recognizer.encoder_frames) and each language setting (told the language, or auto: it names
it), prints the word error rate (character error rate for Japanese and Chinese), the share of clips whose
language was named right, the share of clips whose words the worker would trust, and the seconds per second
of audio (both cores of this machine, one clip at a time).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from language_thresholds import prompts as asterisk_prompts  # noqa: E402

from addon.core.audio import decode_file  # noqa: E402
from addon.engine import recognizer as recognizer_module  # noqa: E402
from addon.engine.model import read_checked  # noqa: E402
from addon.engine.recognizer import Recognizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HELDOUT_SPEAKER_EVERY = 8  # as models/recipe/corpus.py


def words_of(text: str, language: str) -> list[str]:
    """Lower case, no punctuation; characters for languages written without spaces."""
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    text = "".join(" " if unicodedata.category(c).startswith(("P", "S")) and c != "'" else c for c in text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    if language in ("ja", "zh"):
        return [c for c in text if not c.isspace()]
    return text.split()


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def learners(n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    so = SHARED / "speechocean762-train"
    texts = dict(line.split("\t", 1) for line in (so / "text").read_text().splitlines() if "\t" in line)
    utt2spk = dict(line.split() for line in (so / "utt2spk").read_text().splitlines() if line.strip())
    held = set(sorted(set(utt2spk.values()))[::HELDOUT_SPEAKER_EVERY])
    clips = [(str(a), texts[u].strip(), "en") for u in sorted(texts) if utt2spk[u] in held
             for a in (so / "audio" / f"{u}.flac", so / "audio" / f"{u}.opus") if a.is_file()]
    return rng.sample(clips, min(n, len(clips)))


def native(n: int, rng: random.Random, voice: str = "asterisk-en-au") -> list[tuple[str, str, str]]:
    folder = SHARED / "prompts-en" / voice
    clips = [(str(folder / "audio" / f"{ident}.opus"), text, "en")
             for ident, _, text in (line.partition("\t") for line in (folder / "text").read_text().splitlines())
             if text.strip() and (folder / "audio" / f"{ident}.opus").is_file()]
    return rng.sample(clips, min(n, len(clips)))


def asterisk(root: Path, language: str, n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    folder, scripts = asterisk_prompts(root, language)
    names = sorted(scripts)
    return [(str(folder / f"{name}.wav"), scripts[name], language) for name in rng.sample(names, min(n, len(names)))]


def load(card: Path, fit_context: bool) -> Recognizer:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3

    def session(data: bytes) -> ort.InferenceSession:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    return Recognizer(card, session, read_checked, fit_context=fit_context)


def run(recognizer: Recognizer, clips: list[tuple[str, str, str]], told: bool) -> dict[str, float]:
    errors = reference = named = trusted = 0
    seconds = spent = 0.0
    for path, text, language in clips:
        audio = decode_file(path).samples
        start = time.perf_counter()
        heard = recognizer.window(audio, 0.0, language if told else "auto")
        spent += time.perf_counter() - start
        seconds += len(audio) / 16000
        ref = words_of(text, language)
        errors += edit_distance(ref, words_of(heard.text, language))
        reference += len(ref)
        named += heard.language == language
        trusted += heard.trusted and heard.language == language
    return {"wer": errors / max(1, reference), "named": named / len(clips), "trusted": trusted / len(clips),
            "rtf": spent / seconds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", action="append", required=True, metavar="NAME=PATH", help="a recognizer card (repeat)")
    ap.add_argument("--asterisk", type=Path, help="the folder the asterisk-core-sounds packages were unpacked into")
    ap.add_argument("--languages", nargs="*", default=["fr", "es", "it", "ru"])
    ap.add_argument("--clips", type=int, default=40, help="clips per set")
    ap.add_argument("--contexts", nargs="*", default=["full", "fitted"])
    ap.add_argument("--margins", nargs="*", type=float, default=[recognizer_module.CONTEXT_MARGIN_SECONDS],
                    help="fitted context: seconds of silence after the window (rounded up to 5 s steps)")
    args = ap.parse_args(argv)
    sets = {"learners (en)": learners(args.clips, random.Random(0)), "en-AU voice": native(args.clips, random.Random(0))}
    if args.asterisk:
        for language in args.languages:
            sets[f"asterisk {language}"] = asterisk(args.asterisk, language, args.clips, random.Random(0))
    print(f"{'recognizer':10} {'context':7} {'set':16} {'clips':>5}  {'told: WER':>9} {'trusted':>7} {'RTF':>6}  "
          f"{'auto: WER':>9} {'named':>6} {'trusted':>7}")
    for spec in args.card:
        name, _, path = spec.partition("=")
        for context in [c for c in args.contexts if c == "full"] + [f"fit+{m:g}s" for m in args.margins if "fitted" in args.contexts]:
            if context != "full":
                recognizer_module.CONTEXT_MARGIN_SECONDS = float(context[4:-1])
            recognizer = load(Path(path), context != "full")
            for label, clips in sets.items():
                if not recognizer.languages and not label.endswith("(en)") and "en-AU" not in label:
                    continue  # an English-only model has nothing to say about other languages
                told = run(recognizer, clips, told=True)
                auto = run(recognizer, clips, told=False) if recognizer.languages else told
                print(f"{name:10} {context:7} {label:16} {len(clips):5}  {told['wer']:9.1%} {told['trusted']:7.0%} "
                      f"{told['rtf']:6.3f}  {auto['wer']:9.1%} {auto['named']:6.0%} {auto['trusted']:7.0%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
