"""Lip-sync file formats: Oris JSON and TSV, Rhubarb Lip Sync JSON/TSV, Moho/Papagayo .dat.

Each writer has a reader, so files round-trip and existing Rhubarb or Papagayo timings
can be brought into Oris.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .curves import Animation, Cue, merge_adjacent
from .visemes import VISEME_INDEX, VISEMES

FORMATS = ("json", "tsv", "rhubarb-json", "rhubarb-tsv", "dat")
SCHEMA_VERSION = 1
DEFAULT_FPS = 100.0  # per-frame weights: fine enough to resample to any project rate
DAT_FPS = 24.0  # Moho's and Papagayo's own default: their switch files count frames at the project's rate


def default_fps(fmt: str) -> float:
    """The frame rate a format is written at when --fps is not given."""
    return DAT_FPS if fmt == "dat" else DEFAULT_FPS

# Rhubarb's mouth shapes: A closed (p b m), B clenched teeth (most consonants, "ee"),
# C open (eh, ae), D wide open (aa), E slightly rounded (ao, er), F puckered (uw, ow, w),
# G upper teeth on lower lip (f v), H tongue raised (long l), X rest.
VISEME_TO_RHUBARB = {
    "sil": "X", "PP": "A", "FF": "G", "TH": "B", "DD": "B", "kk": "B", "CH": "B", "SS": "B", "nn": "H",
    "RR": "E", "aa": "D", "E": "C", "ih": "B", "oh": "E", "ou": "F",
}
RHUBARB_TO_VISEME = {"X": "sil", "A": "PP", "B": "SS", "C": "E", "D": "aa", "E": "oh", "F": "ou", "G": "FF", "H": "nn"}

# Preston Blair / Papagayo phoneme set used by Moho switch layers.
VISEME_TO_MOHO = {
    "sil": "rest", "PP": "MBP", "FF": "FV", "TH": "etc", "DD": "etc", "kk": "etc", "CH": "etc", "SS": "etc",
    "nn": "L", "RR": "E", "aa": "AI", "E": "E", "ih": "E", "oh": "O", "ou": "U",
}
MOHO_TO_VISEME = {"rest": "sil", "MBP": "PP", "FV": "FF", "etc": "DD", "L": "nn", "E": "E", "AI": "aa",
                  "O": "oh", "U": "ou", "WQ": "ou"}


def _mapped_cues(cues: list[Cue], table: dict[str, str]) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    for c in cues:
        shape = table[c.name]
        if out and out[-1][2] == shape:
            out[-1] = (out[-1][0], c.end, shape)
        else:
            out.append((c.start, c.end, shape))
    return out


def to_json(anim: Animation, audio: str, extra: dict[str, Any] | None = None, decimals: int = 4) -> str:
    doc: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "audio": audio,
        "duration": round(anim.duration, 6),
        "fps": anim.fps,
        "visemes": list(VISEMES),
        "frames": np.round(anim.frames.astype(np.float64), decimals).tolist(),
        "cues": [{"start": round(c.start, 4), "end": round(c.end, 4), "viseme": c.name} for c in anim.cues],
    }
    doc.update(extra or {})
    return json.dumps(doc, separators=(",", ":")) + "\n"


def to_tsv(anim: Animation, decimals: int = 4) -> str:
    lines = ["time\t" + "\t".join(VISEMES)]
    for k, row in enumerate(anim.frames):
        lines.append(f"{k / anim.fps:.4f}\t" + "\t".join(f"{w:.{decimals}f}" for w in row))
    return "\n".join(lines) + "\n"


def to_rhubarb_json(anim: Animation, audio: str) -> str:
    cues = _mapped_cues(anim.cues, VISEME_TO_RHUBARB)
    doc = {"metadata": {"soundFile": audio, "duration": round(anim.duration, 2)},
           "mouthCues": [{"start": round(s, 2), "end": round(e, 2), "value": v} for s, e, v in cues]}
    return json.dumps(doc, indent=2) + "\n"


def to_rhubarb_tsv(anim: Animation) -> str:
    cues = _mapped_cues(anim.cues, VISEME_TO_RHUBARB)
    lines = [f"{s:.2f}\t{v}" for s, _e, v in cues]
    lines.append(f"{anim.duration:.2f}\tX")  # Rhubarb ends with the rest shape at the end time
    return "\n".join(lines) + "\n"


def to_moho_dat(anim: Animation) -> str:
    """Moho switch data: 1-based frame numbers at the animation's fps."""
    lines = ["MohoSwitch1"]
    last_frame = 0
    for s, _e, v in _mapped_cues(anim.cues, VISEME_TO_MOHO):
        frame = max(last_frame + 1, int(math.floor(s * anim.fps + 0.5)) + 1)
        if lines[-1:] and lines[-1].split(" ")[0] == str(frame):
            lines[-1] = f"{frame} {v}"
        else:
            lines.append(f"{frame} {v}")
        last_frame = frame
    return "\n".join(lines) + "\n"


def render(fmt: str, anim: Animation, audio: str, extra: dict[str, Any] | None = None) -> str:
    if fmt == "json":
        return to_json(anim, audio, extra)
    if fmt == "tsv":
        return to_tsv(anim)
    if fmt == "rhubarb-json":
        return to_rhubarb_json(anim, audio)
    if fmt == "rhubarb-tsv":
        return to_rhubarb_tsv(anim)
    if fmt == "dat":
        return to_moho_dat(anim)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# -- readers -------------------------------------------------------------


class FormatError(ValueError):
    pass


def read_cues(text: str, fmt: str, fps: float | None = None) -> list[Cue]:
    """Cues from any supported format (frame-based formats need `fps`)."""
    if fmt == "json":
        doc = json.loads(text)
        if doc.get("version") != SCHEMA_VERSION:
            raise FormatError(f"unsupported Oris JSON version {doc.get('version')!r}")
        return [Cue(c["start"], c["end"], VISEME_INDEX[c["viseme"]]) for c in doc["cues"]]
    if fmt == "rhubarb-json":
        doc = json.loads(text)
        return merge_adjacent([Cue(c["start"], c["end"], VISEME_INDEX[RHUBARB_TO_VISEME[c["value"]]])
                               for c in doc["mouthCues"]])
    if fmt == "rhubarb-tsv":
        rows = [line.split("\t") for line in text.splitlines() if line.strip()]
        points = [(float(t), RHUBARB_TO_VISEME[v.strip()]) for t, v in rows]
        return merge_adjacent([Cue(points[i][0], points[i + 1][0], VISEME_INDEX[points[i][1]])
                               for i in range(len(points) - 1)])
    if fmt == "dat":
        lines = [ln.split() for ln in text.splitlines() if ln.strip()]
        if not lines or lines[0] != ["MohoSwitch1"]:
            raise FormatError("not a Moho switch file (first line must be MohoSwitch1)")
        if not fps:
            raise FormatError("reading a .dat needs the frame rate")
        points = [((int(f) - 1) / fps, MOHO_TO_VISEME[v]) for f, v in lines[1:]]
        end = points[-1][0] + 1.0 / fps
        return merge_adjacent([Cue(points[i][0], points[i + 1][0] if i + 1 < len(points) else end,
                                   VISEME_INDEX[points[i][1]]) for i in range(len(points))])
    raise FormatError(f"cannot read cues from format {fmt!r}")


def read_tsv_frames(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(times, [frames, 15] weights) from an Oris TSV."""
    lines = text.splitlines()
    header = lines[0].split("\t")
    if header[1:] != list(VISEMES):
        raise FormatError("TSV header does not list the 15 visemes in Oris order")
    table = np.array([[float(x) for x in ln.split("\t")] for ln in lines[1:] if ln.strip()])
    return table[:, 0], table[:, 1:]
