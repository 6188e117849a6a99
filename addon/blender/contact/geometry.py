"""Stage 2: the heads measured on their evaluated meshes in world space: vertices, triangles, the
pucker and blink poses as offsets, the lip point and facing (core.contact.measure_face)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.contact import (
    ContactError,
    Face,
    measure_face,
)
from ...core.rigs import detect
from .heads import Head

# ----------------------------------------------------------------------------- geometry

@dataclass
class Geometry:
    verts: np.ndarray  # world, (n, 3)
    tris: np.ndarray  # (m, 3) into verts
    spans: list[tuple[Any, np.ndarray]]  # per mesh: (object, original vertex indices used)


def _mesh_arrays(ob_eval: Any) -> tuple[np.ndarray, np.ndarray]:
    me = ob_eval.data
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    tri = np.empty(len(me.loop_triangles) * 3, np.int32)
    me.loop_triangles.foreach_get("vertices", tri)
    return co.reshape(-1, 3).astype(np.float64), tri.reshape(-1, 3)


def head_geometry(head: Head, depsgraph: Any) -> Geometry:
    """World-space evaluated vertices of the head's meshes (only the head bone's part of a body)."""
    verts, tris, spans = [], [], []
    offset = 0
    for ob, subset in head.meshes:
        ob_eval = ob.evaluated_get(depsgraph)
        co, tri = _mesh_arrays(ob_eval)
        if len(co) != len(ob.data.vertices):
            raise ContactError(f"{ob.name}: a modifier changes its vertex count (e.g. Subdivision); "
                               "disable it in the viewport while generating contact")
        m = np.array(ob_eval.matrix_world)
        world = co @ m[:3, :3].T + m[:3, 3]
        idx = np.arange(len(co)) if subset is None else subset
        if subset is not None:
            keep = np.zeros(len(co), bool)
            keep[subset] = True
            remap = np.full(len(co), -1)
            remap[subset] = np.arange(len(subset))
            tri = remap[tri[keep[tri].all(axis=1)]]
        verts.append(world[idx])
        tris.append(tri + offset)
        spans.append((ob, idx))
        offset += len(idx)
    return Geometry(np.concatenate(verts), np.concatenate(tris), spans)


def shape_offsets(head: Head, geo: Geometry, role: str) -> tuple[np.ndarray | None, dict[Any, dict[str, float]]]:
    """World offsets of the preset's role pose (pucker, blink) at full weight, and the keys it uses."""
    total = np.zeros_like(geo.verts)
    found = False
    poses: dict[Any, dict[str, float]] = {}
    row = 0
    for ob, idx in geo.spans:
        key = ob.data.shape_keys
        if key is not None:
            names = [kb.name for kb in key.key_blocks]
            pose = detect(names)[0].extra_pose(role)
            if pose:
                poses[key] = pose
                n = len(ob.data.vertices)
                local = np.zeros((n, 3))
                for name, w in pose.items():
                    kb = key.key_blocks[name]
                    a, b = np.empty(n * 3, np.float32), np.empty(n * 3, np.float32)
                    kb.data.foreach_get("co", a)
                    kb.relative_key.data.foreach_get("co", b)
                    local += w * (a - b).reshape(-1, 3)
                m = np.array(ob.matrix_world)[:3, :3]
                if head.bone:  # armature-deformed: the head bone's pose turns the offsets too
                    pb = head.controller.pose.bones[head.bone]
                    m = np.array(head.controller.matrix_world)[:3, :3] @ np.array(pb.matrix @ pb.bone.matrix_local.inverted())[:3, :3] @ \
                        np.linalg.inv(np.array(head.controller.matrix_world)[:3, :3]) @ m
                total[row:row + len(idx)] = local[idx] @ m.T
                found = True
        row += len(idx)
    return (total if found else None), poses


def _override_point(head: Head, geo: Geometry) -> np.ndarray | None:
    spec = head.spec
    if spec.lip_object is not None:
        return np.array(spec.lip_object.matrix_world.translation)
    if spec.lip_group:
        for ob, _idx in geo.spans:
            group = ob.vertex_groups.get(spec.lip_group)
            if group is None:
                continue
            members = [v.index for v in ob.data.vertices if any(g.group == group.index and g.weight > 0 for g in v.groups)]
            if members:
                m = np.array(ob.matrix_world)
                co = np.array([ob.data.vertices[i].co for i in members])
                return (co @ m[:3, :3].T + m[:3, 3]).mean(axis=0)
        raise ContactError(f"{head.name}: vertex group {spec.lip_group!r} is missing or empty")
    if spec.lip_vertex >= 0:
        ob = geo.spans[0][0]
        if spec.lip_vertex >= len(ob.data.vertices):
            raise ContactError(f"{head.name}: there is no vertex {spec.lip_vertex}")
        return np.array(ob.matrix_world @ ob.data.vertices[spec.lip_vertex].co)
    return None


def _override_facing(head: Head) -> np.ndarray | None:
    if head.spec.facing == "AUTO":
        return None
    axis = {"-X": (0, -1.0), "+X": (0, 1.0), "-Y": (1, -1.0), "+Y": (1, 1.0), "-Z": (2, -1.0), "+Z": (2, 1.0)}[head.spec.facing]
    m = np.array(head.world_matrix())[:3, :3]
    return m[:, axis[0]] * axis[1]



def measure_head(head: Head, depsgraph: Any, pucker_strength: float) -> tuple[Geometry, Face, dict[str, dict[Any, dict[str, float]]], np.ndarray]:
    geo = head_geometry(head, depsgraph)
    pucker, pucker_keys = shape_offsets(head, geo, "pucker")
    blink, blink_keys = shape_offsets(head, geo, "blink")
    planning = geo.verts + (pucker_strength * pucker if pucker is not None else 0.0)
    up_hint = np.array(head.world_matrix())[:3, 1 if head.bone else 2]  # a bone points up the neck
    face = measure_face(planning, pucker, blink, _override_point(head, geo), _override_facing(head), up_hint, head.name)
    if pucker is None:
        face.notes.append(f"{head.name}: no pucker key; the lips keep their shape")
    if blink is None:
        face.notes.append(f"{head.name}: no blink keys; the eyes stay open")
    return geo, face, {"pucker": pucker_keys, "blink": blink_keys}, planning

