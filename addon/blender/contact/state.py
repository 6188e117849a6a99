"""Stage 6: the file as it was: values evaluation writes back, Oris's earlier contact strips, paused
subdivision, and animation that would override the contact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy

from ...core.contact import (
    ContactError,
)
from ..actions import active_action_paths, oris_strips, place_strip, remove_strips
from .heads import Head
from .keying import TRACK_NAME


def snapshot(heads: tuple[Head, Head]) -> list[tuple[Any, str, Any]]:
    """Values that evaluating the animation writes back into the file, to restore after a failed try."""
    saved = []
    for h in heads:
        owner = h.controller.pose.bones[h.bone] if h.bone else h.controller
        for attr in ("location", "rotation_euler", "rotation_quaternion", "rotation_axis_angle", "scale"):
            saved.append((owner, attr, tuple(getattr(owner, attr))))
        for key in h.keys:
            for kb in key.key_blocks:
                saved.append((kb, "value", kb.value))
    return saved


def restore(saved: list[tuple[Any, str, Any]]) -> None:
    for owner, attr, value in saved:
        setattr(owner, attr, value)


@dataclass
class _Detached:
    id_block: Any
    action: Any
    slot_handle: int
    name: str
    start: float
    end: float
    extrapolation: str


def detach_previous(heads: tuple[Head, Head]) -> list[_Detached]:
    """Take Oris's earlier contact strips off (kept, to put back if this run fails) and set the
    channels they drove to their first keys, the pose the heads had before that contact."""
    owners = {id(i): i for h in heads for i in [h.controller, *h.keys]}.values()
    detached = []
    for idb in owners:
        for strip in oris_strips(idb, TRACK_NAME):
            action, slot = strip.action, strip.action_slot
            if action is not None and slot is not None:
                action.use_fake_user = True
                for layer in action.layers:
                    for layer_strip in layer.strips:
                        bag = layer_strip.channelbag(slot)
                        for fc in bag.fcurves if bag else []:
                            if len(fc.keyframe_points):
                                _set_path(idb, fc.data_path, fc.array_index, fc.keyframe_points[0].co[1])
            detached.append(_Detached(idb, action, slot.handle if slot else -1, strip.name, strip.action_frame_start,
                                      strip.action_frame_end, strip.extrapolation))
        remove_strips(idb, TRACK_NAME, oris_strips(idb, TRACK_NAME))
    return detached


def reattach(detached: list[_Detached]) -> None:
    for d in detached:
        slot = next((sl for sl in d.action.slots if sl.handle == d.slot_handle), None)
        place_strip(d.id_block, d.action, slot, TRACK_NAME, d.name, d.start, d.end, d.extrapolation)
    for d in detached:
        d.action.use_fake_user = False


def forget(detached: list[_Detached]) -> None:
    actions = {d.action.name: d.action for d in detached}
    for action in actions.values():
        action.use_fake_user = False
        if action.users == 0:
            bpy.data.actions.remove(action)


def _set_path(idb: Any, path: str, index: int, value: float) -> None:
    base, _, attr = path.rpartition(".")
    owner = idb.path_resolve(base) if base else idb
    current = getattr(owner, attr)
    if hasattr(current, "__len__"):
        current[index] = value
    else:
        setattr(owner, attr, value)


def other_face_animation(heads: tuple[Head, Head], start: float, end: float) -> str:
    """Names of NLA tracks (or an active Action) that move the faces' shape keys during the contact."""
    found = []
    for key in {id(k): k for h in heads for k in h.keys}.values():
        ad = key.animation_data
        if ad is None:
            continue
        if ad.action is not None:
            found.append(f"{key.name}: action {ad.action.name}")
        for track in ad.nla_tracks:
            if track.name != TRACK_NAME and not track.mute and any(
                    s.frame_start < end and s.frame_end > start and not s.mute for s in track.strips):
                found.append(f"{key.name}: track {track.name}")
    return ", ".join(found)


def pause_subdivision(heads: tuple[Head, Head]) -> list[Any]:
    """Subdivision changes the vertex count that shape keys index: measure the cage instead (the
    smooth surface lies inside it, so a cage without penetration is a surface without it)."""
    paused = []
    for h in heads:
        for ob, _subset in h.meshes:
            for modifier in ob.modifiers:
                if modifier.type in ("SUBSURF", "MULTIRES") and modifier.show_viewport:
                    modifier.show_viewport = False
                    paused.append(modifier)
    return paused


def check_own_keys(heads: tuple[Head, Head]) -> None:
    """An active Action keying a head's transform would override the contact strip: say so first."""
    for h in heads:
        prefix = h.path_prefix
        moving = [p for p in active_action_paths(h.controller)
                  if p.startswith(prefix) and p[len(prefix):].startswith(("location", "rotation"))]
        if moving:
            raise ContactError(f"{h.name} has its own keys on {', '.join(sorted(set(moving))[:3])} in the action "
                               f"{h.controller.animation_data.action.name!r}, which would override the contact; "
                               "push that action down to the NLA (Dope Sheet > Action > Push Down) or clear those keys first")

