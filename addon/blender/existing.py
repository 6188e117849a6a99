"""An artist's existing animation on the channels Oris keys: kept below Oris (the default), muted, or a
reason to stop. Used by lip sync (the shape keys) and contact (the heads' transforms and shape keys).

    keep    the active Action moves into an NLA track of its own, below Oris's tracks: Oris's strip
            replaces it on the channels Oris keys, its other channels play on
    mute    the same, with that track (and any other track keying those channels) muted
    refuse  stop before anything is written when an active Action keys those channels (it would play
            over Oris's strip), naming the option that goes on
Tracks the artist muted stay muted; nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.rigs import EXISTING_ANIMATION as CHOICES
from .actions import EditError, active_action_paths, keep_oris_on_top, playing_tracks, push_down

OPTION_HINT = ("run with --existing-animation keep (the default: it moves to the NLA, below Oris's track) or mute "
               "(in the panel: Existing Animation)")
UNDO_HINT = ("to undo: Ctrl+Z, or in the NLA editor select its strip and press Tab to edit it as the action again; "
             "--existing-animation refuse leaves it in place")


class ExistingAnimation(EditError):
    """Refused: other animation keys the channels Oris would write."""


def _shown(paths: list[str]) -> str:
    names = [p.split('"')[1] if '"' in p else p for p in sorted(set(paths))]
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def clashes(id_block: Any, paths: set[str]) -> tuple[list[str], list[Any]]:
    """The paths the active Action keys among these, and the unmuted NLA tracks (not Oris's) keying any."""
    return sorted(p for p in set(active_action_paths(id_block)) if p in paths), playing_tracks(id_block, paths)


def check(id_block: Any, paths: set[str], policy: str, what: str, job: str) -> None:
    """Under `refuse`, stop when other animation keys these channels (before anything is written)."""
    if policy not in CHOICES:
        raise ExistingAnimation(f"unknown --existing-animation {policy!r}; choose {', '.join(CHOICES)}")
    if policy != "refuse":
        return
    active = sorted(p for p in set(active_action_paths(id_block)) if p in paths)  # NLA tracks play below Oris's
    if active:
        raise ExistingAnimation(f"{what}: the action {id_block.animation_data.action.name!r} keys {_shown(active)}, "
                                f"which would play over the {job}; {OPTION_HINT}")


def make_way(id_block: Any, paths: set[str], policy: str, what: str,
             undo: list[Callable[[], None]] | None = None) -> list[str]:
    """Under keep or mute, move what would play over Oris on these channels; returns the notes saying
    what moved and how to undo it. `undo` collects what puts it back, for a run that fails after all."""
    if policy == "refuse":
        return []
    notes = []
    active, tracks = clashes(id_block, paths)
    if active:
        ad = id_block.animation_data
        name, action, slot = ad.action.name, ad.action, getattr(ad, "action_slot", None)
        track = push_down(id_block, mute=policy == "mute")
        if undo is not None:
            undo.append(lambda: _pull_up(id_block, track, action, slot))
        verb = "moved, muted," if policy == "mute" else "moved"
        notes.append(f"{what}: the action {name!r} (it keyed {_shown(active)}) {verb} to the NLA track {track.name!r} "
                     f"below Oris's; {'it no longer plays' if policy == 'mute' else 'its other channels play on'}; "
                     + UNDO_HINT)
    if policy == "mute":
        for t in tracks:
            t.mute = True
            if undo is not None:
                undo.append(_unmuter(t))
        if tracks:
            notes.append(f"{what}: muted the NLA track(s) {', '.join(repr(t.name) for t in tracks)} (unmute them in "
                         "the NLA editor)")
    elif keep_oris_on_top(id_block) and tracks:
        notes.append(f"{what}: Oris's tracks moved above {', '.join(repr(t.name) for t in tracks)} so the new "
                     "animation shows")
    return notes


def _pull_up(id_block: Any, track: Any, action: Any, slot: Any) -> None:
    """Undo push_down: the Action active again, its track gone."""
    ad = id_block.animation_data
    ad.nla_tracks.remove(track)
    ad.action = action
    if slot is not None:
        ad.action_slot = slot


def _unmuter(track: Any) -> Callable[[], None]:
    def unmute() -> None:
        track.mute = False
    return unmute
