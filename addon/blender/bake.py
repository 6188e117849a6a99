"""Bake for export: Oris's NLA strips (lip sync and contact, several clips) flattened into one slotted Action,
active on each datablock, so a game engine or an exporter that reads one Action per object gets all of it.

Oris's strips alone are merged key by key (sparse, Bezier handles kept: a strip plays its keys at their own
frames, and an upper track's strip wins over its frames). With the artist's NLA included, the animation is
sampled on every frame as Blender evaluates it and reduced to sparse Bezier keys again (core.keys). Oris's
tracks, and the artist's tracks that were included, are muted afterwards, not deleted: unmute them to go back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from ..core.keys import DEFAULT_TOLERANCE, BezierKeys, reduce_curve
from .actions import ORIS_TRACKS, new_action, push_down, write_keys

BAKE_NAME = "Oris Bake"
BAKE_PROPERTY = "oris_bake"


@dataclass
class BakeReport:
    action: str
    datablocks: list[str]
    curves: int
    keys: int
    frames: tuple[int, int]
    notes: list[str] = field(default_factory=list)


class BakeError(RuntimeError):
    """Nothing to bake, or a datablock that cannot take the baked Action; the message says what to do."""


def _oris_strips(id_block: Any) -> list[Any]:
    """The Oris strips that play on the datablock, bottom to top; after a bake (its Action active, Oris's tracks
    muted by it) the ones that played before, so baking again bakes the same."""
    ad = id_block.animation_data
    rebake = ad is not None and ad.action is not None and bool(ad.action.get(BAKE_PROPERTY))
    return [s for t in (ad.nla_tracks if ad else []) if t.name in ORIS_TRACKS and (rebake or not t.mute)
            for s in t.strips if not s.mute and s.action is not None]


def baked_datablocks(objects: list[Any]) -> list[Any]:
    """The datablocks whose Oris strips a bake flattens: the objects (and armatures, for jaw and contact keys)
    and their meshes' shape keys."""
    found: list[Any] = []
    rigs = [m.object for ob in objects if ob.type == "MESH" for m in ob.modifiers if m.type == "ARMATURE" and m.object]
    for ob in [*objects, *rigs]:  # a face's armature carries its jaw bone's keys
        for idb in (ob, ob.data.shape_keys if ob.type == "MESH" and ob.data.shape_keys else None):
            if idb is not None and idb not in found and _oris_strips(idb):
                found.append(idb)
    return found


def _merged(strips: list[Any]) -> dict[tuple[str, int], list[tuple[float, float, tuple, tuple]]]:
    """Each channel's keys (frame, value, left handle, right handle) over the strips, bottom to top: an upper
    strip's keys replace the lower ones within its frames."""
    channels: dict[tuple[str, int], list[tuple[float, float, tuple, tuple]]] = {}
    for strip in strips:
        lo, hi = strip.frame_start, strip.frame_end
        shift = strip.frame_start - strip.action_frame_start  # Oris plays action frame = scene frame: 0
        bags = [st.channelbag(strip.action_slot) for layer in strip.action.layers for st in layer.strips]
        for bag in (b for b in bags if b):
            for fc in bag.fcurves:
                keys = [(k.co.x + shift, k.co.y, (k.handle_left.x + shift, k.handle_left.y),
                         (k.handle_right.x + shift, k.handle_right.y)) for k in fc.keyframe_points]
                kept = [k for k in channels.get((fc.data_path, fc.array_index), []) if not lo <= k[0] <= hi]
                channels[(fc.data_path, fc.array_index)] = sorted(kept + [k for k in keys if lo <= k[0] <= hi])
    # between strips no strip plays and the channel holds its last value; one Action would glide to the next
    # strip's first key instead, so a held key goes on the frame before it
    covered: list[list[float]] = []
    for lo, hi in sorted((s.frame_start, s.frame_end) for s in strips):
        if covered and lo <= covered[-1][1] + 1:
            covered[-1][1] = max(covered[-1][1], hi)
        else:
            covered.append([lo, hi])
    for keys in channels.values():
        for (_lo0, hi0), (lo1, _hi1) in zip(covered, covered[1:]):
            last = [k for k in keys if k[0] <= hi0]
            if last and lo1 - 1 > last[-1][0]:
                x, y = lo1 - 1, last[-1][1]
                keys.append((x, y, (x - 1 / 3, y), (x + 1 / 3, y)))
        keys.sort()
    return channels


def _sampled(scene: Any, id_blocks: list[Any], paths: dict[int, set[tuple[str, int]]], start: int, end: int,
             tolerance: float) -> dict[int, dict[tuple[str, int], BezierKeys]]:
    """Every channel as Blender evaluates it on each frame, reduced to sparse Bezier keys."""
    values: dict[int, dict[tuple[str, int], list[float]]] = {id(i): {c: [] for c in paths[id(i)]} for i in id_blocks}
    for frame in range(start, end + 1):
        scene.frame_set(frame)
        for idb in id_blocks:
            for (path, index), column in values[id(idb)].items():
                value = idb.path_resolve(path)
                column.append(float(value[index] if hasattr(value, "__len__") else value))
    return {key: {c: reduce_curve(np.array(v, np.float32), tolerance, start=float(start)) for c, v in chans.items()}
            for key, chans in values.items()}


def _as_keys(merged: list[tuple[float, float, tuple, tuple]]) -> BezierKeys:
    x = np.array([k[0] for k in merged], np.float32)
    y = np.array([k[1] for k in merged], np.float32)
    left = np.array([k[2] for k in merged], np.float32).reshape(-1, 2)
    right = np.array([k[3] for k in merged], np.float32).reshape(-1, 2)
    return BezierKeys(x, y, left, right)


def bake(scene: Any, objects: list[Any], include_nla: bool = False, tolerance: float = DEFAULT_TOLERANCE) -> BakeReport:
    """Flatten the objects' Oris strips (and, with include_nla, every NLA track and Action that plays on those
    channels) into one Action, made active on each datablock."""
    id_blocks = baked_datablocks(objects)
    if not id_blocks:
        raise BakeError("nothing to bake: none of the chosen objects has Oris lip sync or contact strips; run the "
                        "lip sync first, or choose the face meshes (command line: oris bake --object NAME)")
    for idb in id_blocks:
        if idb.library is not None or getattr(idb.override_library, "is_system_override", False):
            raise BakeError(f"{idb.name} is linked or a non-editable override; lip-sync it first (Oris makes it "
                            "editable), then bake")
    strips = {id(i): _oris_strips(i) for i in id_blocks}
    start = int(np.floor(min(s.frame_start for ss in strips.values() for s in ss)))
    end = int(np.ceil(max(s.frame_end for ss in strips.values() for s in ss)))
    notes: list[str] = []
    old = [i.animation_data.action for i in id_blocks if i.animation_data.action is not None
           and i.animation_data.action.get(BAKE_PROPERTY)]
    if include_nla:
        paths: dict[int, set[tuple[str, int]]] = {id(i): set() for i in id_blocks}
        for idb in id_blocks:
            ad = idb.animation_data
            for track in ad.nla_tracks:
                for s in track.strips if not track.mute else []:
                    paths[id(idb)] |= _channels(s.action, s.action_slot)
            if ad.action is not None:
                paths[id(idb)] |= _channels(ad.action, getattr(ad, "action_slot", None))
        keyed = _sampled(scene, id_blocks, paths, start, end, tolerance)
    action, layer_strip = new_action(BAKE_NAME)
    action[BAKE_PROPERTY] = True
    curves = keys_written = 0
    for idb in id_blocks:
        ad = idb.animation_data
        slot = action.slots.new(id_type=idb.id_type, name=idb.name)
        bag = layer_strip.channelbag(slot, ensure=True)
        channels = keyed[id(idb)] if include_nla else {c: _as_keys(k) for c, k in _merged(strips[id(idb)]).items()}
        for (path, index), keys in sorted(channels.items()):
            write_keys(bag, path, keys, index=index)
            curves += 1
            keys_written += len(keys)
        if ad.action is not None and not ad.action.get(BAKE_PROPERTY):
            name = ad.action.name
            push_down(idb, mute=include_nla)
            notes.append(f"{idb.name}: the action {name!r} moved to an NLA track"
                         + (", muted (it is in the bake)" if include_nla else " below the bake"))
        ad.action = action
        ad.action_slot = slot
        for track in ad.nla_tracks:
            if track.name in ORIS_TRACKS or (include_nla and not track.mute):
                track.mute = True
        notes.append(f"{idb.name}: muted its {'NLA tracks' if include_nla else 'Oris tracks'} (unmute them to go back)")
    for previous in old:
        if previous.users == 0:
            bpy.data.actions.remove(previous)
    return BakeReport(action.name, [i.name for i in id_blocks], curves, keys_written, (start, end), notes)


def _channels(action: Any, slot: Any) -> set[tuple[str, int]]:
    if action is None or slot is None:
        return set()
    bags = [st.channelbag(slot) for layer in action.layers for st in layer.strips]
    return {(fc.data_path, fc.array_index) for bag in bags if bag for fc in bag.fcurves}

