"""How sure the recognizer must be before its words are used (recognizer.TRUST_LOGPROB).

    python models/recipe/tune_recognizer.py

Sweeps the threshold on the mean token log-probability over two development sets that the evaluation never
sees: learners of the training split (every 8th speaker from the 5th; the held-out speakers are every 8th
from the 1st) and espeak-ng readings in French, Italian, Dutch and Portuguese (the evaluation reads German and
Spanish). Prints, per threshold, the learners' figures in recognized mode and how many foreign readings had
their (invented) words used. Run after models/recipe/corpus.py.

The viseme model was trained on these learners, so its audio-only fallback is better here than on new
speakers, and stricter thresholds look better here than they are. The rule taken is therefore the least
strict threshold at which no foreign reading's words are used (-0.8 on the run that set it), not the best
learners' score.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "models"))
from corpus import SHARED, Espeak  # noqa: E402
from evaluate import _espeak_reading  # noqa: E402
from heldout_runs import posteriors_for  # noqa: E402
from labels import LabelledSet, Score  # noqa: E402

from addon.core.curves import CurveSettings  # noqa: E402
from addon.engine.client import Posteriors, WorkerClient  # noqa: E402
from addon.engine.model import find_model  # noqa: E402
from addon.engine.recognizer import trust  # noqa: E402
from addon.lipsync import animate_recognized, decoding_settings  # noqa: E402

FOREIGN_DEV = {
    "fr": ["Nous avons monté une marche de l'échelle.", "Mon père boit du café le matin.",
           "Le bateau part demain à midi.", "Bonjour, je m'appelle Pierre Martin.",
           "Il pleut beaucoup au mois de mai.", "Ma mère aime les pommes."],
    "it": ["Abbiamo salito un gradino della scala.", "Mio padre beve il caffè al mattino.",
           "La barca parte domani a mezzogiorno.", "Buongiorno, mi chiamo Paolo Bianchi.",
           "Piove molto nel mese di maggio.", "Mia madre ama le mele."],
    "nl": ["We zijn een sport van de ladder opgeklommen.", "Mijn vader drinkt 's morgens koffie.",
           "De boot vertrekt morgen om twaalf uur.", "Goedemorgen, mijn naam is Bram Peeters.",
           "Het regent veel in de maand mei.", "Mijn moeder houdt van appels."],
    "pt": ["Subimos um degrau da escada.", "O meu pai bebe café de manhã.", "O barco parte amanhã ao meio-dia.",
           "Bom dia, chamo-me Paulo Mendes.", "Chove muito no mês de maio.", "A minha mãe gosta de maçãs."],
}


def with_threshold(post: Posteriors, threshold: float) -> Posteriors:
    heard = tuple(dict(h, trusted=trust(h["text"], h["avg_logprob"], h["no_speech_prob"], h["compression_ratio"],
                                        threshold)) for h in post.heard)
    return replace(post, heard=heard)


def main() -> int:
    np.seterr(all="ignore")
    settings = decoding_settings(find_model().card, replace(CurveSettings(), lead_seconds=0.0))
    utt2spk = dict(line.split() for line in (SHARED / "speechocean762-train" / "utt2spk").read_text().splitlines()
                   if line.strip())
    dev_speakers = set(sorted(set(utt2spk.values()))[4::8])
    learners = LabelledSet(ROOT / "models" / ".cache" / "corpus" / "real_train.npz",
                           keep=lambda n: utt2spk[n] in dev_speakers)
    posts = posteriors_for(learners, recognize=True)
    espeak, foreign = Espeak(), []
    with WorkerClient(device="cpu") as worker:
        for lang, texts in FOREIGN_DEV.items():
            for text in texts:
                audio, _segments = _espeak_reading(espeak, text, lang)
                foreign.append((worker.infer(audio, recognize=True), len(audio) / 16000))
    print(f"{len(learners)} development learners' lines, {len(foreign)} foreign readings")
    print(f"{'threshold':>9} {'lines used':>10} {'15-vis':>7} {'6-class':>7} {'bil.rec':>7} {'bil.prec':>8} {'foreign used':>12}")
    for threshold in (-1.0, -0.9, -0.8, -0.7, -0.6, -0.5):
        score, used = Score(), 0
        for i, post in enumerate(posts):
            result = animate_recognized(with_threshold(post, threshold), len(learners.audio[i]) / 16000, 100.0, settings)
            used += sum(bool(h["used"]) for h in result.heard)
            score.add(result.animation.frames.argmax(axis=1), learners.visemes[i], learners.segments[i])
        invented = sum(bool(h["used"]) for post, seconds in foreign
                       for h in animate_recognized(with_threshold(post, threshold), seconds, 100.0, settings).heard)
        s = score.summary()
        print(f"{threshold:9.1f} {used:10d} {s['viseme15_frame_accuracy']:7.1%} {s['mouth6_frame_accuracy']:7.1%} "
              f"{s['bilabial_recall']:7.3f} {s['bilabial_precision']:8.3f} {invented:12d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
