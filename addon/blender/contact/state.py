"""Stage 6: the file as it was: values evaluation writes back, Oris's earlier contact strips, paused
subdivision, and animation that would override the contact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy

from ...core.rigs import detect, mouth_keys
from ..actions import animated_paths, oris_strips, place_strip, remove_strips
from ..shapekeys import value_path
from .heads import Head
from .keying import TRACK_NAME


def snapshot(heads: tuple[Head, Head]) -> list[tuple[Any, str, Any]]:
    """Values that evaluating the animation writes back into the file, to restore after a failed try."""
    saved = []
    for h in heads:
        bones = h.controller.pose.bones if h.bone else None
        owners = [h.controller] + ([bones[n] for n in {h.bone, *h.chain}] if bones is not None else [])
        for owner in owners:  # a head on a body: its object and the spine chain move too
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
    """Names of NLA tracks, an active Action or drivers that move the faces' shape keys during the contact
    (drivers play over every strip)."""
    found = []
    for key in {id(k): k for h in heads for k in h.keys}.values():
        ad = key.animation_data
        if ad is None:
            continue
        if ad.action is not None:
            found.append(f"{key.name}: action {ad.action.name}")
        found += [f"{key.name}: a driver on {d.data_path.split(chr(34))[1] if chr(34) in d.data_path else d.data_path}"
                  for d in ad.drivers if not d.mute]
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


def contact_channels(heads: tuple[Head, Head]) -> list[tuple[Any, set[str], str]]:
    """What the contact keys, per datablock: each controller's location and rotation, and each face's
    mouth and jaw keys (the pucker and blink among them): (datablock, data paths, its name)."""
    found: dict[int, tuple[Any, set[str], str]] = {}
    for h in heads:
        rotations = ("rotation_euler", "rotation_quaternion", "rotation_axis_angle")
        if h.chain:  # a head on a body: the object moves and turns, the spine chain bends
            prefixes = ["", *(f'pose.bones["{bpy.utils.escape_identifier(n)}"].' for n in h.chain)]
            paths = {"location"} | {pre + r for pre in prefixes for r in rotations}
        else:
            paths = {h.path_prefix + p for p in ("location", *rotations)}
        entry = found.setdefault(id(h.controller), (h.controller, set(), h.controller.name))
        entry[1].update(paths)
        for key in h.keys:
            names = [kb.name for kb in key.key_blocks if kb != key.reference_key]
            match = detect(names)[0]
            keyed = {*mouth_keys(names, match), *match.extra_pose("pucker"), *match.extra_pose("blink")}
            users = ", ".join(ob.name for ob, _ in h.meshes if ob.data.shape_keys == key)
            found[id(key)] = (key, {value_path(n) for n in keyed}, f"{users} (shape keys)")
    return list(found.values())


def held_mouth_keys(heads: tuple[Head, Head], channels: list[tuple[Any, set[str], str]], keyed: dict[Any, set[str]],
                    lips: dict[Any, set[str]]) -> dict[Any, dict[str, float]]:
    """The mouth keys (the `channels` of each Key), and any other key that moves the lips (`lips`), that other
    animation moves (a take, the lip sync), other than those the contact keys anyway: held at the value they
    have when the approach begins, the face the plan was made on."""
    paths_of = {id(idb): paths for idb, paths, _what in channels}
    held: dict[Any, dict[str, float]] = {}
    for key in {id(k): k for h in heads for k in h.keys}.values():
        moving = animated_paths(key, skip=(TRACK_NAME,))
        shaping = paths_of[id(key)] | {value_path(n) for n in lips.get(key, set())}
        held[key] = {kb.name: float(kb.value) for kb in key.key_blocks if kb != key.reference_key
                     and value_path(kb.name) in shaping and value_path(kb.name) in moving
                     and kb.name not in keyed.get(key, set())}
    return {k: v for k, v in held.items() if v}
