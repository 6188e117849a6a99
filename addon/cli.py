"""Oris command line: `python -m oris visemes AUDIO ...` (no Blender needed). This module only parses;
each subcommand is a module of addon/commands/ with a `run(args, err) -> exit code`.

Exit codes: 0 success; 1 some input failed (each failure is reported, the others are
written); 2 bad usage or no input could be processed; 3 the worker failed; 130 cancelled.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import NoReturn, TextIO

from . import __version__
from .core.batch import EXIT_CANCELLED, EXIT_USAGE
from .core.curves import DEFAULT_LEAD_MS
from .core.formats import DAT_FPS, DEFAULT_FPS, FORMATS
from .core.keys import MAX_FRAME, parse_frame
from .core.languages import AUTO, LANGUAGES, LanguageError, check_language
from .core.rigs import EXISTING_ANIMATION

DASH_VALUED = ("--a-facing", "--b-facing")  # options whose values start with '-' (-Y)


def _number_in(low: float, high: float, rule: str, above_low: bool = False) -> Callable[[str], float]:
    """An argparse type: a number from low to high (above low when above_low), else `rule` as the message."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > low if above_low else value >= low) or not value <= high:
            raise argparse.ArgumentTypeError(f"{rule}, not {text!r}")
        return value

    return parse


_positive_fps = _number_in(1.0, 1000.0, "fps must be between 1 and 1000 (e.g. 24, 23.976, 29.97, 100)")
_positive_seconds = _number_in(0.0, 1e9, "must be a number of seconds above 0", above_low=True)
_fraction = _number_in(0.0, 1.0, "must be between 0 and 1")
_lead_ms = _number_in(-500.0, 500.0, "must be between -500 and 500 ms")
_intensity = _number_in(0.0, 2.0, "must be between 0 and 2")
_phase_seconds = _number_in(0.0, 60.0, "must be a number of seconds above 0 and at most 60", above_low=True)
_contact_frame = _number_in(-MAX_FRAME, MAX_FRAME, f"must be a frame from {-MAX_FRAME} to {MAX_FRAME}")
_walk_m = _number_in(0.0, 100.0, "must be between 0 and 100 metres")
_stretch_percent = _number_in(1.0, 100.0, "must be between 1 and 100 percent")
_compression_mm = _number_in(0.4, 10.0, "must be between 0.4 and 10 mm (the lips press in 0.4 mm while they touch)")
_tilt_degrees = _number_in(0.0, 60.0, "must be auto or a roll from 0 to 60 degrees")
_jaw_degrees = _number_in(0.0, 60.0, "must be an angle above 0 and at most 60 degrees", above_low=True)


def _tilt(text: str) -> str | float:
    return "auto" if text.strip().lower() == "auto" else _tilt_degrees(text)


def _language(text: str) -> str:
    try:
        return check_language(text)
    except LanguageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _frame(text: str) -> int:
    try:
        return parse_frame(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_animation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lead-ms", type=_lead_ms, default=DEFAULT_LEAD_MS,
                   help=f"how far the mouth leads the sound (default {DEFAULT_LEAD_MS:g})")
    p.add_argument("--stepped", action="store_true", help="one held shape at a time (2D / cut-out rigs)")
    p.add_argument("--intensity", type=_intensity, default=1.0, help="scale of the open shapes, 0-2 (default 1)")
    p.add_argument("--jaw", type=_intensity, default=1.0, help="how far the jaw opens, 0-2 (default 1), on top of --intensity")
    p.add_argument("--lips", type=_intensity, default=1.0,
                   help="how far the lips round, spread and press into each shape, 0-2 (default 1), on top of --intensity")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--text", help="the transcript: the result follows its phones")
    text.add_argument("--text-file", help="a file holding the transcript (like Rhubarb's dialog file)")
    text.add_argument("--audio-only", action="store_true",
                      help="no transcript and no speech recognition: the fastest mode (by default, without a "
                           "transcript, the worker recognizes the words)")
    text.add_argument("--recognize", action="store_true",
                      help="without a transcript, recognize the words (the default; for job templates that pass "
                           "either this or --audio-only)")
    p.add_argument("--language", type=_language, default=AUTO,
                   help=f"the language of the speech and its transcript (ISO 639-1): {', '.join(LANGUAGES)}, or {AUTO}: "
                        "a transcript's words, or else the speech recognizer, name it")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="inference device")
    p.add_argument("--timeout", type=_positive_seconds, default=120.0, help="seconds without word from the worker before giving up")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


class DefaultsShown(argparse.HelpFormatter):
    """Help that ends each option with its default, where it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, "", False, argparse.SUPPRESS) or not action.option_strings or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors as one line that names the option and where the help is (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message}; see `{self.prog} --help`\n")


def _add_existing_option(p: argparse.ArgumentParser, channels: str) -> None:
    p.add_argument("--existing-animation", choices=EXISTING_ANIMATION, default="keep",
                   help=f"an action already keying {channels}: keep it playing below Oris's NLA track (default), "
                        "mute it, or refuse to run")


def _add_farm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--summary", help="write the rows' status, reason, seconds and output as JSON, with the run they "
                   "belong to ({run} in the path: the run id, so each run's summaries get a folder)")
    p.add_argument("--run-id", help="with --batch: the farm job's run id, or @FILE for the one `oris new-run -o FILE` "
                   "wrote; `oris summary` merges one run's summaries only")
    p.add_argument("--rows", help="with --batch: only rows START:END (from 1; OpenJD's START-END too)")
    p.add_argument("--chunk", help="with --batch: only the K-th of N near-equal shares of the rows, K/N")
    p.add_argument("--force", action="store_true", help="with --batch: run rows whose output an earlier run wrote "
                   "from the same inputs and options (by default they are skipped)")
    p.add_argument("--partial-ok", action="store_true", help="with --batch: exit 0 although rows failed (they are "
                   "in the summary); for farm tasks, so the job goes on to merge the summaries")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="oris", description="Oris facial animation tools.")
    parser.add_argument("--version", action="version", version=f"oris {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    vis = sub.add_parser("visemes", help="speech audio -> viseme curves (no Blender needed)",
                         description="Speech audio to 15 viseme animation curves (Meta/Oculus set).")
    vis.add_argument("audio", nargs="*", help="audio file(s): wav, flac, ogg, opus or mp3, any rate and channel count")
    vis.add_argument("-o", "--output", help="output file (one input) or folder (several, or --batch); default: stdout")
    vis.add_argument("-f", "--format", choices=FORMATS, default="json",
                     help="json: per-frame weights and cues (default); tsv: a row per frame; rhubarb-json, "
                          "rhubarb-tsv: Rhubarb Lip Sync's mouth shapes; dat: Moho/Papagayo switch data")
    vis.add_argument("--fps", type=_positive_fps, default=None,
                     help=f"frame rate of 'frames' (default {DEFAULT_FPS:g}; {DAT_FPS:g} for -f dat, Moho's and "
                          "Papagayo's own default)")
    vis.add_argument("--batch", help="CSV or JSON manifest: rows of audio[, text, text_file, output, fps, language]")
    _add_farm_options(vis)
    _add_animation_options(vis)
    lip = sub.add_parser("lipsync", help="animate a face rig in a .blend file (needs Blender or the bpy module)",
                         description="Lip sync a face rig's shape keys in a .blend file, one line or a batch manifest.")
    lip.add_argument("--blend", help="the .blend file holding the rig")
    lip.add_argument("--object", action="append", default=[], help="face mesh object (repeat for teeth, tongue...)")
    lip.add_argument("--audio", help="the speech audio file")
    lip.add_argument("--preset", default="auto", help="rig preset (default: auto-detect), or a custom mapping saved as "
                                                       "JSON (the panel's Save), which overrides detection")
    lip.add_argument("--start-frame", type=_frame, default=None, help="first frame (default: the scene's start)")
    lip.add_argument("--fit-range", action="store_true", help="grow the scene's frame range to cover the clip")
    lip.add_argument("--keep-overlapping", action="store_true", help="stack the clip over Oris's clips it overlaps on "
                     "the same heads (alternate takes); by default a re-take replaces them and their sound")
    lip.add_argument("--scene-strips", action="store_true", help="lip-sync the scene's dialogue: every sound strip "
                     "of the sequencer on its character (strip name '<object>:...' or --strip-channel), at its own "
                     "frame; needs --blend and -o")
    lip.add_argument("--strip-channel", action="append", default=[], metavar="CHANNEL=OBJECT",
                     help="with --scene-strips: the strips on this channel are OBJECT's lines (repeat per channel)")
    lip.add_argument("--jaw-degrees", type=_jaw_degrees, default=None, help="how far a jaw bone turns for a wide "
                     "open vowel (default: the bone's jaw_open_degrees property, else 20); used where the rig opens "
                     "its jaw with a bone")
    lip.add_argument("--no-sound", action="store_true", help="leave the sequencer alone: add no sound strip for the clip "
                     "(by default one is added, unless a strip already plays the file at the start frame)")
    _add_existing_option(lip, "the mouth's shape keys")
    lip.add_argument("--batch", help="CSV or JSON manifest: rows of blend, object, audio[, start_frame, output, text, "
                     "text_file, existing_animation, language]")
    lip.add_argument("-o", "--output", help="output .blend (one line) or folder (batch, or a path ending in /); "
                                            "no input is ever overwritten")
    _add_farm_options(lip)
    _add_animation_options(lip)
    con = sub.add_parser("contact", help="two heads meet at the lips: approach, tilt, contact, hold, part (needs bpy)",
                         description="Animate two head rigs into contact (a kiss) with depth-aware alignment, "
                                     "validate every frame and write a report.",
                         formatter_class=DefaultsShown)
    con.add_argument("--blend", help="the .blend file holding both heads")
    con.add_argument("--a", required=True, help="head A: a mesh, the parent of the face meshes, or an armature")
    con.add_argument("--b", required=True, help="head B")
    for side in ("a", "b"):
        con.add_argument(f"--{side}-bone", default="", help=f"head {side.upper()}'s head bone (armatures; default: found by name)")
        con.add_argument(f"--{side}-lips", default="", help="lip point override: an object (empty), a vertex group or a vertex index")
        con.add_argument(f"--{side}-facing", default="AUTO", choices=("AUTO", "-Y", "+Y", "-X", "+X", "-Z", "+Z"),
                         help="the local axis the face looks along; AUTO reads it from the pucker shape key")
    con.add_argument("--contact-frame", type=_contact_frame, default=48.0, help="the frame the lips meet")
    con.add_argument("--approach", type=_phase_seconds, default=1.0, help="seconds of approach")
    con.add_argument("--hold", type=_phase_seconds, default=1.5, help="seconds of contact")
    con.add_argument("--release", type=_phase_seconds, default=0.8, help="seconds to part")
    con.add_argument("--leader", choices=("A", "B"), default="A", help="who covers most of the distance")
    con.add_argument("--tilt-side", choices=("right", "left"), default="right", help="each head rolls toward its own ...")
    con.add_argument("--tilt", type=_tilt, default="auto", help="roll in degrees, or auto (searched so the noses clear)")
    con.add_argument("--eyes", type=_fraction, default=1.0, help="how far the eyes close, 0-1")
    con.add_argument("--pucker", type=_fraction, default=0.6, help="pucker strength, 0-1")
    con.add_argument("--compression-mm", type=_compression_mm, default=1.0, help="allowed lip compression at human scale, mm")
    con.add_argument("--max-stretch", type=_stretch_percent, default=10.0, metavar="PERCENT",
                     help="full characters: how far any mesh edge may stretch or shrink, percent (default 10)")
    con.add_argument("--max-walk", type=_walk_m, default=0.6, metavar="METRES",
                     help="full characters: how far a character may travel over the floor, human metres (default 0.6)")
    con.add_argument("--anticipation", action="store_true", help="the leader draws back a little first")
    _add_existing_option(con, "the heads' transforms or the pucker and blink keys")
    con.add_argument("--report", help="write the validation report (JSON) here")
    con.add_argument("-o", "--output", required=True, help="output .blend (the input file is never overwritten)")
    con.add_argument("-q", "--quiet", action="store_true")
    bake = sub.add_parser("bake", help="flatten Oris's strips into one Action per shot, for FBX and glTF export "
                          "(needs bpy)", description="Bake Oris's lip sync (and contact) NLA strips into one Action, "
                          "active on each face's shape keys (and jaw bone, and heads), sparse Bezier keys; Oris's "
                          "tracks are muted, not deleted.")
    bake.add_argument("--blend", required=True, help="the .blend file with Oris's lip sync")
    bake.add_argument("--object", action="append", default=[], help="a face mesh, armature or head to bake (repeat; "
                      "default: every object with Oris's strips)")
    bake.add_argument("--include-nla", action="store_true", help="bake the artist's own NLA tracks and Actions on "
                      "those channels into it too (sampled on every frame, then reduced to sparse keys)")
    bake.add_argument("-o", "--output", required=True, help="output .blend (the input file is never overwritten)")
    summ = sub.add_parser("summary", help="merge the --summary lists of a batch's farm tasks into one",
                          description="Merge the --summary files of one run's farm tasks (files, or folders of them) "
                                      "into one with a row each; exit 0 when every row was written or already done, "
                                      "1 when some failed, 2 when none was written or the summaries cannot be "
                                      "merged.")
    summ.add_argument("parts", nargs="+", help="summary files, or folders holding them (*.json); {run} in a path "
                      "stands for --run-id")
    summ.add_argument("-o", "--output", help="write the merged summary here (default: stdout)")
    summ.add_argument("--manifest", help="the batch's manifest: it must be the one the tasks read, and a row no "
                      "summary holds is listed as not run")
    summ.add_argument("--run-id", help="merge only this run's summaries (or @FILE, as `oris new-run -o FILE` wrote "
                      "it); without it, summaries of different runs are refused")
    new_run = sub.add_parser("new-run", help="start a farm job's run: write a fresh run id to a file",
                             description="Write a fresh run id to a file, for a farm job's first step; its tasks "
                                         "pass --run-id @FILE and write their summaries to a folder of the run.")
    new_run.add_argument("-o", "--output", required=True, help="the file to write the run id to")
    rows = sub.add_parser("rows", help="count a manifest's rows (for a farm job's RowCount)",
                          description="Print how many rows a batch manifest has.")
    rows.add_argument("manifest")
    return parser


def main(argv: list[str] | None = None, err: TextIO | None = None) -> int:
    err = err or sys.stderr
    args = build_parser().parse_args(attach_dash_values(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args, err)
    except KeyboardInterrupt:  # Ctrl-C anywhere, a file write included: atomic writes leave no half file
        err.write("cancelled\n")
        return EXIT_CANCELLED


def attach_dash_values(argv: list[str]) -> list[str]:
    """`--b-facing -Y` reads as an option followed by an option to argparse; join it as `--b-facing=-Y`."""
    joined: list[str] = []
    values = iter(argv)
    for arg in values:
        if arg in DASH_VALUED:
            value = next(values, None)
            joined.append(arg if value is None else f"{arg}={value}")
        else:
            joined.append(arg)
    return joined


def _run(args: argparse.Namespace, err: TextIO) -> int:
    """Hand the parsed arguments to the subcommand's module (addon/commands/); the Blender ones need bpy."""
    if args.command in ("lipsync", "contact", "bake"):
        try:
            module = importlib.import_module(f".commands.{args.command}", __package__)
        except ImportError as exc:
            err.write(f"error: {args.command} needs Blender ({exc}); run `blender -b -c oris {args.command} ...` "
                      "or install the bpy module (pip install bpy)\n")
            return EXIT_USAGE
    else:
        module = importlib.import_module(f".commands.{args.command.replace('-', '_')}", __package__)
    return int(module.run(args, err))
