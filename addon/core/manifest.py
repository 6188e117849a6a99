"""Batch manifests: a CSV file with a header row, or a JSON list of objects. No bpy.

A row that cannot be read (an unclosed quote, a missing column, an entry that is not an object) fails
alone, with its row and line numbers; only a manifest with no readable header or no rows stops the batch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ManifestError(ValueError):
    """The manifest as a whole cannot be used; the message says why."""


@dataclass
class Record:
    """One manifest row: its fields, or the reason it cannot be read."""

    number: int  # 1-based, counting data rows only
    where: str  # "line 4" (CSV) or "entry 3" (JSON)
    fields: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def label(self) -> str:
        return f"row {self.number} ({self.where})"


def _csv_fields(text: str) -> tuple[list[str] | None, str]:
    """One record's fields, or None and the reason."""
    if text.count('"') % 2:
        return None, "an unclosed quote"
    try:
        return next(csv.reader(io.StringIO(text, newline=""), strict=True)), ""
    except csv.Error as exc:
        return None, f"it is not valid CSV ({exc})"


def _parse_csv(text: str, columns: Sequence[str], path: Path) -> list[Record]:
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    header: list[str] | None = None
    records: list[Record] = []
    i = 0
    while i < len(lines):
        first, chunk = i, lines[i]
        i += 1
        while chunk.count('"') % 2 and i < len(lines):  # a quoted field may hold line breaks
            chunk += lines[i]
            i += 1
        fields, problem = _csv_fields(chunk)
        if i - first > 1 and (fields is None or header is not None and len(fields) != len(header)):
            # the quote that joined these lines most likely never closed: only its own line is bad
            fields, problem, i = None, "an unclosed quote", first + 1
        if not chunk.strip():
            continue
        if header is None:
            if fields is None:
                raise ManifestError(f"cannot read the header of the manifest {path} (line {first + 1}: {problem}); "
                                    f"its first line names the columns: {', '.join(columns)}")
            header = [h.strip().lower() for h in fields]
            continue
        record = Record(len(records) + 1, f"line {first + 1}")
        if fields is None:
            record.error = f"{problem}; check its quotes"
        elif len(fields) > len(header):
            record.error = (f"it has {len(fields)} fields but the header names {len(header)}; "
                            "quote a value that holds a comma")
        else:
            record.fields = {name: value.strip() for name, value in zip(header, fields)}
        records.append(record)
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
        records.append(record)
    return records


def read_manifest(path: Path, columns: Sequence[str], required: Sequence[str]) -> list[Record]:
    """The manifest's rows; a row that lacks a required value, or names an unknown column (a typo
    would otherwise be ignored), carries the reason in `error`."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    records = _parse_json(text, path) if path.suffix.lower() == ".json" else _parse_csv(text, columns, path)
    if not records:
        raise ManifestError(f"the manifest {path} has no rows")
    for record in records:
        if record.error:
            continue
        unknown = sorted(set(record.fields) - set(columns))
        missing = [c for c in required if not record.fields.get(c)]
        if missing:
            record.error = f"missing {', '.join(missing)} (columns: {', '.join(columns)})"
        elif unknown:
            record.error = f"unknown column {', '.join(unknown)} (columns: {', '.join(columns)})"
    return records
