"""The jaw bone of a face rig: found, measured and keyed beside the shape keys (core.jaw holds the rules).

Two ways a rig opens its jaw with a bone:
- a driver: a mouth shape key Oris writes (jawOpen) is driven from a bone's rotation, so the driver overrides
  Oris's keys on it; the driver's input, the bone, is keyed instead;
- skinning: the mesh is weighted to a jaw bone and its shape keys barely move the chin; the bone is keyed.
Which way, and what drove the jaw, goes into the run's notes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from ..core.jaw import find_jaw_bone, jaw_degrees, jaw_open, opening_axis
from ..core.keys import BezierKeys, reduce_curve
from ..core.visemes import VISEMES

_SINGLE_PROP_ROTATION = re.compile(r'pose\.bones\["(?P<bone>(?:[^"\\]|\\.)*)"\]\.rotation_euler\[(?P<index>[0-2])\]')
_AXES = "XYZ"
SHAPES_OPEN_ENOUGH = 0.25  # the open vowel's shapes move the chin a quarter of the bone's full opening: leave the bone


@dataclass
class JawBone:
    armature: Any  # the armature object
    bone: str
    axis: str  # the bone's local axis the jaw turns about
    sign: float  # +1 or -1: the direction that opens
    degrees: float  # fully open (aa)
    how: str  # for the notes: what drove the jaw, and where its range came from

    @property
    def rotation_paths(self) -> set[str]:
        pb = self.armature.pose.bones[self.bone]
        prop = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(pb.rotation_mode,
                                                                                           "rotation_euler")
        return {f'pose.bones["{bpy.utils.escape_identifier(self.bone)}"].{prop}'}

    def keys(self, frames: np.ndarray, start_frame: int, tolerance: float,
             gain: float = 1.0) -> list[tuple[str, int, BezierKeys]]:
        """(data path, index, keys) of the bone's rotation opening the jaw over these viseme frames, `gain` times
        (the jaw intensity)."""
        angle = np.minimum(jaw_open(frames) * gain, 1.0) * math.radians(self.degrees) * self.sign
        pb = self.armature.pose.bones[self.bone]
        path = next(iter(self.rotation_paths))
        axis = _AXES.index(self.axis)
        if pb.rotation_mode == "QUATERNION":
            unit = np.eye(3)[axis]
            channels = [np.cos(angle / 2)] + [np.sin(angle / 2) * unit[i] for i in range(3)]
            return [(path, i, reduce_curve(c, tolerance, start=float(start_frame))) for i, c in enumerate(channels)]
        if pb.rotation_mode == "AXIS_ANGLE":
            unit = np.eye(3)[axis]
            return [(path, 0, reduce_curve(angle, tolerance, start=float(start_frame)))] + [
                (path, i + 1, reduce_curve(np.full_like(angle, unit[i]), tolerance, start=float(start_frame)))
                for i in range(3)]
        return [(path, axis, reduce_curve(angle, tolerance, start=float(start_frame)))]


def _armatures_of(meshes: list[Any]) -> list[Any]:
    found = []
    for ob in meshes:
        for candidate in [m.object for m in ob.modifiers if m.type == "ARMATURE" and m.object] + [ob.parent]:
            if candidate is not None and candidate.type == "ARMATURE" and candidate not in found:
                found.append(candidate)
    return found


def _driven_by_bone(key: Any, paths: set[str]) -> tuple[list[tuple[str, Any, str, str]], list[str]]:
    """Drivers on keys Oris writes: those that read a bone's rotation, as (driven path, armature, bone, axis),
    and notes for those Oris cannot key the input of."""
    found, notes = [], []
    ad = key.animation_data
    for fc in (ad.drivers if ad else []):
        if fc.data_path not in paths:
            continue
        name = fc.data_path.split('"')[1] if '"' in fc.data_path else fc.data_path
        source = None
        for var in fc.driver.variables:
            target = var.targets[0]
            arm = target.id
            if arm is None or getattr(arm, "type", "") != "ARMATURE":
                continue
            if var.type == "TRANSFORMS" and target.bone_target and target.transform_type.startswith("ROT_"):
                source = (fc.data_path, arm, target.bone_target, target.transform_type[-1])
            elif var.type == "SINGLE_PROP" and (m := _SINGLE_PROP_ROTATION.fullmatch(target.data_path or "")):
                source = (fc.data_path, arm, m["bone"].replace('\\"', '"'), _AXES[int(m["index"])])
        if source:
            found.append(source)
        else:
            notes.append(f"{key.name}: the shape key {name!r} is driven by a driver ({fc.driver.expression or fc.driver.type}) "
                         "that overrides Oris's keys on it; key the driver's input, or remove the driver, to let "
                         "the lip sync move it")
    return found, notes


def _probe_driver_sign(jaw: JawBone, key: Any, data_path: str) -> float:
    """+1 when turning the bone about its axis by a positive angle raises the driven key, else -1."""
    pb = jaw.armature.pose.bones[jaw.bone]
    saved = (pb.rotation_mode, tuple(pb.rotation_euler), tuple(pb.rotation_quaternion), tuple(pb.rotation_axis_angle))
    name = data_path.split('"')[1]
    values = []
    try:
        for angle in (0.3, -0.3):
            pb.rotation_mode = "XYZ"
            pb.rotation_euler = (0.0, 0.0, 0.0)
            pb.rotation_euler[_AXES.index(jaw.axis)] = angle
            depsgraph = bpy.context.evaluated_depsgraph_get()
            depsgraph.update()
            values.append(key.evaluated_get(depsgraph).key_blocks[name].value)
    finally:
        pb.rotation_mode = saved[0]
        pb.rotation_euler, pb.rotation_quaternion, pb.rotation_axis_angle = saved[1], saved[2], saved[3]
        bpy.context.evaluated_depsgraph_get().update()
    return 1.0 if values[0] >= values[1] else -1.0


def _chin(mesh: Any, group: Any) -> np.ndarray | None:
    """World positions of the vertices weighted mostly to the jaw."""
    index = group.index
    coords = [v.co for v in mesh.data.vertices if any(g.group == index and g.weight > 0.5 for g in v.groups)]
    if not coords:
        return None
    world = np.array(mesh.matrix_world)
    pts = np.array(coords, np.float64)
    return pts @ world[:3, :3].T + world[:3, 3]


def _shapes_opening(mesh: Any, group: Any, open_pose: dict[str, float]) -> float:
    """How far down (world units) the rig's open-vowel shapes move the jaw's vertices, on average."""
    key = mesh.data.shape_keys
    index = group.index
    ids = [v.index for v in mesh.data.vertices if any(g.group == index and g.weight > 0.5 for g in v.groups)]
    if key is None or not ids or not open_pose:
        return 0.0
    n = len(mesh.data.vertices)
    basis = np.empty(n * 3, np.float32)
    key.reference_key.data.foreach_get("co", basis)
    offset = np.zeros((n, 3))
    for name, weight in open_pose.items():
        co = np.empty(n * 3, np.float32)
        key.key_blocks[name].data.foreach_get("co", co)
        offset += weight * (co - basis).reshape(n, 3)
    world = np.array(mesh.matrix_world)[:3, :3]
    return float(-(offset[ids] @ world.T)[:, 2].mean())


def find_jaw(targets: list[Any], degrees: float | None = None) -> tuple[JawBone | None, list[str]]:
    """The jaw bone to key beside these shape-key targets (KeyTarget), if the rig opens its jaw with one."""
    notes: list[str] = []
    meshes = [bpy.data.objects[name] for t in targets for name in t.objects if name in bpy.data.objects]
    armatures = _armatures_of(meshes)
    for target in targets:
        driven, why = _driven_by_bone(target.key, target.paths)
        notes += why
        for data_path, arm, driver_bone, axis in driven:
            if driver_bone not in arm.pose.bones:
                continue
            range_deg, source = jaw_degrees(dict(arm.pose.bones[driver_bone].items()), degrees)
            jaw = JawBone(arm, driver_bone, axis, 1.0, range_deg, "")
            jaw.sign = _probe_driver_sign(jaw, target.key, data_path)
            name = data_path.split('"')[1]
            jaw.how = (f"the jaw: {name!r} is driven by {arm.name}'s bone {driver_bone!r} ({axis} rotation), which "
                       f"would override keys on it; keyed the bone instead, {range_deg:g} degrees fully open ({source})")
            return jaw, notes
    for arm in armatures:
        named = find_jaw_bone(b.name for b in arm.data.bones)
        weighted = find_jaw_bone(b.name for b in arm.data.bones if any(b.name in m.vertex_groups for m in meshes))
        found_by = "its name"
        if named is None or weighted is None:  # a rig that names its jaw otherwise: found by its weights
            named = weighted = _jaw_by_weights(arm, meshes, targets)
            found_by = "its weights below the mouth"
        mesh = next((m for m in meshes if weighted and weighted in m.vertex_groups), None)
        if named is None or mesh is None or weighted is None:
            continue
        bone: str = named
        deforming: str = weighted
        group = mesh.vertex_groups[deforming]
        chin = _chin(mesh, group)
        if chin is None:
            continue
        matrix = np.array(arm.matrix_world) @ np.array(arm.data.bones[bone].matrix_local)
        axes = {a: matrix[:3, i] / np.linalg.norm(matrix[:3, i]) for i, a in enumerate(_AXES) if a != "Y"}
        axis, sign, per_radian = opening_axis(axes, matrix[:3, 3], chin.mean(axis=0), np.array([0.0, 0.0, 1.0]))
        range_deg, source = jaw_degrees(dict(arm.pose.bones[bone].items()), degrees)
        target = next(t for t in targets if mesh.name in t.objects)
        open_pose = _open_pose(target)
        by_shapes = _shapes_opening(mesh, group, open_pose)
        by_bone = per_radian * math.radians(range_deg)
        if by_shapes >= SHAPES_OPEN_ENOUGH * by_bone:
            notes.append(f"the jaw: opened by the shape keys ({by_shapes * 1000:.0f} mm at the chin); {arm.name}'s "
                         f"bone {bone!r} is left alone")
            return None, notes
        how = (f"the jaw: {arm.name}'s bone {bone!r}, found by {found_by} ({mesh.name} is weighted to {deforming!r}; its shape keys "
               f"open the chin {by_shapes * 1000:.0f} mm, the bone {by_bone * 1000:.0f} mm); keyed its {axis} "
               f"rotation, {range_deg:g} degrees fully open ({source}; --jaw-degrees changes it)")
        return JawBone(arm, bone, axis, sign, range_deg, how), notes
    return None, notes


def _jaw_by_weights(arm: Any, meshes: list[Any], targets: list[Any]) -> str | None:
    """A bone under the head bone whose vertices (weight over 0.5) lie mostly (70%) below the mouth, the mouth
    being where the open vowel's shapes move the face: the jaw of a rig that names it otherwise."""
    heads = [b for b in arm.data.bones if "head" in b.name.lower().rsplit(":", 1)[-1] and "end" not in b.name.lower()]
    if not heads:
        return None
    best: tuple[int, str] | None = None
    for mesh in meshes:
        target = next((t for t in targets if mesh.name in t.objects), None)
        key = mesh.data.shape_keys
        pose = _open_pose(target) if target is not None else {}
        if key is None or not pose:
            continue
        n = len(mesh.data.vertices)
        basis = np.empty(n * 3, np.float32)
        key.reference_key.data.foreach_get("co", basis)
        moved = np.zeros(n)
        for name, weight in pose.items():
            co = np.empty(n * 3, np.float32)
            key.key_blocks[name].data.foreach_get("co", co)
            moved += weight * np.linalg.norm((co - basis).reshape(n, 3), axis=1)
        if moved.max() <= 0:
            continue
        world = basis.reshape(n, 3) @ np.array(mesh.matrix_world)[:3, :3].T + np.array(mesh.matrix_world)[:3, 3]
        mouth_z = float(np.average(world[:, 2], weights=moved))
        for bone in (b for h in heads for b in h.children_recursive):
            group = mesh.vertex_groups.get(bone.name)
            if group is None:
                continue
            ids = [v.index for v in mesh.data.vertices if any(g.group == group.index and g.weight > 0.5 for g in v.groups)]
            if len(ids) >= 20 and np.mean(world[ids, 2] < mouth_z) >= 0.7 and (best is None or len(ids) > best[0]):
                best = (len(ids), bone.name)
    return best[1] if best else None


def _open_pose(target: Any) -> dict[str, float]:
    """The rig keys, and weights, of the widest viseme (aa) under the target's preset."""
    matrix, names = target.match.pose_matrix()
    row = matrix[list(VISEMES).index("aa")]
    return {name: float(w) for name, w in zip(names, row) if w}
