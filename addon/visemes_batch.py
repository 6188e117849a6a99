"""`oris visemes --batch`: a manifest of lines to viseme files, in one process with one warm worker.

    python -m oris visemes --batch lines.csv -o out/ --summary out/summary.json [--chunk 3/20]

Manifest rows (CSV with a header, or a JSON list of objects): audio, and optionally text, text_file, output
and fps. Relative paths are relative to the manifest; without an output a row writes OUT/<audio stem>.<ext>.
A row fails alone; a row whose output an earlier run wrote from the same inputs and options is skipped
(its record sits beside the output, core.batch.Resume) unless --force. No bpy.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .cli import _SUFFIX, render_result
from .core.align import Transcript
from .core.audio import AudioError, decode_file, read_text_input
from .core.batch import (
    EXIT_USAGE,
    WRITTEN,
    BatchLog,
    ManifestError,
    Record,
    Resume,
    RowResult,
    check_summary,
    read_manifest,
    select_rows,
)
from .core.curves import CurveSettings
from .core.outputs import InputIndex, Labelled, OutputError, check_outputs, refuse_if_input, write_text
from .engine.client import Cancelled, WorkerClient, WorkerError
from .engine.model import ModelError, ModelInfo, find_model
from .lipsync import analyze, decoding_settings

COLUMNS = ("audio", "text", "text_file", "output", "fps")
REQUIRED = ("audio",)


@dataclass
class Line:
    number: int
    where: str
    audio: Path = Path()
    text: str | None = None
    text_file: Path | None = None
    output: Path = Path()
    fps: float = 100.0
    error: str = ""
    inputs: dict[str, Path] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"row {self.number} ({self.where})"


def _line(record: Record, base: Path, out_dir: Path, suffix: str, fps: float) -> Line:
    line = Line(record.number, record.where, error=record.error, fps=fps)
    if line.error:
        return line
    f = record.fields
    line.audio = base / f["audio"]
    line.text = f.get("text") or None
    line.text_file = base / f["text_file"] if f.get("text_file") else None
    line.output = base / f["output"] if f.get("output") else out_dir / (line.audio.stem + suffix)
    if f.get("fps"):
        try:
            line.fps = float(f["fps"])
            if not 0 < line.fps <= 1000:
                raise ValueError
        except ValueError:
            line.error = f"fps {f['fps']!r} is not a frame rate above 0"
    line.inputs = {"audio": line.audio} | ({"text_file": line.text_file} if line.text_file else {})
    return line


def read_lines(args: argparse.Namespace) -> tuple[list[Line], list[Labelled]]:
    """This run's rows (--rows, --chunk), each checked against the output rule (an output is no input of any
    row, and is written by one row only); a row that breaks it fails alone. Also every input, for the summary."""
    if not args.output:
        raise ManifestError("--batch needs -o FOLDER for the outputs (rows without an output column write there)")
    manifest = Path(args.batch)
    lines = [_line(r, manifest.parent, Path(args.output), _SUFFIX[args.format], args.fps)
             for r in read_manifest(manifest, COLUMNS, REQUIRED)]
    model = find_model()
    shared = [Labelled("the manifest", manifest), Labelled("the model", model.path),
              Labelled("the model card", model.path.with_suffix(".json"))]
    every = shared + [Labelled(f"{ln.label}'s {k}", p) for ln in lines if not ln.error for k, p in ln.inputs.items()]
    index = InputIndex(every)
    writers: dict[str, Line] = {}
    chosen = select_rows([ln.number for ln in lines], [ln.number for ln in lines], args.rows, args.chunk)
    for ln in lines:
        if ln.error:
            continue
        first = writers.setdefault(os.path.realpath(ln.output), ln)
        if first is not ln:
            ln.error = (f"its output {ln.output} is written by {first.label} too; give one of them an output column")
    lines = [ln for ln in lines if ln.number in chosen]
    for ln in lines:
        if ln.error:
            continue
        out = Labelled("its output", ln.output)
        try:
            refuse_if_input(out, InputIndex([Labelled(f"its {k}", p) for k, p in ln.inputs.items()]))
            check_outputs([out], index)
        except OutputError as exc:
            ln.error = str(exc)
    return lines, every


def _options(args: argparse.Namespace, line: Line, model: ModelInfo) -> dict[str, Any]:
    return {"format": args.format, "fps": line.fps, "lead_ms": args.lead_ms, "intensity": args.intensity,
            "stepped": args.stepped, "audio_only": args.audio_only, "text": line.text, "model": model.sha256}


def cmd_visemes_batch(args: argparse.Namespace, err: TextIO) -> int:
    try:
        if args.audio:
            raise ManifestError("give audio files or --batch MANIFEST, not both")
        settings = CurveSettings(lead_seconds=args.lead_ms / 1000.0, intensity=args.intensity,
                                 stepped=args.stepped).validated()
        model = find_model()
        settings = decoding_settings(model.card, settings)
        lines, every = read_lines(args)
        summary = check_summary(args.summary, every,
                                [Labelled(f"{ln.label}'s output", ln.output) for ln in lines if not ln.error])
    except (ManifestError, OutputError, ValueError, ModelError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    log = BatchLog("visemes", len(lines), err)
    resume = Resume("visemes", args.force)
    cancel = threading.Event()
    cancelled = False
    audio_seconds = 0.0
    t_start = time.perf_counter()
    with WorkerClient(device=args.device, timeout=args.timeout) as worker:
        for ln in lines:
            if cancelled:
                log.not_run(ln.number, ln.where, _shown(ln))
                continue
            if ln.error:
                log.fail(ln.number, ln.where, ln.label, ln.error, inputs=_shown(ln))
                continue
            t0 = time.perf_counter()
            try:
                made = resume.fingerprint(ln.inputs, _options(args, ln, model))
                if resume.finished(ln.output, [made]):
                    log.skipped(ln.number, ln.where, ln.output, _shown(ln))
                    continue
                decoded = decode_file(str(ln.audio))
                text = ln.text or (read_text_input(str(ln.text_file), "the transcript file") if ln.text_file else None)
                result = analyze(decoded.samples, worker, ln.fps, settings, Transcript(text) if text else None,
                                 None, cancel, recognize=not args.audio_only)
                write_text(Labelled(f"{ln.label}'s output", ln.output),
                           render_result(args, model, worker.info, result, str(ln.audio)))
                resume.record(ln.output, [made], f"{ln.label}'s record")
            except (KeyboardInterrupt, Cancelled):
                cancel.set()
                cancelled = True
                log.not_run(ln.number, ln.where, _shown(ln))
                continue
            except (AudioError, OutputError, WorkerError, ValueError, OSError) as exc:
                log.fail(ln.number, ln.where, f"{ln.label} {ln.audio.name}", str(exc), time.perf_counter() - t0,
                         _shown(ln))
                continue
            seconds = time.perf_counter() - t0
            audio_seconds += decoded.duration
            log.add(RowResult(ln.number, ln.where, WRITTEN, "", round(seconds, 3), str(ln.output), _shown(ln),
                              result.mode))
            for w in decoded.warnings + result.warnings:
                err.write(f"warning: {ln.label} {ln.audio}: {w}\n")
            if not args.quiet:
                err.write(f"[{ln.number}/{len(lines)}] {ln.audio.name} -> {ln.output}: {decoded.duration:.2f} s, "
                          f"{result.mode} mode, {seconds:.2f} s\n")
    return log.finish(time.perf_counter() - t_start, audio_seconds, cancelled, args.partial_ok, summary)


def _shown(ln: Line) -> dict[str, Any]:
    found: dict[str, Any] = {k: str(p) for k, p in ln.inputs.items()}
    if ln.text:
        found["text"] = ln.text
    return found
