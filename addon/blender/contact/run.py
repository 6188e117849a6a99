"""Running it: plan, key, validate, replan on failure, and leave nothing behind when no plan passes."""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Vector

from ...core.contact import (
    MM,
    ContactError,
    ContactSettings,
    Limits,
    judge,
    plan_contact,
)
from ...core.keys import MAX_FRAME
from .. import existing
from .body import UP, bone_angles, level_meeting
from .collider import BVHCollider, check_apart
from .geometry import EvaluatedMeshes, lip_movers, measure_head
from .heads import HeadSpec, PickError, resolve_head
from .keying import Written, key_heads, remove_written
from .state import (
    contact_channels,
    detach_previous,
    forget,
    held_mouth_keys,
    other_face_animation,
    pause_subdivision,
    reattach,
    restore,
    snapshot,
)
from .validation import BodyProbe, FrameProbe, StretchProbe, first_failing_frames, validate

ATTEMPTS = 4  # plans tried, each with more roll or other pitches, before the contact fails
# where the lips of full characters may meet off centre (human mm, A's to its right of B's): the noses pass with
# less roll, and every degree of roll bends the spines and stretches the skin
OFF_CENTRE_MM = (0.0, 6.0, -6.0, 12.0, -12.0)
SKIN_PASSES = 1  # measurements of the skin's lag behind the head bones, each taken back
LIFTS = 3  # replans that lower where the lips meet, for bodies that cannot stand as tall as their heads need
Progress = Callable[[str, float], None]  # (the stage, as a user reads it; the share of that stage done, 0 to 1)


def frame_span(settings: ContactSettings, fps: float) -> tuple[float, float]:
    """The first and last frame the contact animation keys (anticipation, approach, hold, release), laid out as
    core.contact.plan_contact lays them out; inf or nan where the settings overflow."""

    def frames(seconds: float) -> float:
        n = seconds * fps
        return max(2.0, float(round(n))) if math.isfinite(n) else n

    fc = float(settings.contact_frame)
    approach = frames(settings.approach_seconds)
    lead_in = (max(2.0, float(round(0.25 * approach))) if math.isfinite(approach) else approach) \
        if settings.anticipation else 0.0
    return fc - approach - lead_in, fc + frames(settings.hold_seconds) + frames(settings.release_seconds)


def check_frame_span(settings: ContactSettings, fps: float) -> None:
    """Refuse, before any work, a contact whose animation would leave Blender's frame range."""
    start, end = frame_span(settings, fps)
    if not (-MAX_FRAME <= start and end <= MAX_FRAME):  # nan fails both
        raise PickError(f"the contact would run from frame {start:.0f} to {end:.0f} at {fps:g} fps, beyond Blender's "
                        f"frame range ({-MAX_FRAME} to {MAX_FRAME}); move the contact frame or shorten the approach, "
                        "hold or release (--contact-frame, --approach, --hold, --release)")


class ContactFailed(ContactError):
    """No plan passed; `report` holds every attempt with its failures (written as the --report JSON too)."""

    def __init__(self, message: str, report: ContactReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ContactReport:
    passed: bool
    failures: list[str]
    plan: dict[str, Any]
    summary: dict[str, Any]
    frames: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "passed": self.passed, "failures": self.failures, "plan": self.plan,
                           "summary": self.summary, "attempts": self.attempts, "notes": self.notes,
                           "timings": self.timings, "frames": self.frames}, indent=1, default=float)

    def brief(self) -> str:
        s = self.summary
        return (f"contact at frame {s['first_contact_frame']} (planned {s['planned_contact_frame']}), "
                f"roll {self.plan['roll_degrees']:g} deg, penetration {s['max_penetration_mm']:.2f} mm, "
                f"nose clearance {s['nose_clearance_mm']:.1f} mm, lips within 1 mm on {100 * s['hold_gap_ok_share']:.0f}% of the hold")


def plan_and_key(scene: Any, faces: Any, collider: Any, settings: ContactSettings, fps: float, min_roll: float,
                 pitches: tuple[float, ...], heads: Any, rests: Any, roles: Any, held: Any,
                 probe: FrameProbe) -> tuple[Any, Written]:
    """A plan and its keys. Where a body bends to tilt its head, the head stands lower than the line between the
    lips at rest; the lips then meet that much lower (a body can lean down, not grow). On a body the skin at the
    lips lags the head bone a little (it is weighted to the neck too): that lag is measured at each key and taken
    back."""
    a_neck, b_neck = (np.array(r.body.worlds[-1].to_translation()) if h.on_body else None for h, r in zip(heads, rests))
    incline, meet = level_meeting(faces[0], faces[1], (a_neck, b_neck), settings)
    levers = (None if a_neck is None else faces[0].lip - a_neck, None if b_neck is None else faces[1].lip - b_neck)
    off_centre = OFF_CENTRE_MM if any(h.on_body for h in heads) else (0.0,)
    for attempt in range(LIFTS + 1):
        plan = plan_contact(faces[0], faces[1], collider, settings, fps, min_roll, pitches, meet, off_centre, incline,
                            levers, np.asarray(UP))
        # lowering where the lips meet changes neither the roll nor how far off centre: search them once
        min_roll, pitches, off_centre = plan.roll_degrees, (plan.pitch_degrees,), (plan.off_centre_mm,)
        written = key_heads(plan, heads, rests, settings, roles, held)
        lift = max((p.lift for poses in written.poses.values() for p in poses), default=0.0)
        if lift <= 0.05 * MM * plan.scale or attempt == LIFTS:
            break
        remove_written(written)
        meet = meet - lift * np.asarray(UP)
    if not any(h.on_body for h in heads):  # only a body's skin lags its head bone
        return plan, written
    frames = np.array(plan.key_frames())
    drift = np.zeros((2, len(frames), 3))
    for _ in range(SKIN_PASSES):
        depsgraph = bpy.context.evaluated_depsgraph_get()
        for i, f in enumerate(frames):
            scene.frame_set(int(np.floor(f)), subframe=float(f - np.floor(f)))
            for side, d in enumerate(probe.lip_drift(EvaluatedMeshes(depsgraph), plan, float(f))):
                drift[side, i] += d if heads[side].on_body else 0.0
        remove_written(written)
        offsets = {side: _interpolated(frames, -drift[k].copy()) for k, side in enumerate("AB")}
        written = key_heads(plan, heads, rests, settings, roles, held, offsets)
    return plan, written


def _interpolated(frames: np.ndarray, values: np.ndarray) -> Callable[[float], np.ndarray]:
    return lambda f: np.array([np.interp(f, frames, values[:, k]) for k in range(3)])


def bend_summary(plan: Any, heads: Any, written: Written) -> dict[str, Any]:
    """How far the bodies bend: each chain bone's largest roll, nod and turn over the key frames, with the bone,
    the largest forward lean, and how much lower than the rest line the lips meet."""
    out: dict[str, Any] = {}
    walk, walker = 0.0, ""
    for side, head in zip("AB", heads):
        if not head.on_body:  # a head rig turns its head bone as a head object turns
            continue
        forward = Vector((plan.axis if side == "A" else -plan.axis).tolist())
        for pose in written.poses[side]:
            if pose.shift.length / plan.scale > walk:
                walk, walker = pose.shift.length / plan.scale, head.controller.name
            for name, turn in zip(head.chain, pose.turns):
                for what, degrees in bone_angles(turn, forward).items():
                    if degrees > out.get(what, -1.0):
                        out[what], out[what + "_bone"] = degrees, f"{head.controller.name}: {name}"
            if pose.lean_degrees > out.get("lean", -1.0):
                out["lean"], out["leaner"] = pose.lean_degrees, head.controller.name
    if not out:
        return {}
    rise = float(np.dot(plan.rest_a - plan.rest_b, np.asarray(UP)))
    return {"max_bone_degrees": out, "max_lean_degrees": out.pop("lean"), "leaner": out.pop("leaner"),
            "height_difference_mm": abs(rise) / MM / plan.scale, "max_walk_m": walk, "walker": walker,
            "lips_lowered_mm": float(-plan.meet_offset @ np.asarray(UP)) / MM / plan.scale}


def _beyond_bodies(summary: dict[str, Any], limits: Limits) -> bool:
    """The characters stand too far apart, or too far from level, for any plan: a walk or lean over its limit, or
    skin already stretched past its limit (more roll, the other plans' remedy, only bends the spines further)."""
    return (summary.get("max_walk_m", 0.0) > limits.walk_m or summary.get("max_lean_degrees", 0.0) > limits.lean
            or summary.get("max_edge_stretch", 0.0) > limits.edge_stretch)


def run_contact(scene: Any, spec_a: HeadSpec, spec_b: HeadSpec, settings: ContactSettings,
                limits: Limits | None = None, on_progress: Progress | None = None) -> ContactReport:
    """Plan, key and validate; replan on failure; leave nothing behind when it cannot pass.
    on_progress(stage, share) hears of each stage ("measuring the heads", then for each plan of up to ATTEMPTS
    "plan N, planning" and "plan N, frames A-B", the slow part, checked frame by frame), short enough for a
    one-line bar; PickError (a ContactError) refuses what was asked for before any work."""
    settings = settings.validated()
    limits = limits or Limits(compression_mm=settings.compression_limit_mm, nose_clearance_mm=settings.nose_clearance_mm,
                              edge_stretch=settings.stretch_limit, walk_m=settings.walk_limit_m)
    if spec_a.obj is not None and spec_a.obj == spec_b.obj and spec_a.bone == spec_b.bone:
        raise PickError("heads A and B are the same; pick two different heads")
    fps = scene.render.fps / scene.render.fps_base
    check_frame_span(settings, fps)

    def report_progress(stage: str, share: float) -> None:
        if on_progress is not None:
            on_progress(stage, share)

    view_layer = bpy.context.view_layer
    if view_layer is not None:
        view_layer.update()  # world matrices of objects changed since the last redraw
    heads = (resolve_head(spec_a, "A"), resolve_head(spec_b, "B"))
    channels = contact_channels(heads)
    for idb, paths, what in channels:
        existing.check(idb, paths, settings.existing_animation, what, "contact")
    frame_before = scene.frame_current
    smoothing = pause_subdivision(heads)
    saved = snapshot(heads)
    detached = detach_previous(heads)
    done = False
    t0 = time.perf_counter()
    undo: list[Callable[[], None]] = []
    try:
        report_progress("measuring the heads", 0.0)
        moved = [n for idb, paths, what in channels
                 for n in existing.make_way(idb, paths, settings.existing_animation, what, undo)]
        # plan from where the heads stand when the approach begins
        approach = max(2.0, round(settings.approach_seconds * fps))
        start = int(settings.contact_frame - approach - (round(0.25 * approach) if settings.anticipation else 0))
        scene.frame_set(start)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        sides = [measure_head(h, depsgraph, settings) for h in heads]
        geos = (sides[0][0], sides[1][0])
        faces = (sides[0][1], sides[1][1])
        roles = {role: {k: v for side in sides for k, v in side[2][role].keys.items()} for role in ("pucker", "blink")}
        role_keys: dict[Any, set[str]] = {}
        for by_key in roles.values():
            for key, keyed in by_key.items():
                role_keys.setdefault(key, set()).update(keyed)
        movers = {k: v for geo, face in zip(geos, faces) for k, v in lip_movers(geo, face).items()}
        held = held_mouth_keys(heads, channels, role_keys, movers)
        collider = BVHCollider(sides[0][3], geos[0].tris, faces[0], sides[1][3], geos[1].tris, faces[1])
        check_apart(collider, (heads[0].name, heads[1].name))
        rests = tuple(h.rest() for h in heads)
        probe = FrameProbe(heads, faces, geos, (sides[0][3], sides[1][3]))
        shaped = {key: names | set(held.get(key, {})) for key, names in role_keys.items()}
        for key, values in held.items():
            shaped.setdefault(key, set()).update(values)
        stretch = StretchProbe(heads, depsgraph, shaped)
        bodies = BodyProbe(heads)
        measured = time.perf_counter() - t0
        report_progress("measuring the heads", 1.0)
        attempts: list[dict[str, Any]] = []
        min_roll = 0.0  # then more roll, then other pitches
        pitches: tuple[float, ...] = (0.0,)
        for attempt in range(ATTEMPTS):
            t1 = time.perf_counter()
            report_progress(f"plan {attempt + 1}, planning", 0.0)
            plan, written = plan_and_key(scene, faces, collider, settings, fps, min_roll, pitches, heads, rests, roles,
                                         held, probe)
            planned = time.perf_counter() - t1 + (measured if attempt == 0 else 0.0)
            t2 = time.perf_counter()
            stage = f"plan {attempt + 1}, frames {math.floor(plan.start_frame)}-{math.ceil(plan.end_frame)}"
            report_progress(stage, 0.0)
            result = validate(scene, plan, heads, probe, limits, functools.partial(report_progress, stage), stretch,
                              bodies if bodies.needed else None)
            result["summary"].update(bend_summary(plan, heads, written))
            fails = judge(result["summary"], limits)
            plan_info = {"roll_degrees": plan.roll_degrees, "pitch_degrees": plan.pitch_degrees,
                         "contact_frame": plan.contact_frame, "start_frame": plan.start_frame, "end_frame": plan.end_frame,
                         "leader": settings.leader, "tilt_side": settings.tilt_side,
                         "touch_frame": next(p.end for p in plan.phases if p.name == "approach"),
                         "impact_distance": plan.impact.lips, "off_centre_mm": plan.off_centre_mm,
                         "incline_degrees": plan.incline_degrees, "scale": plan.scale, "axis": plan.axis.tolist(),
                         "lip_points": [plan.rest_a.tolist(), plan.rest_b.tolist()],
                         "keys_written": written.keys_written, "curves": written.curves, "action": written.action.name}
            attempts.append({"roll_degrees": plan.roll_degrees, "pitch_degrees": plan.pitch_degrees, "failures": fails,
                             "first_failing_frames": first_failing_frames(result["frames"], plan, limits),
                             "summary": result["summary"]})
            if not fails:
                forget(detached)
                done = True
                notes = (heads[0].notes + heads[1].notes + moved + plan.notes
                         + [f"{m.id_data.name}: {m.name} measured as its cage" for m in smoothing])
                return ContactReport(True, [], plan_info, result["summary"], result["frames"], attempts,
                                     notes, {"plan_and_key_s": planned, "validate_s": time.perf_counter() - t2})
            remove_written(written)
            restore(saved)
            if _beyond_bodies(result["summary"], limits):
                break  # no other tilt brings the characters closer or level
            min_roll = plan.roll_degrees + 5.0
            if attempt >= 1:
                pitches = (0.0, -6.0, 6.0)
        busy = other_face_animation(heads, plan.start_frame, plan.end_frame)
        summary = result["summary"]
        if busy:
            hint = f". Other animation plays on the faces then ({busy}): mute it over the contact or move the contact"
        elif summary.get("max_edge_stretch", 0.0) > limits.edge_stretch:
            height = summary.get("height_difference_mm", 0.0) / 10
            allow = f"allow more stretch (--max-stretch, now {100 * limits.edge_stretch:g}%)"
            if height >= 2.5 and all(h.on_body for h in heads):  # two bodies of different heights
                hint = (f". The lips start {height:.0f} cm apart in height; the taller looks down and the shorter up, "
                        "and their necks bend further than their skinning keeps the skin whole: stand the shorter "
                        f"character on a step (raise its object) so the lips start within 2 cm of level, or {allow}")
            else:
                hint = (f". The bodies bend further than their skinning keeps the skin whole: {allow}, lower the tilt "
                        "the noses need (--pucker 1), or give the spine more bones")
        elif _beyond_bodies(summary, limits) or summary.get("max_body_penetration_mm", 0.0) > limits.penetration_mm:
            hint = ""  # the failure says what to change
        else:
            hint = (". Try a larger tilt, a lower pucker strength, or lip point overrides (--tilt, --pucker, "
                    "--a-lips/--b-lips on the command line)")
        report = ContactReport(False, attempts[-1]["failures"], plan_info, result["summary"], result["frames"], attempts,
                               plan.notes, {"plan_and_key_s": planned, "validate_s": time.perf_counter() - t2})
        raise ContactFailed(f"the contact could not pass its checks after {len(attempts)} plan{'s' * (len(attempts) > 1)}: "
                            + "; ".join(attempts[-1]["failures"]) + hint, report)
    finally:
        if not done:  # failed or stopped: the earlier contact animation and the values it wrote come back
            for put_back in reversed(undo):
                put_back()
            reattach(detached)
            restore(saved)
        for modifier in smoothing:
            modifier.show_viewport = True
        scene.frame_set(frame_before)
