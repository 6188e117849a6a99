"""`oris new-run -o FILE`: a farm job's first step writes a fresh run id, which its tasks read (--run-id @FILE),
so that their summaries go to a folder of this run and a stale summary of an earlier run is never merged. No bpy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ..core.batch import EXIT_OK, EXIT_USAGE
from ..core.outputs import Labelled, OutputError, check_outputs, write_text
from ..core.summary import new_run_id


def run(args: argparse.Namespace, err: TextIO) -> int:
    out = Labelled("-o", Path(args.output))
    run_id = new_run_id()
    try:
        check_outputs([out], [], regular_only=True)
        write_text(out, run_id + "\n")
    except OutputError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(run_id + "\n")
    return EXIT_OK
