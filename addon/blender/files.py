"""Opening and saving .blend files for the headless commands, under the output-safety rule
(core.outputs): a .blend is saved to a temporary file beside its target, then renamed onto it."""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from ..core.outputs import Labelled, OutputError, save_with


class BlendError(ValueError):
    """A .blend file that cannot be opened; the message says which and why."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].removeprefix("Error: ").strip() if text else type(exc).__name__


def open_blend(path: Path) -> None:
    if not path.is_file():
        raise BlendError(f"blend file not found: {path}" if not path.exists() else f"{path} is not a .blend file")
    try:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(path), load_ui=False)  # Blender resolves against its own start folder
    except RuntimeError as exc:
        raise BlendError(f"cannot open {path} as a .blend file: {_first_line(exc)}") from None


def save_blend(out: Labelled) -> None:
    """Save the open file as a copy at out.path, atomically; OutputError when it cannot be written."""
    prefs = bpy.context.preferences
    if bpy.app.background and prefs is not None:
        prefs.filepaths.save_version = 0  # no .blend1 backups beside the outputs

    def save(tmp: str) -> None:
        try:
            bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(tmp), copy=True)
        except RuntimeError as exc:
            raise OutputError(f"Blender could not save {out.label} {out.path}: {_first_line(exc)}") from None

    save_with(out, save)
