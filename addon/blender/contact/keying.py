"""Stage 4: the plan as keys: one Action with a slot per controller and per Key datablock, placed as
"Oris Contact" NLA strips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from ...core.contact import (
    ContactPlan,
    ContactSettings,
    delta_matrix,
    face_shape_tracks,
)
from ...core.keys import hermite_keys, hold_keys
from ..actions import new_action, place_strip, remove_strips, write_keys
from ..shapekeys import value_path
from .geometry import RoleKeys, keyed_value
from .heads import Head

TRACK_NAME = "Oris Contact"
STRIP_NAME = "Oris Contact"


# ------------------------------------------------------------------------------ keying

@dataclass
class Written:
    action: Any
    ids: list[Any]
    strips: list[Any]
    keys_written: int
    curves: int


def _channels(head: Head, world: Matrix, rest_world: Matrix, rest_basis: Matrix,
              previous: Any) -> tuple[list[float], list[float], Any]:
    """Location and rotation channel values that put the controller at `world`."""
    parent = rest_world @ rest_basis.inverted()  # what stands between basis and world, held fixed
    basis = parent.inverted() @ world
    loc, quat, _scale = basis.decompose()
    location = np.asarray(loc, np.float64).tolist()
    mode = head.rotation_mode
    if mode == "QUATERNION":
        if previous is not None and quat.dot(previous) < 0:
            quat.negate()
        return location, np.asarray(quat, np.float64).tolist(), quat
    if mode == "AXIS_ANGLE":
        axis, angle = quat.to_axis_angle()
        return location, [float(angle), *np.asarray(axis, np.float64).tolist()], quat
    euler = quat.to_euler(mode, previous) if previous is not None else quat.to_euler(mode)
    return location, np.asarray(euler, np.float64).tolist(), euler


def _rotation_path(head: Head) -> str:
    return {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(head.rotation_mode, "rotation_euler")


def key_heads(plan: ContactPlan, heads: tuple[Head, Head], rests: tuple[tuple[Matrix, Matrix], tuple[Matrix, Matrix]],
              settings: ContactSettings, roles: dict[str, dict[Any, RoleKeys]],
              held: dict[Any, dict[str, float]] | None = None) -> Written:
    """One Action: a slot per controller (location and rotation keys at each phase's ends and
    quarter points, with the slopes of the planned motion) and per Key datablock (blink and pucker on
    top of their rest values, and the `held` mouth keys at theirs)."""
    action, layer = new_action("Oris Contact")
    frames = np.array(plan.key_frames())
    bounds = {p.start for p in plan.phases} | {p.end for p in plan.phases}
    keys_written = curves = 0
    ids: list[Any] = []
    slots: dict[int, Any] = {}
    h = 0.01
    for side, head, (rest_world, rest_basis), rest_lip in zip("AB", heads, rests, (plan.rest_a, plan.rest_b)):
        def values_at(frame: float, prev: Any, side: str = side, head: Head = head, rest_world: Matrix = rest_world,
                      rest_basis: Matrix = rest_basis, rest_lip: np.ndarray = rest_lip) -> tuple[list[float], Any]:
            world = Matrix(delta_matrix(rest_lip, plan.pose_at(side, frame)).tolist()) @ rest_world
            loc, rot, prev = _channels(head, world, rest_world, rest_basis, prev)
            return loc + rot, prev
        owner = head.controller.pose.bones[head.bone] if head.bone else head.controller
        prev: Any = {"QUATERNION": owner.rotation_quaternion.copy(), "AXIS_ANGLE": None}.get(
            head.rotation_mode, owner.rotation_euler.copy())
        values, slopes = [], []
        for f in frames:
            v, prev = values_at(float(f), prev)
            values.append(v)
            if f in bounds:
                slopes.append([0.0] * len(v))  # minimum-jerk phases start and end at rest
            else:
                lo, _ = values_at(float(f) - h, prev)
                hi, _ = values_at(float(f) + h, prev)
                slopes.append([(b - a) / (2 * h) for a, b in zip(lo, hi)])
        vals, slo = np.array(values), np.array(slopes)
        if id(head.controller) not in slots:
            slots[id(head.controller)] = action.slots.new(id_type="OBJECT", name=head.controller.name)
            ids.append(head.controller)
        bag = layer.channelbag(slots[id(head.controller)], ensure=True)
        group = head.bone or "Object Transforms"
        rot_path = _rotation_path(head)
        for col in range(vals.shape[1]):
            path, index = ("location", col) if col < 3 else (rot_path, col - 3)
            write_keys(bag, head.path_prefix + path, hermite_keys(frames, vals[:, col], slo[:, col]), index, group)
            keys_written += len(frames)
            curves += 1
    tracks = face_shape_tracks(plan, settings)
    start = min(plan.start_frame, min(p[0] for t in tracks for p in t.points))
    end = max(plan.end_frame, max(p[0] for t in tracks for p in t.points))

    def key_bag(key: Any) -> Any:
        if id(key) not in slots:
            slots[id(key)] = action.slots.new(id_type="KEY", name=key.name)
            ids.append(key)
        return layer.channelbag(slots[id(key)], ensure=True)

    for track in tracks:
        for key, role_keys in roles.get(track.role, {}).items():
            bag = key_bag(key)
            x = np.array([p[0] for p in track.points])
            for name, (w, rest) in role_keys.items():
                block = key.key_blocks[name]
                y = np.array([keyed_value(rest, w, p[1], block) for p in track.points])
                write_keys(bag, value_path(name), hermite_keys(x, y, np.zeros(len(x))))
                keys_written += len(x)
                curves += 1
    for key, held_values in (held or {}).items():
        bag = key_bag(key)
        for name, value in held_values.items():
            write_keys(bag, value_path(name), hold_keys(value, start, end))
            keys_written += 2
            curves += 1
    # transforms hold their rest pose outside the strip (a take's location and rotation would otherwise
    # carry a head away from where the plan put it); face shapes leave other animation alone outside it,
    # and blend back into it as the heads part
    strips = []
    for idb in ids:
        is_object = isinstance(idb, bpy.types.Object)
        strip = place_strip(idb, action, slots[id(idb)], TRACK_NAME, STRIP_NAME, start, end,
                            "HOLD" if is_object else "NOTHING")
        if not is_object and idb in (held or {}):
            strip.blend_out = float(max(1.0, round(0.2 * plan.fps)))
        strips.append(strip)
    return Written(action, ids, strips, keys_written, curves)


def remove_written(written: Written) -> None:
    name = written.action.name
    for idb in written.ids:
        remove_strips(idb, TRACK_NAME, written.strips)
    action = bpy.data.actions.get(name)
    if action is not None and action.users == 0:
        bpy.data.actions.remove(action)

