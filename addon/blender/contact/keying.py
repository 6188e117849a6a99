"""Stage 4: the plan as keys: one Action with a slot per controller and per Key datablock, placed as
"Oris Contact" NLA strips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix, Quaternion, Vector

from ...core.contact import (
    MM,
    ContactPlan,
    ContactSettings,
    delta_matrix,
    face_shape_tracks,
)
from ...core.keys import hermite_keys, hold_keys
from ..actions import new_action, place_strip, remove_strips, write_keys
from ..shapekeys import value_path
from .body import Body, BodyPose
from .geometry import RoleKeys, keyed_value
from .heads import Head, Rest

TRACK_NAME = "Oris Contact"
BLEND_SECONDS = 0.5  # a character with its own take fades out of it before the approach and back after the release
BODY_GIVE_MM = 5.0  # at human scale: how far a standing body sinks or rises (knees, toes) to set its head's height
STRIP_NAME = "Oris Contact"


# ------------------------------------------------------------------------------ keying

@dataclass
class Written:
    action: Any
    ids: list[Any]
    strips: list[Any]
    keys_written: int
    curves: int
    poses: dict[str, list[BodyPose]]  # for a head on a body, the body's pose at each key frame


def _rotation_values(mode: str, quat: Quaternion, previous: Any) -> tuple[list[float], Any]:
    """A rotation as the channels of `mode`, continuous with the previous frame's."""
    if mode == "QUATERNION":
        if previous is not None and quat.dot(previous) < 0:
            quat.negate()
        return np.asarray(quat, np.float64).tolist(), quat
    if mode == "AXIS_ANGLE":
        axis, angle = quat.to_axis_angle()
        return [float(angle), *np.asarray(axis, np.float64).tolist()], quat
    euler = quat.to_euler(mode, previous) if previous is not None else quat.to_euler(mode)
    return np.asarray(euler, np.float64).tolist(), euler


def _rotation_path(mode: str) -> str:
    return {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")


def _initial(owner: Any) -> Any:
    return {"QUATERNION": owner.rotation_quaternion.copy(), "AXIS_ANGLE": None}.get(owner.rotation_mode,
                                                                                owner.rotation_euler.copy())


@dataclass(frozen=True)
class Channel:
    path: str
    index: int
    group: str


@dataclass(frozen=True)
class Mover:
    """One thing keying turns (and moves): an object or a pose bone."""

    owner: Any
    prefix: str  # its data path prefix on the controller
    group: str
    located: bool  # its location is keyed
    turned: bool = True  # and its rotation

    def channels(self) -> list[Channel]:
        mode = self.owner.rotation_mode
        rot = [Channel(self.prefix + _rotation_path(mode), i, self.group)
               for i in range(4 if mode in ("QUATERNION", "AXIS_ANGLE") else 3)]
        return ([Channel(self.prefix + "location", i, self.group) for i in range(3)] if self.located else []) + \
            (rot if self.turned else [])


def movers(head: Head, standing: bool) -> list[Mover]:
    """What keying writes for a head: its controller (object or bone), or for a head on a body, the body's object
    (its location, and its turn when it stands) and the bones of the chain."""
    if not head.chain:
        owner = head.controller.pose.bones[head.bone] if head.bone else head.controller
        return [Mover(owner, head.path_prefix, head.bone or "Object Transforms", True)]
    bones = head.controller.pose.bones
    return [Mover(head.controller, "", "Object Transforms", True, standing)] + \
        [Mover(bones[n], f'pose.bones["{bpy.utils.escape_identifier(n)}"].', n, False) for n in head.chain]


def head_values(head: Head, rest: Rest, body: Body | None, turned: list[Mover], world: Matrix,
                previous: list[Any]) -> tuple[list[float], list[Any], BodyPose | None]:
    """The values of movers(head)'s channels that put the head at `world` (`turned`: those of them whose rotation
    is keyed); `previous` holds each rotation's last value (for continuous Euler angles and quaternion signs)."""
    if body is None:
        parent = rest.world @ rest.basis.inverted()  # what stands between basis and world, held fixed
        loc, quat, _scale = (parent.inverted() @ world).decompose()
        rot, prev = _rotation_values(head.rotation_mode, quat, previous[0])
        return np.asarray(loc, np.float64).tolist() + rot, [prev], None
    pose = body.solve(world)
    object_basis, bone_bases = body.bases(pose)
    values = np.asarray(object_basis.to_translation(), np.float64).tolist()
    rotations = ([object_basis] if body.rest.standing else []) + bone_bases
    prevs: list[Any] = []
    for mover, basis, prev in zip(turned, rotations, previous):
        rot, new_prev = _rotation_values(mover.owner.rotation_mode, basis.to_quaternion(), prev)
        values += rot
        prevs.append(new_prev)
    return values, prevs, pose


def key_heads(plan: ContactPlan, heads: tuple[Head, Head], rests: tuple[Rest, Rest],
              settings: ContactSettings, roles: dict[str, dict[Any, RoleKeys]],
              held: dict[Any, dict[str, float]] | None = None,
              offsets: dict[str, Callable[[float], np.ndarray]] | None = None) -> Written:
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
    poses: dict[str, list[BodyPose]] = {"A": [], "B": []}
    for side, head, head_rest, rest_lip in zip("AB", heads, rests, (plan.rest_a, plan.rest_b)):
        forward = Vector((plan.axis if side == "A" else -plan.axis).tolist())
        body = Body(head_rest.body, forward, BODY_GIVE_MM * MM * plan.scale) if head_rest.body is not None else None
        nudge = (offsets or {}).get(side)
        mine = movers(head, body is not None and body.rest.standing)
        turned = [m for m in mine if m.turned]

        def values_at(frame: float, prev: list[Any], side: str = side, head: Head = head, start: Rest = head_rest,
                      rest_lip: np.ndarray = rest_lip, body: Body | None = body, turned: list[Mover] = turned,
                      nudge: Callable[[float], np.ndarray] | None = nudge) -> tuple[list[float], list[Any], BodyPose | None]:
            m = delta_matrix(rest_lip, plan.pose_at(side, frame))
            if nudge is not None:  # the skin's own lag behind the bones, measured and taken back
                m[:3, 3] += nudge(frame)
            return head_values(head, start, body, turned, Matrix(m.tolist()) @ start.world, prev)
        prev: list[Any] = [_initial(m.owner) for m in turned]
        values, slopes = [], []
        for f in frames:
            v, prev, pose = values_at(float(f), prev)
            values.append(v)
            if pose is not None:
                poses[side].append(pose)
            if f in bounds:
                slopes.append([0.0] * len(v))  # minimum-jerk phases start and end at rest
            else:
                lo, _, _ = values_at(float(f) - h, prev)
                hi, _, _ = values_at(float(f) + h, prev)
                slopes.append([(b - a) / (2 * h) for a, b in zip(lo, hi)])
        vals, slo = np.array(values), np.array(slopes)
        if id(head.controller) not in slots:
            slots[id(head.controller)] = action.slots.new(id_type="OBJECT", name=head.controller.name)
            ids.append(head.controller)
        bag = layer.channelbag(slots[id(head.controller)], ensure=True)
        for col, channel in enumerate(c for m in mine for c in m.channels()):
            write_keys(bag, channel.path, hermite_keys(frames, vals[:, col], slo[:, col]), channel.index, channel.group)
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
    # and blend back into it as the heads part. A character with its own walk or idle under Oris's track is the
    # exception: the take fades into the pose the approach starts from over the half second before it, and back
    # out of the pose the release ends in over the half second after; outside, the take plays as it did (the
    # contact itself is Oris's alone, as the checks measure it)
    blend = float(max(2.0, round(BLEND_SECONDS * plan.fps)))
    walking = {id(h.controller) for h in heads if h.on_body and _plays_below(h.controller)}
    strips = []
    for idb in ids:
        is_object = isinstance(idb, bpy.types.Object)
        if id(idb) in walking:
            strip = place_strip(idb, action, slots[id(idb)], TRACK_NAME, STRIP_NAME, start - blend, end + blend,
                                "NOTHING")
            strip.blend_in = strip.blend_out = blend
        else:
            strip = place_strip(idb, action, slots[id(idb)], TRACK_NAME, STRIP_NAME, start, end,
                                "HOLD" if is_object else "NOTHING")
        if not is_object and idb in (held or {}):
            strip.blend_out = float(max(1.0, round(0.2 * plan.fps)))
        strips.append(strip)
    return Written(action, ids, strips, keys_written, curves, poses)


def _plays_below(ob: Any) -> bool:
    """Another take plays on the object: an unmuted NLA track that is not Oris's."""
    ad = ob.animation_data
    return ad is not None and any(t.name != TRACK_NAME and not t.mute and len(t.strips) for t in ad.nla_tracks)


def remove_written(written: Written) -> None:
    name = written.action.name
    for idb in written.ids:
        remove_strips(idb, TRACK_NAME, written.strips)
    action = bpy.data.actions.get(name)
    if action is not None and action.users == 0:
        bpy.data.actions.remove(action)

