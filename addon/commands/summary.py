"""`oris summary`: merge one run's task summaries into one, checked so that it cannot report a failed or
missing row as written (core.summary). No bpy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ..core.batch import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from ..core.manifest import ManifestError, read_manifest
from ..core.outputs import PROCESS_STARTED, Labelled, OutputError, check_outputs, remove_stale_temporaries, write_text
from ..core.summary import (
    FAILED,
    NOT_RUN,
    SKIPPED,
    WRITTEN,
    Merged,
    SummaryError,
    check_manifest,
    merge_parts,
    read_part,
    resolve_run_id,
    summary_files,
    summary_json,
    with_run,
)


def merge(args: argparse.Namespace) -> Merged:
    run = resolve_run_id(args.run_id)
    named = [with_run(p, run, "a summary path") for p in args.parts]
    remove_stale_temporaries([Path(p) for p in named if Path(p).is_dir()], PROCESS_STARTED)
    files = summary_files(named)
    if not files:
        raise SummaryError(f"no summary found in {', '.join(named)} (*.json): did the tasks run, and write "
                           "--summary there?")
    inputs = [Labelled("a summary", f) for f in files]
    if args.manifest:
        inputs.append(Labelled("--manifest", Path(args.manifest)))
    out = Labelled("-o", Path(args.output)) if args.output else None
    if out is not None:  # the output rule before any work: never the manifest or a summary
        check_outputs([out], inputs, regular_only=True)
    merged = merge_parts([read_part(f) for f in files], run)
    if args.manifest:
        records = read_manifest(Path(args.manifest), ("",), ())
        check_manifest(merged, Path(args.manifest), [r.number for r in records], [r.where for r in records])
    if not merged.rows:
        raise SummaryError(f"the summaries in {', '.join(named)} hold no rows")
    return merged


def run(args: argparse.Namespace, err: TextIO) -> int:
    try:
        merged = merge(args)
        text = summary_json(merged.identity, merged.rows, [str(p) for p in merged.parts])
        if args.output:
            write_text(Labelled("-o", Path(args.output)), text)
        else:
            sys.stdout.write(text)
    except (SummaryError, ManifestError, OutputError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    rows = merged.rows
    counts = {s: sum(r.get("status") == s for r in rows) for s in (WRITTEN, SKIPPED, FAILED, NOT_RUN)}
    left_out = f"; {len(merged.left_out)} of other runs left out" if merged.left_out else ""
    run_id = f"run {merged.identity.run}" if merged.identity.run else "no run id"
    err.write(f"summary: {len(rows)} rows: {counts[WRITTEN]} written, {counts[SKIPPED]} already done, "
              f"{counts[FAILED]} failed, {counts[NOT_RUN]} not run (from {len(merged.parts)} summaries of "
              f"{run_id}{left_out})\n")
    for r in rows:
        if r.get("status") in (FAILED, NOT_RUN):
            err.write(f"  row {r['row']} ({r.get('where', '')}): {r.get('reason', '')}\n")
    if counts[FAILED] + counts[NOT_RUN] == 0:
        return EXIT_OK
    return EXIT_PARTIAL if counts[WRITTEN] + counts[SKIPPED] else EXIT_USAGE
