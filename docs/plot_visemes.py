"""Render what the engine made for the README: viseme weights over time, with word timings.

    python docs/plot_visemes.py demo_visemes.json docs/demo_visemes.png     (needs matplotlib)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(src: str, dst: str, seconds: float = 8.0) -> None:
    doc = json.load(open(src))
    frames = np.array(doc["frames"])
    fps = doc["fps"]
    n = min(len(frames), int(seconds * fps) + 1)
    t = np.arange(n) / fps
    fig, (ax, ax_words) = plt.subplots(2, 1, figsize=(12, 5.2), sharex=True, gridspec_kw={"height_ratios": [6, 1]})
    ax.imshow(frames[:n, 1:].T, aspect="auto", origin="lower", cmap="magma", extent=(0, t[-1], -0.5, 13.5),
              interpolation="nearest", vmin=0, vmax=1)
    ax.set_yticks(range(14), doc["visemes"][1:])
    ax.set_title(f"Oris visemes for {Path(doc['audio']).name} ({doc['mode']} mode, {fps:g} fps, lead {doc['lead_ms']:g} ms)")
    for w in doc.get("words", []):
        if w["start"] > t[-1]:
            break
        ax_words.axvspan(w["start"], min(w["end"], t[-1]), color="#ddd", ec="#999")
        ax_words.text((w["start"] + min(w["end"], t[-1])) / 2, 0.5, w["word"], ha="center", va="center", fontsize=9)
    ax_words.set_yticks([])
    ax_words.set_xlabel("seconds (words as aligned to the audio; shapes lead them)")
    fig.tight_layout()
    fig.savefig(dst, dpi=90)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
