"""Stage 2: the heads measured on their evaluated meshes in world space: vertices, triangles, the
pucker and blink poses as offsets, the lip point and facing (core.contact.measure_face)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.contact import (
    MM,
    ContactError,
    ContactSettings,
    Face,
    measure_face,
)
from ...core.rigs import detect
from .heads import Head, PickError

# ----------------------------------------------------------------------------- geometry

class EvaluatedMeshes:
    """Each mesh's evaluated vertices in world space on the frame Blender stands on, read once however many checks
    look at them (a body's mesh holds its head too): make a new one after the frame changes."""

    def __init__(self, depsgraph: Any) -> None:
        self.depsgraph = depsgraph
        self._read: dict[int, np.ndarray] = {}

    def world(self, ob: Any) -> np.ndarray:
        if id(ob) not in self._read:
            ob_eval = ob.evaluated_get(self.depsgraph)
            co = np.empty(len(ob_eval.data.vertices) * 3, np.float32)
            ob_eval.data.vertices.foreach_get("co", co)
            m = np.array(ob_eval.matrix_world)
            self._read[id(ob)] = co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]
        return self._read[id(ob)]


@dataclass
class Geometry:
    verts: np.ndarray  # world, (n, 3)
    tris: np.ndarray  # (m, 3) into verts
    spans: list[tuple[Any, np.ndarray]]  # per mesh: (object, original vertex indices used)


def _triangles(ob_eval: Any) -> np.ndarray:
    me = ob_eval.data
    tri = np.empty(len(me.loop_triangles) * 3, np.int32)
    me.loop_triangles.foreach_get("vertices", tri)
    return tri.reshape(-1, 3)


def head_geometry(head: Head, meshes: EvaluatedMeshes) -> Geometry:
    """World-space evaluated vertices of the head's meshes (only the head bone's part of a body). The triangles
    are read once per mesh: posing and shape keys move vertices, never the topology."""
    verts, tris, spans = [], [], []
    offset = 0
    for ob, subset in head.meshes:
        world = meshes.world(ob)
        if len(world) != len(ob.data.vertices):
            raise ContactError(f"{ob.name}: a modifier changes its vertex count (e.g. Subdivision); "
                               "disable it in the viewport while generating contact")
        if id(ob) not in head.topology:
            tri = _triangles(ob.evaluated_get(meshes.depsgraph))
            if subset is not None:
                keep = np.zeros(len(world), bool)
                keep[subset] = True
                remap = np.full(len(world), -1)
                remap[subset] = np.arange(len(subset))
                tri = remap[tri[keep[tri].all(axis=1)]]
            head.topology[id(ob)] = tri
        idx = np.arange(len(world)) if subset is None else subset
        verts.append(world[idx])
        tris.append(head.topology[id(ob)] + offset)
        spans.append((ob, idx))
        offset += len(idx)
    return Geometry(np.concatenate(verts), np.concatenate(tris), spans)


# a role's keys on one Key datablock: shape key name -> (weight in the pose, its value when the approach begins)
RoleKeys = dict[str, tuple[float, float]]


@dataclass
class ShapeRole:
    """The preset's pose for a role (pucker, blink) on a head's meshes, in world space."""

    full: np.ndarray | None  # offsets at full weight: which way the lips push, where they are
    keyed: np.ndarray  # offsets at the strength Oris keys, from the keys' own values: clamp(rest + s * w) - rest
    keys: dict[Any, RoleKeys]  # Key datablock -> its keys of the role


def keyed_value(rest: float, weight: float, strength: float, block: Any) -> float:
    """What Oris keys on a shape key for a role at a strength: added to its rest value, within its range."""
    return float(min(max(rest + strength * weight, block.slider_min), block.slider_max))


def shape_offsets(head: Head, geo: Geometry, role: str, strength: float) -> ShapeRole:
    """World offsets of the preset's role pose at full weight and as keyed at `strength` on top of each key's
    present value (a glTF's default weights rest above 0), and the keys it uses with those rest values."""
    full, keyed = np.zeros_like(geo.verts), np.zeros_like(geo.verts)
    found = False
    keys: dict[Any, RoleKeys] = {}
    row = 0
    for ob, idx in geo.spans:
        key = ob.data.shape_keys
        if key is not None:
            names = [kb.name for kb in key.key_blocks]
            pose = detect(names)[0].extra_pose(role)
            if pose:
                keys[key] = {name: (w, float(key.key_blocks[name].value)) for name, w in pose.items()}
                n = len(ob.data.vertices)
                local_full, local_keyed = np.zeros((n, 3)), np.zeros((n, 3))
                for name, (w, rest) in keys[key].items():
                    kb = key.key_blocks[name]
                    a, b = np.empty(n * 3, np.float32), np.empty(n * 3, np.float32)
                    kb.data.foreach_get("co", a)
                    kb.relative_key.data.foreach_get("co", b)
                    unit = (a - b).reshape(-1, 3)
                    local_full += w * unit
                    local_keyed += (keyed_value(rest, w, strength, kb) - rest) * unit
                m = np.array(ob.matrix_world)[:3, :3]
                if head.bone:  # armature-deformed: the head bone's pose turns the offsets too
                    pb = head.controller.pose.bones[head.bone]
                    m = np.array(head.controller.matrix_world)[:3, :3] @ np.array(pb.matrix @ pb.bone.matrix_local.inverted())[:3, :3] @ \
                        np.linalg.inv(np.array(head.controller.matrix_world)[:3, :3]) @ m
                full[row:row + len(idx)] = local_full[idx] @ m.T
                keyed[row:row + len(idx)] = local_keyed[idx] @ m.T
                found = True
        row += len(idx)
    return ShapeRole(full if found else None, keyed, keys)


def lip_movers(geo: Geometry, face: Face) -> dict[Any, set[str]]:
    """Per Key datablock, the shape keys that move the face's lip region by more than 0.2 mm at full
    weight (a cheek puff or a sneer reaches the lips too, whatever its name)."""
    found: dict[Any, set[str]] = {}
    reach = 0.2 * MM * face.scale
    row = 0
    for ob, idx in geo.spans:
        key = ob.data.shape_keys
        lips = idx[face.lip_mask[row:row + len(idx)]]
        row += len(idx)
        if key is None or not len(lips):
            continue
        n = len(ob.data.vertices)
        to_world = np.array(ob.matrix_world)[:3, :3]
        co: dict[str, np.ndarray] = {}
        for kb in key.key_blocks:
            co[kb.name] = np.empty(n * 3, np.float32)
            kb.data.foreach_get("co", co[kb.name])
        for kb in key.key_blocks:
            if kb == key.reference_key:
                continue
            offset = (co[kb.name] - co[kb.relative_key.name]).reshape(-1, 3)[lips] @ to_world.T
            if np.linalg.norm(offset, axis=1).max() > reach:
                found.setdefault(key, set()).add(kb.name)
    return found


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
        raise PickError(f"{head.name}: vertex group {spec.lip_group!r} is missing or empty")
    if spec.lip_vertex >= 0:
        ob = geo.spans[0][0]
        if spec.lip_vertex >= len(ob.data.vertices):
            raise PickError(f"{head.name}: there is no vertex {spec.lip_vertex} (it has {len(ob.data.vertices)})")
        return np.array(ob.matrix_world @ ob.data.vertices[spec.lip_vertex].co)
    return None


def _override_facing(head: Head) -> np.ndarray | None:
    if head.spec.facing == "AUTO":
        return None
    axis = {"-X": (0, -1.0), "+X": (0, 1.0), "-Y": (1, -1.0), "+Y": (1, 1.0), "-Z": (2, -1.0), "+Z": (2, 1.0)}[head.spec.facing]
    m = np.array(head.world_matrix())[:3, :3]
    return m[:, axis[0]] * axis[1]



def measure_head(head: Head, depsgraph: Any, settings: ContactSettings) -> tuple[Geometry, Face, dict[str, ShapeRole], np.ndarray]:
    """The head as measured when the approach begins, and as planned: puckered by exactly what will be keyed."""
    geo = head_geometry(head, EvaluatedMeshes(depsgraph))
    roles = {"pucker": shape_offsets(head, geo, "pucker", settings.pucker_strength),
             "blink": shape_offsets(head, geo, "blink", settings.eye_strength)}
    planning = geo.verts + roles["pucker"].keyed
    up_hint = np.array(head.world_matrix())[:3, 1 if head.bone else 2]  # a bone points up the neck
    face = measure_face(planning, roles["pucker"].full, roles["blink"].full, _override_point(head, geo),
                        _override_facing(head), up_hint, head.name)
    if roles["pucker"].full is None:
        face.notes.append(f"{head.name}: no pucker key; the lips keep their shape")
    if roles["blink"].full is None:
        face.notes.append(f"{head.name}: no blink keys; the eyes stay open")
    return geo, face, roles, planning

