"""`oris rows`: how many rows a manifest has, for a farm job's RowCount. No bpy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ..core.batch import EXIT_OK, EXIT_USAGE
from ..core.manifest import ManifestError, read_manifest


def run(args: argparse.Namespace, err: TextIO) -> int:
    try:
        records = read_manifest(Path(args.manifest), ("",), ())
    except ManifestError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(f"{len(records)}\n")
    return EXIT_OK
