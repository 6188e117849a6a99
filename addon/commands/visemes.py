"""`oris visemes`: speech audio to viseme files, one file, several, or a batch manifest. No bpy.

    python -m oris visemes line.wav -o line.json
    python -m oris visemes --batch lines.csv -o out/ --summary out/summary.json [--chunk 3/20]

Manifest rows (CSV with a header, or a JSON list of objects): audio, and optionally text, text_file, output
and fps. Relative paths are relative to the manifest; without an output a row writes OUT/<audio stem>.<ext>.
A row fails alone; a row whose output an earlier run wrote from the same inputs and options is skipped
(its record sits beside the output, core.batch.Resume) unless --force. One warm worker serves every input.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..core.align import transcript_from
from ..core.audio import AudioError, decode_file
from ..core.batch import (
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    EXIT_WORKER,
    BatchLog,
    Resume,
    check_summary,
    reserved_output_problem,
    row_file_problem,
    run_identity,
    select_rows,
)
from ..core.formats import default_fps, render
from ..core.languages import AUTO, LanguageError, check_language
from ..core.manifest import ManifestError, Record, read_manifest
from ..core.outputs import (
    PROCESS_STARTED,
    InputIndex,
    Labelled,
    OutputError,
    PathIndex,
    PathKeys,
    check_outputs,
    refuse_if_input,
    remove_stale_temporaries,
    write_text,
)
from ..core.summary import WRITTEN, RowResult
from ..engine.client import Cancelled, WorkerClient, WorkerCrashed, WorkerError, WorkerTimeout
from ..engine.model import ModelError, ModelInfo, find_model, find_multilingual, model_files, models_identity
from ..lipsync import analyze, decoding_settings
from .animation import animation_options, curve_settings
from .progress import ProgressBar

SUFFIX = {"json": ".json", "tsv": ".tsv", "rhubarb-json": ".rhubarb.json", "rhubarb-tsv": ".rhubarb.tsv", "dat": ".dat"}


def command_inputs(args: argparse.Namespace, model: ModelInfo) -> list[Labelled]:
    """Every file a command reads, so that no output can be one of them."""
    inputs = [Labelled(name, path) for name, path in model_files(model)]
    if getattr(args, "text_file", None):
        inputs.append(Labelled("the transcript file", Path(args.text_file)))
    return inputs


def plan_viseme_outputs(args: argparse.Namespace) -> list[Labelled | None]:
    """Each input's output (None: stdout). Several inputs, an existing folder or a path ending in a
    separator mean a folder; two inputs that would write one file are refused before any work."""
    if not args.output:
        return [None] * len(args.audio)
    out = Path(args.output)
    if len(args.audio) == 1 and not out.is_dir() and not args.output.endswith(("/", os.sep)):
        return [Labelled("-o", out)]
    planned: list[Labelled | None] = []
    owners: dict[Path, str] = {}
    for audio in args.audio:
        target = out / (Path(audio).stem + SUFFIX[args.format])
        if target in owners:
            raise OutputError(f"{owners[target]} and {audio} would both write {target}; "
                              "give them different file names, or run them with different -o folders")
        owners[target] = audio
        planned.append(Labelled(f"the output for {audio}", target))
    return planned


def render_result(args: argparse.Namespace, model: ModelInfo, info: Any, result: Any, audio_path: str,
                  language: str) -> str:
    """One line's visemes in the chosen format, with what made them."""
    ran = result.posteriors.model  # the English viseme model, or the multilingual one for another language
    used = (find_multilingual(model) if ran == "multilingual" else None) or model
    extra: dict[str, Any] = {
        "mode": result.mode, "language": result.language or language, **animation_options(args),
        "model": {"sha256": used.sha256, "visemes": ran, "device": info.device if info else None},
    }
    if result.words:
        extra["words"] = result.words
    if result.heard:  # what the recognizer heard, for a pipeline to review
        extra["recognized_text"] = result.recognized_text
        extra["recognized"] = [{k: h[k] for k in ("start", "end", "text", "language", "trusted", "used") if k in h}
                               for h in result.heard]
    return render(args.format, result.animation, audio_path, extra)


def run(args: argparse.Namespace, err: TextIO) -> int:
    if args.fps is None:
        args.fps = default_fps(args.format)
        if args.format == "dat" and not args.quiet:
            err.write(f"note: -f dat numbers frames at {args.fps:g} fps, Moho's and Papagayo's default; give --fps "
                      "to match your project (e.g. --fps 30)\n")
    if args.batch:
        return run_batch(args, err)
    farm = [flag for flag, given in (("--rows", args.rows), ("--chunk", args.chunk), ("--summary", args.summary),
                                     ("--force", args.force), ("--partial-ok", args.partial_ok),
                                     ("--run-id", args.run_id)) if given]
    if farm:
        err.write(f"error: {', '.join(farm)} work on a --batch manifest (oris visemes --batch lines.csv -o out/)\n")
        return EXIT_USAGE
    if not args.audio:
        err.write("error: give audio file(s), or --batch MANIFEST\n")
        return EXIT_USAGE
    if len(args.audio) > 1 and not args.output:
        err.write("error: several inputs need -o FOLDER\n")
        return EXIT_USAGE
    try:
        settings = curve_settings(args)
        transcript = transcript_from(args.text, args.text_file, args.language)
        model = find_model()
        outputs = plan_viseme_outputs(args)
        inputs = command_inputs(args, model) + [Labelled("the audio", Path(a)) for a in args.audio]
        check_outputs([o for o in outputs if o is not None], inputs)
    except (ValueError, ModelError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    settings = decoding_settings(model.card, settings)
    show = not args.quiet and err.isatty()
    failures = worker_failures = 0
    cancel = threading.Event()
    with WorkerClient(device=args.device, timeout=args.timeout) as worker:
        for audio_path, out in zip(args.audio, outputs):
            t0 = time.perf_counter()
            try:
                decoded = decode_file(audio_path)
                bar = ProgressBar(err, show, Path(audio_path).name)
                try:
                    result = analyze(decoded.samples, worker, args.fps, settings, transcript, bar, cancel,
                                     recognize=not args.audio_only, language=args.language)
                finally:
                    bar.done()
            except AudioError as exc:
                err.write(f"error: {exc}\n")
                failures += 1
                continue
            except KeyboardInterrupt:
                cancel.set()
                raise
            except Cancelled:
                err.write("cancelled\n")
                return EXIT_CANCELLED
            except (WorkerCrashed, WorkerTimeout) as exc:  # this input fails; the next one gets a new worker
                err.write(f"error: {audio_path}: {exc}\n")
                failures += 1
                worker_failures += 1
                continue
            except WorkerError as exc:  # it cannot start: every other input would fail the same way
                err.write(f"error: {audio_path}: {exc}\n")
                return EXIT_WORKER
            info = worker.info
            text = render_result(args, model, info, result, audio_path, args.language)
            if out is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                try:
                    write_text(out, text)
                except OutputError as exc:
                    err.write(f"error: {exc}\n")
                    failures += 1
                    continue
            for w in decoded.warnings + result.warnings:
                err.write(f"warning: {audio_path}: {w}\n")
            if not args.quiet:
                closures = sum(1 for c in result.animation.cues if c.name == "PP")
                where = f" -> {out.path}" if out else ""
                err.write(f"{audio_path}: {decoded.duration:.2f} s, {len(result.animation.cues)} cues, {closures} closures, "
                          f"{len(result.animation.frames)} frames at {args.fps:g} fps, {result.mode} mode, "
                          f"{info.device if info else '?'}, {time.perf_counter() - t0:.2f} s{where}\n")
    if failures == len(args.audio):
        return EXIT_WORKER if worker_failures else EXIT_USAGE
    return EXIT_PARTIAL if failures else EXIT_OK


# ------------------------------------------------------------------------------ a batch manifest

COLUMNS = ("audio", "text", "text_file", "output", "fps", "language")
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
    language: str = AUTO
    error: str = ""
    inputs: dict[str, Path] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"row {self.number} ({self.where})"


def _line(record: Record, base: Path, out_dir: Path, suffix: str, fps: float, language: str) -> Line:
    line = Line(record.number, record.where, error=record.error, fps=fps, language=language)
    if line.error:
        return line
    f = record.fields
    line.audio = base / f["audio"]
    line.text = f.get("text") or None
    line.text_file = base / f["text_file"] if f.get("text_file") else None
    output, folder = _output_of(f, str(base), str(out_dir), suffix)
    line.output = Path(os.path.join(folder, output))
    if f.get("fps"):
        try:
            line.fps = float(f["fps"])
            if not 0 < line.fps <= 1000:
                raise ValueError
        except ValueError:
            line.error = f"fps {f['fps']!r} is not a frame rate above 0"
    if f.get("language"):
        try:
            line.language = check_language(f["language"])
        except LanguageError as exc:
            line.error = line.error or str(exc)
    line.inputs = {"audio": line.audio} | ({"text_file": line.text_file} if line.text_file else {})
    return line


def _output_of(fields: dict[str, str], base: str, out_dir: str, suffix: str) -> tuple[str, str]:
    """A row's output as (path, the folder it is relative to): its output column (relative to the manifest),
    else OUT/<audio stem><suffix>."""
    if fields.get("output"):
        return fields["output"], base
    return os.path.splitext(os.path.basename(fields["audio"]))[0] + suffix, out_dir


@dataclass
class Plan:
    """A batch's rows for this task, and what the whole manifest shares, read once before any row runs."""

    lines: list[Line]  # this task's share (--rows, --chunk), or every row
    shared: InputIndex  # the manifest and the model, by file identity
    every_input: PathIndex  # every row's inputs, by path only (no file is touched)
    every_output: PathIndex  # every row's output, by path only


def read_lines(args: argparse.Namespace, model: ModelInfo) -> Plan:
    """The task's rows, each checked against the output rule: its output is no input of any row (by path for
    the whole manifest, by file identity for its own inputs), not one of Oris's own files, and written by one
    row only; its inputs are regular files. A row that breaks a rule fails alone. Only the task's own rows
    touch the disk, so a 50-row task of a 100,000-row manifest starts at once."""
    if not args.output:
        raise ManifestError("--batch needs -o FOLDER for the outputs (rows without an output column write there)")
    manifest, out_dir = Path(args.batch), Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ManifestError(f"-o {out_dir} is a file; with --batch, -o names the folder for the outputs")
    records = read_manifest(manifest, COLUMNS, REQUIRED)
    base, suffix = os.path.abspath(manifest.parent), SUFFIX[args.format]
    out_folder = os.path.abspath(out_dir)
    every_input, every_output = PathIndex(), PathIndex()
    first_writer: dict[int, str] = {}  # row -> the earlier row writing its output
    for r in records:
        if r.error:
            continue
        f, label = r.fields, r.label
        every_input.add(f["audio"], base, label, "audio")
        if f.get("text_file"):
            every_input.add(f["text_file"], base, label, "text_file")
        key = every_output.add(*_output_of(f, base, out_folder, suffix), label, "output")
        if every_output.owner(key) != label:
            first_writer[r.number] = every_output.owner(key)
    numbers = [r.number for r in records]
    chosen = select_rows(numbers, numbers, args.rows, args.chunk)
    shared = InputIndex([Labelled("the manifest", manifest), *(Labelled(name, path) for name, path in model_files(model))])
    lines = [_line(r, manifest.parent, out_dir, suffix, args.fps, args.language) for r in records if r.number in chosen]
    probed: set[str] = set()
    keys = PathKeys()
    for ln in lines:
        if ln.error:
            continue
        ln.error = (next(filter(None, (row_file_problem(f"its {k}", p) for k, p in ln.inputs.items())), "")
                    or reserved_output_problem(ln.output, out_dir, keys))
        if not ln.error and ln.number in first_writer:
            ln.error = (f"its output {ln.output} is written by {first_writer[ln.number]} too; give one of them an "
                        "output column")
        if ln.error:
            continue
        out = Labelled("its output", ln.output)
        try:
            refuse_if_input(out, InputIndex([Labelled(f"its {k}", p) for k, p in ln.inputs.items()]))
            check_outputs([out], shared, probed=probed, also=[every_input])
        except OutputError as exc:
            ln.error = str(exc)
    return Plan(lines, shared, every_input, every_output)


def _options(args: argparse.Namespace, line: Line, model: ModelInfo) -> dict[str, Any]:
    return {"format": args.format, "fps": line.fps, **animation_options(args), "audio_only": args.audio_only, "text": line.text, "model": models_identity(model),
            "language": line.language}


def batch_options(args: argparse.Namespace, model: ModelInfo) -> dict[str, Any]:
    """The options that shape every row's output: part of the run's identity in its summary."""
    return {"format": args.format, "fps": args.fps, **animation_options(args), "audio_only": args.audio_only, "model": models_identity(model), "language": args.language}


def run_batch(args: argparse.Namespace, err: TextIO) -> int:
    try:
        if args.audio:
            raise ManifestError("give audio files or --batch MANIFEST, not both")
        settings = curve_settings(args)
        model = find_model()
        settings = decoding_settings(model.card, settings)
        identity = run_identity("visemes", args.run_id, Path(args.batch), batch_options(args, model))
        plan = read_lines(args, model)
        summary = check_summary(args.summary, identity, plan.shared, plan.every_input, plan.every_output)
    except (ManifestError, OutputError, ValueError, ModelError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    lines = plan.lines
    remove_stale_temporaries([ln.output.parent for ln in lines if not ln.error]
                             + ([summary.path.parent] if summary else []), PROCESS_STARTED)
    log = BatchLog("visemes", len(lines), err, identity)
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
                result = analyze(decoded.samples, worker, ln.fps, settings,
                                 transcript_from(ln.text, ln.text_file, ln.language), None, cancel,
                                 recognize=not args.audio_only, language=ln.language)
                write_text(Labelled(f"{ln.label}'s output", ln.output),
                           render_result(args, model, worker.info, result, str(ln.audio), ln.language))
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
                err.write(f"{log.progress()} {ln.label} {ln.audio.name} -> {ln.output}: {decoded.duration:.2f} s, "
                          f"{result.mode} mode, {seconds:.2f} s\n")
    return log.finish(time.perf_counter() - t_start, audio_seconds, cancelled, args.partial_ok, summary)


def _shown(ln: Line) -> dict[str, Any]:
    found: dict[str, Any] = {k: str(p) for k, p in ln.inputs.items()}
    if ln.text:
        found["text"] = ln.text
    return found
