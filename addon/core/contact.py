"""Two-head contact (a kiss): approach, tilt, lips meet, hold, part. No bpy.

The Blender layer measures the evaluated meshes (world-space vertices, shape-key offsets) and
answers time-of-impact questions through a Collider; this module finds each face's frame (lip
point, forward, up, scale), searches the roll so that the lips touch first and the noses clear,
and lays out the motion as phases with a minimum-jerk profile.

A head's pose is (R, p): its rotation relative to where it stands now, applied about its lip
point, and where that lip point is (world space). The world matrix of anything rigidly attached
to the head becomes delta(pose) @ matrix_at_rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .rigs import EXISTING_ANIMATION

HUMAN_EYE_TO_MOUTH = 0.065  # metres from the eye line to the lips on an adult face: defines "human scale"
MM = 0.001


class ContactError(ValueError):
    """The two heads cannot be brought into contact as asked; the message says what to change."""


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n < 1e-12:
        raise ContactError("a direction of zero length (is the head scaled to zero?)")
    return np.asarray(v, np.float64) / n


def minimum_jerk(tau: np.ndarray | float) -> np.ndarray:
    """Position share of a minimum-jerk move at normalised time tau in [0, 1]."""
    t = np.clip(np.asarray(tau, np.float64), 0.0, 1.0)
    return t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)


TOUCH_MM = 0.1  # lips this close (at human scale) are touching


def settle_frames(distance_mm: float, frames: float) -> float:
    """How long after the contact frame an eased approach of `frames` over `distance_mm` should end, so that
    the lips come within TOUCH_MM of each other half a frame before the contact frame and not earlier: an
    approach ending at rest creeps over its last hundredth of a millimetre, at 60 fps for frames on end."""
    if distance_mm <= TOUCH_MM:
        return 0.0
    def gap_half_a_frame_early(extra: float) -> float:
        return distance_mm * (1.0 - float(minimum_jerk((frames - 0.5) / (frames + extra)))) - TOUCH_MM
    lo, hi = 0.0, frames
    if gap_half_a_frame_early(lo) >= 0:
        return 0.0
    for _ in range(50):  # the remaining gap grows with the extra frames: bisect
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap_half_a_frame_early(mid) < 0 else (lo, mid)
    return hi


# ----------------------------------------------------------------------------------- faces

@dataclass
class Face:
    lip: np.ndarray  # the lip contact point, world
    forward: np.ndarray  # unit, world
    up: np.ndarray  # unit, orthogonal to forward
    scale: float  # 1.0 for a human-sized head in metres; 0.01 for one modelled 100x smaller
    lip_mask: np.ndarray  # per vertex: the lips, which may compress on contact
    nose_mask: np.ndarray  # per vertex: the nose, which must clear the other face
    notes: list[str] = field(default_factory=list)

    @property
    def right(self) -> np.ndarray:
        return np.cross(self.forward, self.up)


def measure_face(verts: np.ndarray, pucker: np.ndarray | None = None, blink: np.ndarray | None = None,
                 lip_point: np.ndarray | None = None, forward: np.ndarray | None = None,
                 up_hint: np.ndarray | None = None, name: str = "head") -> Face:
    """Find a face's frame from its (puckered) vertices and shape-key offsets, all world space.

    forward: the mean offset of the pucker key (lips push forward), or the override.
    lip point: the front-most lip vertices along forward, or the override.
    up: from the lips toward the eyes (the blink key's region), else up_hint.
    scale: the eye-to-lip distance against an adult's, else the head's size.
    """
    verts = np.asarray(verts, np.float64)
    n = len(verts)
    notes: list[str] = []
    if n < 4:
        raise ContactError(f"{name}: no geometry to measure")
    lip_weight = np.linalg.norm(pucker, axis=1) if pucker is not None else np.zeros(n)
    has_pucker = lip_weight.max() > 0
    if forward is not None:
        fwd = unit(forward)
    elif has_pucker:
        moved = lip_weight >= 0.25 * lip_weight.max()
        fwd = unit(np.asarray(pucker)[moved].sum(axis=0))
        if up_hint is not None and abs(np.dot(fwd, unit(up_hint))) < 0.5:
            # lips often pucker a little up or down; the rig's own up axis says where level is
            fwd = unit(fwd - np.dot(fwd, unit(up_hint)) * unit(up_hint))
    elif lip_point is not None:
        fwd = unit(np.asarray(lip_point) - verts.mean(axis=0))
        if up_hint is not None:
            fwd = unit(fwd - np.dot(fwd, up_hint) * np.asarray(up_hint))
        notes.append(f"{name}: facing taken from the head's centre to the given lip point")
    else:
        raise ContactError(f"{name}: cannot tell which way the face looks: it has no pucker/funnel shape key; "
                           "set a lip point (an empty or a vertex group at the lips) or a facing axis "
                           "(on the command line: --a-lips/--b-lips, or --a-facing/--b-facing such as --b-facing -Y)")
    eyes = None
    if blink is not None and np.linalg.norm(blink, axis=1).max() > 0:
        bw = np.linalg.norm(blink, axis=1)
        eyes = verts[bw >= 0.3 * bw.max()].mean(axis=0)
    if lip_point is not None:
        lip = np.asarray(lip_point, np.float64)
    elif has_pucker:
        lips = np.flatnonzero(lip_weight >= 0.25 * lip_weight.max())
        front = lips[np.argsort(verts[lips] @ fwd)[-5:]]
        lip = verts[front].mean(axis=0)
    else:  # forward given, no pucker: the front-most point of the lower half of the face
        lip = verts[np.argmax(verts @ fwd)]
        notes.append(f"{name}: no pucker key; the lip point is the front-most vertex (override it if that is the nose)")
    level = up_hint is not None and abs(np.dot(fwd, unit(up_hint))) < 1e-6
    if eyes is not None and abs(np.dot(unit(eyes - lip), fwd)) < 0.9:
        up = unit(eyes - lip - np.dot(eyes - lip, fwd) * fwd)
        if level and up_hint is not None:
            up = unit(up_hint - np.dot(up_hint, fwd) * fwd)
        scale = float(np.dot(eyes - lip, up)) / HUMAN_EYE_TO_MOUTH
    else:
        hint = np.asarray(up_hint if up_hint is not None else (0.0, 0.0, 1.0), np.float64)
        if abs(np.dot(unit(hint), fwd)) > 0.95:
            raise ContactError(f"{name}: the up direction is parallel to the facing; set a facing axis "
                               "(--a-facing/--b-facing on the command line)")
        up = unit(hint - np.dot(hint, fwd) * fwd)
        scale = float(np.ptp(verts, axis=0).max()) / 0.25  # an adult head is about 25 cm tall
        notes.append(f"{name}: no blink keys; size taken from the head's extent")
    if scale <= 0:
        raise ContactError(f"{name}: the eyes are below the lips; check the facing or the lip point "
                           "(--a-facing/--b-facing, --a-lips/--b-lips on the command line)")
    rel = verts - lip
    along, height, side = rel @ fwd, rel @ up, rel @ np.cross(fwd, up)
    if has_pucker and lip_point is None:
        lip_mask = (lip_weight >= 0.25 * lip_weight.max()) & (np.linalg.norm(rel, axis=1) < 35 * MM * scale)
    else:
        lip_mask = np.linalg.norm(rel, axis=1) < 18 * MM * scale
    band = (~lip_mask) & (height > 5 * MM * scale) & (height < 60 * MM * scale) & (np.abs(side) < 25 * MM * scale)
    if band.any():
        tip = np.flatnonzero(band)[np.argmax(along[band])]
        nose_mask = (np.linalg.norm(verts - verts[tip], axis=1) < 15 * MM * scale) & ~lip_mask
    else:
        nose_mask = np.zeros(n, bool)
        notes.append(f"{name}: no nose found above the lips")
    return Face(lip, fwd, up, scale, lip_mask, nose_mask, notes)


# ------------------------------------------------------------------------------- collision

@dataclass(frozen=True)
class Impact:
    """How far head A can travel along the approach axis (relative to B) before touching it."""

    first: float  # the first touch of any kind
    lips: float  # the first lip-to-lip touch (inf when the lips never meet)
    other: float  # the first touch involving anything else
    nose: float  # the first touch involving a nose
    other_at: tuple[float, float, float] | None = None  # where on A (turned, at rest) the first non-lip touch is

    @property
    def lips_first(self) -> bool:
        return np.isfinite(self.lips) and self.lips <= self.other


class Collider(Protocol):
    def impact(self, rot_a: np.ndarray, rot_b: np.ndarray, direction: np.ndarray, fine: bool = ...,
               lateral: np.ndarray | None = ...) -> Impact:
        """Rotate A about its lip point by rot_a and B about its by rot_b, move A by `lateral` (across the
        approach), then along direction: the distances at which it first touches B."""
        ...

    def nose_clearance(self, rot_a: np.ndarray, rot_b: np.ndarray, offset: np.ndarray) -> float:
        """Distance from either nose to the other face with A turned, B turned and A moved by offset
        (negative when a nose is inside)."""
        ...


# ---------------------------------------------------------------------------------- plan

@dataclass
class ContactSettings:
    contact_frame: float = 48.0
    approach_seconds: float = 1.0
    hold_seconds: float = 1.5
    release_seconds: float = 0.8
    leader: str = "A"  # "A" or "B": who covers most of the distance
    lead_share: float = 0.75
    tilt_side: str = "RIGHT"  # each head rolls toward its own right (or "LEFT")
    tilt_degrees: float | None = None  # None: search
    preferred_tilt: float = 22.0  # staging: 20-30 degrees
    eye_strength: float = 1.0
    pucker_strength: float = 0.6
    compression_limit_mm: float = 1.0
    press_mm: float = 0.4  # how far the lips press in during the hold (within the limit)
    nose_clearance_mm: float = 2.0
    sway_degrees: float = 1.5  # the moving hold: the pair sways together about the contact point
    anticipation: bool = False  # the leader draws back a little before moving in
    existing_animation: str = "keep"  # other animation on the keyed channels: keep (below), mute or refuse
    stretch_limit: float = 0.10  # a full character's mesh edges may change length this much (a share)
    walk_limit_m: float = 0.6  # a full character's object may travel this far over the floor (human metres): a step

    @property
    def a_share(self) -> float:
        """The share of the way between the lips that A covers."""
        return self.lead_share if self.leader == "A" else 1.0 - self.lead_share

    def validated(self) -> ContactSettings:
        if self.leader not in ("A", "B"):
            raise ContactError("leader must be A or B")
        if self.tilt_side not in ("RIGHT", "LEFT"):
            raise ContactError("tilt side must be RIGHT or LEFT")
        if min(self.approach_seconds, self.hold_seconds, self.release_seconds) <= 0:
            raise ContactError("approach, hold and release must each last longer than zero")
        if not 0.5 <= self.lead_share <= 1.0:
            raise ContactError("the leader's share of the distance must be between 0.5 and 1")
        if self.tilt_degrees is not None and not 0 <= self.tilt_degrees <= 60:
            raise ContactError("tilt must be between 0 and 60 degrees")
        if not 0 <= self.walk_limit_m <= 100:
            raise ContactError("the walk limit must be between 0 and 100 m")
        if not 0 < self.stretch_limit <= 1:
            raise ContactError("the stretch limit must be above 0% and at most 100%")
        if not 0 <= self.press_mm <= self.compression_limit_mm:
            raise ContactError("the press must not exceed the compression limit")
        if self.existing_animation not in EXISTING_ANIMATION:
            raise ContactError(f"existing animation must be one of {', '.join(EXISTING_ANIMATION)}")
        return self


@dataclass
class Pose:
    rot: np.ndarray  # 3x3, relative to the head's rest orientation, about its lip point
    lip: np.ndarray  # where the lip point is (world)


@dataclass
class Phase:
    start: float  # frame
    end: float
    a: tuple[Pose, Pose]
    b: tuple[Pose, Pose]
    name: str


@dataclass
class ContactPlan:
    phases: list[Phase]
    rest_a: np.ndarray  # lip points at rest
    rest_b: np.ndarray
    axis: np.ndarray  # approach axis, A toward B
    contact_point: np.ndarray
    contact_frame: float
    roll_degrees: float
    pitch_degrees: float
    impact: Impact
    scale: float
    fps: float
    notes: list[str] = field(default_factory=list)
    # where the lips meet, moved from the line between them at rest; each head gets there as it turns (a body
    # that bends to tilt its head lowers it as much as the tilt grows)
    meet_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    off_centre_mm: float = 0.0  # A's lips meet B's this far to A's right (human mm)
    incline_degrees: float = 0.0  # the axis turned from the line between the lips, A's face down (approach_axis)
    # for a head that rides a body: its lips' offset from the joint it turns about (world, at rest). A body cannot
    # grow, so on the way in and out such lips rise and fall as the turn carries them about that joint, along `up`
    levers: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))  # the floor's up (Blender's z)
    _slerps: dict[tuple[int, str], Slerp] = field(default_factory=dict, repr=False, compare=False)

    @property
    def start_frame(self) -> float:
        return self.phases[0].start

    @property
    def end_frame(self) -> float:
        return self.phases[-1].end

    def pose_at(self, side: str, frame: float) -> Pose:
        """The planned pose of head "A" or "B" at a frame (held before the first and after the last phase)."""
        index = next((i for i, p in enumerate(self.phases) if frame <= p.end), len(self.phases) - 1)
        phase = self.phases[index]
        p0, p1 = phase.a if side == "A" else phase.b
        s = float(minimum_jerk((frame - phase.start) / (phase.end - phase.start)))
        if (index, side) not in self._slerps:
            self._slerps[index, side] = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([p0.rot, p1.rot])))
        rot = self._slerps[index, side]([s]).as_matrix()[0]
        lip = p0.lip + s * (p1.lip - p0.lip)
        lever = self.levers[0 if side == "A" else 1]
        if lever is not None and phase.name in ("approach", "release"):
            def height(r: np.ndarray) -> float:  # the lips' height above the joint, turned by r
                return float(self.up @ (r @ lever))
            lip = lip + (height(rot) - height(p0.rot) - s * (height(p1.rot) - height(p0.rot))) * self.up
            lip = lip + (s if phase.name == "approach" else 1.0 - s) * self.meet_offset
        elif phase.name in ("approach", "release") and np.any(self.meet_offset):
            full = 1.0 - np.cos(Rotation.from_matrix((phase.a if side == "A" else phase.b)[
                0 if phase.name == "release" else 1].rot).magnitude())
            now = 1.0 - np.cos(Rotation.from_matrix(rot).magnitude())
            lip = lip + (min(1.0, now / full) if full > 1e-12 else s) * self.meet_offset
        elif phase.name == "hold":
            lip = lip + self.meet_offset
        return Pose(rot, lip)

    def key_frames(self) -> list[float]:
        """Where keys go: each phase's ends and its quarter points (a cubic Hermite curve through
        these follows the minimum-jerk profile to within 0.3% of the move), and the contact frame, where
        the lips must be exactly where the plan puts them."""
        frames: list[float] = []
        for p in self.phases:
            frames += list(np.linspace(p.start, p.end, 5)[:-1])
        return sorted({*frames, self.phases[-1].end, self.contact_frame})


def delta_matrix(rest_lip: np.ndarray, pose: Pose) -> np.ndarray:
    """World-space 4x4 that carries the head from rest to pose."""
    m = np.eye(4)
    m[:3, :3] = pose.rot
    m[:3, 3] = pose.lip - pose.rot @ rest_lip
    return m


def axis_rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    return Rotation.from_rotvec(unit(axis) * np.radians(degrees)).as_matrix()


def align_rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction src onto dst."""
    src, dst = unit(src), unit(dst)
    axis = np.cross(src, dst)
    s, c = np.linalg.norm(axis), float(np.dot(src, dst))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        raise ContactError("a face points straight away from the other head")
    return Rotation.from_rotvec(axis / s * np.arctan2(s, c)).as_matrix()


def contact_rotations(face_a: Face, face_b: Face, axis: np.ndarray, roll: float, pitch: float,
                      side: str) -> tuple[np.ndarray, np.ndarray]:
    """Each face turned to look along the axis with its up on the couple's shared up (so a head
    that starts tilted is levelled first), pitched, then rolled toward its own right (or left)."""
    sign = 1.0 if side == "RIGHT" else -1.0
    shared = face_a.up + face_b.up
    shared = shared - np.dot(shared, axis) * axis
    rots = []
    for face, look in ((face_a, axis), (face_b, -axis)):
        if np.linalg.norm(shared) > 1e-6:
            up = unit(shared)
            src = np.column_stack([face.forward, face.up, face.right])
            dst = np.column_stack([look, up, np.cross(look, up)])
            align = dst @ src.T
        else:  # the two ups cancel out: keep each head's own
            align = align_rotation(face.forward, look)
        right = align @ face.right
        # a positive turn about the forward axis carries up toward right (right = forward x up)
        rots.append(axis_rotation(look, sign * roll) @ axis_rotation(right, -pitch) @ align)
    return rots[0], rots[1]


def check_facing(face_a: Face, face_b: Face, names: tuple[str, str] = ("A", "B")) -> np.ndarray:
    gap = face_b.lip - face_a.lip
    if np.linalg.norm(gap) < 1e-9 * max(face_a.scale, 1e-9):
        raise ContactError("the two lip points coincide: the heads already overlap; move them apart first")
    axis = unit(gap)
    for face, look, name in ((face_a, axis, names[0]), (face_b, -axis, names[1])):
        if np.dot(face.forward, look) < np.cos(np.radians(80)):
            raise ContactError(f"{name} faces away from the other head (its face points {np.degrees(np.arccos(np.clip(np.dot(face.forward, look), -1, 1))):.0f} "
                               "degrees off the line between the lips; the limit is 80): turn the heads or characters "
                               "toward each other, or set the facing axis (--a-facing/--b-facing on the command line)")
    return axis


def shared_up(face_a: Face, face_b: Face, axis: np.ndarray) -> np.ndarray:
    """The couple's up, square to the axis: the mean of the two faces' ups (A's where they cancel out)."""
    up = face_a.up + face_b.up - np.dot(face_a.up + face_b.up, axis) * axis
    return unit(up) if np.linalg.norm(up) > 1e-6 else face_a.up


def approach_axis(face_a: Face, face_b: Face, incline: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The axis the faces meet along, A toward B, and how far B's lips stand across it from A's.

    With no incline, the line between the lips. An incline (degrees) turns it about the couple's side axis,
    A's face down and B's up for a positive one: characters of different heights meet with the taller looking
    down and the shorter up, each turning its head where a body cannot raise or lower it. The lips then meet
    face to face along the turned axis, the lips' height difference taken across it."""
    gap = face_b.lip - face_a.lip
    axis = check_facing(face_a, face_b)
    if incline == 0.0:
        return axis, np.zeros(3)
    side = np.cross(axis, shared_up(face_a, face_b, axis))
    axis = axis_rotation(side, -incline) @ axis
    return axis, gap - np.dot(gap, axis) * axis


def choose_roll(face_a: Face, face_b: Face, collider: Collider, settings: ContactSettings,
                min_roll: float = 0.0, pitches: Sequence[float] = (0.0,),
                off_centre_mm: Sequence[float] = (0.0,), incline: float = 0.0
                ) -> tuple[float, float, Impact, float, np.ndarray]:
    """Search the roll (and pitch) at which the lips touch first and everything else keeps
    its distance; prefer a roll near the staging value. With `off_centre_mm`, the lips may also meet that far
    off centre (A's to its right of B's, at human scale), as real kisses do: the noses pass with less roll,
    which bodies, bending to roll their heads, need. `incline`: see approach_axis. Returns the roll, the pitch,
    the impact and A's move across the axis (the offset in mm, and as a world vector with the lips' height
    difference across an inclined axis)."""
    axis, across_gap = approach_axis(face_a, face_b, incline)
    scale = min(face_a.scale, face_b.scale)
    nose_margin = (settings.nose_clearance_mm + settings.press_mm + 0.5) * MM * scale  # along the axis
    nose_need = (settings.nose_clearance_mm + 0.3) * MM * scale  # in any direction
    # other skin may graze: the press must not push it in deeper than the penetration limit allows
    margin = (max(0.0, settings.press_mm - Limits().penetration_mm) + 0.25) * MM * scale

    def clear(imp: Impact) -> bool:
        return imp.lips_first and imp.other - imp.lips >= margin and imp.nose - imp.lips >= nose_margin

    if min_roll > 60.0:
        raise ContactError("no roll up to 60 degrees passes the checks; set a lip point override or the facing axis "
                           "(--a-lips/--b-lips, --a-facing/--b-facing on the command line)")
    if settings.tilt_degrees is not None:
        rolls = [max(settings.tilt_degrees, min_roll)]
    else:
        rolls = [float(r) for r in np.arange(0.0, 47.5, 2.5) if r >= min_roll] or [min_roll]
    tried = []
    # off centre is for bodies: the least roll wins, the staging value yields to the skin
    preferred = max(settings.preferred_tilt if tuple(off_centre_mm) == (0.0,) else 0.0, min_roll)
    across = np.cross(axis, face_a.up)
    across = unit(across) if np.linalg.norm(across) > 1e-9 else np.zeros(3)
    for pitch in pitches:
        # nearest the staging value first; the first roll that passes a coarse and a full check wins
        for roll in sorted(rolls, key=lambda r: (abs(r - preferred), r)):
            ra, rb = contact_rotations(face_a, face_b, axis, roll, pitch, settings.tilt_side)
            for mm in off_centre_mm:
                lateral = mm * MM * scale * across + across_gap
                imp = collider.impact(ra, rb, axis, fine=False, lateral=lateral)
                tried.append((roll, pitch, imp))
                if clear(imp):
                    imp = collider.impact(ra, rb, axis, fine=True, lateral=lateral)
                    if clear(imp) and collider.nose_clearance(ra, rb, imp.lips * axis + lateral) >= nose_need:
                        return roll, pitch, imp, mm, lateral
    best = max(tried, key=lambda t: (min(t[2].other, t[2].nose) - t[2].lips) if np.isfinite(t[2].lips) else -np.inf)
    if not np.isfinite(best[2].first):
        raise ContactError("the heads never meet along the line between their lips; place them face to face")
    imp = best[2]
    if not np.isfinite(imp.lips):
        what = "the lips never touch first"
    else:
        part = "nose" if imp.nose <= imp.other else "face"
        gap = (min(imp.other, imp.nose) - imp.lips) / MM / scale
        what = (f"at best ({best[0]:g} degrees of roll) the {part} comes within {gap:.1f} mm of the lips' contact"
                if gap >= 0 else f"at best ({best[0]:g} degrees of roll) the {part} touches {-gap:.0f} mm before the lips")
    advice = ("Set a lip point override, lower the pucker strength, or try the other tilt side "
              "(--a-lips/--b-lips, --pucker, --tilt-side on the command line)")
    if imp.other_at is not None and imp.other <= imp.lips:
        below = float(np.dot(face_a.lip - np.asarray(imp.other_at), face_a.up)) / MM / face_a.scale
        if abs(below) > 60:  # far from the face: a body, a shoulder, hair, a prop
            what += f"; something {abs(below):.0f} mm {'below' if below > 0 else 'above'} the lips touches first"
            advice = ("If the meshes include bodies, pick the armature's head bone or the head mesh alone, "
                      "or bring the bodies closer so only the heads lean")
    raise ContactError(f"no tilt lets the lips meet with the noses clear: {what}. {advice}")


def plan_contact(face_a: Face, face_b: Face, collider: Collider, settings: ContactSettings, fps: float,
                 min_roll: float = 0.0, pitches: Sequence[float] = (0.0,),
                 meet_offset: np.ndarray | None = None, off_centre_mm: Sequence[float] = (0.0,),
                 incline: float = 0.0, levers: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
                 up: np.ndarray | None = None) -> ContactPlan:
    """The whole contact. `meet_offset` moves where the lips meet (world space) from where the plan puts them:
    bodies cannot raise or lower their heads as freely as head objects move. `off_centre_mm` and `incline`:
    see choose_roll. `levers` and `up`: see ContactPlan."""
    s = settings.validated()
    if fps <= 0:
        raise ContactError("the scene's frame rate must be positive")
    roll, pitch, imp, off_centre, lateral = choose_roll(face_a, face_b, collider, s, min_roll, pitches, off_centre_mm,
                                                        incline)
    axis, _ = approach_axis(face_a, face_b, incline)
    rot_a, rot_b = contact_rotations(face_a, face_b, axis, roll, pitch, s.tilt_side)
    share = s.a_share
    scale = min(face_a.scale, face_b.scale)
    rest_a, rest_b = Pose(np.eye(3), face_a.lip.copy()), Pose(np.eye(3), face_b.lip.copy())
    meeting = imp.lips * axis + lateral  # A's way to B, shared between them
    touch_a = Pose(rot_a, face_a.lip + share * meeting)
    touch_b = Pose(rot_b, face_b.lip - (1.0 - share) * meeting)
    contact_point = 0.5 * (touch_a.lip + touch_b.lip)

    up = shared_up(face_a, face_b, axis)

    def hold(pose: Pose, push: float, sway: float) -> Pose:
        turn = axis_rotation(up, sway)
        lip = pose.lip + push * axis
        return Pose(turn @ pose.rot, turn @ (lip - contact_point) + contact_point)

    press = s.press_mm * MM * scale
    fc = float(s.contact_frame)
    approach, hold_len, release = (max(2.0, round(x * fps)) for x in (s.approach_seconds, s.hold_seconds, s.release_seconds))
    start = fc - approach
    touch = fc + settle_frames(imp.lips / (MM * scale), approach)  # the approach's eased end, just after fc
    mid, end_hold = fc + round(hold_len / 2), fc + hold_len
    phases: list[Phase] = []
    if s.anticipation:
        back = 0.06 * imp.lips * (1 if s.leader == "A" else -1)
        pre = fc - approach
        start = pre - max(2.0, round(0.25 * approach))
        lead_back_a = Pose(np.eye(3), face_a.lip - back * axis * (s.leader == "A"))
        lead_back_b = Pose(np.eye(3), face_b.lip - back * axis * (s.leader == "B"))
        phases.append(Phase(start, pre, (rest_a, lead_back_a), (rest_b, lead_back_b), "anticipation"))
        first_a, first_b = lead_back_a, lead_back_b
    else:
        first_a, first_b = rest_a, rest_b
    mid_a, mid_b = hold(touch_a, share * press, s.sway_degrees), hold(touch_b, -(1 - share) * press, s.sway_degrees)
    end_a = hold(touch_a, share * press * 0.5, -0.5 * s.sway_degrees)
    end_b = hold(touch_b, -(1 - share) * press * 0.5, -0.5 * s.sway_degrees)
    phases += [
        Phase(fc - approach, touch, (first_a, touch_a), (first_b, touch_b), "approach"),
        Phase(touch, mid, (touch_a, mid_a), (touch_b, mid_b), "hold"),
        Phase(mid, end_hold, (mid_a, end_a), (mid_b, end_b), "hold"),
        Phase(end_hold, end_hold + release, (end_a, rest_a), (end_b, rest_b), "release"),
    ]
    notes = face_a.notes + face_b.notes
    meet = np.zeros(3) if meet_offset is None else np.asarray(meet_offset, np.float64)
    return ContactPlan(phases, face_a.lip.copy(), face_b.lip.copy(), axis, contact_point + meet, fc, roll, pitch, imp,
                       scale, fps, notes, meet, off_centre, incline, levers,
                       np.array([0.0, 0.0, 1.0]) if up is None else unit(np.asarray(up, np.float64)))


# --------------------------------------------------------------------------- face shapes

@dataclass(frozen=True)
class ShapeKeyTrack:
    """Weights of one face shape (blink or pucker) over time: (frame, value) corners, eased between."""

    role: str
    points: tuple[tuple[float, float], ...]


def face_shape_tracks(plan: ContactPlan, settings: ContactSettings) -> list[ShapeKeyTrack]:
    """Eyes close a few frames before contact and open after the hold; the lips pucker into the contact."""
    fps, fc = plan.fps, plan.contact_frame
    hold_end = plan.phases[-1].start
    release = plan.phases[-1].end - hold_end
    approach = fc - next(p for p in plan.phases if p.name == "approach").start
    few = max(1.0, round(0.1 * fps))  # ~3 frames at 24-30 fps
    close = max(2.0, round(0.15 * fps))
    eyes = ((fc - few - close, 0.0), (fc - few, settings.eye_strength), (hold_end + few, settings.eye_strength),
            (hold_end + few + max(3.0, round(0.25 * fps)), 0.0))
    pucker_in = max(2.0, round(0.6 * approach))
    lips = ((fc - pucker_in, 0.0), (fc - 1, settings.pucker_strength), (hold_end, settings.pucker_strength),
            (hold_end + max(2.0, round(0.6 * release)), 0.0))
    return [ShapeKeyTrack("blink", eyes), ShapeKeyTrack("pucker", lips)]


# ----------------------------------------------------------------------------- validation

@dataclass
class Limits:
    penetration_mm: float = 0.5
    lip_gap_mm: float = 1.0
    hold_gap_share: float = 0.95
    compression_mm: float = 1.0
    nose_clearance_mm: float = 2.0
    contact_frames: float = 1.0
    slide_mm: float = 2.0
    velocity_jump: float = 0.10
    minimum_jerk: float = 0.01
    edge_stretch: float = 0.10  # a mesh edge longer or shorter than when the approach began, as a share
    # a body's spine and neck bones each turn at most this far (degrees): roll (toward a shoulder), nod (forward or
    # back) and turn (about the spine), ranges of one spine or neck segment
    bone_roll: float = 15.0
    bone_nod: float = 20.0
    bone_turn: float = 25.0
    walk_m: float = 0.6  # how far a body's object may travel over the floor (human metres)
    lean: float = 15.0  # how far a body may lean forward to bring its head down (degrees)


def judge(summary: dict, limits: Limits) -> list[str]:
    """The checks a plan must pass, as readable failures (empty when it passes)."""
    fails = []
    if summary["max_penetration_mm"] > limits.penetration_mm:
        fails.append(f"penetration outside the lips {summary['max_penetration_mm']:.2f} mm at frame "
                     f"{summary['worst_frame']} (limit {limits.penetration_mm} mm)")
    if summary.get("max_body_penetration_mm", 0.0) > limits.penetration_mm:
        region = summary["body_penetration_region"]
        arms = any(part in region.lower() for part in ("arm", "hand"))
        fails.append(f"the characters pass through each other {summary['max_body_penetration_mm']:.0f} mm "
                     f"({region}) at frame {summary['body_penetration_frame']} (limit {limits.penetration_mm} mm): "
                     + ("pose the arms out of the way, or start the characters closer to face to face" if arms else
                        "their bodies meet before their lips; start them closer to level in height, or tilt the heads "
                        "more (--tilt)"))
    if summary["hold_gap_ok_share"] < limits.hold_gap_share:
        fails.append(f"lips within {limits.lip_gap_mm} mm on only {100 * summary['hold_gap_ok_share']:.0f}% of hold frames")
    if summary["max_compression_mm"] > limits.compression_mm:
        fails.append(f"lip compression {summary['max_compression_mm']:.2f} mm (limit {limits.compression_mm} mm)")
    if summary["nose_clearance_mm"] < limits.nose_clearance_mm:
        fails.append(f"nose clearance {summary['nose_clearance_mm']:.2f} mm at contact (needs {limits.nose_clearance_mm} mm)")
    if summary["first_contact_frame"] is None:
        fails.append("the lips never touch")
    elif abs(summary["first_contact_frame"] - summary["planned_contact_frame"]) > limits.contact_frames:
        fails.append(f"first contact at frame {summary['first_contact_frame']}, planned {summary['planned_contact_frame']}")
    if summary["max_slide_mm"] > limits.slide_mm:
        fails.append(f"lips slide {summary['max_slide_mm']:.2f} mm during the hold (limit {limits.slide_mm} mm)")
    if summary["velocity_jump"] > limits.velocity_jump:
        fails.append(f"a velocity jump of {100 * summary['velocity_jump']:.0f}% of peak speed at a key")
    if summary.get("max_edge_stretch", 0.0) > limits.edge_stretch:
        fails.append(f"a mesh edge stretches {100 * summary['max_edge_stretch']:.0f}% ({summary['edge_stretch_region']}) "
                     f"at frame {summary['edge_stretch_frame']} (limit {100 * limits.edge_stretch:.0f}%): a bone "
                     "pulled from its parent, or a body bent further than its skin weights hold")
    if summary.get("max_walk_m", 0.0) > limits.walk_m:
        fails.append(f"{summary['walker']} would slide {summary['max_walk_m']:.2f} m over the floor to get there "
                     f"(limit {limits.walk_m:g} m, a step): place the characters closer, or allow more (--max-walk)")
    if summary.get("max_lean_degrees", 0.0) > limits.lean:
        fails.append(f"{summary['leaner']} would lean {summary['max_lean_degrees']:.0f} degrees (limit {limits.lean:g}) "
                     f"to bring its head down to the other's: the lips start {summary['height_difference_mm'] / 10:.0f} cm "
                     "apart in height, and bodies of different heights cannot meet yet; stand the shorter character "
                     "on a step (raise its object) so the heads start within a few centimetres of level")
    bones = summary.get("max_bone_degrees") or {}
    for what, limit in (("roll", limits.bone_roll), ("nod", limits.bone_nod), ("turn", limits.bone_turn)):
        if bones.get(what, 0.0) > limit:
            fails.append(f"a spine or neck bone would {what} {bones[what]:.0f} degrees ({bones.get(what + '_bone', '')}, "
                         f"limit {limit:g}): the heads are too far apart in height or facing for the bodies to bend "
                         "that far; bring the characters closer to face to face")
    if summary["minimum_jerk_deviation"] > limits.minimum_jerk:
        fails.append(f"the approach strays {100 * summary['minimum_jerk_deviation']:.1f}% from a minimum-jerk profile")
    return fails
