"""`oris summary`: merge the --summary lists of a batch's farm tasks into one. No bpy."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from ..core.batch import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    FAILED,
    NOT_RUN,
    SKIPPED,
    WRITTEN,
    RowResult,
    merge_summaries,
)
from ..core.manifest import read_manifest
from ..core.outputs import Labelled, check_outputs, write_text


def run(args: argparse.Namespace, err: TextIO) -> int:
    files: list[Path] = []
    for part in map(Path, args.parts):
        files += sorted(part.glob("*.json")) if part.is_dir() else [part]
    try:
        lists = []
        for f in files:
            doc = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(doc, list):
                raise ValueError(f"{f} is not a summary (a JSON list of rows)")
            lists.append(doc)
        merged = merge_summaries(lists)
        if args.manifest:  # a row no task ran (a RowCount below the manifest's) must not pass unseen
            listed = {int(r["row"]) for r in merged}
            missing = [rec for rec in read_manifest(Path(args.manifest), ("",), ()) if rec.number not in listed]
            merged = sorted(merged + [asdict(RowResult(rec.number, rec.where, NOT_RUN, "no task ran this row (is the "
                                                       "job's RowCount the manifest's row count?)")) for rec in missing],
                            key=lambda r: int(r["row"]))
        if args.output:
            out = Labelled("-o", Path(args.output))
            check_outputs([out], [Labelled("a summary", f) for f in files])
            write_text(out, json.dumps(merged, indent=1) + "\n")
        else:
            sys.stdout.write(json.dumps(merged, indent=1) + "\n")
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ManifestError is a ValueError
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    counts = {s: sum(r.get("status") == s for r in merged) for s in (WRITTEN, SKIPPED, FAILED, NOT_RUN)}
    err.write(f"summary: {len(merged)} rows: {counts[WRITTEN]} written, {counts[SKIPPED]} already done, "
              f"{counts[FAILED]} failed, {counts[NOT_RUN]} not run (from {len(files)} lists)\n")
    for r in merged:
        if r.get("status") in (FAILED, NOT_RUN):
            err.write(f"  row {r['row']} ({r.get('where', '')}): {r.get('reason', '')}\n")
    if counts[FAILED] + counts[NOT_RUN] == 0:
        return EXIT_OK
    return EXIT_PARTIAL if counts[WRITTEN] + counts[SKIPPED] else EXIT_USAGE
