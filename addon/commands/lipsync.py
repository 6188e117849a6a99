"""Headless lip sync: one line, or a manifest of thousands, in one Blender process with one worker.

    python -m oris lipsync --blend IN.blend --object Face --audio line.wav -o OUT.blend
    blender -b -c oris lipsync --batch lines.csv -o out/ --summary out/summary.json

Manifest rows (CSV with a header, or a JSON list of objects): blend, object (several joined by ';'),
audio, and optionally start_frame, output, text and text_file. Relative paths are relative to the
manifest. Rows that write the same output from the same .blend build on each other (several lines
into one shot). Each row reports a line; a row that cannot be read or fails at any stage is reported
with its row number and reason, and the next row runs. Outputs follow core.outputs: never an input,
checked before any work, written atomically. Exit code: 0 all rows written, 1 some failed, 2 none
(or bad usage), 130 cancelled; the summary line always prints.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import bpy

from ..blender import existing, lipsync
from ..blender.files import BlendError, open_blend, save_blend
from ..blender.shapekeys import EditError
from ..core.align import transcript_from
from ..core.audio import AudioError
from ..core.batch import (
    EXIT_USAGE,
    BatchLog,
    Resume,
    check_summary,
    reserved_output_problem,
    row_file_problem,
    run_identity,
    select_rows,
)
from ..core.curves import CurveSettings
from ..core.keys import parse_frame
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
)
from ..core.rigs import Preset, RigError
from ..core.summary import WRITTEN, RowResult, RunIdentity
from ..engine.client import Cancelled, WorkerClient, WorkerError
from ..engine.model import ModelError, ModelInfo, find_model, model_files, models_identity
from .animation import animation_options, curve_settings

COLUMNS = ("blend", "object", "audio", "start_frame", "output", "text", "text_file", "existing_animation", "language")
REQUIRED = ("blend", "object", "audio")
COMMAND_LINE = "the command line"
# what a row can fail with and say so in one line; anything else is reported with its type
ROW_ERRORS = (AudioError, RigError, EditError, BlendError, OutputError, ManifestError, WorkerError, Cancelled, ValueError)


@dataclass
class Row:
    number: int
    where: str
    blend: Path = Path()
    objects: list[str] = field(default_factory=list)
    audio: Path = Path()
    start_frame: int | None = None
    output: Path = Path()
    text: str | None = None
    text_file: Path | None = None
    existing_animation: str | None = None  # None: the command line's --existing-animation
    language: str | None = None  # None: the command line's --language
    error: str = ""

    @property
    def label(self) -> str:
        return f"row {self.number} ({self.where})"

    def inputs(self, seen_from: Row | None = None) -> list[Labelled]:
        """The files this row reads, named as `seen_from`'s message would name them."""
        if self.where == COMMAND_LINE:
            names = {"blend": "--blend", "audio": "--audio", "text_file": "--text-file"}
        else:
            owner = "its" if seen_from is self else f"{self.label}'s"
            names = {k: f"{owner} {k}" for k in ("blend", "audio", "text_file")}
        found = [Labelled(names["blend"], self.blend), Labelled(names["audio"], self.audio)]
        if self.text_file is not None:
            found.append(Labelled(names["text_file"], self.text_file))
        return found


def _row_from_record(record: Record, base: Path, out_dir: Path | None) -> Row:
    row = Row(record.number, record.where, error=record.error)
    if row.error:
        return row
    f = record.fields
    row.blend, row.audio = base / f["blend"], base / f["audio"]
    row.objects = [o.strip() for o in f["object"].split(";") if o.strip()]
    row.text = f.get("text") or None
    row.text_file = base / f["text_file"] if f.get("text_file") else None
    try:
        row.start_frame = parse_frame(f["start_frame"]) if f.get("start_frame") else None
    except ValueError as exc:
        row.error = str(exc)
    if f.get("language"):
        try:
            row.language = check_language(f["language"])
        except LanguageError as exc:
            row.error = row.error or str(exc)
    if f.get("existing_animation"):
        row.existing_animation = f["existing_animation"].strip().lower()
        if row.existing_animation not in existing.CHOICES:
            row.error = row.error or (f"existing_animation {f['existing_animation']!r} is none of "
                                      f"{', '.join(existing.CHOICES)}")
    output = _output_of(f, str(base), out_dir)
    if output is not None:
        row.output = Path(os.path.join(output[1], output[0]))
    else:
        row.error = row.error or "no output column and no -o folder"
    return row


def _output_of(fields: dict[str, str], base: str, out_dir: Path | str | None) -> tuple[str, str] | None:
    """A row's output as (path, the folder it is relative to): its output column (relative to the manifest),
    else OUT/<blend stem>_<audio stem>.blend; None without either."""
    if fields.get("output"):
        return fields["output"], base
    if out_dir is None:
        return None
    stem = [os.path.splitext(os.path.basename(fields[k]))[0] for k in ("blend", "audio")]
    return f"{stem[0]}_{stem[1]}.blend", str(out_dir)


@dataclass
class Plan:
    """A run's rows (a farm task's share, or every row), and what the whole manifest shares."""

    rows: list[Row]
    shared: InputIndex  # the model, the preset, the manifest: by file identity
    every_input: PathIndex  # every row's inputs, by path only (no file is touched)
    every_output: PathIndex  # every row's output, by path only


def plan_rows(args: argparse.Namespace, shared_inputs: list[Labelled]) -> Plan:
    """The rows this run does, checked: only the task's own rows touch the disk, so a 50-row task of a
    100,000-row manifest starts at once. Rows that write one output build one shot from one .blend and
    stay in one task."""
    shared = InputIndex(shared_inputs)
    every_input, every_output = PathIndex(), PathIndex()
    if not args.batch:
        rows = [_row_from_args(args)]
        for inp in rows[0].inputs():
            every_input.add(str(inp.path), os.getcwd(), "", inp.label)
        every_output.add(str(rows[0].output), os.getcwd(), "", "-o")
        check_rows(rows, shared, every_input, None)
        return Plan(rows, shared, every_input, every_output)
    manifest = Path(args.batch)
    out_dir = Path(args.output) if args.output else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise ManifestError(f"-o {out_dir} is a file; with --batch, -o names the folder for the outputs")
    records = read_manifest(manifest, COLUMNS, REQUIRED)
    base = os.path.abspath(manifest.parent)
    out_folder = os.path.abspath(out_dir) if out_dir is not None else None
    builders: dict[str, tuple[int, str, str]] = {}  # output -> its first row: number, label, .blend
    leader: dict[int, int] = {}
    conflict: dict[int, str] = {}
    for r in records:
        if r.error:
            continue
        f = r.fields
        label = r.label
        blend = every_input.add(f["blend"], base, label, "blend")
        every_input.add(f["audio"], base, label, "audio")
        if f.get("text_file"):
            every_input.add(f["text_file"], base, label, "text_file")
        planned = _output_of(f, base, out_folder)
        if planned is None:
            continue
        output, folder = planned
        first = builders.setdefault(every_output.add(output, folder, label, "output"), (r.number, label, blend))
        leader[r.number] = first[0]
        if first[2] != blend:
            conflict[r.number] = (f"its output {os.path.join(folder, output)} is written by {first[1]} from "
                                  f"{first[2]}; rows build on one output only from the same .blend; give this row "
                                  "its own output")
    numbers = [r.number for r in records]
    chosen = select_rows(numbers, [leader.get(n, n) for n in numbers], args.rows, args.chunk)
    rows = [_row_from_record(r, manifest.parent, out_dir) for r in records if r.number in chosen]
    for row in rows:
        row.error = row.error or conflict.get(row.number, "")
    check_rows(rows, shared, every_input, out_dir)
    return Plan(rows, shared, every_input, every_output)


def _row_from_args(args: argparse.Namespace) -> Row:
    missing = [flag for flag, value in (("--blend", args.blend), ("--object", args.object), ("--audio", args.audio),
                                        ("-o", args.output)) if not value]
    if missing:
        raise ManifestError(f"lipsync needs {', '.join(missing)} (or --batch MANIFEST)")
    blend, audio, output = Path(args.blend), Path(args.audio), Path(args.output)
    if output.is_dir() or args.output.endswith(("/", os.sep)):  # a folder: the file gets the batch's name
        output = output / f"{blend.stem}_{audio.stem}.blend"
    return Row(1, COMMAND_LINE, blend, list(args.object), audio, args.start_frame, output, args.text,
               Path(args.text_file) if args.text_file else None)


def check_rows(rows: list[Row], shared: InputIndex, every_input: PathIndex, out_dir: Path | None) -> None:
    """The output rule for the run's rows before any work: an output is no input of any row, can be written,
    and is not one of Oris's own files; a batch row reads only regular files. A row that breaks it fails alone."""
    probed: set[str] = set()
    keys = PathKeys()
    for row in rows:
        if row.error:
            continue
        if row.where != COMMAND_LINE:  # a single line may read its transcript from a pipe (/dev/stdin)
            row.error = (next(filter(None, (row_file_problem(i.label, i.path) for i in row.inputs(row))), "")
                         or reserved_output_problem(row.output, out_dir, keys))
            if row.error:
                continue
        out = Labelled("-o" if row.where == COMMAND_LINE else "its output", row.output)
        try:
            refuse_if_input(out, InputIndex(row.inputs(row)))  # its own inputs first, so the message says "its audio"
            check_outputs([out], shared, regular_only=True, probed=probed, also=[every_input])
        except OutputError as exc:
            row.error = str(exc)


def load_preset(name: str) -> tuple[str, Preset | None]:
    """A preset's name, or a custom mapping saved as JSON (the panel's Save, or written by hand)."""
    if not name.lower().endswith(".json"):
        return name, None
    try:
        return "auto", Preset.from_json(Path(name).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read the preset {name}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"the preset {name} is not an Oris preset file: {exc}") from None


def process_row(row: Row, worker: WorkerClient, settings: CurveSettings, preset: tuple[str, Preset | None],
                fit_range: bool, card: dict, written: set[str], recognize: bool = True,
                existing_animation: str = "keep", language: str = AUTO, keep_overlapping: bool = False,
                add_sound: bool = True, jaw_degrees: float | None = None) -> lipsync.ApplyReport:
    """One row: its .blend (or the output earlier rows wrote), lip-synced with the preset (a name, or
    "auto" and a custom mapping, as load_preset gives them), saved."""
    key = os.path.realpath(row.output)
    opened = open_blend(row.output if key in written else row.blend)
    objects: list[Any] = []
    for name in row.objects:
        ob = bpy.data.objects.get(name)
        if ob is None:
            meshes = ", ".join(o.name for o in bpy.data.objects if o.type == "MESH")[:300]
            raise RigError(f"no object named {name!r} in {row.blend.name} (meshes: {meshes})")
        objects.append(ob)
    scene: Any = bpy.context.scene
    report = lipsync.run(scene, objects, str(row.audio), worker, preset=preset[0], custom=preset[1],
                         start_frame=row.start_frame if row.start_frame is not None else scene.frame_start,
                         settings=settings, transcript=transcript_from(row.text, row.text_file, row.language or language),
                         extend_range=fit_range, card=card, recognize=recognize,
                         existing_animation=row.existing_animation or existing_animation,
                         language=row.language or language, keep_overlapping=keep_overlapping, add_sound=add_sound,
                         jaw_degrees=jaw_degrees)
    save_blend(Labelled(f"{row.label}'s output", row.output))
    written.add(key)
    report.notes = opened + report.notes
    return report


@dataclass
class Batch:
    """What every row of a run shares, read and checked once before any row runs."""

    rows: list[Row]
    settings: CurveSettings
    model: ModelInfo
    preset: tuple[str, Preset | None]  # as load_preset gives it
    summary: Labelled | None
    identity: RunIdentity


def batch_options(args: argparse.Namespace, model: ModelInfo, preset: tuple[str, Preset | None]) -> dict[str, Any]:
    """The options that shape every row's output: part of the run's identity in its summary."""
    name, custom = preset
    return {"preset": custom.to_json() if custom else name, **animation_options(args), "audio_only": args.audio_only, "fit_range": args.fit_range,
            "existing_animation": args.existing_animation, "model": models_identity(model), "language": args.language,
            "keep_overlapping": args.keep_overlapping, "no_sound": args.no_sound, "jaw_degrees": args.jaw_degrees}


def _prepare(args: argparse.Namespace) -> Batch:
    settings = curve_settings(args)
    model = find_model()
    shared = [Labelled(name, path) for name, path in model_files(model)]
    preset = load_preset(args.preset)  # read once now, so a bad file stops the batch before any row
    if preset[1] is not None:
        shared.append(Labelled("--preset", Path(args.preset)))
    if args.batch:
        shared.append(Labelled("the manifest", Path(args.batch)))
    elif args.run_id:
        raise ManifestError("--run-id works on a --batch manifest")
    identity = run_identity("lipsync", args.run_id, Path(args.batch) if args.batch else None,
                            batch_options(args, model, preset))
    plan = plan_rows(args, shared)
    # every input, also of a row refused for its output, is safe from the summary
    summary = check_summary(args.summary, identity, plan.shared, plan.every_input, plan.every_output)
    if not args.batch and plan.rows[0].error:
        raise ManifestError(plan.rows[0].error)
    return Batch(plan.rows, settings, model, preset, summary, identity)


def _fingerprint(resume: Resume, row: Row, args: argparse.Namespace, batch: Batch) -> str | None:
    """What the row's output depends on: its input files, and every option that shapes it."""
    name, custom = batch.preset
    options = {"preset": custom.to_json() if custom else name, **animation_options(args), "audio_only": args.audio_only, "fit_range": args.fit_range,
               "start_frame": row.start_frame, "objects": row.objects, "text": row.text, "model": batch.model.sha256,
               "existing_animation": row.existing_animation or args.existing_animation,
               "language": row.language or args.language, "keep_overlapping": args.keep_overlapping,
               "no_sound": args.no_sound, "jaw_degrees": args.jaw_degrees}
    return resume.fingerprint({k: i.path for k, i in zip(("blend", "audio", "text_file"), row.inputs())}, options)


def _groups(rows: list[Row]) -> dict[str, list[Row]]:
    """Readable rows by the output they write, in manifest order (such rows build on each other)."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        if not row.error:
            groups.setdefault(os.path.realpath(row.output), []).append(row)
    return groups


def run(args: argparse.Namespace, err: TextIO) -> int:
    if args.scene_strips:
        from .scene_dialogue import run as run_scene

        return run_scene(args, err)
    try:
        batch = _prepare(args)
    except (ManifestError, OutputError, ValueError, OSError, ModelError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    rows = batch.rows
    remove_stale_temporaries([row.output.parent for row in rows if not row.error]
                             + ([batch.summary.path.parent] if batch.summary else []), PROCESS_STARTED)
    log = BatchLog("lipsync", len(rows), err, batch.identity)
    resume = Resume("lipsync", args.force)
    # a batch row's resume record: what made its output (a single line keeps none, and never reads its
    # --text-file twice: that may be a pipe)
    prints = {row.number: _fingerprint(resume, row, args, batch) for row in rows if not row.error and args.batch}
    done = {row.number for group in _groups(rows).values() if args.batch
            and resume.finished(group[0].output, [prints[r.number] for r in group]) for row in group}
    audio_seconds = 0.0
    t_start = time.perf_counter()
    written: set[str] = set()
    into: dict[str, list[str | None]] = {}  # per output: the fingerprints of the rows this run wrote into it
    cancelled = False
    with WorkerClient(device=args.device, timeout=args.timeout) as worker:
        for row in rows:
            what = f"{row.label} {row.audio.name}" if row.audio.name else row.label
            if cancelled:
                log.not_run(row.number, row.where, _inputs(row))
                continue
            if row.error:
                log.fail(row.number, row.where, what, row.error, inputs=_inputs(row))
                continue
            if row.number in done:
                log.skipped(row.number, row.where, row.output, _inputs(row))
                continue
            t0 = time.perf_counter()
            try:
                report = process_row(row, worker, batch.settings, batch.preset, args.fit_range, batch.model.card,
                                     written, recognize=not args.audio_only, existing_animation=args.existing_animation,
                                     language=args.language, keep_overlapping=args.keep_overlapping,
                                     add_sound=not args.no_sound, jaw_degrees=args.jaw_degrees)
                if args.batch:  # a batch row keeps a record beside its output
                    key = os.path.realpath(row.output)
                    into[key] = into.get(key, []) + [prints[row.number]]
                    resume.record(row.output, into[key], f"{row.label}'s record")
            except KeyboardInterrupt:
                cancelled = True
                err.write(f"{log.progress()} {row.label} cancelled\n")
                log.not_run(row.number, row.where, _inputs(row))
                continue
            except ROW_ERRORS as exc:
                log.fail(row.number, row.where, what, str(exc), time.perf_counter() - t0, _inputs(row))
                continue
            except Exception as exc:  # one row's surprise must not stop the other rows
                log.fail(row.number, row.where, what, f"unexpected {type(exc).__name__}: {exc}",
                         time.perf_counter() - t0, _inputs(row))
                continue
            seconds = time.perf_counter() - t0
            log.add(RowResult(row.number, row.where, WRITTEN, "", round(seconds, 3), str(row.output), _inputs(row),
                              report.mode))
            audio_seconds += (report.end_frame - report.start_frame) / lipsync.scene_fps(bpy.context.scene)
            if not args.quiet:
                notes = f" ({'; '.join(report.notes)})" if report.notes else ""
                err.write(f"{log.progress()} {row.label + ' ' if args.batch else ''}{row.audio.name} -> {row.output}: {report.keys_written} keys on "
                          f"{', '.join(report.targets)}, frames {report.start_frame}-{report.end_frame:.0f}, "
                          f"{report.mode} mode, {seconds:.2f} s{notes}\n")
    return log.finish(time.perf_counter() - t_start, audio_seconds, cancelled, args.partial_ok, batch.summary)


def _inputs(row: Row) -> dict[str, Any]:
    if row.error and row.blend == Path():
        return {}
    found: dict[str, Any] = {"blend": str(row.blend), "object": row.objects, "audio": str(row.audio)}
    if row.start_frame is not None:
        found["start_frame"] = row.start_frame
    if row.text_file is not None:
        found["text_file"] = str(row.text_file)
    if row.existing_animation is not None:
        found["existing_animation"] = row.existing_animation
    return found

