"""How well the mismatch thresholds for scripts in other languages (core.languages.OTHER_LANGUAGE_MISMATCH) tell a
line's own script from another line's, on real prompt voices.

    apt-get download asterisk-core-sounds-fr asterisk-core-sounds-fr-wav   # and -es, -it, -ru
    for f in *.deb; do dpkg -x "$f" x; done
    python models/recipe/language_thresholds.py x fr es it ru [--prompts 80]

Each prompt of a voice (at least two words, audio present) is aligned with its own script and with the next
prompt's script (prompts shuffled with a fixed seed); it prints, per language, how many right scripts the
thresholds keep and how many wrong ones they refuse, and the gap and agreement percentiles of both.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from addon.core.align import AlignmentError, Transcript, align_transcript  # noqa: E402
from addon.core.audio import decode_file  # noqa: E402
from addon.core.languages import OTHER_LANGUAGE_MISMATCH  # noqa: E402
from addon.engine.client import WorkerClient  # noqa: E402


def prompts(root: Path, language: str) -> tuple[Path, dict[str, str]]:
    """The voice's folder and its prompts (name -> script) from the package's core-sounds-<lang>.txt."""
    listing = root / "usr" / "share" / "doc" / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
    (folder,) = [p for p in (root / "usr" / "share" / "asterisk" / "sounds").iterdir() if p.name.startswith(language)]
    found = {}
    with gzip.open(listing, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            text = text.strip().strip("“”\"")
            if sep and not line.startswith(";") and len(text.split()) >= 2 and (folder / f"{name.strip()}.wav").exists():
                found[name.strip()] = text
    return folder, found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="the folder the packages were unpacked into")
    ap.add_argument("languages", nargs="+")
    ap.add_argument("--prompts", type=int, default=80)
    args = ap.parse_args()
    gap_limit, agreement_limit = OTHER_LANGUAGE_MISMATCH
    print(f"thresholds: gap <= {gap_limit}, agreement >= {agreement_limit}")
    with WorkerClient(device="cpu") as worker:
        for language in args.languages:
            folder, scripts = prompts(args.root, language)
            names = sorted(scripts)
            random.Random(1).shuffle(names)
            names = names[:args.prompts]
            scores: dict[str, list[tuple[float, float]]] = {"own": [], "other": []}
            for name, other in zip(names, names[1:] + names[:1]):
                posteriors = worker.infer(decode_file(str(folder / f"{name}.wav")).samples)
                for kind, text in (("own", scripts[name]), ("other", scripts[other])):
                    try:
                        aligned = align_transcript(Transcript(text, language), posteriors.phones, posteriors.frame_rate)
                    except AlignmentError:  # more sounds than the audio holds: refused whatever the thresholds
                        scores[kind].append((float("inf"), 0.0))
                        continue
                    scores[kind].append((aligned.gap, aligned.agreement))
            kept = sum(g <= gap_limit and a >= agreement_limit for g, a in scores["own"])
            refused = sum(g > gap_limit or a < agreement_limit for g, a in scores["other"])
            print(f"{language}: own script kept {kept}/{len(scores['own'])} ({kept / len(scores['own']):.0%}), "
                  f"another prompt's refused {refused}/{len(scores['other'])} ({refused / len(scores['other']):.0%})")
            for kind, values in scores.items():
                gaps = np.array([g for g, _a in values if np.isfinite(g)])
                agreements = np.array([a for g, a in values if np.isfinite(g)])
                print(f"  {kind:5s} gap p10/50/90 {np.percentile(gaps, [10, 50, 90]).round(2)}, agreement "
                      f"p10/50/90 {np.percentile(agreements, [10, 50, 90]).round(2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
