"""`oris contact`: key a two-head contact in a .blend file and write a report (headless).

Exit codes: 0 written; 1 the contact was planned but failed its checks (or the file's heads cannot take it);
2 bad usage or unreadable input: -o or --report refused, a --blend that cannot be read, a head, bone or lip
point that is not in the file, or a contact that would leave Blender's frame range."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, TextIO

import bpy

from ..blender.contact import ContactFailed, HeadSpec, PickError, run_contact
from ..blender.files import BlendError, open_blend, save_blend
from ..blender.shapekeys import EditError
from ..core.contact import ContactError, ContactSettings
from ..core.outputs import Labelled, OutputError, check_outputs, write_text
from .progress import ProgressBar

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _objects() -> str:
    return ", ".join(o.name for o in bpy.data.objects if o.type in ("MESH", "ARMATURE", "EMPTY"))[:300]


def _head(name: str, bone: str, lip: str, facing: str, label: str) -> HeadSpec:
    """The head picked by --a/--b and its options; PickError when a name is not in the file."""
    ob = bpy.data.objects.get(name)
    collection = bpy.data.collections.get(name)
    if ob is None and collection is not None:  # a character's collection: its armature
        rigs = [o for o in collection.all_objects if o.type == "ARMATURE"]
        if len(rigs) != 1:
            raise PickError(f"collection {name!r} for head {label} holds {len(rigs)} armatures "
                            f"({', '.join(r.name for r in rigs)[:200] or 'none'}); name the character's armature")
        ob = rigs[0]
    if ob is None:
        raise PickError(f"no object or collection named {name!r} for head {label} (objects: {_objects()})")
    spec = HeadSpec(ob, bone=bone, facing=facing)
    if lip:
        target = bpy.data.objects.get(lip)
        if target is not None:
            spec.lip_object = target
        elif lip.isdigit():
            spec.lip_vertex = int(lip)
        elif any(o.type == "MESH" and o.vertex_groups.get(lip) is not None for o in bpy.data.objects):
            spec.lip_group = lip
        else:
            raise PickError(f"no object or vertex group named {lip!r} for head {label}'s lip point "
                            f"(--{label.lower()}-lips; objects: {_objects()})")
    return spec


class StageBar:
    """A progress bar for each stage of the contact (measuring, each plan's frame checks), on one line of the
    terminal; silent when disabled (stderr is not a terminal, or -q)."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self._stage: str | None = None
        self._bar: ProgressBar | None = None

    def __call__(self, stage: str, share: float) -> None:
        if stage != self._stage or self._bar is None:
            self.done()
            self._stage, self._bar = stage, ProgressBar(self.stream, self.enabled, f"contact: {stage}")
        self._bar(share)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.done()
        self._stage, self._bar = None, None


def settings_from_args(args: argparse.Namespace) -> ContactSettings:
    return ContactSettings(
        contact_frame=args.contact_frame, approach_seconds=args.approach, hold_seconds=args.hold,
        release_seconds=args.release, leader=args.leader, tilt_side=args.tilt_side.upper(),
        tilt_degrees=None if args.tilt == "auto" else float(args.tilt), eye_strength=args.eyes,
        pucker_strength=args.pucker, compression_limit_mm=args.compression_mm,
        stretch_limit=args.max_stretch / 100.0, walk_limit_m=args.max_walk, anticipation=args.anticipation,
        existing_animation=args.existing_animation,
    ).validated()


def plan_outputs(args: argparse.Namespace) -> tuple[Labelled, Labelled | None]:
    """-o and --report, checked before any work: neither is the input .blend, the model, nor each other."""
    out = Labelled("-o", Path(args.output))
    report = Labelled("--report", Path(args.report)) if args.report else None
    inputs = [Labelled("the input .blend", Path(args.blend))] if args.blend else []
    check_outputs([out] + ([report] if report else []), inputs, regular_only=True)
    return out, report


def run(args: argparse.Namespace, err: TextIO) -> int:
    try:
        out, report_out = plan_outputs(args)
        settings = settings_from_args(args)
    except (OutputError, ContactError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    opened: list[str] = []
    bar = StageBar(err, not args.quiet and err.isatty())
    try:
        if args.blend:
            opened = open_blend(Path(args.blend))
        scene: Any = bpy.context.scene
        spec_a = _head(args.a, args.a_bone, args.a_lips, args.a_facing, "A")
        spec_b = _head(args.b, args.b_bone, args.b_lips, args.b_facing, "B")
        t0 = time.perf_counter()
        try:
            report = run_contact(scene, spec_a, spec_b, settings, on_progress=bar)
        finally:
            bar.done()  # the line is clear before any message
    except ContactFailed as exc:  # the report says what each attempt broke, and where: keep it
        err.write(f"error: {exc}\n")
        if report_out is not None:
            try:
                write_text(report_out, exc.report.to_json())
                err.write(f"the report of every attempt is in {report_out.path}; {out.path} was not written\n")
            except OutputError as write_error:
                err.write(f"error: {write_error}\n")
        return EXIT_FAILED
    except (PickError, BlendError) as exc:  # bad input: nothing is written, as for a refused -o
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except (ContactError, EditError, RuntimeError, ValueError) as exc:
        err.write(f"error: {exc}\n")
        if report_out is not None:  # refused before any plan: say so there too
            try:
                write_text(report_out, json.dumps({"version": 1, "passed": False, "failures": [str(exc)], "attempts": []},
                                                  indent=1) + "\n")
            except OutputError as write_error:
                err.write(f"error: {write_error}\n")
        return EXIT_FAILED
    try:  # the .blend first: a report never describes a file that is not there
        save_blend(out)
        if report_out is not None:
            write_text(report_out, report.to_json())
    except OutputError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_FAILED
    if not args.quiet:
        for note in opened + report.notes:
            err.write(f"note: {note}\n")
        err.write(f"contact: {report.brief()}; frames {report.plan['start_frame']:.0f}-{report.plan['end_frame']:.0f}, "
                  f"{report.plan['keys_written']} keys, {time.perf_counter() - t0:.2f} s -> {out.path}\n")
    return EXIT_OK
