"""Tune the decoding constants (closure threshold, switching cost, shortest shape, transcript mismatch gap)
on the development learners and native prompts that training held back, and store them in the model card.
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
from corpus import native_role  # noqa: E402
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
    ap.add_argument("--learners-only", action="store_true",
                    help="tune on the development learners alone: for a model whose training heard every prompt")
    args = ap.parse_args(argv)
    dev_speakers = set(json.loads(args.dev_speakers.read_text()))
    spk = dict(line.split() for line in (SHARED / "speechocean762-train" / "utt2spk").read_text().splitlines() if line.strip())
    card = json.loads(args.card.read_text())
    left_out = set(card.get("training", {}).get("voices_left_out", []))
    sets = {"learners": LabelledSet(args.corpus / "real_train.npz", keep=lambda n: spk[n] in dev_speakers)}
    if (args.corpus / "native_train.npz").exists() and not args.learners_only:
        sets["native"] = LabelledSet(args.corpus / "native_train.npz",
                                     keep=lambda n: native_role(n, left_out) == "dev")
    posts = {name: posteriors_for(ds, str(args.card.with_suffix(".onnx"))) for name, ds in sets.items()}
    print("tuning on " + ", ".join(f"{len(ds)} {name}" for name, ds in sets.items()) + " development utterances")

    def decode(name: str, settings: CurveSettings) -> tuple[dict, float]:
        """Scores of one dev set, and how often its animation changes shape per second."""
        ds, score, changes = sets[name], Score(), 0
        for i, post in enumerate(posts[name]):
            shapes = animate_posteriors(post, len(ds.audio[i]) / 16000, 100.0, settings).animation.frames.argmax(axis=1)
            score.add(shapes, ds.visemes[i], ds.segments[i])
            changes += int((np.diff(shapes) != 0).sum())
        return score.summary(), changes / (sum(len(a) for a in ds.audio) / 16000)

    # The speech's own rate of change of viseme: the animation may not change shape more often (no flicker).
    speech_rate = {name: sum(int((np.diff(v) != 0).sum()) for v in ds.visemes) / (sum(len(v) for v in ds.visemes) / 100)
                   for name, ds in sets.items()}
    base = CurveSettings(lead_seconds=0.0)
    results = []
    for threshold, switch, shortest in itertools.product((0.15, 0.2, 0.25, 0.3, 0.4), (0.5, 1.0, 2.0, 4.0),
                                                         (0.03, 0.05, 0.07)):
        settings = replace(base, closure_threshold=threshold, switch_cost=switch, min_seconds=shortest)
        decoded = {name: decode(name, settings) for name in sets}
        # every dev set counts alike: learners' speech and fluent native speech
        s = {key: round(float(np.mean([d[0][key] for d in decoded.values()])), 4)
             for key in ("viseme15_frame_accuracy", "mouth6_frame_accuracy", "bilabial_recall", "bilabial_precision")}
        calm = all(decoded[name][1] <= speech_rate[name] for name in sets)
        results.append((threshold, switch, shortest, s, calm, {name: d[0] for name, d in decoded.items()}))
        print(f"  threshold {threshold:.2f} switch {switch:.1f} shortest {shortest:.2f}: {s}"
              + ("" if calm else " (changes shape more often than the speech)"))
    results = [r for r in results if r[4]] or results
    # The threshold stops at 0.4: above it closure F1 rises on the dev sets, but by dropping closures of clean
    # speech (at 0.6 audio alone found 2 closures in the demo's 20 s line, where its transcript has 9); a missed
    # closure shows more than an extra one.
    # The most accurate setting that keeps closures reliable (recall >= 0.93, precision >= 0.85);
    # failing that, the best closure F1: missed closures and spurious ones both show on screen.
    ok = [r for r in results if r[3]["bilabial_recall"] >= 0.93 and r[3]["bilabial_precision"] >= 0.85]

    def closure_f1(r: tuple) -> float:
        rec, prec = r[3]["bilabial_recall"], r[3]["bilabial_precision"]
        return 2 * rec * prec / max(rec + prec, 1e-9)

    if ok:
        best = max(ok, key=lambda r: r[3]["viseme15_frame_accuracy"])
    else:
        best = max(results, key=lambda r: (round(closure_f1(r), 3), r[3]["viseme15_frame_accuracy"]))

    # Transcript mismatch: gaps of the right transcripts against those of another utterance's.
    right, wrong = [], []
    for name, ds in sets.items():
        for i, post in enumerate(posts[name]):
            for text, bucket in ((ds.texts[i], right), (ds.texts[(i + 7) % len(ds)], wrong)):
                try:
                    a = align_transcript(Transcript(text), post.phones, 100.0)
                    bucket.append((a.gap, a.agreement))
                except AlignmentError:
                    continue
    # Calibrated on the right transcripts only: 99% of them pass on the gap, 98% on agreement.
    right_gap, right_agr = np.array([x[0] for x in right]), np.array([x[1] for x in right])
    wrong_gap, wrong_agr = np.array([x[0] for x in wrong]), np.array([x[1] for x in wrong])
    mismatch_gap = round(float(np.percentile(right_gap, 99)) + 0.05, 3)
    mismatch_agreement = round(float(np.percentile(right_agr, 2)), 3)
    flagged_wrong = float(np.mean((wrong_gap > mismatch_gap) | (wrong_agr < mismatch_agreement)))
    flagged_right = float(np.mean((right_gap > mismatch_gap) | (right_agr < mismatch_agreement)))
    print(f"mismatch: gap > {mismatch_gap} or agreement < {mismatch_agreement}: flags {flagged_wrong:.0%} of wrong "
          f"and {flagged_right:.0%} of right transcripts")

    tuned_on = [f"{len(dev_speakers)} development speakers' {len(sets['learners'])} utterances (training split)"]
    if "native" in sets:
        tuned_on.append(f"{len(sets['native'])} development prompts of the training voices (one in ten, kept from training)")
    card["decoding"] = {"closure_threshold": best[0], "switch_cost": best[1], "min_seconds": best[2],
                        "mismatch_gap": mismatch_gap, "mismatch_agreement": mismatch_agreement,
                        "right_transcripts_flagged": round(flagged_right, 3), "tuned_on": "; ".join(tuned_on),
                        "dev_scores": best[5], "wrong_transcripts_flagged": round(flagged_wrong, 3)}
    args.card.write_text(json.dumps(card, indent=2) + "\n")
    print(f"chose closure_threshold {best[0]}, switch_cost {best[1]}, min_seconds {best[2]}: {best[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
