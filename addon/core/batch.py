"""Batch summaries, a farm task's share of the rows, and resuming, shared by the batch commands. No bpy.

The summary is a JSON list with one entry per row, so a pipeline can retry only the failures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .manifest import ManifestError
from .outputs import InputIndex, Labelled, OutputError, check_outputs, write_text

WRITTEN, SKIPPED, FAILED, NOT_RUN = "written", "skipped", "failed", "not run"  # skipped: done by an earlier run


@dataclass
class RowResult:
    """One row's outcome, as the summary lists it."""

    row: int
    where: str
    status: str  # WRITTEN, SKIPPED, FAILED or NOT_RUN
    reason: str = ""
    seconds: float = 0.0
    output: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    mode: str = ""  # how the words were found: transcript, recognized or audio


def summary_json(results: Sequence[RowResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=1) + "\n"


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
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._known:
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._known[key] = digest.hexdigest()
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
    """A batch's rows as they end: a line for each failure, then the summary line, the --summary list
    and the exit code (0 every row written or already done, 1 some failed, 2 none written, 130 cancelled;
    with partial_ok, a farm task whose rows failed alone still exits 0 so the job goes on to its merge)."""

    def __init__(self, command: str, total: int, err: Any) -> None:
        self.command, self.total, self.err = command, total, err
        self.results: list[RowResult] = []

    def fail(self, number: int, where: str, label: str, reason: str, seconds: float = 0.0,
             inputs: dict[str, Any] | None = None) -> None:
        self.err.write(f"[{number}/{self.total}] FAILED {label}: {reason}\n")
        self.results.append(RowResult(number, where, FAILED, reason, round(seconds, 3), None, inputs or {}))

    def add(self, result: RowResult) -> None:
        self.results.append(result)

    def skipped(self, number: int, where: str, output: Path, inputs: dict[str, Any]) -> None:
        self.add(RowResult(number, where, SKIPPED, "written by an earlier run from the same inputs and options "
                           "(--force runs it again)", 0.0, str(output), inputs))

    def not_run(self, number: int, where: str, inputs: dict[str, Any]) -> None:
        self.add(RowResult(number, where, NOT_RUN, "cancelled", 0.0, None, inputs))

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
                write_text(summary, summary_json(sorted(self.results, key=lambda r: r.row)))
            except OutputError as exc:
                self.err.write(f"error: {exc}\n")
        if cancelled:
            return EXIT_CANCELLED
        if failed == 0 or partial_ok:
            return EXIT_OK
        return EXIT_PARTIAL if ok or skipped else EXIT_USAGE


def check_summary(path: str | None, inputs: Sequence[Labelled] | InputIndex,
                  outputs: Sequence[Labelled]) -> Labelled | None:
    """The --summary output, checked before any work: no input of any row, and no row's output."""
    if not path:
        return None
    summary = Labelled("--summary", Path(path))
    check_outputs([summary], inputs)
    writer = InputIndex(outputs).find(summary.path)
    if writer is not None:
        raise OutputError(f"{writer.label} and --summary are the same file {summary.path}; give each its own path")
    return summary


def merge_summaries(lists: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-chunk summaries as one list, a row each (a later list's entry for a row wins), in row order."""
    rows: dict[int, dict[str, Any]] = {}
    for entries in lists:
        for entry in entries:
            rows[int(entry["row"])] = entry
    return [rows[n] for n in sorted(rows)]
