"""Batch summaries that cannot lie: what each farm task did, and the merge of a job's tasks. No bpy.

A task's summary is a JSON object: the run it belongs to (a run id the job passes, the manifest's sha256
and a digest of the options) and a row each (RowResult). `oris summary` merges the parts of one run only:
a part from another run (a stale file from an earlier job, another manifest, other options) is refused or,
with --run-id, left out; a row that two parts report differently is an error; a row without a known status
counts as failed. The merged summary is a summary of the same kind, so it can be merged again.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .manifest import ManifestError
from .outputs import is_temporary

SUMMARY_VERSION = 2
WRITTEN, SKIPPED, FAILED, NOT_RUN = "written", "skipped", "failed", "not run"  # skipped: done by an earlier run
STATUSES = (WRITTEN, SKIPPED, FAILED, NOT_RUN)
MERGED_SUMMARY = "summary.json"  # the job's merged summary, in the batch's -o folder
SUMMARIES = "summaries"  # the tasks' summaries, a folder per run, in the batch's -o folder
RUN_PLACEHOLDER = "{run}"  # in --summary and summary's parts: the run id
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SummaryError(ValueError):
    """A summary part that cannot be used, or parts that must not be merged; the message says which."""


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


@dataclass(frozen=True)
class RunIdentity:
    """Which job a summary belongs to: parts merge only when all four agree."""

    command: str
    run: str  # "" where no --run-id was given: then the manifest and the options alone identify the run
    manifest_sha256: str | None  # None: a single line from the command line
    options_sha256: str

    def describe(self) -> str:
        run = f"run {self.run}" if self.run else "no run id"
        manifest = f"manifest {self.manifest_sha256[:12]}" if self.manifest_sha256 else "no manifest"
        return f"{self.command}, {run}, {manifest}, options {self.options_sha256[:12]}"


def new_run_id() -> str:
    """Sortable by time, unique across the farm's nodes."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def resolve_run_id(value: str | None) -> str:
    """--run-id ID, or @FILE for the id that `oris new-run -o FILE` wrote (a job's first step)."""
    if not value:
        return ""
    run = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            if not path.is_file():
                raise SummaryError(f"--run-id {value}: {path} is not a file written by `oris new-run -o {path}`")
            run = path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError as exc:
            raise SummaryError(f"--run-id {value}: cannot read {path}: {exc.strerror or exc}") from None
    if not _RUN_ID.match(run):
        raise SummaryError(f"--run-id {run[:80]!r} is not a run id (1-64 letters, digits, '.', '_' or '-', "
                           "as `oris new-run` writes)")
    return run


def with_run(path: str, run: str, option: str) -> str:
    """A path with {run} replaced by the run id, so each run's summaries go in a folder of their own."""
    if RUN_PLACEHOLDER not in path:
        return path
    if not run:
        raise SummaryError(f"{option} {path} holds {RUN_PLACEHOLDER}, but no --run-id was given")
    return path.replace(RUN_PLACEHOLDER, run)


def digest(options: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def summary_json(identity: RunIdentity, rows: Sequence[dict[str, Any]], parts: Sequence[str] = ()) -> str:
    doc: dict[str, Any] = {"oris_summary": SUMMARY_VERSION, "command": identity.command, "run": identity.run,
                           "manifest_sha256": identity.manifest_sha256, "options_sha256": identity.options_sha256}
    if parts:
        doc["parts"] = list(parts)
    doc["rows"] = list(rows)
    return json.dumps(doc, indent=1) + "\n"


def results_json(identity: RunIdentity, results: Sequence[RowResult]) -> str:
    return summary_json(identity, [asdict(r) for r in sorted(results, key=lambda r: r.row)])


# ----------------------------------------------------------------------------------- reading parts

@dataclass
class Part:
    path: Path
    identity: RunIdentity
    rows: list[dict[str, Any]]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _row_number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def read_part(path: Path) -> Part:
    """One task's summary, checked: every problem names the file."""
    try:
        if not path.is_file():
            raise SummaryError(f"{path} is not a file" if path.exists() else f"{path} does not exist")
        doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constants)
    except SummaryError:
        raise
    except OSError as exc:
        raise SummaryError(f"cannot read the summary {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SummaryError(f"the summary {path} is not UTF-8 text") from None
    except RecursionError:
        raise SummaryError(f"the summary {path} is nested too deeply to be an Oris summary") from None
    except ValueError as exc:
        raise SummaryError(f"the summary {path} is not valid JSON ({exc})") from None
    if isinstance(doc, list):
        raise SummaryError(f"{path} is a summary without a run identity (written by an earlier Oris); run its "
                           "task again so that it records which run it belongs to")
    if not isinstance(doc, dict) or doc.get("oris_summary") != SUMMARY_VERSION:
        raise SummaryError(f"{path} is not an Oris summary (a JSON object with \"oris_summary\": {SUMMARY_VERSION})")
    fields = {k: doc.get(k) for k in ("command", "run", "options_sha256")}
    if not all(isinstance(v, str) for v in fields.values()) or not isinstance(doc.get("manifest_sha256"), (str, type(None))):
        raise SummaryError(f"the summary {path} lacks its run identity (command, run, manifest_sha256, options_sha256)")
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise SummaryError(f"the summary {path} has no list of rows")
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or _row_number(row.get("row")) is None:
            raise SummaryError(f"the summary {path}: entry {n} is not a row (an object with a row number from 1)")
    return Part(path, RunIdentity(str(fields["command"]), str(fields["run"]), doc["manifest_sha256"],
                                  str(fields["options_sha256"])), rows)


def summary_files(parts: Sequence[str]) -> list[Path]:
    """The parts named: files, and each folder's *.json but Oris's temporary files (an earlier version's end
    in .json too)."""
    files: list[Path] = []
    for part in map(Path, parts):
        files += sorted(p for p in part.glob("*.json") if not is_temporary(p.name)) if part.is_dir() else [part]
    return files


# ------------------------------------------------------------------------------------- the merge

@dataclass
class Merged:
    identity: RunIdentity
    rows: list[dict[str, Any]]
    parts: list[Path]
    left_out: list[Path]  # parts of other runs, left out by --run-id


def _known(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("status") in STATUSES:
        return row
    shown = row.get("status")
    return {**row, "status": FAILED, "reason": f"its summary entry has no known status ({shown!r}); counted as failed"}


def _succeeded(row: dict[str, Any]) -> bool:
    return row.get("status") in (WRITTEN, SKIPPED)


def merge_parts(parts: Sequence[Part], run: str = "") -> Merged:
    """The parts of one run as one list, a row each, in row order. Parts of several runs are refused unless
    `run` picks one; a row that two parts report differently fails with both reports."""
    chosen = [p for p in parts if not run or p.identity.run == run]
    left_out = [p.path for p in parts if p not in chosen]
    if not chosen:
        found = sorted({p.identity.run or "(none)" for p in parts})
        raise SummaryError(f"no summary belongs to run {run} (runs found: {', '.join(found) or 'none'})")
    identities: dict[RunIdentity, Path] = {}
    for p in chosen:
        identities.setdefault(p.identity, p.path)
    if len(identities) > 1:
        listed = "; ".join(f"{path} ({ident.describe()})" for ident, path in identities.items())
        raise SummaryError(f"these summaries come from different runs and must not be merged: {listed}; remove the "
                           "stale ones, or pass --run-id to merge one run (job templates write a folder per run)")
    rows: dict[int, dict[str, Any]] = {}
    seen_in: dict[int, Path] = {}
    for p in chosen:
        for entry in p.rows:
            entry = _known(entry)
            n = int(entry["row"])
            earlier = rows.get(n)
            if earlier is None:
                rows[n], seen_in[n] = entry, p.path
            elif _succeeded(earlier) != _succeeded(entry) or earlier.get("output") != entry.get("output"):
                rows[n] = {**entry, "status": FAILED,
                           "reason": f"the tasks disagree: {seen_in[n].name} says {earlier.get('status')!r} "
                                     f"({earlier.get('reason') or 'no reason'}), {p.path.name} says "
                                     f"{entry.get('status')!r} ({entry.get('reason') or 'no reason'}); run the row again"}
    return Merged(next(iter(identities)), [rows[n] for n in sorted(rows)], [p.path for p in chosen], left_out)


def check_manifest(merged: Merged, manifest: Path, numbers: Sequence[int], wheres: Sequence[str]) -> None:
    """The manifest the parts were made from, unchanged; a row no part holds is listed as not run."""
    if merged.identity.manifest_sha256 is not None:
        try:
            now = file_sha256(manifest)
        except OSError as exc:
            raise ManifestError(f"cannot read the manifest {manifest}: {exc.strerror or exc}") from None
        if now != merged.identity.manifest_sha256:
            raise SummaryError(f"the manifest {manifest} changed since the tasks ran (its sha256 was "
                               f"{merged.identity.manifest_sha256[:12]}..., now {now[:12]}...); run the job again")
    listed = {int(r["row"]) for r in merged.rows}
    missing = [asdict(RowResult(n, w, NOT_RUN, "no task ran this row (is the job's RowCount the manifest's row "
                                              "count?)")) for n, w in zip(numbers, wheres) if n not in listed]
    merged.rows = sorted(merged.rows + missing, key=lambda r: int(r["row"]))
