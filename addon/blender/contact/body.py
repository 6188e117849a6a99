"""A head on a body: the body walks and turns, the spine and neck bend, and no bone leaves its parent.

A head bone with a neck under it rides on a body. Of the head's planned motion:
  * the body's object takes the turn about the vertical (the character turns on its feet) and the distance across
    the floor; it sinks or rises no more than the knees would give (a few millimetres), so the feet stay on it;
  * the rest of the turn (the tilt, any nod) is shared equally along the spine chain below the head, each bone
    turning about its own joint;
  * a forward lean through the lower half of that chain, taken back by its upper half so the face keeps the plan's
    orientation, lowers the head where the plan asks for less height than the standing body gives. Plans for
    bodies seldom ask it: characters of different heights meet with the taller looking down and the shorter up
    (level_meeting), which moves the lips as far with less bending (benchmarks/contact.py --heights).
Sharing the tilt is what keeps the skin whole: on the bundled characters (demo/characters.py, Blender's automatic
weights) a 30 degree tilt stretches edges 26% when the neck and head take it and 13-16% shared by spine, chest, neck
and head; with the head bone carrying the whole approach, 1,459%. (Meeting off centre then brings the tilt the noses
need down to 17.5 degrees: 8%.)

A head bone whose parent is its armature's root (a head rig, no body) turns alone and its object carries it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from mathutils import Matrix, Quaternion, Vector

from ...core.contact import ContactSettings, Face, approach_axis, contact_rotations

CHAIN_LENGTH = 4  # the head and up to three bones below it share the tilt; never the root (hips, legs)
MAX_LEAN_DEGREES = 30.0
MAX_INCLINE_DEGREES = 40.0  # the taller looking down, the shorter up: beyond this the skin has long given out
UP = Vector((0.0, 0.0, 1.0))  # Blender's world up: the floor is level in it


def spine_chain(rig: Any, head_bone: str) -> tuple[str, ...]:
    """The bones that share the head's tilt, lowest first, the head bone last: the head and up to
    CHAIN_LENGTH - 1 of its ancestors, never the chain's root (which carries the hips and legs)."""
    names = [head_bone]
    bone = rig.data.bones[head_bone].parent
    while bone is not None and bone.parent is not None and len(names) < CHAIN_LENGTH:
        names.append(bone.name)
        bone = bone.parent
    return tuple(reversed(names))


@dataclass(frozen=True)
class BodyRest:
    """Where a body stands when the approach begins."""

    object_world: Matrix
    object_basis: Matrix
    worlds: tuple[Matrix, ...]  # the chain's bones in world space, lowest first, the head last
    bases: tuple[Matrix, ...]  # and their own channels

    @property
    def standing(self) -> bool:
        """A body (a neck under the head) rather than a head rig: it stays on the floor and leans."""
        return len(self.worlds) >= 2


def body_rest(rig: Any, chain: tuple[str, ...]) -> BodyRest:
    bones = rig.pose.bones
    return BodyRest(rig.matrix_world.copy(), rig.matrix_basis.copy(),
                    tuple(rig.matrix_world @ bones[n].matrix for n in chain),
                    tuple(bones[n].matrix_basis.copy() for n in chain))


def _turned(m: Matrix, turn: Quaternion, about: Vector | None = None) -> Matrix:
    """m turned in world space about a point (its own origin: a bone's joint)."""
    at = m.to_translation() if about is None else about
    return Matrix.Translation(at) @ turn.to_matrix().to_4x4() @ Matrix.Translation(-at) @ m


def _share(q: Quaternion, t: float) -> Quaternion:
    return Quaternion().slerp(q, t)


def _level(v: Vector) -> Vector:
    """v along the floor (its vertical part taken out)."""
    return Vector((v.x, v.y, 0.0))  # UP is Blender's z


def _side(forward: Vector) -> Vector:
    """UP x forward: the axis a forward lean turns about (it carries UP toward forward)."""
    return Vector((-forward.y, forward.x, 0.0))


def _vertical_part(q: Quaternion) -> Quaternion:
    """The twist of q about UP (swing-twist decomposition): the body's turn on its feet."""
    twist = Quaternion((q.w, 0.0, 0.0, q.z))  # UP is Blender's z
    return twist.normalized() if twist.magnitude > 1e-9 else Quaternion()


def level_meeting(face_a: Face, face_b: Face, necks: tuple[np.ndarray | None, np.ndarray | None],
                  settings: ContactSettings) -> tuple[float, np.ndarray]:
    """Where standing characters let their lips meet: the incline of the approach (core.contact.approach_axis)
    and the move of the meeting point (world) that keep each body's head at the height it stands.

    A body cannot raise its head, and lowering it costs a lean far dearer in bent spine than the same drop from a
    nod. So the taller looks down and the shorter up, each head turned about its neck (`necks`: the head bone's
    joint, world; None for a head object, which goes anywhere), until the lips stand level; they meet there. With
    one body the lips meet at its height, along a level axis: the head object comes to the body's face."""
    up = np.asarray(UP)
    faces = (face_a, face_b)

    def turns(incline: float) -> tuple[np.ndarray, np.ndarray]:
        axis, _ = approach_axis(face_a, face_b, incline)
        return contact_rotations(face_a, face_b, axis, 0.0, 0.0, settings.tilt_side)

    def lip_height(neck: np.ndarray, turn: np.ndarray, face: Face) -> float:
        return float(up @ (neck + turn @ (face.lip - neck)))

    incline = 0.0
    neck_a, neck_b = necks
    if neck_a is not None and neck_b is not None:  # A's lips come down, B's go up as the incline grows
        lo, hi = -MAX_INCLINE_DEGREES, MAX_INCLINE_DEGREES
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            turn_a, turn_b = turns(mid)
            lo, hi = (mid, hi) if lip_height(neck_a, turn_a, face_a) > lip_height(neck_b, turn_b, face_b) else (lo, mid)
        incline = 0.5 * (lo + hi)
    elif neck_a is not None or neck_b is not None:
        axis, _ = approach_axis(face_a, face_b)
        incline = float(np.degrees(np.arcsin(np.clip(axis @ up, -1.0, 1.0))))  # turned level
    heights = [lip_height(neck, turn, face) for neck, turn, face in zip(necks, turns(incline), faces)
               if neck is not None]
    if not heights:
        return 0.0, np.zeros(3)
    gap = face_b.lip - face_a.lip
    planned = float(up @ (face_a.lip + settings.a_share * gap))  # where the plan puts them: A's share of the way
    return incline, (min(heights) - planned) * up


@dataclass
class BodyPose:
    object_world: Matrix
    worlds: list[Matrix]  # the chain's bones, before the object's shift
    turns: list[Quaternion]  # each bone's own world-space turn
    shift: Vector  # the object's move, in world space
    lean_degrees: float
    lift: float  # how far (m) the head stands below where the plan wants it: > 0 when the plan asks too much


class Body:
    """Solves, for a planned head transform, the body's place and the chain's bend."""

    def __init__(self, rest: BodyRest, forward: Vector, give: float = 0.0) -> None:
        self.rest = rest
        # how far (m) the whole body may sink or rise (knees, toes) to put its head at the planned height: a lean
        # moves the head only at second order (the joints stand under it), so the last millimetres would cost
        # degrees of bend at every joint
        self.give = give
        flat = _level(forward)
        self.lean_axis = _side(flat.normalized()) if flat.length > 1e-9 else Vector((1.0, 0.0, 0.0))

    def _chain(self, yaw: Quaternion, swing: Quaternion, lean_degrees: float) -> tuple[list[Matrix], list[Quaternion]]:
        rest, n = self.rest, len(self.rest.worlds)
        origin = rest.object_world.to_translation()
        starts = [_turned(w, yaw, origin) for w in rest.worlds]  # the body turned on its feet
        lean = Quaternion(self.lean_axis, math.radians(lean_degrees))
        low = n // 2
        turns: list[Quaternion] = []
        total = Quaternion()
        for k in range(n - 1):
            bend = _share(lean, 1.0 / low) if k < low else _share(lean.inverted(), 1.0 / (n - low))
            turns.append(_share(swing, 1.0 / n) @ bend)
            total = turns[-1] @ total
        turns.append(swing @ total.inverted())  # the head's own turn makes the whole exactly the plan's
        worlds: list[Matrix] = []
        for k, (start, turn) in enumerate(zip(starts, turns)):
            carried = start if k == 0 else worlds[-1] @ starts[k - 1].inverted() @ start
            worlds.append(_turned(carried, turn))
        return worlds, turns

    def solve(self, target: Matrix) -> BodyPose:
        rest = self.rest
        turn = target.to_quaternion() @ rest.worlds[-1].to_quaternion().inverted()
        if not rest.standing:  # a head rig: the head bone turns, its object carries it anywhere
            worlds, turns = self._chain(Quaternion(), turn, 0.0)
            shift = target.to_translation() - worlds[-1].to_translation()
            return BodyPose(Matrix.Translation(shift) @ rest.object_world, worlds, turns, shift, 0.0, 0.0)
        yaw = _vertical_part(turn)
        swing = turn @ yaw.inverted()
        want = target.to_translation().dot(UP)

        def height(lean: float) -> tuple[float, list[Matrix], list[Quaternion]]:
            worlds, turns = self._chain(yaw, swing, lean)
            return worlds[-1].to_translation().dot(UP) - want, worlds, turns

        lean = 0.0
        above, worlds, turns = height(0.0)
        if above > self.give:  # lower the head: lean forward, found by bisection (the drop grows with the lean)
            lo, hi = 0.0, MAX_LEAN_DEGREES
            if height(hi)[0] > self.give:
                lo = hi
            for _ in range(40 if lo < hi else 0):
                mid = 0.5 * (lo + hi)
                if height(mid)[0] > self.give:
                    lo = mid
                else:
                    hi = mid
            lean = hi
            above, worlds, turns = height(lean)
        shift = target.to_translation() - worlds[-1].to_translation()
        sink = max(-self.give, min(self.give, shift.z))  # UP is Blender's z
        shift = _level(shift) + UP * sink  # across the floor, and up or down no more than the knees give
        origin = rest.object_world.to_translation()
        placed = Matrix.Translation(shift) @ _turned(rest.object_world, yaw, origin)
        return BodyPose(placed, worlds, turns, shift, lean, max(0.0, -above - self.give))

    def bases(self, pose: BodyPose) -> tuple[Matrix, list[Matrix]]:
        """The object's basis and each chain bone's for a solved pose."""
        rest = self.rest
        object_parent = rest.object_world @ rest.object_basis.inverted()
        object_basis = object_parent.inverted() @ pose.object_world
        # in the armature's space: the bones as the rest pose has them (A) and as the pose puts them (A')
        at_rest = [rest.object_world.inverted() @ m for m in rest.worlds]
        posed = [pose.object_world.inverted() @ Matrix.Translation(pose.shift) @ m for m in pose.worlds]
        out: list[Matrix] = []
        for k, (a, a_posed, basis) in enumerate(zip(at_rest, posed, rest.bases)):
            # the parent part, as the (turned) parent bone carries it; the chain's lowest bone's parent stays
            parent = (a if k == 0 else posed[k - 1] @ at_rest[k - 1].inverted() @ a) @ basis.inverted()
            out.append(parent.inverted() @ a_posed)
        return object_basis, out


def bone_angles(turn: Quaternion, forward: Vector) -> dict[str, float]:
    """A bone's world-space turn as roll (about the facing), nod (about the side axis) and turn (about the
    vertical), in degrees, for the limits."""
    flat = _level(forward)
    f = flat.normalized() if flat.length > 1e-9 else Vector((0.0, -1.0, 0.0))
    side = _side(f)
    axis, angle = turn.to_axis_angle()
    v = axis * angle
    return {"roll": abs(math.degrees(v.dot(f))), "nod": abs(math.degrees(v.dot(side))),
            "turn": abs(math.degrees(v.dot(UP)))}
