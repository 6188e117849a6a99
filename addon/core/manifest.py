"""Batch manifests: a CSV file with a header row, or a JSON list of objects. No bpy.

The stdlib csv module reads the CSV (quoted fields may hold commas, doubled quotes and line breaks; a
quote inside an unquoted field, as in 5" tall, is kept as it is). A row that cannot be read (an unclosed
quote, a missing column, a NUL character, an entry that is not an object) fails alone, with its row and
line numbers; only a manifest with no readable header or no rows stops the batch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ManifestError(ValueError):
    """The manifest as a whole cannot be used; the message says why."""


@dataclass(slots=True)
class Record:
    """One manifest row: its fields, or the reason it cannot be read."""

    number: int  # 1-based, counting data rows only
    where: str  # "line 4" or "lines 4-6" (CSV, a record with line breaks in quotes), or "entry 3" (JSON)
    fields: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def label(self) -> str:
        return f"row {self.number} ({self.where})"


QUOTING = 'quote the whole value and double any quote inside it ("")'  # how to fix a row the csv reader refused


def _csv_records(text: str) -> Iterator[tuple[int, int, list[str] | None, str]]:
    """Each non-blank CSV record: its first and last physical lines (1-based), and its fields, or None
    and why it cannot be read. The header is the first record yielded."""
    lines = io.StringIO(text, newline="").readlines()  # split as csv splits them: at \n, \r\n and \r
    width = 0  # the header's field count, once read
    start = 0  # index of the line the current reader began on
    while start < len(lines):
        reader = csv.reader(map(lines.__getitem__, range(start, len(lines))), strict=True)
        first = start + 1
        problem = ""
        try:
            for fields in reader:
                last = start + reader.line_num
                if width and len(fields) > width and last > first:
                    problem = "an unclosed quote"  # it ran on into the next lines and took their fields
                    break
                if "".join(fields).strip():  # not blank
                    yield first, last, fields, ""
                    width = width or len(fields)
                first = last + 1
        except csv.Error as exc:
            last = start + reader.line_num
            ran_on = last > first or "unexpected end of data" in str(exc)
            problem = "an unclosed quote" if ran_on else f"it is not valid CSV ({exc})"
        if not problem:
            return
        # A quote that never closed swallows the lines after it: only its own line fails, and the
        # reading starts again on the next line.
        yield first, first, None, problem
        start = first


def _parse_csv(text: str, columns: Sequence[str], path: Path) -> list[Record]:
    header: list[str] | None = None
    records: list[Record] = []
    nul = "\0" in text  # checking each row only when some row needs it keeps 100,000 rows fast
    for first, last, fields, problem in _csv_records(text):
        if header is None:
            if fields is None:
                raise ManifestError(f"cannot read the header of the manifest {path} (line {first}: {problem}); "
                                    f"its first line names the columns: {', '.join(columns)}")
            header = [h.strip().lower() for h in fields]
            continue
        number, where = len(records) + 1, f"line {first}" if first == last else f"lines {first}-{last}"
        if fields is None:
            records.append(Record(number, where, error=f"{problem}; {QUOTING}"))
        elif len(fields) > len(header):
            records.append(Record(number, where, error=f"it has {len(fields)} fields but the header names "
                                                       f"{len(header)}; quote a value that holds a comma"))
        else:  # fewer fields: the trailing optional columns are left out
            values = dict(zip(header, map(str.strip, fields)))
            records.append(Record(number, where, values, _nul_error(values) if nul else ""))
    if header is None:
        raise ManifestError(f"the manifest {path} is empty; its first line names the columns: {', '.join(columns)}")
    return records


def _parse_json(text: str, path: Path) -> list[Record]:
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"the manifest {path} is not valid JSON ({exc}); it should be a list of objects") from None
    if not isinstance(entries, list):
        raise ManifestError(f"the manifest {path} should hold a JSON list of objects, one per row")
    records = []
    for n, entry in enumerate(entries, start=1):
        record = Record(n, f"entry {n}")
        if not isinstance(entry, dict):
            record.error = f"it is {json.dumps(entry)[:60]}, not an object of column names and values"
        else:
            record.fields = {str(k).strip().lower(): "" if v is None else str(v).strip() for k, v in entry.items()}
            record.error = _nested_error(entry) or _nul_error(record.fields)
        records.append(record)
    return records


def _nested_error(entry: dict[str, object]) -> str:
    """Why a JSON row holding a list or an object cannot be used (its text would become a file name), else ""."""
    for name, value in entry.items():
        if isinstance(value, list | dict):
            kind = "a list" if isinstance(value, list) else "an object"
            return f"column {_printable(name.strip().lower())} holds {kind}; give a string"
    return ""


def _nul_error(fields: dict[str, str]) -> str:
    """Why a row holding a NUL character cannot be used (no file path can hold one), else ""."""
    for name, value in fields.items():
        if "\0" in name or "\0" in value:
            return f"column {_printable(name)} holds a NUL character; remove it"
    return ""


def _printable(text: str) -> str:
    return text.replace("\0", "\\0")


def read_manifest(path: Path, columns: Sequence[str], required: Sequence[str]) -> list[Record]:
    """The manifest's rows; a row that lacks a required value, or names an unknown column (a typo
    would otherwise be ignored), carries the reason in `error`."""
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as f:  # line breaks as written
            text = f.read().lstrip("\ufeff")
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    records = _parse_json(text, path) if path.suffix.lower() == ".json" else _parse_csv(text, columns, path)
    if not records:
        raise ManifestError(f"the manifest {path} has no rows")
    known = set(columns)
    for record in records:
        if record.error or all(map(record.fields.get, required)) and known.issuperset(record.fields):
            continue  # the quick check first: most rows are fine
        missing = [c for c in required if not record.fields.get(c)]
        if missing:
            record.error = f"missing {', '.join(missing)} (columns: {', '.join(columns)})"
        elif not known.issuperset(record.fields):
            unknown = sorted(set(record.fields) - known)
            record.error = f"unknown column {', '.join(unknown)} (columns: {', '.join(columns)})"
    return records
