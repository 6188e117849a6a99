"""Opening and saving .blend files for the headless commands, under the output-safety rule
(core.outputs): a .blend is saved to a temporary file beside its target, then renamed onto it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bpy

from ..core.outputs import Labelled, OutputError, save_with


class BlendError(ValueError):
    """A .blend file that cannot be opened; the message says which and why."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].removeprefix("Error: ").strip() if text else type(exc).__name__


def _flush_c_streams() -> None:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def blender_quiet() -> Iterator[list[str]]:
    """Blender's C code prints its own notes (Read blend, region warnings, Saved as, EGL errors) straight
    to the process's stdout and stderr; catch them so that Oris's own lines stay readable, and hand them
    back (as the yielded list, filled when the block ends). ORIS_BLENDER_LOG=1 lets them through."""
    lines: list[str] = []
    if os.environ.get("ORIS_BLENDER_LOG") or os.name != "posix":
        yield lines
        return
    sys.stdout.flush()
    sys.stderr.flush()
    _flush_c_streams()
    with tempfile.TemporaryFile() as capture:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _flush_c_streams()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", "replace").splitlines())


def hide_exit_report() -> None:
    """Blender reports its unfreed memory blocks on stdout as the process ends: not the user's concern."""
    if os.name == "posix" and not os.environ.get("ORIS_BLENDER_LOG"):
        sys.stdout.flush()
        _flush_c_streams()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


def open_blend(path: Path) -> list[str]:
    """Open the file; return the notes a user should see (a file saved by a newer Blender loses data here)."""
    if not path.is_file():
        raise BlendError(f"blend file not found: {path}" if not path.exists() else f"{path} is not a .blend file")
    try:
        with blender_quiet() as log:  # Blender resolves relative paths against its own start folder: give it ours
            bpy.ops.wm.open_mainfile(filepath=os.path.abspath(path), load_ui=False)
    except RuntimeError as exc:
        raise BlendError(f"cannot open {path} as a .blend file: {_first_line(exc)}") from None
    notes = []
    for line in log:
        newer = re.search(r"written by newer Blender binary \((\d+)\.(\d+)\)", line)
        if newer:
            saved_by = f"{int(newer.group(1)) // 100}.{int(newer.group(1)) % 100}"
            notes.append(f"{path.name} was saved by Blender {saved_by}, newer than this Blender "
                         f"{bpy.app.version_string}; data that this version does not know is lost in the output")
    return notes


def blend_path(path: str) -> str:
    """A file path to store in the open .blend: relative to that file (`//...`, Blender's convention) when it has
    been saved, the path is on the same drive and the preference for relative paths is on; otherwise absolute.
    Never relative to the working folder, which Blender would read against whatever folder it next starts in.
    Saving the file elsewhere (save_blend) rebases `//` paths onto the new file's folder."""
    absolute = os.path.abspath(bpy.path.abspath(path))  # `//` against the open file, then a plain one against the cwd
    prefs = bpy.context.preferences
    relative = prefs is None or prefs.filepaths.use_relative_paths
    if not bpy.data.filepath or not relative:
        return absolute
    try:
        return str(bpy.path.relpath(absolute))
    except ValueError:  # another drive (Windows): no relative path reaches it
        return absolute


def save_blend(out: Labelled) -> None:
    """Save the open file as a copy at out.path, atomically; OutputError when it cannot be written."""
    prefs = bpy.context.preferences
    if bpy.app.background and prefs is not None:
        prefs.filepaths.save_version = 0  # no .blend1 backups beside the outputs

    def save(tmp: str) -> None:
        try:
            with blender_quiet():
                # relative_remap (the default) rebases every `//` path from the open file's folder onto tmp's,
                # which is the output's: the artist's own paths and those Oris stored (blend_path) keep their files
                bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(tmp), copy=True, relative_remap=True)
        except RuntimeError as exc:
            raise OutputError(f"Blender could not save {out.label} {out.path}: {_first_line(exc)}") from None

    save_with(out, save)
