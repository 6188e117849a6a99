"""`oris lipsync --scene-strips`: a scene's dialogue from its sequencer, in one Blender process, one worker and
one save.

    python -m oris lipsync --blend shot.blend --scene-strips -o shot_lipsync.blend [--strip-channel 3=Anna]

Each sound strip whose name starts with a character's object name (`Anna:line_01`), or that lies on a channel
mapped to one, is lip-synced on that character at the strip's own frame; the strip stays where it is and is never
duplicated. A line that fails is reported and the others go on; the shot is saved once, atomically, when at
least one line was written. Exit code: 0 all lines written, 1 some failed, 2 none (or bad usage), 130 cancelled.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TextIO

import bpy

from ..blender import lipsync
from ..blender.dialogue import character_meshes, scene_lines
from ..blender.files import BlendError, open_blend, save_blend
from ..core.batch import EXIT_CANCELLED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from ..core.dialogue import parse_channel_map
from ..core.manifest import ManifestError
from ..core.outputs import Labelled, OutputError, check_outputs
from ..engine.client import WorkerClient
from ..engine.model import ModelError, find_model
from .animation import curve_settings
from .lipsync import ROW_ERRORS, load_preset


def _output(args: argparse.Namespace) -> Path:
    blend, out = Path(args.blend), Path(args.output)
    if out.is_dir() or args.output.endswith(("/", "\\")):
        out = out / f"{blend.stem}_dialogue.blend"
    return out


def run(args: argparse.Namespace, err: TextIO) -> int:
    try:
        if not args.blend or not args.output:
            raise ManifestError("lipsync --scene-strips needs --blend and -o")
        if args.audio or args.object or args.batch:
            raise ManifestError("--scene-strips reads the lines from the sequencer: leave out --audio, --object and "
                                "--batch")
        channels = parse_channel_map(args.strip_channel)
        out = _output(args)
        check_outputs([Labelled("-o", out)], [Labelled("--blend", Path(args.blend))])
        settings, model, preset = curve_settings(args), find_model(), load_preset(args.preset)
        notes = open_blend(Path(args.blend))
    except (ManifestError, OutputError, BlendError, ModelError, ValueError, OSError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    scene = bpy.context.scene
    lines, left_out = scene_lines(scene, channels)
    for note in notes + left_out:
        err.write(f"note: {note}\n")
    if not lines:
        err.write(f"error: no sound strip in {args.blend} is a character's line; name the strips '<object>:...' "
                  "or map their channels (--strip-channel CHANNEL=OBJECT)\n")
        return EXIT_USAGE
    t0, audio_seconds, written, failed = time.perf_counter(), 0.0, 0, 0
    try:
        with WorkerClient(device=args.device, timeout=args.timeout) as worker:
            for number, line in enumerate(lines, 1):
                what = f"[{number}/{len(lines)}] {line.strip.name} on {line.character}"
                t_line = time.perf_counter()
                try:
                    report = lipsync.run(
                        scene, character_meshes(line.character), line.strip.path, worker, preset=preset[0],
                        custom=preset[1], start_frame=line.strip.start, settings=settings, card=model.card,
                        recognize=not args.audio_only, existing_animation=args.existing_animation,
                        language=args.language, keep_overlapping=args.keep_overlapping, add_sound=not args.no_sound,
                        jaw_degrees=args.jaw_degrees, extend_range=args.fit_range)
                except ROW_ERRORS as exc:
                    failed += 1
                    err.write(f"{what}: failed: {exc}\n")
                    continue
                written += 1
                audio_seconds += (report.end_frame - report.start_frame) / lipsync.scene_fps(scene)
                if not args.quiet:
                    shown = f" ({'; '.join(report.notes)})" if report.notes else ""
                    err.write(f"{what}: {report.keys_written} keys, frames {report.start_frame}-{report.end_frame:.0f}, "
                              f"{report.mode} mode, {time.perf_counter() - t_line:.2f} s{shown}\n")
    except KeyboardInterrupt:
        err.write("cancelled: nothing was saved\n")
        return EXIT_CANCELLED
    if written:
        try:
            save_blend(Labelled("-o", out))
        except OutputError as exc:
            err.write(f"error: {exc}\n")
            return EXIT_USAGE
    seconds = time.perf_counter() - t0
    speed = f", {audio_seconds / seconds:.0f}x real time" if seconds > 0 and audio_seconds else ""
    err.write(f"{written} of {len(lines)} lines written ({audio_seconds:.1f} s of speech in {seconds:.1f} s{speed})"
              + (f" -> {out}\n" if written else "; nothing saved\n"))
    return EXIT_OK if not failed else EXIT_PARTIAL if written else EXIT_USAGE
