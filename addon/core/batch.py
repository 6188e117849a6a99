"""What the batch commands share: a farm task's share of the rows, the checks on each row's files, resuming
a finished batch, and the batch's outcome (its lines, its summary and its exit code). No bpy."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .manifest import ManifestError
from .outputs import (
    TEMPORARY_MARK,
    InputIndex,
    Labelled,
    OutputError,
    PathIndex,
    check_outputs,
    is_temporary,
    write_text,
)
from .summary import (
    FAILED,
    MERGED_SUMMARY,
    NOT_RUN,
    SKIPPED,
    SUMMARIES,
    WRITTEN,
    RowResult,
    RunIdentity,
    digest,
    file_sha256,
    resolve_run_id,
    results_json,
    with_run,
)

# ------------------------------------------------------------------- a farm task's share of the rows

def _row_span(text: str, total: int, option: str) -> tuple[int, int]:
    """START:END (or OpenJD's START-END), 1-based and inclusive, within the manifest's rows."""
    parts = text.replace("-", ":", 1).split(":") if ":" in text or text.count("-") == 1 else [text, text]
    try:
        start, end = (int(p) for p in parts)
    except ValueError:
        raise ManifestError(f"{option} {text!r} is not START:END (row numbers from 1, e.g. 1:50)") from None
    if not 1 <= start <= end:
        raise ManifestError(f"{option} {text!r}: rows are numbered from 1, and START may not pass END")
    if start > total:
        raise ManifestError(f"{option} {text!r}: the manifest has only {total} rows")
    return start, min(end, total)


def chunk_span(text: str, total: int) -> tuple[int, int]:
    """K/N: the K-th of N contiguous, near-equal shares of the rows (1-based, inclusive; K from 1)."""
    try:
        k, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ManifestError(f"--chunk {text!r} is not K/N (the K-th of N shares, e.g. 3/20)") from None
    if not 1 <= k <= n:
        raise ManifestError(f"--chunk {text!r}: K runs from 1 to N")
    return total * (k - 1) // n + 1, total * k // n


def select_rows(numbers: Sequence[int], leaders: Sequence[int], rows: str | None, chunk: str | None) -> set[int]:
    """The rows this run does: all, or those whose group leader (the first row writing the same output,
    since such rows build on each other) falls in --rows or --chunk, so every row runs in exactly one share."""
    if rows and chunk:
        raise ManifestError("give --rows or --chunk, not both")
    if not rows and not chunk:
        return set(numbers)
    total = len(numbers)
    start, end = chunk_span(chunk, total) if chunk else _row_span(rows or "", total, "--rows")
    return {n for n, lead in zip(numbers, leaders) if start <= lead <= end}


# ------------------------------------------------------------------------ resuming a finished batch

# beside each output, what made it, so a rerun skips it while nothing changed (JSON, not named so: a glob for
# an output folder's *.json finds the outputs alone)
DONE_SUFFIX = ".oris-done"


def done_record_path(output: Path) -> Path:
    return output.with_name(output.name + DONE_SUFFIX)


class FileHashes:
    """sha256 of input files, each read once per run (many rows share a .blend)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would never end
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._known:
            self._known[key] = file_sha256(path)
        return self._known[key]


def fingerprint(command: str, inputs: dict[str, Path], options: dict[str, Any], hashes: FileHashes) -> str:
    """What a row's output depends on: the contents of its inputs and the options used."""
    doc = {"command": command, "options": options, "inputs": {k: hashes(p) for k, p in sorted(inputs.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def is_done(output: Path, fingerprints: Sequence[str]) -> bool:
    """The output is there as Oris wrote it (its size and time as recorded) from these very rows."""
    try:
        record = json.loads(done_record_path(output).read_text(encoding="utf-8"))
        return bool(record.get("rows") == list(fingerprints) and record.get("output") == _stat(output))
    except (OSError, ValueError, AttributeError):
        return False


def done_record(output: Path, fingerprints: Sequence[str]) -> str:
    """The record to write beside a freshly written output (after it, atomically)."""
    return json.dumps({"oris_done": 1, "rows": list(fingerprints), "output": _stat(output)}) + "\n"


class Resume:
    """A batch's view of what earlier runs finished: each row's fingerprint, whether an output is done
    (skipped unless force), and the record written beside each output this run finishes."""

    def __init__(self, command: str, force: bool) -> None:
        self.command, self.force, self.hashes = command, force, FileHashes()

    def fingerprint(self, inputs: dict[str, Path], options: dict[str, Any]) -> str | None:
        """None where an input is missing: the row runs, and its own reading says what is wrong."""
        try:
            return fingerprint(self.command, inputs, options, self.hashes)
        except OSError:
            return None

    def finished(self, output: Path, prints: Sequence[str | None]) -> bool:
        return not self.force and all(prints) and is_done(output, [p for p in prints if p])

    def record(self, output: Path, prints: Sequence[str | None], label: str) -> None:
        if output.is_file() and all(prints):  # a device or pipe keeps no record
            write_text(Labelled(label, done_record_path(output)), done_record(output, [p for p in prints if p]))


# ------------------------------------------------------------------------------ a batch's outcome

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_WORKER, EXIT_CANCELLED = 0, 1, 2, 3, 130  # the README's exit codes


class BatchLog:
    """A batch's rows as they end: a line for each failure, then the summary line, the --summary file
    and the exit code (0 every row written or already done, 1 some failed, 2 none written, 130 cancelled;
    with partial_ok, a farm task whose rows failed alone still exits 0 so the job goes on to its merge,
    which reports them; a summary that cannot be written is never a success)."""

    def __init__(self, command: str, total: int, err: Any, identity: RunIdentity) -> None:
        self.command, self.total, self.err, self.identity = command, total, err, identity
        self.results: list[RowResult] = []

    def fail(self, number: int, where: str, label: str, reason: str, seconds: float = 0.0,
             inputs: dict[str, Any] | None = None) -> None:
        self.err.write(f"[{len(self.results) + 1}/{self.total}] FAILED {label}: {reason}\n")
        self.results.append(RowResult(number, where, FAILED, reason, round(seconds, 3), None, inputs or {}))

    def add(self, result: RowResult) -> None:
        self.results.append(result)

    def skipped(self, number: int, where: str, output: Path, inputs: dict[str, Any]) -> None:
        self.add(RowResult(number, where, SKIPPED, "written by an earlier run from the same inputs and options "
                           "(--force runs it again)", 0.0, str(output), inputs))

    def not_run(self, number: int, where: str, inputs: dict[str, Any]) -> None:
        self.add(RowResult(number, where, NOT_RUN, "cancelled", 0.0, None, inputs))

    def progress(self) -> str:
        """Where the batch stands, for the line of the row that just ended: [done/total]."""
        return f"[{len(self.results)}/{self.total}]"

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def finish(self, wall: float, audio_seconds: float = 0.0, cancelled: bool = False, partial_ok: bool = False,
               summary: Labelled | None = None) -> int:
        ok, skipped, failed = self.count(WRITTEN), self.count(SKIPPED), self.count(FAILED)
        speed = f", {audio_seconds / wall:.0f}x real time" if wall > 0 and audio_seconds else ""
        not_run = f", {self.count(NOT_RUN)} not run" if cancelled else ""
        done = f", {skipped} already done" if skipped else ""
        self.err.write(f"{self.command}: {ok} written{done}, {failed} failed{not_run}, {audio_seconds:.1f} s of audio "
                       f"in {wall:.1f} s{speed}\n")
        if summary is not None:
            try:
                write_text(summary, results_json(self.identity, self.results))
            except OutputError as exc:
                self.err.write(f"error: {exc}\n")
                return EXIT_PARTIAL
        if cancelled:
            return EXIT_CANCELLED
        if failed == 0 or partial_ok:
            return EXIT_OK
        return EXIT_PARTIAL if ok or skipped else EXIT_USAGE




# ------------------------------------------------------------------------------- checks on each row

def row_file_problem(label: str, path: Path) -> str:
    """Only regular files are read: a FIFO, device or folder fails its row at once (hashing a FIFO for
    resume would wait forever). A missing file is left to the row's own reading, which says so."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return ""
    except (OSError, ValueError) as exc:
        return f"cannot read {label} {path}: {getattr(exc, 'strerror', None) or exc}"
    if stat.S_ISDIR(mode):
        return f"{label} {path} is a folder, not a file"
    if not stat.S_ISREG(mode):
        kind = "FIFO" if stat.S_ISFIFO(mode) else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "socket"
        return f"{label} {path} is a {kind}, not a regular file; a batch reads only regular files"
    return ""


def reserved_output_problem(output: Path, out_dir: Path | None, keys: Any) -> str:
    """An output name that belongs to Oris's own files: resume records, temporary files, the job's merged
    summary and the tasks' summaries in the -o folder. Such a row is refused when the manifest is read."""
    name = output.name
    if name.endswith(DONE_SUFFIX) or is_temporary(name) or TEMPORARY_MARK in name:
        return (f"its output {output} has the name of one of Oris's own files (resume records end in {DONE_SUFFIX}, "
                f"temporary files hold {TEMPORARY_MARK}); give the row another output")
    if out_dir is not None:
        key, folder = keys(output), keys(out_dir)
        if key == os.path.join(folder, MERGED_SUMMARY):
            return (f"its output {output} is where the job's merged summary goes (-o folder/{MERGED_SUMMARY}); "
                    "give the row an output column, or rename its audio")
        if key.startswith(os.path.join(folder, SUMMARIES) + os.sep):
            return f"its output {output} is inside the folder of the tasks' summaries; give the row another output"
    return ""


def run_identity(command: str, run_id: str | None, manifest: Path | None, options: dict[str, Any]) -> RunIdentity:
    try:
        manifest_sha = file_sha256(manifest) if manifest is not None else None
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {manifest}: {exc.strerror or exc}") from None
    return RunIdentity(command, resolve_run_id(run_id), manifest_sha, digest(options))


def check_summary(path: str | None, identity: RunIdentity, shared: InputIndex, every_input: PathIndex,
                  every_output: PathIndex) -> Labelled | None:
    """The --summary output ({run} replaced by the run id), checked before any work: no input of any row,
    and no row's output."""
    if not path:
        return None
    summary = Labelled("--summary", Path(with_run(path, identity.run, "--summary")))
    check_outputs([summary], shared, also=[every_input])
    writer = every_output.find(summary.path)
    if writer is not None:
        raise OutputError(f"{writer.label} and --summary are the same file {summary.path}; give each its own path")
    return summary

