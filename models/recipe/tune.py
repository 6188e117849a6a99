"""Tune the decoding constants (closure threshold, switching cost, transcript mismatch gap)
on the development speakers that training held back, and store them in the model card.
Never looks at the evaluation sets."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from heldout_runs import posteriors_for  # noqa: E402
from labels import LabelledSet, Score  # noqa: E402

from addon.core.align import AlignmentError, Transcript, align_transcript  # noqa: E402
from addon.core.curves import CurveSettings  # noqa: E402
from addon.lipsync import animate_posteriors  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "models" / ".cache" / "corpus")
    ap.add_argument("--dev-speakers", type=Path, default=ROOT / "models" / ".cache" / "train" / "dev_speakers.json")
    ap.add_argument("--card", type=Path, default=ROOT / "models" / "oris_visemes.json")
    args = ap.parse_args(argv)
    dev_speakers = set(json.loads(args.dev_speakers.read_text()))
    spk = dict(line.split() for line in (SHARED / "speechocean762-train" / "utt2spk").read_text().splitlines() if line.strip())
    dev = LabelledSet(args.corpus / "real_train.npz", keep=lambda n: spk[n] in dev_speakers)
    posts = posteriors_for(dev)
    print(f"tuning on {len(dev)} development utterances")

    base = CurveSettings(lead_seconds=0.0)
    results = []
    for threshold, switch in itertools.product((0.1, 0.15, 0.2, 0.25, 0.3, 0.4), (0.5, 1.0, 2.0, 3.0, 4.0)):
        settings = replace(base, closure_threshold=threshold, switch_cost=switch)
        score = Score()
        for i, post in enumerate(posts):
            anim = animate_posteriors(post, len(dev.audio[i]) / 16000, 100.0, settings).animation
            score.add(anim.frames.argmax(axis=1), dev.visemes[i], dev.segments[i])
        s = score.summary()
        results.append((threshold, switch, s))
        print(f"  threshold {threshold:.2f} switch {switch:.1f}: {s}")
    # The most accurate setting that keeps closures reliable (recall >= 0.93, precision >= 0.85);
    # failing that, the best closure F1: missed closures and spurious ones both show on screen.
    ok = [r for r in results if r[2]["bilabial_recall"] >= 0.93 and r[2]["bilabial_precision"] >= 0.85]

    def closure_f1(r: tuple) -> float:
        rec, prec = r[2]["bilabial_recall"], r[2]["bilabial_precision"]
        return 2 * rec * prec / max(rec + prec, 1e-9)

    if ok:
        best = max(ok, key=lambda r: r[2]["viseme15_frame_accuracy"])
    else:
        best = max(results, key=lambda r: (round(closure_f1(r), 3), r[2]["viseme15_frame_accuracy"]))

    # Transcript mismatch: gaps of the right transcripts against those of another utterance's.
    right, wrong = [], []
    for i, post in enumerate(posts):
        for text, bucket in ((dev.texts[i], right), (dev.texts[(i + 7) % len(dev)], wrong)):
            try:
                a = align_transcript(Transcript(text), post.phones, 100.0)
                bucket.append((a.gap, a.agreement))
            except AlignmentError:
                continue
    for k, name in ((1, "agreement"),):
        r, w = [x[k] for x in right], [x[k] for x in wrong]
        print(f"  {name}: right p1 {np.percentile(r, 1):.3f} p50 {np.percentile(r, 50):.3f}; wrong p50 {np.percentile(w, 50):.3f} p90 {np.percentile(w, 90):.3f}")
    right = [x[0] for x in right]
    wrong = [x[0] for x in wrong]
    right_hi = float(np.percentile(right, 99)) if right else 1.0
    wrong_lo = float(np.percentile(wrong, 10)) if wrong else right_hi + 1.0
    mismatch_gap = round(max(right_hi + 0.1, (right_hi + wrong_lo) / 2), 3)
    print(f"alignment gap: right transcripts p99 {right_hi:.3f}, wrong transcripts p10 {wrong_lo:.3f} -> {mismatch_gap}")
    flagged_wrong = float(np.mean(np.array(wrong) > mismatch_gap)) if wrong else 0.0
    print(f"  {flagged_wrong:.0%} of wrong transcripts are flagged at that gap")

    card = json.loads(args.card.read_text())
    card["decoding"] = {"closure_threshold": best[0], "switch_cost": best[1], "mismatch_gap": mismatch_gap,
                        "tuned_on": f"{len(dev)} utterances of {len(dev_speakers)} development speakers (training split)",
                        "dev_scores": best[2], "wrong_transcripts_flagged": round(flagged_wrong, 3)}
    args.card.write_text(json.dumps(card, indent=2) + "\n")
    print(f"chose closure_threshold {best[0]}, switch_cost {best[1]}: {best[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
