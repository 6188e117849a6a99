"""The animation options of every lip sync command (cli._add_animation_options): as the curves' settings, and as the
options a run records (its output's identity: a change of any of them makes a row's output out of date)."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.curves import CurveSettings


def curve_settings(args: argparse.Namespace) -> CurveSettings:
    return CurveSettings(lead_seconds=args.lead_ms / 1000.0, intensity=args.intensity, jaw=args.jaw, lips=args.lips,
                         stepped=args.stepped).validated()


def animation_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"lead_ms": args.lead_ms, "intensity": args.intensity, "jaw": args.jaw, "lips": args.lips,
            "stepped": args.stepped}
