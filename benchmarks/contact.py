"""Speed of contact animation, with the targets of issue 4.

    python benchmarks/contact.py [--runs 3]

Two ICT-FaceKit heads (26,719 vertices each, the bundled 27k-vertex rig) face each other;
Oris measures both evaluated meshes, searches the roll, plans and keys (target: at most 1 s),
then steps every frame of the animation measuring penetration, lip gap and clearance on the
evaluated meshes (target: at most 50 ms a frame). Then two full characters (demo/characters.py: the MakeHuman
body under a generated armature, automatic weights): measuring, planning, keying and validating every frame at most
2 s in all, at most 60 ms a frame (bodies add the skin's stretch and the bodies' penetration). Needs the bpy module.

    python benchmarks/contact.py --heights

prints, for the two full characters with B standing 0 to 15 cm lower, how far the skin stretches in the plan
that passes every other check (the skin's own limit lifted): how the taller looking down and the shorter up meet
heights, and what they cost the skin against the 10% limit; then what one spine joint's bend of 5 degrees costs it.

    python benchmarks/contact.py --quality

prints Oris's validation figures for each test placement (scales, rotation, heights, sizes, a bone) and for
each rig of the wild-rig matrix (demo/wild.py: naming, rest values, captured takes, split meshes, object
scales, bones, frame rates), against the targets: penetration outside the lips 0.0 mm, the lips within 1 mm
on every hold frame, nose clearance >= 2 mm, first contact on the planned frame, and the keyed lips within
0.1 mm of the plan at contact.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from addon.blender.contact import HeadSpec, run_contact  # noqa: E402
from addon.core.contact import ContactSettings  # noqa: E402
from demo.characters import facing_pair  # noqa: E402
from demo.scenes import CASES, ICT_HEAD, make_pair, reset  # noqa: E402
from demo.wild import CASES as WILD_CASES  # noqa: E402
from demo.wild import build  # noqa: E402


def line(label: str, value: float, unit: str, target: float) -> None:
    print(f"{label:<52}{value:9.3f} {unit:<5} target <= {target:g} {unit:<3} {'ok' if value <= target else 'MISSED'}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quality", action="store_true", help="validation figures for each test placement instead")
    ap.add_argument("--characters", action="store_true", help="only the two full characters")
    ap.add_argument("--heights", action="store_true", help="the skin's stretch for characters of different heights")
    args = ap.parse_args()
    if args.quality:
        return quality()
    if args.heights:
        return heights()
    if args.characters:
        return characters(args.runs)
    plans, frames, totals, tries = [], [], [], []
    verts = 0
    for _ in range(args.runs):
        reset()
        pair = make_pair(ICT_HEAD, ICT_HEAD)
        verts = len(pair.a.data.vertices)
        t0 = time.perf_counter()
        report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=48))
        totals.append(time.perf_counter() - t0)
        plans.append(report.timings["plan_and_key_s"])
        frames.append(report.summary["validation_ms_per_frame"])
        tries.append(len(report.attempts))
    print(f"two heads of {verts:,} vertices, {args.runs} runs (medians); plans needed: {tries}")
    line("measure, plan and key (first plan)", statistics.median(plans), "s", 1.0)
    line("validation per frame (evaluated meshes)", statistics.median(frames), "ms", 50.0)
    print(f"{'whole run incl. validation of every frame':<52}{statistics.median(totals):9.3f} s")
    return characters(args.runs)


def characters(runs: int) -> int:
    """Two full characters: the whole contact (measure, plan, key, validate every frame)."""
    wholes, frames, tries = [], [], []
    verts = 0
    for _ in range(runs):
        rig_a, body_a, rig_b, _body_b = facing_pair(gap=0.5)
        verts = len(body_a.data.vertices)
        t0 = time.perf_counter()
        report = run_contact(bpy.context.scene, HeadSpec(rig_a), HeadSpec(rig_b), ContactSettings(contact_frame=48))
        wholes.append(time.perf_counter() - t0)
        frames.append(report.summary["validation_ms_per_frame"])
        tries.append(len(report.attempts))
    print(f"two full characters of {verts:,} vertices each, {runs} runs (medians); plans needed: {tries}")
    line("measure, plan, key and validate every frame", statistics.median(wholes), "s", 2.0)
    line("validation per frame (bodies, stretch, penetration)", statistics.median(frames), "ms", 60.0)
    return 0


def heights() -> int:
    """B standing lower by 0 to 15 cm: the plan that passes every check but the skin's, and its stretch."""
    from addon.core.contact import ContactError

    print(f"{'B lower':>8}{'plans':>6}{'incline':>8}{'roll':>6}{'lean':>6}{'stretch':>9}  where (limit 10%)")
    for cm in (0, 2, 3, 5, 8, 10, 15):
        rig_a, _body_a, rig_b, _body_b = facing_pair(gap=0.5)
        rig_b.location.z -= cm / 100
        bpy.context.view_layer.update()
        try:
            report = run_contact(bpy.context.scene, HeadSpec(rig_a), HeadSpec(rig_b),
                                 ContactSettings(contact_frame=48, stretch_limit=1.0))
        except ContactError as failed:
            print(f"{cm:>5} cm  fails: {failed}")
            continue
        s, plan = report.summary, report.plan
        print(f"{cm:>5} cm{len(report.attempts):>6}{plan['incline_degrees']:>7.1f}°{plan['roll_degrees']:>5.1f}°"
              f"{s['max_lean_degrees']:>5.1f}°{100 * s['max_edge_stretch']:>8.1f}%  {s['edge_stretch_region']}"
              f"{'' if s['max_edge_stretch'] <= 0.10 else '  over'}")
    joint_costs()
    return 0


def joint_costs(degrees: float = 5.0) -> None:
    """What one joint's bend costs the skin: each spine bone of a bundled character turned alone, forward (nod) and
    toward a shoulder (roll), and the worst edge's change of length (the shape keys' own vertices left out)."""
    rig, body, _rig_b, _body_b = facing_pair(gap=0.5)
    keys = body.data.shape_keys
    basis = np.array([v.co for v in keys.reference_key.data])
    shaped = np.zeros(len(basis), bool)
    for block in keys.key_blocks[1:]:
        shaped |= np.linalg.norm(np.array([v.co for v in block.data]) - basis, axis=1) > 1e-6
    edges = np.array([e.vertices[:] for e in body.data.edges])
    edges = edges[~(shaped[edges[:, 0]] | shaped[edges[:, 1]])]

    def lengths() -> np.ndarray:
        bpy.context.view_layer.update()
        ev = body.evaluated_get(bpy.context.evaluated_depsgraph_get())
        co = np.array([v.co for v in ev.data.vertices])
        return np.linalg.norm(co[edges[:, 0]] - co[edges[:, 1]], axis=1)

    rest = lengths()
    print(f"one joint turned {degrees:g} degrees alone (worst edge):")
    for name in ("spine", "chest", "neck", "head"):
        bone = rig.pose.bones[name]
        bone.rotation_mode = "XYZ"
        cells = []
        for label, axis in (("nod", 0), ("roll", 2)):
            turn = [0.0, 0.0, 0.0]
            turn[axis] = math.radians(degrees)
            bone.rotation_euler = turn
            worst = float(np.abs(lengths() / rest - 1.0).max())
            cells.append(f"{label} {100 * worst:4.1f}% ({100 * worst / degrees:.1f}% a degree)")
        bone.rotation_euler = (0.0, 0.0, 0.0)
        print(f"  {name:<6} " + ", ".join(cells))


def quality() -> int:
    print(f"{'case':<22}{'plans':>6}{'roll':>6}{'pen mm':>8}{'comp mm':>8}{'hold ok':>8}{'nose mm':>8}"
          f"{'contact':>9}{'plan mm':>8}{'slide mm':>9}{'v jump':>8}{'min-jerk':>9}  targets")
    missed = 0
    runs = [(name, lambda kwargs=kwargs: (make_pair(**kwargs), 24.0)) for name, kwargs in CASES.items()]
    runs += [(name, lambda name=name: (lambda w: (w.pair, w.fps))(build(name))) for name in WILD_CASES]
    for name, setup in runs:
        reset()
        pair, fps = setup()
        fc = 48 if fps == 24 else int(2 * fps)
        r = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b, bone=pair.bone_b),
                        ContactSettings(contact_frame=fc))
        s = r.summary
        ok = (s["max_penetration_mm"] == 0.0 and s["hold_gap_ok_share"] == 1.0 and s["nose_clearance_mm"] >= 2.0
              and s["first_contact_frame"] == s["planned_contact_frame"] and s["plan_vs_keyed_mm"] <= 0.1)
        missed += not ok
        print(f"{name:<22}{len(r.attempts):>6}{r.plan['roll_degrees']:>6g}{s['max_penetration_mm']:>8.2f}"
              f"{s['max_compression_mm']:>8.2f}{100 * s['hold_gap_ok_share']:>7.0f}%{s['nose_clearance_mm']:>8.2f}"
              f"{s['first_contact_frame']:>5}/{s['planned_contact_frame']:<3}{s['plan_vs_keyed_mm']:>8.3f}"
              f"{s['max_slide_mm']:>9.3f}{100 * s['velocity_jump']:>7.2f}%{100 * s['minimum_jerk_deviation']:>8.2f}%"
              f"  {'ok' if ok else 'MISSED'}")
    print(f"{len(runs) - missed} of {len(runs)} cases meet every target")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
