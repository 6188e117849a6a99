"""`oris bake`: Oris's strips in a .blend flattened into one Action for export (headless).

    python -m oris bake --blend shot_lipsync.blend -o shot_baked.blend [--object Face] [--include-nla]

Exit codes: 0 written; 2 bad usage, an unreadable --blend, an object not in the file, or nothing to bake."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

import bpy

from ..blender.bake import BakeError, bake
from ..blender.files import BlendError, open_blend, save_blend
from ..core.batch import EXIT_OK, EXIT_USAGE
from ..core.outputs import Labelled, OutputError, check_outputs


def run(args: argparse.Namespace, err: TextIO) -> int:
    out = Labelled("-o", Path(args.output))
    try:
        check_outputs([out], [Labelled("--blend", Path(args.blend))])
        notes = open_blend(Path(args.blend))
        missing = [name for name in args.object if name not in bpy.data.objects]
        if missing:
            raise BakeError(f"no object named {', '.join(map(repr, missing))} in {args.blend} (--object)")
        scene: Any = bpy.context.scene
        objects = [bpy.data.objects[n] for n in args.object] or list(scene.objects)
        report = bake(scene, objects, include_nla=args.include_nla)
        save_blend(out)
    except (BakeError, BlendError, OutputError, OSError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    for note in notes + report.notes:
        err.write(f"note: {note}\n")
    err.write(f"baked {report.curves} curves ({report.keys} keys) of {', '.join(report.datablocks)}, frames "
              f"{report.frames[0]}-{report.frames[1]}, into the Action {report.action!r} -> {args.output}\n")
    return EXIT_OK
