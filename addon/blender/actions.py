"""Oris's own animation: one Action per run (slotted actions, Blender 4.4 to 5.x), Bezier keys
written with foreach_set, each animated datablock getting an NLA strip on an Oris track.
Removing a strip removes only Oris's strip of that name, and its Action once nothing uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bpy
import numpy as np

from ..core.keys import BezierKeys

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


def active_action_paths(id_block: Any) -> list[str]:
    """The data paths the datablock's own active Action keys (for its assigned slot). That Action
    plays on top of every NLA strip, so it overrides Oris's strips on those channels."""
    ad = id_block.animation_data
    slot = getattr(ad, "action_slot", None) if ad is not None and ad.action is not None else None
    if slot is None:
        return []
    bags = [st.channelbag(slot) for layer in ad.action.layers for st in layer.strips]
    return [fc.data_path for bag in bags if bag for fc in bag.fcurves]


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


def remove_oris_strip(id_block: Any, strip_name: str, track_name: str) -> None:
    """Remove Oris's strip of that name (and its Action when nothing else uses it)."""
    _remove_strips_where(id_block, track_name, lambda strip: strip.name == strip_name)


def remove_strips(id_block: Any, track_name: str, strips: list[Any]) -> None:
    """Remove these very strips (where this datablock's Oris tracks hold them) and unused Actions."""
    _remove_strips_where(id_block, track_name, lambda strip: any(strip == s for s in strips))


def _free_track(id_block: Any, track_name: str, start: float, end: float) -> Any:
    """The Oris track, or a new one above it when this frame range is taken there."""
    ad = id_block.animation_data or id_block.animation_data_create()
    for track in ad.nla_tracks:
        if track.name.startswith(track_name) and all(s.frame_end <= start or s.frame_start >= end for s in track.strips):
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
