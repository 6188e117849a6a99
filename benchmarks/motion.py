"""How well Oris's mouth motion follows real lips (issue 27, item 6 "Measured on real faces"). Needs the bpy module.

    python benchmarks/motion.py [--grid DIR] [--mode recognized|audio|both] [--lead-ms MS ...]
                                [--json OUT] [--plot CLIP [--png docs/motion/CLIP.png]]

Data: the GRID clips in ../shared/data/grid (beside the repository; --grid to point elsewhere): `<clip>.wav`
(16 kHz mono, time 0 = the first video frame) and `<clip>_lips.csv`, the inner-lip opening measured on every
video frame (25 fps) with MediaPipe Face Mesh, `aperture_over_io` (opening / distance between the eyes).

Per clip, the real pipeline lip-syncs the clip's audio onto one shared head (demo/heads/mh_talkinghead_head.blend,
object MakeHuman_head, reopened fresh for every clip) in a 25 fps scene from frame 1, so that frame f shows
time (f - 1) / 25 s, the time of video frame f - 1. One worker serves every clip. Modes: `recognized` (Oris's
default: the recognizer supplies the words) and `audio` (recognize=False).

The head's lip gap: two vertices picked once from the mesh (lip_vertices): on the head's midline (within 1% of
its width of the centre plane), on its largest connected piece of mesh (the skin, not teeth, tongue or eyes),
the lower one is the highest vertex that `jawOpen` (else `viseme_aa`) moves down by at least half as much as it
moves any midline vertex (the lower lip's edge), the upper one the vertex nearest to it, above it, that the key
moves down by less than half as much (the upper lip's edge). The gap on a frame is the world-vertical distance
between the two on the evaluated mesh (scene.frame_set, then the evaluated object), signed: below 0 the lips press.

Metrics, per clip on the frames where MediaPipe found the face, each against the measured aperture_over_io:
  r        Pearson correlation at zero lag, over the whole clip.
  lag_ms   the lag in [-200, +200] ms (5 ms steps; the animation linearly interpolated between frames and held at
           its ends) that maximizes r; positive = the animation is late (it shows a mouth shape after the video
           does).
  closure  among speech frames, the share of the real mouth's most-closed 20% of frames where the animation's gap
           is also in its most-closed 20% (ties shared out at random, in expectation; chance = 0.20). Speech frames:
           from 2 frames before the first to 2 frames after the last frame whose audio level (RMS, 40 ms window
           centred on the frame) is at least max(peak - 30 dB, noise floor + 10 dB), the noise floor being the
           clip's 10th percentile level, in runs of 3 frames or more (the 2 frames catch a first word's silent
           lip closure, as in "bin" or "place").
  jerk     RMS of the third difference of the z-scored gap / the same of the z-scored real aperture (1 = the same
           jumpiness; the real aperture includes the tracker's frame-to-frame noise).
The floor: the same metrics for the audio's loudness (RMS in dB per video frame, 40 ms window) used as the gap.
A ceiling for closure ("lips, 1 px"): the measured lips themselves, read as a viewer sees them, with openings under
one pixel as touching (aperture_px - 1, floored at 0). Closed lips measure 0.00-0.2 px apart, so which of them are
"most closed" is the tracker's noise: even the real lips, blind to it, agree only this far (r and jerk of that row
are not a target).
The mean rows average the clips' r, closure and jerk; their lag_ms is the lag that maximizes the clips' mean r(lag)
(one lag for all clips, robust where a short clip's own r(lag) has two peaks), r@lag that maximum.
--fit: the measured lips regressed on the head's key values over all clips (each key's opening fitted in place of
the head's own), r in-sample and with each clip left out of its own fit: how far r could go with the same timing and
other shapes.
Targets (issue 27): r >= 0.65, closure >= 0.80, jerk 0.8 to 1.2, best lag within +-20 ms.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
GRID = REPO.parent / "shared" / "data" / "grid"
HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"
FACE = "MakeHuman_head"
FPS = 25
START_FRAME = 1
LAGS_MS = np.arange(-200, 201, 5)
CLOSED_SHARE = 0.2
TRACKER_PX = 1.0  # the lips' opening is read in whole pixels at best: below one pixel they touch
TARGETS = "r >= 0.65, closure >= 0.80, jerk 0.8..1.2, |lag| <= 20 ms"


@dataclass
class Clip:
    name: str
    wav: Path
    times: np.ndarray  # video frame times, s
    face: np.ndarray  # bool, MediaPipe found the face
    aperture: np.ndarray  # aperture_over_io
    sharp: np.ndarray  # the same, blind below TRACKER_PX: lips nearer than that are read as touching
    loudness: np.ndarray  # dB per video frame
    speech: np.ndarray  # bool, inside the speech span
    span: tuple[int, int]  # first and last speech frame (video frame numbers)


@dataclass
class Scores:
    r: float
    r_speech: float  # r over the speech frames only (not in the table)
    lag_ms: float
    r_at_lag: float
    closure: float
    jerk: float
    r_by_lag: list[float] = field(repr=False)


# -- data -----------------------------------------------------------------------------------------------------------

def load_clips(grid: Path) -> list[Clip]:
    if not grid.is_dir():
        raise SystemExit(f"motion: the GRID clips are not at {grid} (expected <clip>.wav and <clip>_lips.csv there, "
                         "see ../shared/data/grid/README.md); pass --grid DIR")
    clips = []
    for lips in sorted(grid.glob("*_lips.csv")):
        name = lips.name[: -len("_lips.csv")]
        wav = grid / f"{name}.wav"
        if not wav.is_file():
            raise SystemExit(f"motion: {lips} has no audio {wav}")
        with open(lips, newline="") as f:
            rows = list(csv.DictReader(f))
        times = np.array([float(r["time_s"]) for r in rows])
        face = np.array([r["face"].strip() == "1" for r in rows])
        aperture = np.array([float(r["aperture_over_io"]) if r["face"].strip() == "1" else np.nan for r in rows])
        px = np.array([float(r["aperture_px"]) if r["face"].strip() == "1" else np.nan for r in rows])
        eyes = np.array([float(r["interocular_px"]) if r["face"].strip() == "1" else np.nan for r in rows])
        sharp = np.maximum(px - TRACKER_PX, 0.0) / eyes
        loud = loudness(wav, times)
        speech, span = speech_frames(loud)
        clips.append(Clip(name, wav, times, face, aperture, sharp, loud, speech, span))
    if not clips:
        raise SystemExit(f"motion: no <clip>_lips.csv in {grid}")
    return clips


def loudness(wav: Path, times: np.ndarray, window: float = 0.04) -> np.ndarray:
    audio, rate = sf.read(wav, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    half = int(round(window * rate / 2))
    db = np.empty(len(times))
    for i, t in enumerate(times):
        c = int(round(t * rate))
        seg = audio[max(0, c - half): max(0, c + half)]
        db[i] = 20 * np.log10(np.sqrt(np.mean(seg**2)) + 1e-9) if len(seg) else -180.0
    return np.maximum(db, db.max() - 60.0)


def speech_frames(db: np.ndarray, pad: int = 2, min_run: int = 3) -> tuple[np.ndarray, tuple[int, int]]:
    threshold = max(db.max() - 30.0, np.percentile(db, 10) + 10.0)
    loud = np.flatnonzero(db >= threshold)
    runs = [r for r in np.split(loud, np.flatnonzero(np.diff(loud) > 1) + 1) if len(r) >= min_run]
    runs = runs or [loud]
    first, last = max(0, int(runs[0][0]) - pad), min(len(db) - 1, int(runs[-1][-1]) + pad)
    speech = np.zeros(len(db), bool)
    speech[first: last + 1] = True
    return speech, (first, last)


# -- metrics --------------------------------------------------------------------------------------------------------

def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x - x.mean()


def lowest_share(x: np.ndarray, share: float) -> np.ndarray:
    """Each frame's chance to be among the `share` lowest values when ties are broken at random."""
    k = int(round(share * len(x)))
    x = np.round((x - x.min()) / (np.ptp(x) or 1.0), 6)  # values equal to a millionth of the range are ties
    if k == 0:
        return np.zeros(len(x))
    v = np.sort(x)[k - 1]
    below, tied = x < v, x == v
    p = below.astype(float)
    p[tied] = (k - below.sum()) / tied.sum()
    return p


def runs_of(mask: np.ndarray) -> list[np.ndarray]:
    idx = np.flatnonzero(mask)
    return [r for r in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(r)]


def jerkiness(z: np.ndarray, mask: np.ndarray) -> float:
    """RMS of the third difference over runs of consecutive frames (a lost face breaks a run)."""
    d3 = [np.diff(z[r], 3) for r in runs_of(mask) if len(r) > 3]
    d3 = np.concatenate(d3) if d3 else np.zeros(1)
    return float(np.sqrt(np.mean(d3**2)))


def score(clip: Clip, signal: np.ndarray) -> Scores:
    """`signal`: the gap (or loudness) on every video frame; compared with the measured aperture."""
    ok = clip.face & np.isfinite(signal)
    real = clip.aperture[ok]
    r0 = pearson(real, signal[ok])
    by_lag = [pearson(real, np.interp(clip.times + lag / 1000.0, clip.times, signal)[ok]) for lag in LAGS_MS]
    best = int(np.argmax(by_lag))
    in_speech = ok & clip.speech
    p_real = lowest_share(clip.aperture[in_speech], CLOSED_SHARE)
    p_sig = lowest_share(signal[in_speech], CLOSED_SHARE)
    closure = float((p_real * p_sig).sum() / p_real.sum()) if p_real.sum() else float("nan")
    z_real, z_sig = np.zeros(len(ok)), np.zeros(len(ok))
    z_real[ok], z_sig[ok] = zscore(real), zscore(signal[ok])
    jerk_real = jerkiness(z_real, ok)
    jerk = jerkiness(z_sig, ok) / jerk_real if jerk_real > 0 else float("nan")
    r_speech = pearson(clip.aperture[in_speech], signal[in_speech])
    return Scores(r0, r_speech, float(LAGS_MS[best]), float(by_lag[best]), closure, jerk, [float(x) for x in by_lag])


# -- Blender --------------------------------------------------------------------------------------------------------

def open_head() -> tuple[Any, Any]:
    import bpy

    from oris.blender.files import open_blend

    open_blend(HEAD)  # Blender's own notes on loading (region warnings, the file's newer version) kept quiet
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    face = bpy.data.objects.get(FACE)
    if face is None:
        raise SystemExit(f"motion: {HEAD} has no object {FACE!r}")
    return scene, face


def key_coords(face: Any, name: str) -> np.ndarray:
    block = face.data.shape_keys.key_blocks[name]
    co = np.empty(len(block.data) * 3, np.float64)
    block.data.foreach_get("co", co)
    co = co.reshape(-1, 3)
    m = np.array(face.matrix_world)
    return co @ m[:3, :3].T + m[:3, 3]


def largest_piece(mesh: Any) -> np.ndarray:
    edges = np.empty(len(mesh.edges) * 2, np.int64)
    mesh.edges.foreach_get("vertices", edges)
    parent = np.arange(len(mesh.vertices))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for a, b in edges.reshape(-1, 2):
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[ra] = rb
    roots = np.array([root(i) for i in range(len(parent))])
    return roots == np.bincount(roots).argmax()


def lip_vertices(face: Any) -> dict[str, Any]:
    """The upper and lower lip's edge vertices at the mouth's centre (see the module's docstring)."""
    blocks = face.data.shape_keys.key_blocks
    opener = next((k for k in ("jawOpen", "viseme_aa") if k in blocks), None)
    if opener is None:
        raise SystemExit(f"motion: {FACE} has neither jawOpen nor viseme_aa")
    rest = key_coords(face, face.data.shape_keys.reference_key.name)
    dz = key_coords(face, opener)[:, 2] - rest[:, 2]
    local = np.empty(len(face.data.vertices) * 3)
    face.data.vertices.foreach_get("co", local)
    x = local.reshape(-1, 3)[:, 0]
    width = x.max() - x.min()
    midline = (np.abs(x - (x.max() + x.min()) / 2) <= 0.01 * width) & largest_piece(face.data)
    most = dz[midline].min()
    moved = midline & (dz <= 0.5 * most)
    lower = int(np.flatnonzero(moved)[np.argmax(rest[moved, 2])])
    still = np.flatnonzero(midline & ~moved & (rest[:, 2] >= rest[lower, 2]))
    upper = int(still[np.argmin(np.linalg.norm(rest[still] - rest[lower], axis=1))])

    def gap_with(key: str) -> float:
        if key not in blocks:
            return float("nan")
        co = key_coords(face, key)
        return float(co[upper, 2] - co[lower, 2])

    return {"opener": opener, "upper": upper, "lower": lower, "upper_co": rest[upper].round(4).tolist(),
            "lower_co": rest[lower].round(4).tolist(), "rest_gap": float(rest[upper, 2] - rest[lower, 2]),
            "gap_by_key": {k: gap_with(k) for k in (opener, "viseme_aa", "viseme_E", "viseme_O", "viseme_nn", "viseme_DD",
                                                     "viseme_PP", "viseme_sil")}}


def gap_per_frame(scene: Any, face: Any, upper: int, lower: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The lip gap on each frame, and the value of each of the head's shape keys there (frames x keys)."""
    import bpy

    blocks = face.data.shape_keys.key_blocks
    gaps, values = np.empty(frames), np.empty((frames, len(blocks)))
    for k in range(frames):
        scene.frame_set(START_FRAME + k)
        ev = face.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw, verts = ev.matrix_world, ev.data.vertices
        gaps[k] = (mw @ verts[upper].co).z - (mw @ verts[lower].co).z
        values[k] = [b.value for b in blocks]
    return gaps, values


def animate_clips(clips: list[Clip], recognize: bool, lead_ms: float | None, worker: Any, card: dict[str, Any],
                  lips: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from oris.blender import lipsync as bl
    from oris.core.curves import CurveSettings

    out = {}
    for clip in clips:
        scene, face = open_head()
        options: dict[str, Any] = {"start_frame": START_FRAME, "card": card, "recognize": recognize}
        if lead_ms is not None:
            options["settings"] = CurveSettings(lead_seconds=lead_ms / 1000.0)
        report = bl.run(scene, [face], str(clip.wav), worker, **options)
        frames = int(round(clip.times[-1] * FPS)) + 1  # video frame i is animation frame START_FRAME + i
        gap, values = gap_per_frame(scene, face, lips["upper"], lips["lower"], frames)
        anim_times = np.arange(frames) / FPS
        keys = [b.name for b in face.data.shape_keys.key_blocks]
        heard = ""
        if getattr(report, "words_text", None):
            import bpy

            heard = bpy.data.texts[report.words_text].as_string().strip()
        out[clip.name] = {"gap": np.interp(clip.times, anim_times, gap), "mode": str(getattr(report, "mode", "")),
                          "heard": heard, "notes": list(report.notes),
                          "end_frame": float(report.end_frame), "keys": keys,
                          "key_values": np.stack([np.interp(clip.times, anim_times, v) for v in values.T], axis=1)}
    return out


def fitted_openings(clips: list[Clip], runs: dict[str, dict[str, Any]]) -> None:
    """How far the shapes' openings, rather than their timing, hold r back: the measured lips regressed on the
    head's key values (each key's opening fitted instead of the head's own), in-sample and leaving each clip out."""
    keys = runs[clips[0].name]["keys"]
    moving = sorted({k for c in clips for k, col in zip(keys, runs[c.name]["key_values"].T) if np.ptp(col) > 1e-6})
    cols = [keys.index(k) for k in moving]

    def design(c: Clip) -> tuple[np.ndarray, np.ndarray]:
        ok = c.face
        return runs[c.name]["key_values"][ok][:, cols], zscore(c.aperture[ok])

    def fit(train: list[Clip]) -> np.ndarray:
        xs, ys = zip(*(design(c) for c in train))
        x = np.concatenate(xs)
        return np.linalg.lstsq(np.column_stack([x, np.ones(len(x))]), np.concatenate(ys), rcond=None)[0]

    def r_with(coef: np.ndarray, c: Clip) -> float:
        x, y = design(c)
        return pearson(y, x @ coef[:-1])

    every = fit(clips)
    inside = float(np.mean([r_with(every, c) for c in clips]))
    left_out = float(np.mean([r_with(fit([o for o in clips if o is not c]), c) for c in clips]))
    print(f"fitted openings (the lips regressed on the {len(moving)} keys Oris moved): r {inside:.2f} in-sample, "
          f"{left_out:.2f} with each clip left out of its own fit")
    # the keys Oris writes sum to one on every frame, so only openings above one of them mean anything: the rest key's
    rest = next((i for i, k in enumerate(moving) if k.lower().endswith("sil")), None)
    above = every[:-1] - (every[rest] if rest is not None else 0.0)
    scale = max(abs(above).max(), 1e-9)
    print(f"  fitted opening per key{' above ' + moving[rest] if rest is not None else ''}, of the largest: "
          + ", ".join(f"{k} {v / scale:+.2f}" for k, v in sorted(zip(moving, above), key=lambda kv: -kv[1])))


# -- report ---------------------------------------------------------------------------------------------------------

def table(title: str, clips: list[Clip], scores: dict[str, Scores], floor: dict[str, Scores],
          ceiling: dict[str, Scores]) -> dict[str, Any]:
    print(f"\n{title}")
    print(f"{'clip':<16}{'r':>6}{'lag_ms':>8}{'r@lag':>7}{'closure':>9}{'jerk':>7}   speech frames")
    for c in clips:
        s = scores[c.name]
        print(f"{c.name:<16}{s.r:6.2f}{s.lag_ms:+8.0f}{s.r_at_lag:7.2f}{s.closure:9.2f}{s.jerk:7.2f}   "
              f"{c.span[0]}-{c.span[1]}")

    def mean_row(label: str, sc: dict[str, Scores]) -> dict[str, float]:
        vals = list(sc.values())
        m = {k: float(np.mean([getattr(s, k) for s in vals])) for k in ("r", "closure", "jerk", "r_speech")}
        curve = np.mean([s.r_by_lag for s in vals], axis=0)  # the clips' mean r at each lag
        m["lag_ms"], m["r_at_lag"] = float(LAGS_MS[int(np.argmax(curve))]), float(curve.max())
        m["clip_lag_median_ms"] = float(np.median([s.lag_ms for s in vals]))
        m["clip_lag_mean_ms"] = float(np.mean([s.lag_ms for s in vals]))
        print(f"{label:<16}{m['r']:6.2f}{m['lag_ms']:+8.0f}{m['r_at_lag']:7.2f}{m['closure']:9.2f}{m['jerk']:7.2f}"
              f"   clips' own lags: median {m['clip_lag_median_ms']:+.0f}, mean {m['clip_lag_mean_ms']:+.0f} ms")
        return m

    mean = mean_row(f"mean ({len(clips)})", scores)
    floor_mean = mean_row("loudness", floor)
    ceiling_mean = mean_row("lips, 1 px", ceiling)
    checks = [("r", mean["r"] >= 0.65), ("closure", mean["closure"] >= 0.80), ("jerk", 0.8 <= mean["jerk"] <= 1.2),
              ("lag", abs(mean["lag_ms"]) <= 20)]
    print(f"targets (issue 27): {TARGETS}:  " + "  ".join(f"{k} {'ok' if ok else 'MISSED'}" for k, ok in checks))
    return {"mean": mean, "loudness": floor_mean, "lips_1px": ceiling_mean, "targets": {k: ok for k, ok in checks}}


def plot(clip: Clip, runs: dict[str, dict[str, Any]], scores: dict[str, Scores], png: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("motion: matplotlib is not installed: no plot (pip install matplotlib)")
        return
    fig, (ax, ax_lag) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3.2, 1]})
    ok = clip.face
    t = clip.times
    ax.axvspan(t[clip.span[0]], t[clip.span[1]], color="0.93", label="speech frames")
    ax.plot(t[ok], zscore(clip.aperture[ok]), color="black", lw=2.2, label="measured lips (aperture_over_io)")
    colours = {"recognized": "tab:red", "audio": "tab:blue"}
    for label, run in runs.items():
        s = scores[label]
        ax.plot(t[ok], zscore(run["gap"][ok]), color=colours.get(label.split()[0], "tab:green"), lw=1.6,
                label=f"Oris {label} (r {s.r:.2f}, lag {s.lag_ms:+.0f} ms)")
        ax_lag.plot(LAGS_MS, s.r_by_lag, color=colours.get(label.split()[0], "tab:green"), label=f"Oris {label}")
    floor = score(clip, clip.loudness)
    ax.plot(t, zscore(clip.loudness), color="0.6", lw=1, ls=":", label=f"loudness, dB (r {floor.r:.2f})")
    ax_lag.plot(LAGS_MS, floor.r_by_lag, color="0.6", ls=":", label="loudness")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("z-score (up = open)")
    ax.set_title(f"GRID {clip.name}: measured lip opening and Oris's lip gap (MakeHuman head, 25 fps)")
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    ax.set_xlim(t[0], t[-1])
    ax_lag.axvline(0, color="0.8", lw=1)
    ax_lag.set_xlabel("lag (ms, + = animation late)")
    ax_lag.set_ylabel("Pearson r")
    ax_lag.set_title("r against lag")
    ax_lag.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    print(f"wrote {png}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=Path, default=GRID, help=f"the GRID clips (default {GRID})")
    ap.add_argument("--mode", choices=("recognized", "audio", "both"), default="recognized")
    ap.add_argument("--lead-ms", type=float, nargs="+", default=[None],
                    help="the curves' lead (CurveSettings.lead_seconds, in ms); several values sweep it. "
                         "Default: Oris's own settings")
    ap.add_argument("--clips", nargs="+", help="only these clips")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--plot", metavar="CLIP", help="draw this clip's measured lips and Oris's gap")
    ap.add_argument("--fit", action="store_true",
                    help="also fit each key's opening to the measured lips: how much the head's shapes hold r back")
    ap.add_argument("--png", type=Path, help="where to draw it (default docs/motion/CLIP.png)")
    args = ap.parse_args(argv)

    clips = load_clips(args.grid)
    if args.clips:
        unknown = set(args.clips) - {c.name for c in clips}
        if unknown:
            raise SystemExit(f"motion: no such clip in {args.grid}: {', '.join(sorted(unknown))}")
        clips = [c for c in clips if c.name in args.clips]
    if args.plot and args.plot not in {c.name for c in clips}:
        raise SystemExit(f"motion: --plot {args.plot}: no such clip among {', '.join(c.name for c in clips)}")

    from oris.engine.client import WorkerClient
    from oris.engine.model import file_sha256, find_model

    model = find_model()
    _, face = open_head()
    lips = lip_vertices(face)
    print(f"model {model.path} (sha256 {file_sha256(model.path)[:12]})")
    print(f"lip vertices on {FACE}: upper {lips['upper']} at {lips['upper_co']}, lower {lips['lower']} at "
          f"{lips['lower_co']} (picked with {lips['opener']}); gap at rest {lips['rest_gap'] * 1000:.2f} mm, "
          + ", ".join(f"{k} {v * 1000:.1f} mm" for k, v in lips["gap_by_key"].items()))
    floor = {c.name: score(c, c.loudness) for c in clips}
    ceiling = {c.name: score(c, c.sharp) for c in clips}
    modes = {"recognized": [True], "audio": [False], "both": [True, False]}[args.mode]
    results: dict[str, Any] = {"model": str(model.path), "lips": lips, "targets": TARGETS, "runs": {},
                               "clips": {c.name: {"speech_frames": list(c.span), "loudness": asdict(floor[c.name])}
                                         for c in clips}}
    plotted: dict[str, dict[str, Any]] = {}
    plotted_scores: dict[str, Scores] = {}
    with WorkerClient(device="cpu") as worker:
        worker.start()
        for recognize in modes:
            for lead in args.lead_ms:
                label = ("recognized" if recognize else "audio") + ("" if lead is None else f" lead {lead:g} ms")
                began = time.perf_counter()
                runs = animate_clips(clips, recognize, lead, worker, model.card, lips)
                seconds = time.perf_counter() - began
                scores = {c.name: score(c, runs[c.name]["gap"]) for c in clips}
                summary = table(f"mode {label}: {len(clips)} clips lip-synced and measured in {seconds:.1f} s",
                                clips, scores, floor, ceiling)
                results["runs"][label] = {"seconds": seconds, **summary,
                                          "clips": {n: {**asdict(s), "heard": runs[n]["heard"],
                                                        "pipeline_mode": runs[n]["mode"], "notes": runs[n]["notes"],
                                                        "gap_mm": (runs[n]["gap"] * 1000).round(3).tolist()}
                                                    for n, s in scores.items()}}
                if args.fit:
                    fitted_openings(clips, runs)
                if args.plot:
                    plotted[label], plotted_scores[label] = runs[args.plot], scores[args.plot]
    if args.plot:
        clip = next(c for c in clips if c.name == args.plot)
        plot(clip, plotted, plotted_scores, args.png or REPO / "docs" / "motion" / f"{args.plot}.png")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    status = main()
    from oris.blender.files import hide_exit_report

    hide_exit_report()
    sys.exit(status)
