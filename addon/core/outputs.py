"""Output safety, one rule for every command. No bpy.

- An output is never one of the command's inputs (audio, transcript, .blend, manifest, model),
  compared after symlinks and relative paths are resolved, hard links included.
- Every output is checked before any work starts: its folder can be written (a missing folder is
  created when the file is written), it is not a folder, and no two outputs are the same file.
- Files are written atomically: a temporary file in the same folder, then a rename, so an
  interrupted or failed write never leaves half a file in place of a good one. The temporary
  names (`.NAME.oris-tmp-XXXXXXXX`) match no output pattern (`*.json`, `*.blend`), and a batch
  removes the ones a killed run left behind (remove_stale_temporaries).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


class OutputError(ValueError):
    """An output that cannot or must not be written; the message says which and what to do."""


@dataclass(frozen=True)
class Labelled:
    """A path with what it is to the user: 'the audio', '-o', 'row 3 output'."""

    label: str
    path: Path


def _real(path: Path) -> str:
    return os.path.realpath(os.path.abspath(path))


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


def _nearest_existing(folder: Path) -> Path:
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


class PathKeys:
    """A path's identity as text alone (absolute, `.` and `..` folded, case folded where the system ignores
    case), touching no file: the manifest-wide checks of a farm task run on paths only, so a 50-row task of a
    100,000-row manifest costs no system call per row. A task's own rows get the full check (InputIndex)."""

    def __init__(self) -> None:
        self._cwd = os.getcwd()
        self._known: dict[tuple[str | None, str], str] = {}  # many rows name one .blend

    def __call__(self, path: Path | str, base: str | None = None) -> str:
        """`base` (an absolute folder) for a path relative to it; else relative to the working folder."""
        text = os.fspath(path)
        if (base and os.sep == "/" and not text.startswith("/") and not text.endswith("/") and "//" not in text
                and "/." not in "/" + text):
            return base.rstrip("/") + "/" + text  # a plain relative path (most rows): nothing to fold
        key = self._known.get((base, text))
        if key is None:
            key = os.path.normcase(os.path.normpath(os.path.join(base or self._cwd, text)))
            if len(self._known) < 100_000:
                self._known[(base, text)] = key
        return key


class PathIndex:
    """Paths by PathKeys alone, touching no file: the manifest-wide check of a farm task (every row's inputs
    and outputs), whose own rows get the full InputIndex. Labels are made only for a path that is found."""

    def __init__(self) -> None:
        self.keys = PathKeys()
        # key -> owner, what, path: "row 3 (line 4)", "audio" (no owner: the command line's "--audio")
        self._found: dict[str, tuple[str, str, str]] = {}

    def add(self, path: str, base: str, owner: str, what: str) -> str:
        """Index a path (kept under the first owner that indexed it); its key."""
        key = self.keys(path, base)
        self._found.setdefault(key, (owner, what, path))
        return key

    def owner(self, key: str) -> str:
        """Who indexed this key first."""
        return self._found[key][0]

    def find(self, path: Path) -> Labelled | None:
        found = self._found.get(self.keys(path))
        if found is None:
            return None
        return Labelled(f"{found[0]}'s {found[1]}" if found[0] else found[1], Path(found[2]))


def check_writable(out: Labelled, regular_only: bool = False, probed: set[str] | None = None) -> None:
    """Refuse an output that is a folder, sits below a file, or whose folder cannot be written
    (each folder probed once where `probed` remembers them)."""
    path = out.path
    if path.is_dir():
        raise OutputError(f"{out.label} {path} is a folder; give a file path")
    if path.exists() and not path.is_file() and regular_only:
        raise OutputError(f"{out.label} {path} is not a regular file; give a file path")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise OutputError(f"{out.label} {path} cannot be written: {folder} is a file, not a folder")
    if path.exists() and not path.is_file():
        return  # a device or pipe (/dev/null, a FIFO): written as a stream, not replaced
    if probed is not None:
        if str(folder) in probed:
            return
        probed.add(str(folder))
    try:  # a real probe: os.access says yes to root on read-only mounts
        probe = folder / f".oris-probe-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{out.label} {path} cannot be written: {_reason(exc)} in {folder}; "
                          "choose a folder you can write to") from None


class InputIndex:
    """A command's inputs by resolved path and by file identity (hard links), so that checking an output
    costs the same for a batch of ten thousand rows as for one."""

    def __init__(self, inputs: Iterable[Labelled] = ()) -> None:
        self._by_path: dict[str, Labelled] = {}
        self._by_inode: dict[tuple[int, int], Labelled] = {}
        for inp in inputs:
            self.add(inp)

    def add(self, inp: Labelled) -> None:
        self._by_path.setdefault(_real(inp.path), inp)
        try:
            st = os.stat(inp.path)
        except OSError:
            return
        self._by_inode.setdefault((st.st_dev, st.st_ino), inp)

    def find(self, path: Path) -> Labelled | None:
        found = self._by_path.get(_real(path))
        if found is None:
            try:
                st = os.stat(path)
            except OSError:
                return None
            found = self._by_inode.get((st.st_dev, st.st_ino))
        return found


def refuse_if_input(out: Labelled, index: InputIndex | PathIndex) -> None:
    inp = index.find(out.path)
    if inp is not None:
        raise OutputError(f"{out.label} {out.path} is an input ({inp.label} {inp.path}); Oris never "
                          "writes over an input, choose another output path")


def check_outputs(outputs: Sequence[Labelled], inputs: Sequence[Labelled] | InputIndex, regular_only: bool = False,
                  probed: set[str] | None = None, also: Sequence[PathIndex] = ()) -> None:
    """The whole rule, before any work: no output is an input (of `inputs`, or of the indexes in `also`),
    each can be written, none collide."""
    index = inputs if isinstance(inputs, InputIndex) else InputIndex(inputs)
    seen: dict[str, Labelled] = {}
    for out in outputs:
        refuse_if_input(out, index)
        for more in also:
            refuse_if_input(out, more)
        key = _real(out.path)
        if key in seen:
            raise OutputError(f"{seen[key].label} and {out.label} are the same file {out.path}; "
                              "give each its own output path")
        seen[key] = out
        check_writable(out, regular_only, probed)


TEMPORARY_MARK = ".oris-tmp-"
# Oris's temporary files: this version's, and the `.NAME.oris-XXXXXXXX.EXT` of earlier ones
_TEMPORARY = re.compile(r"^\..+\.oris-(?:tmp-[0-9a-f]{8}|[0-9a-f]{8}(?:\.[^.]+)?)$")
STALE_SECONDS = 60.0  # a write in progress touches its file far more often than this


def is_temporary(name: str) -> bool:
    return _TEMPORARY.match(name) is not None


def remove_stale_temporaries(folders: Iterable[Path], started: float) -> list[Path]:
    """Remove the temporary files that a killed run left in these folders: Oris's own names only, and only
    those untouched since a minute before this process started (another task may be writing one now)."""
    removed = []
    for folder in {os.path.abspath(f) for f in folders}:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not is_temporary(entry.name):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < started - STALE_SECONDS:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


PROCESS_STARTED = time.time()


@contextlib.contextmanager
def _beside(path: Path) -> Iterator[Path]:
    """A fresh temporary path in path's folder, renamed onto path when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}{TEMPORARY_MARK}{secrets.token_hex(4)}"
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if path.is_file():
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _wrap(out: Labelled, action: Callable[[], None]) -> None:
    try:
        action()
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"could not write {out.label} {out.path}: {_reason(exc)}") from None


def write_text(out: Labelled, text: str) -> None:
    """Write text atomically; a device or pipe (/dev/null, a FIFO) is written as a stream."""
    data = text.encode("utf-8")
    path = out.path

    def write() -> None:
        if path.exists() and not path.is_file() and not path.is_dir():
            with open(path, "wb") as stream:
                stream.write(data)
            return
        with _beside(path) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(fd, "wb") as f:
                f.write(data)

    _wrap(out, write)


def save_with(out: Labelled, save: Callable[[str], None]) -> None:
    """Atomically write a file that `save(temporary_path)` writes (Blender's save of a .blend)."""
    if out.path.exists() and not out.path.is_file():
        raise OutputError(f"{out.label} {out.path} is not a regular file; give a file path")

    def write() -> None:
        with _beside(out.path) as tmp:
            save(str(tmp))
            if not tmp.is_file():
                raise OutputError(f"could not write {out.label} {out.path}: nothing was saved")

    _wrap(out, write)
