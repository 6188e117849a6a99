"""Oris's own animation: one Action per run (slotted actions, Blender 4.4 to 5.x), Bezier keys
written with foreach_set, each animated datablock getting an NLA strip on an Oris track.
Removing a strip removes only that strip of Oris's, and its Action once nothing uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bpy
import numpy as np

from ..core.keys import BezierKeys


class EditError(RuntimeError):
    """The target cannot be edited (linked or overridden data, or animation in the way); the message says
    what to do."""


_ALIGNED = 3  # Keyframe handle type enum value for foreach_set
_BEZIER = 2  # Keyframe interpolation enum value


def new_action(name: str) -> tuple[Any, Any]:
    """A fresh Action and its keyframe strip (the place channel bags live)."""
    action = bpy.data.actions.new(name)
    return action, action.layers.new("Oris").strips.new(type="KEYFRAME")


def write_keys(bag: Any, data_path: str, keys: BezierKeys, index: int = 0, group: str | None = None) -> None:
    fc = bag.fcurves.new(data_path, index=index)
    if group:
        fc.group = bag.groups.get(group) or bag.groups.new(group)
    points = fc.keyframe_points
    n = len(keys)
    points.add(n)
    points.foreach_set("co", np.stack([keys.x, keys.y], axis=1).ravel().astype(np.float32))
    points.foreach_set("handle_left", keys.left.ravel().astype(np.float32))
    points.foreach_set("handle_right", keys.right.ravel().astype(np.float32))
    points.foreach_set("handle_left_type", np.full(n, _ALIGNED, np.int32))
    points.foreach_set("handle_right_type", np.full(n, _ALIGNED, np.int32))
    points.foreach_set("interpolation", np.full(n, _BEZIER, np.int32))
    fc.update()


def oris_strips(id_block: Any, track_name: str) -> list[Any]:
    ad = id_block.animation_data
    if ad is None:
        return []
    return [s for t in ad.nla_tracks if t.name == track_name for s in t.strips]


def slot_paths(action: Any, slot: Any) -> list[str]:
    """The data paths an Action keys for one of its slots."""
    if action is None or slot is None:
        return []
    bags = [st.channelbag(slot) for layer in action.layers for st in layer.strips]
    return [fc.data_path for bag in bags if bag for fc in bag.fcurves]


def active_action_paths(id_block: Any) -> list[str]:
    """The data paths the datablock's own active Action keys (for its assigned slot). That Action
    plays on top of every NLA strip, so it overrides Oris's strips on those channels."""
    ad = id_block.animation_data
    if ad is None or ad.action is None:
        return []
    return slot_paths(ad.action, getattr(ad, "action_slot", None))


ORIS_TRACKS = ("Oris", "Oris Contact")  # lip sync, contact


def is_oris_track(track: Any) -> bool:
    return str(track.name) in ORIS_TRACKS


def animated_paths(id_block: Any, skip: tuple[str, ...] = ORIS_TRACKS) -> set[str]:
    """Channels animation other than the `skip` tracks animates: the active Action, NLA strips (muted or
    not: a muted take is still the key's animation, not its rest), drivers."""
    ad = id_block.animation_data
    if ad is None:
        return set()
    paths = set(active_action_paths(id_block)) | {d.data_path for d in ad.drivers}
    for track in ad.nla_tracks:
        if track.name not in skip:
            paths |= {p for s in track.strips for p in slot_paths(s.action, s.action_slot)}
    return paths


def playing_tracks(id_block: Any, paths: set[str]) -> list[Any]:
    """The datablock's unmuted NLA tracks, other than Oris's own, with a strip keying any of these paths."""
    ad = id_block.animation_data
    if ad is None:
        return []
    return [t for t in ad.nla_tracks if not is_oris_track(t) and not t.mute and any(
        not s.mute and paths.intersection(slot_paths(s.action, s.action_slot)) for s in t.strips)]


def _remove_strips_where(id_block: Any, track_name: str, doomed: Callable[[Any], bool]) -> None:
    """Remove the strips on this datablock's Oris tracks for which doomed(strip) holds, their
    Actions once nothing else uses them, and tracks left empty."""
    ad = id_block.animation_data
    if ad is None:
        return
    for track in list(ad.nla_tracks):
        if track.name != track_name:
            continue
        for strip in list(track.strips):
            if doomed(strip):
                action = strip.action
                track.strips.remove(strip)
                if action is not None and action.users == 0:
                    bpy.data.actions.remove(action)
        if len(track.strips) == 0:
            ad.nla_tracks.remove(track)


def remove_strips(id_block: Any, track_name: str, strips: list[Any]) -> None:
    """Remove these very strips (where this datablock's Oris tracks hold them) and unused Actions."""
    _remove_strips_where(id_block, track_name, lambda strip: any(strip == s for s in strips))


def _free_track(id_block: Any, track_name: str, start: float, end: float) -> Any:
    """The Oris track, or a new one above it when this frame range is taken there."""
    ad = id_block.animation_data or id_block.animation_data_create()
    for track in ad.nla_tracks:
        if track.name == track_name and all(s.frame_end <= start or s.frame_start >= end for s in track.strips):
            return track
    track = ad.nla_tracks.new()
    track.name = track_name
    return track


def place_strip(id_block: Any, action: Any, slot: Any, track_name: str, strip_name: str,
                start: float, end: float, extrapolation: str = "NOTHING") -> Any:
    """An NLA strip playing the slot's keys at their own frames (action frame = scene frame)."""
    track = _free_track(id_block, track_name, start, end)
    strip = track.strips.new(strip_name, int(np.floor(start)), action)
    strip.action_slot = slot
    strip.action_frame_start, strip.action_frame_end = float(np.floor(start)), float(max(end, np.floor(start) + 1))
    strip.frame_start = float(np.floor(start))
    strip.frame_end = strip.frame_start + (strip.action_frame_end - strip.action_frame_start)
    strip.extrapolation = extrapolation
    strip.blend_type = "REPLACE"
    return strip


def push_down(id_block: Any, mute: bool = False) -> Any:
    """Move the datablock's active Action into an NLA track of its own (Blender's Push Down, done
    headless), muted when asked; returns the track. Oris's tracks are kept above it."""
    ad = id_block.animation_data
    action, slot = ad.action, getattr(ad, "action_slot", None)
    track = ad.nla_tracks.new()
    track.name = action.name
    start, end = action.frame_range
    strip = track.strips.new(action.name, int(np.floor(start)), action)
    if slot is not None and strip.action_slot != slot:
        strip.action_slot = slot
    strip.extrapolation = "HOLD"
    track.mute = mute
    ad.action = None
    keep_oris_on_top(id_block)
    return track


_STRIP_FIELDS = ("action_frame_start", "action_frame_end", "frame_start", "frame_end", "extrapolation", "blend_type",
                 "mute", "blend_in", "blend_out", "influence", "use_animated_influence")


def keep_oris_on_top(id_block: Any) -> bool:
    """Tracks play bottom to top, the upper ones over the lower: when another track sits above one
    of Oris's, rebuild Oris's tracks (same strips, same order among themselves) at the top."""
    ad = id_block.animation_data
    tracks = list(ad.nla_tracks) if ad is not None else []
    last_other = max((i for i, t in enumerate(tracks) if not is_oris_track(t)), default=-1)
    if not any(is_oris_track(t) for t in tracks[:last_other]):
        return False
    for track in [t for t in tracks if is_oris_track(t)]:
        saved = [(s.name, s.action, s.action_slot, {f: getattr(s, f) for f in _STRIP_FIELDS}) for s in track.strips]
        name, mute = track.name, track.mute
        for _name, action, _slot, _fields in saved:
            action.use_fake_user = True  # kept while its strip moves
        ad.nla_tracks.remove(track)
        new = ad.nla_tracks.new()
        new.name, new.mute = name, mute
        for strip_name, action, slot, fields in saved:
            strip = new.strips.new(strip_name, int(np.floor(fields["frame_start"])), action)
            strip.action_slot = slot
            strip.action_frame_start, strip.action_frame_end = fields["action_frame_start"], fields["action_frame_end"]
            strip.frame_start, strip.frame_end = fields["frame_start"], fields["frame_end"]
            for f in _STRIP_FIELDS[4:]:
                setattr(strip, f, fields[f])
            action.use_fake_user = False
    return True
