"""Speed of lip sync in Blender, with the targets of issue 3. Needs the bpy module.

    python benchmarks/lipsync.py [--rows 100] [--only line|batch|scene]

1. A 60 s line on a 27k-vertex head split into three meshes (the ICT-FaceKit face, and its eyes and
   mouth parts as two more meshes, all carrying the ARKit keys), headless, worker already warm:
   end to end (decode, inference, curves, keys, NLA strip, sound strip) and the key writing alone.
2. A batch: --rows lines of 5 s each in one process through `oris lipsync --batch`, against real time.
3. A scene's dialogue: 20 sound strips of 3 s on two heads, through `oris lipsync --scene-strips` (one worker
   session, one save), audio only, against real time (issue 26: >= 30x).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402

from addon.blender import lipsync  # noqa: E402
from addon.cli import main as cli_main  # noqa: E402
from addon.engine.client import WorkerClient  # noqa: E402
from addon.engine.model import find_model  # noqa: E402
from demo.scenes import MH_HEAD, load_head, reset, three_mesh_head  # noqa: E402

DEMO = REPO / "demo" / "speech.flac"


def line(label: str, value: float, unit: str, target: float, more_is_better: bool = False) -> None:
    ok = value >= target if more_is_better else value <= target
    sign = ">=" if more_is_better else "<="
    print(f"{label:<56}{value:9.3f} {unit:<3} target {sign} {target:g} {unit:<3} {'ok' if ok else 'MISSED'}")


def clip(seconds: float, path: Path) -> Path:
    audio, rate = sf.read(DEMO, dtype="float32")
    reps = int(np.ceil(seconds * rate / len(audio)))
    sf.write(path, np.tile(audio, reps)[: int(seconds * rate)], rate)
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--only", choices=("line", "batch", "scene"), help="run one of the three parts")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.only in (None, "line"):
        one_line(tmp)
    if args.only in (None, "batch"):
        batch(tmp, args.rows)
    if args.only in (None, "scene"):
        scene_dialogue(tmp)
    return 0


def one_line(tmp: Path) -> None:
    card = find_model().card
    long_clip = clip(60.0, tmp / "line60.wav")

    meshes = three_mesh_head()
    scene = bpy.context.scene
    scene.render.fps = 24
    verts = sum(len(m.data.vertices) for m in meshes)
    with WorkerClient(device="cpu") as worker:
        worker.start()
        lipsync.run(scene, meshes, str(long_clip), worker, start_frame=1, card=card)  # warm caches, both models
        for recognize, target in ((False, 1.5), (True, 6.0)):
            totals, writes = [], []
            for _ in range(3):
                t0 = time.perf_counter()
                report = lipsync.run(scene, meshes, str(long_clip), worker, start_frame=1, card=card, recognize=recognize)
                totals.append(time.perf_counter() - t0)
                writes.append(report.write_seconds)
            print(f"60 s line, {'recognizing' if recognize else 'audio only'} (result: {report.mode} mode), {len(meshes)} meshes, {verts:,} vertices, {report.keys_written} keys "
                  f"({report.keys_per_second:.0f} per second of audio), medians of 3")
            line("end to end, worker warm", statistics.median(totals), "s", target)
            line("writing the keys", 1000 * statistics.median(writes), "ms", 50.0)


def batch(tmp: Path, count: int) -> None:
    """One head file, `count` rows of 5 s each."""
    reset()
    load_head(MH_HEAD, "Face")
    blend = tmp / "head.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    rows = ["blend,object,audio,start_frame,output"]
    for i in range(count):
        rows.append(f"{blend},Face,{clip(5.0, tmp / f'line{i:03d}.wav')},1,{tmp / 'out' / f'line{i:03d}.blend'}")
    manifest = tmp / "lines.csv"
    manifest.write_text("\n".join(rows) + "\n")
    for extra, target in ((["--audio-only"], 50.0), ([], 8.0)):
        err = io.StringIO()
        t0 = time.perf_counter()
        code = cli_main(["lipsync", "--batch", str(manifest), "-o", str(tmp / "out"), "--device", "cpu", "-q", *extra], err=err)
        wall = time.perf_counter() - t0
        mode = "audio only" if extra else "recognizing"
        print(f"batch of {count} lines x 5 s, {mode} (exit {code}): {wall:.1f} s for {5 * count} s of audio")
        line(f"batch speed, {mode} (audio seconds per wall second)", 5 * count / wall, "x", target, more_is_better=True)


def scene_dialogue(tmp: Path) -> None:
    """Two heads, 20 strips of 3 s alternating between them, named '<head>:line_NN'."""
    reset()
    load_head(MH_HEAD, "Anna")
    load_head(MH_HEAD, "Ben")
    scene = bpy.context.scene
    scene.sequence_editor_create()
    strips = scene.sequence_editor.strips if hasattr(scene.sequence_editor, "strips") else scene.sequence_editor.sequences
    fps = scene.render.fps / scene.render.fps_base
    for i in range(20):
        strips.new_sound(f"{('Anna', 'Ben')[i % 2]}:line_{i:02d}", str(clip(3.0, tmp / f"strip{i:02d}.wav")), 2 + i % 2,
                         1 + int(i * 3.5 * fps))
    shot = tmp / "dialogue.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    err = io.StringIO()
    t0 = time.perf_counter()
    code = cli_main(["lipsync", "--blend", str(shot), "--scene-strips", "--audio-only", "-o", str(tmp / "dialogue_out.blend"),
                     "--device", "cpu", "-q"], err=err)
    wall = time.perf_counter() - t0
    print(f"scene of 20 strips x 3 s on two heads, audio only (exit {code}): {wall:.1f} s for 60 s of audio, "
          "worker start included")
    line("scene dialogue speed (audio seconds per wall second)", 60.0 / wall, "x", 30.0, more_is_better=True)


if __name__ == "__main__":
    sys.exit(main())
