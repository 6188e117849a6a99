"""A thousand dialogue lines on a farm: one process against OpenJD tasks of 25 and 100 rows, two tasks at
once, and resuming a finished manifest.

    python benchmarks/farm.py [--lines 1000] [--words transcript|recognize|audio-only]
    python benchmarks/farm.py --first-row [--manifest-rows 100000]

The manifest tiles the demo clip (cut into 3 s lines) and the real speech in ../shared/data (speechocean762's
FLAC utterances, with their transcripts) into --lines rows of `oris visemes --batch`. It runs (a) in one
process, (b) through `openjd run farm/openjd/visemes.yaml` at chunk sizes 25 and 100 (the tasks one after
another, as one farm node runs them), (c) as 2 chunk processes at once on the machine's cores, then resumes
the finished manifest. Prints lines per second, each run's throughput against one process, the overhead per
task (process start, model load) as a share of the one-process time, and the resume time.
Targets: chunk size 100 at >= 0.85 of one process; resuming a finished 1,000-line manifest <= 5 s.

--first-row: a farm task of 50 rows from a 100,000-row manifest (an audio file per row), for `visemes` and (with
bpy) `lipsync`: the
seconds from the task's start to its first row's start (its first progress line, less that row's own seconds
from the summary), beside the same 50 rows as a manifest of their own. Target: <= 2 s for both commands.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "speechocean762-train"
OPENJD = Path(sys.executable).with_name("openjd")


def build_manifest(folder: Path, lines: int, words: str) -> Path:
    """Rows of short lines: the demo clip in 3 s tiles, then speechocean762's FLAC utterances, repeated."""
    audio, rate = sf.read(REPO / "demo" / "speech.flac", dtype="float32")
    tiles = []
    for i, start in enumerate(range(0, len(audio) - 3 * rate + 1, 3 * rate)):
        tile = folder / f"demo_{i:02d}.flac"
        sf.write(tile, audio[start:start + 3 * rate], rate)
        tiles.append((tile, ""))
    texts = dict(line.split("\t", 1) for line in (SHARED / "text").read_text().splitlines() if "\t" in line)
    utterances = sorted((SHARED / "audio").glob("*.flac")) if SHARED.exists() else []
    sources = tiles + [(p, texts.get(p.stem, "").strip().lower()) for p in utterances]
    rows = ["audio,text,output"]
    for n in range(lines):
        path, text = sources[n % len(sources)]
        text = text if words == "transcript" else ""
        rows.append(f"{path},\"{text}\",line{n + 1:04d}.json")  # relative: beside the manifest
    manifest = folder / "lines.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-2000:]}{result.stdout[-2000:]}")
    return seconds


def written(out: Path, lines: int) -> None:
    summary = json.loads((out / "summary.json").read_text())["rows"]
    assert len(summary) == lines and all(r["status"] == "written" for r in summary), "not every row was written"


def first_row_seconds(cmd: list[str], summary: Path, cwd: Path) -> tuple[float, float]:
    """(seconds before the first row started, the whole task's seconds) of one task run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_line_at = None
    assert proc.stderr is not None
    for line in proc.stderr:
        if first_line_at is None and line.startswith("[1/"):
            first_line_at = time.perf_counter() - t0
    proc.wait()
    total = time.perf_counter() - t0
    rows = json.loads(summary.read_text())["rows"]
    if first_line_at is None or proc.returncode != 0 or rows[0]["status"] != "written":
        sys.exit(f"the task failed ({proc.returncode}): {' '.join(cmd)}")
    return first_line_at - rows[0]["seconds"], total


def first_row(manifest_rows: int) -> int:
    """A 50-row task of a huge manifest starts as soon as a 50-row manifest does."""
    work = Path(tempfile.mkdtemp(prefix="oris-first-row-"))
    try:
        audio = work / "line.flac"
        clip, rate = sf.read(REPO / "demo" / "speech.flac", dtype="float32")
        sf.write(audio, clip[:2 * rate], rate)
        shutil.copy(REPO / "demo" / "heads" / "mh_talkinghead_head.blend", work / "head.blend")
        share = (manifest_rows // 2 + 1, manifest_rows // 2 + 50)
        # every row its own audio (lines/NNNNNN.flac), as a studio's dialogue is; only the task's own files exist:
        # the task must not look at the others
        (work / "lines").mkdir()
        for n in list(range(share[0], share[1] + 1)) + list(range(1, 51)):
            target = work / "lines" / f"{n:06d}.flac"
            if not target.exists():
                os.link(audio, target)
        commands = {"visemes": ("audio,output", "lines/{n:06d}.flac,out/l{n}.json"),
                    "lipsync": ("blend,object,audio,output", "head.blend,MakeHuman_head,lines/{n:06d}.flac,out/s{n}.blend")}
        try:
            import bpy  # noqa: F401
        except ImportError:
            print("lipsync: skipped (no bpy in this Python)")
            commands.pop("lipsync")
        print(f"a 50-row task (rows {share[0]}-{share[1]}), audio only; {os.cpu_count()} CPU cores")
        print(f"{'command':<10}{'manifest rows':>15}{'before row 1, s':>17}{'task, s':>10}")
        worst = 0.0
        for command, (header, row) in commands.items():
            for rows, first in ((manifest_rows, share[0]), (50, 1)):
                name = f"{command}-{rows}.csv"
                (work / name).write_text(header + "\n" + "".join(row.format(n=n) + "\n" for n in range(1, rows + 1)))
                summary = work / f"{command}-{rows}.json"
                cmd = [sys.executable, "-m", "oris", command, "--batch", name, "-o", "out", "--audio-only", "--force",
                       "--rows", f"{first}-{first + 49}", "--summary", str(summary)]
                before, total = first_row_seconds(cmd, summary, work)
                if rows == manifest_rows:
                    worst = max(worst, before)
                print(f"{command:<10}{rows:>15,}{before:>17.2f}{total:>10.1f}")
        print(f"target: the first row within 2 s of the task's start: {worst:.2f} s {'ok' if worst <= 2 else 'MISSED'}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--first-row", action="store_true", help="only the first-row latency of a task of a huge manifest")
    ap.add_argument("--manifest-rows", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--words", choices=("transcript", "recognize", "audio-only"), default="transcript",
                    help="how the lines get their words (default: a transcript per row, as studio scripts give)")
    args = ap.parse_args()
    if args.first_row:
        return first_row(args.manifest_rows)
    work = Path(tempfile.mkdtemp(prefix="oris-farm-"))
    try:
        manifest = build_manifest(work, args.lines, args.words)
        words = ["--audio-only"] if args.words == "audio-only" else []

        def run_in(name: str) -> tuple[Path, list[str]]:
            """A folder of the run's own, with the manifest in it: each row's output lands beside it."""
            (work / name).mkdir()
            shutil.copy(manifest, work / name / "lines.csv")
            return work / name, [sys.executable, "-m", "oris", "visemes", "--batch", str(work / name / "lines.csv"),
                                 "-o", str(work / name), "-q", *words]

        print(f"{args.lines} lines ({args.words}); {os.cpu_count()} CPU cores")
        out, oris = run_in("a")
        one = timed([*oris, "--summary", str(out / "summary.json")], work)
        written(work / "a", args.lines)
        rows = [("(a) one process", one, 1)]
        for size in (25, 100):
            out, _ = run_in(f"b{size}")
            seconds = timed([str(OPENJD), "run", str(REPO / "farm" / "openjd" / "visemes.yaml"),
                             "-p", f"Manifest={out / 'lines.csv'}", "-p", f"OutputDir={out}", "-p", f"ChunkSize={size}",
                             "-p", f"RowCount={args.lines}", "-p", f"Python={sys.executable}",
                             "-p", f"Words={words[0] if words else '--recognize'}"], work)
            written(out, args.lines)
            rows.append((f"(b) openjd run, chunk size {size}", seconds, -(-args.lines // size)))
        out, oris_c = run_in("c")
        t0 = time.perf_counter()
        procs = [subprocess.Popen([*oris_c, "--chunk", f"{k}/2", "--summary", str(out / f"s{k}.json")],
                                  cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k in (1, 2)]
        assert all(p.wait() == 0 for p in procs)
        rows.append(("(c) 2 chunk processes at once", time.perf_counter() - t0, 2))

        print(f"{'run':<36}{'seconds':>9}{'lines/s':>9}{'vs one':>8}{'tasks':>7}{'overhead/task':>15}")
        for label, seconds, tasks in rows:
            overhead = (seconds - one) / tasks / one if tasks > 1 and label.startswith("(b)") else None
            shown = f"{100 * overhead:>13.2f}%" if overhead is not None else f"{'':>14}"
            print(f"{label:<36}{seconds:>9.1f}{args.lines / seconds:>9.1f}{one / seconds:>8.2f}{tasks:>7}{shown}")
        resume = timed([*oris, "--summary", str(work / "resume.json")], work)
        skipped = sum(r["status"] == "skipped" for r in json.loads((work / "resume.json").read_text())["rows"])
        print(f"resume a finished manifest: {resume:.2f} s ({skipped} of {args.lines} rows skipped)")
        b100 = one / next(s for label, s, _ in rows if "100" in label)
        print(f"targets: chunk size 100 at {b100:.2f} of one process (>= 0.85) "
              f"{'ok' if b100 >= 0.85 else 'MISSED'}; resume {resume:.2f} s (<= 5 s) {'ok' if resume <= 5 else 'MISSED'}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
