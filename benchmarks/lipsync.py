"""Speed of lip sync in Blender, with the targets of issue 3. Needs the bpy module.

    python benchmarks/lipsync.py [--rows 100]

1. A 60 s line on a 27k-vertex head split into three meshes (the ICT-FaceKit face, and its eyes and
   mouth parts as two more meshes, all carrying the ARKit keys), headless, worker already warm:
   end to end (decode, inference, curves, keys, NLA strip, sound strip) and the key writing alone.
2. A batch: --rows lines of 5 s each in one process through `oris lipsync --batch`, against real time.
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
    args = ap.parse_args()
    card = find_model().card
    tmp = Path(tempfile.mkdtemp())
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

    # the batch: one head file, N rows of 5 s each
    reset()
    load_head(MH_HEAD, "Face")
    blend = tmp / "head.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    rows = ["blend,object,audio,start_frame,output"]
    for i in range(args.rows):
        rows.append(f"{blend},Face,{clip(5.0, tmp / f'line{i:03d}.wav')},1,{tmp / 'out' / f'line{i:03d}.blend'}")
    manifest = tmp / "lines.csv"
    manifest.write_text("\n".join(rows) + "\n")
    for extra, target in ((["--audio-only"], 50.0), ([], 8.0)):
        err = io.StringIO()
        t0 = time.perf_counter()
        code = cli_main(["lipsync", "--batch", str(manifest), "-o", str(tmp / "out"), "--device", "cpu", "-q", *extra], err=err)
        wall = time.perf_counter() - t0
        mode = "audio only" if extra else "recognizing"
        print(f"batch of {args.rows} lines x 5 s, {mode} (exit {code}): {wall:.1f} s for {5 * args.rows} s of audio")
        line(f"batch speed, {mode} (audio seconds per wall second)", 5 * args.rows / wall, "x", target, more_is_better=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
