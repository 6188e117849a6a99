"""How well espeak-ng's phone times (as corpus.py labels them) agree with pocketsphinx's forced alignment
of the same audio, beside flite's exact times on the same prompts: the check behind ESPEAK_EVENT_LAG.

    python models/recipe/espeak_timing.py [--prompts 60]

Prints the 100 Hz viseme-frame agreement with the labels shifted by -15..+15 ms; the labels are
right when the agreement peaks unshifted. Needs espeak-ng, flite and pocketsphinx.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import corpus  # noqa: E402

from addon.core.align import pronounce  # noqa: E402
from addon.core.visemes import phones_to_visemes  # noqa: E402

SHIFTS = (-0.015, -0.01, -0.005, 0.0, 0.005, 0.01, 0.015)


def frame_visemes(segments: list[tuple[float, float, str]], frames: int, shift: float) -> list[str]:
    phones = ["sil"] * frames
    for start, end, phone in segments:
        for f in range(max(0, int(round((start + shift) * 100))), min(frames, int(round((end + shift) * 100)))):
            phones[f] = phone
    return phones_to_visemes(phones)


def agreement(utts: list[corpus.Utterance]) -> dict[float, float]:
    hits, total = dict.fromkeys(SHIFTS, 0), 0
    for u in utts:
        aligned = corpus.force_align(u.audio, " ".join(w.lower() for w, _ in pronounce(u.text)[0]))
        if aligned is None:
            continue
        frames = len(u.audio) // 160
        reference = frame_visemes(aligned, frames, 0.0)
        total += frames
        for s in SHIFTS:
            hits[s] += sum(a == b for a, b in zip(frame_visemes(u.segments, frames, s), reference))
    return {s: hits[s] / max(total, 1) for s in SHIFTS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=60)
    args = ap.parse_args(argv)
    prompts = corpus.read_prompts(corpus.SHARED / "text" / "cmuarctic.data")[: -corpus.HELDOUT_PROMPTS]
    prompts = prompts[:: max(1, len(prompts) // args.prompts)][: args.prompts]
    corpus._aligner_init(str(corpus.SHARED / "speechocean762-train" / "lexicon.txt"))
    espeak = corpus.synth_espeak(corpus.espeak_jobs(prompts, 1, 0, 1)[0])
    flite = [u for u in (corpus.synth_flite((n, t, "slt", 1.0, 180.0)) for n, t in prompts) if u is not None]
    print("shift of the labels (ms)      " + " ".join(f"{s * 1000:+6.0f}" for s in SHIFTS))
    for name, utts in (("espeak-ng (as labelled)", espeak), ("flite slt (exact)", flite)):
        a = agreement(utts)
        print(f"{name:24} {len(utts):4d} " + " ".join(f"{a[s]:6.3f}" for s in SHIFTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
