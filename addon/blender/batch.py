"""Headless lip sync: one line, or a manifest of thousands, in one Blender process with one worker.

    python -m oris lipsync --blend IN.blend --object Face --audio line.wav -o OUT.blend
    blender -b -c oris lipsync --batch lines.csv -o out/

Manifest rows (CSV with a header, or a JSON list of objects): blend, object (several joined by ';'),
audio, start_frame, and optionally output and text. Relative paths are relative to the manifest.
Rows that write the same output build on each other (several lines into one shot). Each row
reports a line; a failed row is reported and skipped, the good rows are still written; the input
.blend is never overwritten. Exit code: 0 all rows written, 1 some failed, 2 none (or bad usage).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import bpy

from ..core.align import Transcript
from ..core.audio import AudioError
from ..core.curves import CurveSettings
from ..core.rigs import RigError
from ..engine.client import Cancelled, WorkerClient, WorkerError
from ..engine.model import ModelError, find_model
from . import lipsync
from .shapekeys import EditError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


class ManifestError(ValueError):
    pass


@dataclass
class Row:
    blend: Path
    objects: list[str]
    audio: Path
    start_frame: int | None
    output: Path
    text: str | None = None


def read_manifest(path: Path, out_dir: Path | None) -> list[Row]:
    base = path.parent
    try:
        if path.suffix.lower() == ".json":
            records = json.loads(path.read_text(encoding="utf-8"))
        else:
            with open(path, newline="", encoding="utf-8") as f:
                records = list(csv.DictReader(f))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from None
    if not isinstance(records, list) or not records:
        raise ManifestError(f"the manifest {path} has no rows")
    rows = []
    for n, rec in enumerate(records, start=1):
        missing = [k for k in ("blend", "object", "audio") if not str(rec.get(k) or "").strip()]
        if missing:
            raise ManifestError(f"manifest row {n}: missing {', '.join(missing)} (columns: blend, object, audio, start_frame, output, text)")
        blend, audio = base / str(rec["blend"]), base / str(rec["audio"])
        start = str(rec.get("start_frame") or "").strip()
        if rec.get("output"):
            output = base / str(rec["output"])
        elif out_dir is not None:
            output = out_dir / f"{blend.stem}_{audio.stem}.blend"
        else:
            raise ManifestError(f"manifest row {n}: no output column and no -o folder")
        try:
            start_frame = int(start) if start else None
        except ValueError:
            raise ManifestError(f"manifest row {n}: start_frame {start!r} is not a whole number") from None
        objects = [o.strip() for o in str(rec["object"]).split(";") if o.strip()]
        rows.append(Row(blend, objects, audio, start_frame, output, str(rec["text"]) if rec.get("text") else None))
    return rows


def _rows_from_args(args: argparse.Namespace) -> list[Row]:
    if args.batch:
        return read_manifest(Path(args.batch), Path(args.output) if args.output else None)
    missing = [flag for flag, value in (("--blend", args.blend), ("--object", args.object), ("--audio", args.audio),
                                        ("-o", args.output)) if not value]
    if missing:
        raise ManifestError(f"lipsync needs {', '.join(missing)} (or --batch MANIFEST)")
    text = args.text
    if args.text_file:
        text = Path(args.text_file).read_text(encoding="utf-8", errors="replace")
    return [Row(Path(args.blend), list(args.object), Path(args.audio), args.start_frame, Path(args.output), text)]


def process_row(row: Row, worker: WorkerClient, settings: CurveSettings, preset: str, fit_range: bool,
                card: dict, written: set[Path]) -> lipsync.ApplyReport:
    source = row.output if row.output.resolve() in written else row.blend
    if not source.is_file():
        raise ManifestError(f"blend file not found: {source}")
    if row.output.resolve() == row.blend.resolve():
        raise ManifestError(f"the output {row.output} is the input file; Oris never overwrites it, choose another path")
    try:
        bpy.ops.wm.open_mainfile(filepath=str(source), load_ui=False)
    except RuntimeError as exc:
        raise ManifestError(f"cannot open {source} as a .blend file: {exc}") from None
    objects: list[Any] = []
    for name in row.objects:
        ob = bpy.data.objects.get(name)
        if ob is None:
            meshes = ", ".join(o.name for o in bpy.data.objects if o.type == "MESH")[:300]
            raise RigError(f"no object named {name!r} in {source.name} (meshes: {meshes})")
        objects.append(ob)
    scene: Any = bpy.context.scene
    report = lipsync.run(scene, objects, str(row.audio), worker, preset=preset,
                         start_frame=row.start_frame if row.start_frame is not None else scene.frame_start,
                         settings=settings, transcript=Transcript(row.text) if row.text else None,
                         extend_range=fit_range, card=card)
    row.output.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(row.output), copy=True)
    written.add(row.output.resolve())
    return report


def cmd_lipsync(args: argparse.Namespace, err: TextIO) -> int:
    try:
        rows = _rows_from_args(args)
        settings = CurveSettings(lead_seconds=args.lead_ms / 1000.0, intensity=args.intensity, stepped=args.stepped).validated()
        card = find_model().card
    except (ManifestError, ValueError, OSError, ModelError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    ok = failed = 0
    audio_seconds = 0.0
    prefs = bpy.context.preferences
    if bpy.app.background and prefs is not None:
        prefs.filepaths.save_version = 0  # no .blend1 backups beside batch outputs
    t_start = time.perf_counter()
    written: set[Path] = set()
    with WorkerClient(device=args.device, timeout=args.timeout) as worker:
        for n, row in enumerate(rows, start=1):
            t0 = time.perf_counter()
            try:
                report = process_row(row, worker, settings, args.preset, args.fit_range, card, written)
            except (AudioError, RigError, EditError, ManifestError, WorkerError, Cancelled) as exc:
                failed += 1
                err.write(f"[{n}/{len(rows)}] FAILED {row.blend.name} {row.audio.name}: {exc}\n")
                continue
            ok += 1
            audio_seconds += (report.end_frame - report.start_frame) / lipsync.scene_fps(bpy.context.scene)
            if not args.quiet:
                notes = f" ({'; '.join(report.notes)})" if report.notes else ""
                err.write(f"[{n}/{len(rows)}] {row.audio.name} -> {row.output} : {report.keys_written} keys on "
                          f"{', '.join(report.targets)}, frames {report.start_frame}-{report.end_frame:.0f}, "
                          f"{time.perf_counter() - t0:.2f} s{notes}\n")
    wall = time.perf_counter() - t_start
    speed = f", {audio_seconds / wall:.0f}x real time" if wall > 0 and audio_seconds else ""
    err.write(f"lipsync: {ok} written, {failed} failed, {audio_seconds:.1f} s of audio in {wall:.1f} s{speed}\n")
    if failed == 0:
        return EXIT_OK
    return EXIT_PARTIAL if ok else EXIT_USAGE
