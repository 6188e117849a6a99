"""Contact animation in Blender: measure two head rigs, plan (core.contact), key, validate.

    report = run_contact(scene, HeadSpec(ob_a), HeadSpec(ob_b), ContactSettings(contact_frame=48))

A head is a mesh object, an empty or parent holding face meshes, or an armature's head bone.
Everything is measured on the evaluated meshes in world space. The keys go into one Action
placed as "Oris Contact" NLA strips; after keying, every frame is measured again from the
evaluated meshes (not from the plan), and a plan that fails is replanned with more roll or a
different pitch, or removed with a clear message. Nothing is left half-written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix, Vector
from mathutils.bvhtree import BVHTree as _BVHTree

from ..core.contact import (
    MM,
    ContactError,
    ContactPlan,
    ContactSettings,
    Face,
    Impact,
    Limits,
    delta_matrix,
    face_shape_tracks,
    judge,
    measure_face,
    minimum_jerk,
    plan_contact,
)
from ..core.keys import hermite_keys
from ..core.rigs import detect
from .actions import active_action_paths, new_action, oris_strips, place_strip, remove_strips, write_keys
from .shapekeys import check_editable

BVHTree: Any = _BVHTree  # the stubs type its constructors as returning None
TRACK_NAME = "Oris Contact"
STRIP_NAME = "Oris Contact"
HEAD_BONE_NAMES = ("head", "Head", "mixamorig:Head", "DEF-head", "ORG-head", "CC_Base_Head", "J_Bip_C_Head")


@dataclass
class HeadSpec:
    """What the user picked for one side, with optional overrides."""

    obj: Any
    bone: str = ""  # for an armature: its head bone ("" = find it)
    lip_object: Any = None  # an empty (or any object) at the lip contact point
    lip_group: str = ""  # or a vertex group at the lips
    lip_vertex: int = -1  # or one vertex (index in the first mesh)
    facing: str = "AUTO"  # or the controller's local axis the face looks along: -Y, +Y, -X, +X, -Z, +Z


@dataclass
class Head:
    name: str
    controller: Any  # the object whose transform is keyed (an armature when bone is set)
    bone: str
    meshes: list[tuple[Any, np.ndarray | None]]  # (mesh object, vertex subset or None for all)
    keys: list[Any]  # Key datablocks of those meshes
    spec: HeadSpec

    @property
    def path_prefix(self) -> str:
        return f'pose.bones["{bpy.utils.escape_identifier(self.bone)}"].' if self.bone else ""

    def world_matrix(self) -> Matrix:
        if self.bone:
            return self.controller.matrix_world @ self.controller.pose.bones[self.bone].matrix
        return self.controller.matrix_world.copy()

    def basis(self) -> Matrix:
        return (self.controller.pose.bones[self.bone] if self.bone else self.controller).matrix_basis.copy()

    @property
    def rotation_mode(self) -> str:
        return (self.controller.pose.bones[self.bone] if self.bone else self.controller).rotation_mode


# ------------------------------------------------------------------------------ resolving

def _bone_subtree(arm: Any, bone: str) -> set[str]:
    root = arm.data.bones[bone]
    return {root.name, *(b.name for b in root.children_recursive)}


def _find_head_bone(arm: Any) -> str:
    names = [b.name for b in arm.data.bones]
    for wanted in HEAD_BONE_NAMES:
        if wanted in names:
            return wanted
    heads = [n for n in names if n.lower().rsplit(":", 1)[-1].rsplit("_", 1)[-1] == "head"]
    if heads:
        return heads[0]
    raise ContactError(f"{arm.name}: no head bone found (looked for {', '.join(HEAD_BONE_NAMES[:3])}); pick the bone "
                       "(--a-bone/--b-bone on the command line)")


def resolve_head(spec: HeadSpec, label: str) -> Head:
    ob = spec.obj
    if ob is None:
        raise ContactError(f"choose head {label}")
    check_editable(ob)
    if ob.type == "ARMATURE":
        bone = spec.bone or _find_head_bone(ob)
        if bone not in ob.pose.bones:
            raise ContactError(f"{ob.name} has no bone {bone!r}")
        subtree = _bone_subtree(ob, bone)
        meshes: list[tuple[Any, np.ndarray | None]] = []
        for child in bpy.data.objects:
            if child.type != "MESH":
                continue
            if child.parent == ob and child.parent_type == "BONE" and child.parent_bone in subtree:
                meshes.append((child, None))
            elif any(m.type == "ARMATURE" and getattr(m, "object", None) == ob for m in child.modifiers):
                subset = _bone_weighted(child, subtree)
                if subset is not None and len(subset):
                    meshes.append((child, subset))
        if not meshes:
            raise ContactError(f"{ob.name}: no mesh follows bone {bone!r} (parented to it or weighted to it)")
    elif ob.type in ("MESH", "EMPTY") or any(c.type == "MESH" for c in ob.children_recursive):
        bone = ""
        meshes = [(m, None) for m in ([ob] if ob.type == "MESH" else []) + [c for c in ob.children_recursive if c.type == "MESH"]]
        if not meshes:
            raise ContactError(f"{ob.name}: an empty with no meshes under it; pick the head mesh or its parent")
    else:
        raise ContactError(f"{ob.name} is a {ob.type.lower()}, not a head: pick a mesh, its parent, or an armature")
    if abs(np.linalg.det(np.array(ob.matrix_world)[:3, :3])) < 1e-18:
        raise ContactError(f"{ob.name} has zero scale; fix its scale first")
    for m, _ in meshes:
        check_editable(m)
        if abs(np.linalg.det(np.array(m.matrix_world)[:3, :3])) < 1e-18:
            raise ContactError(f"{m.name} has zero scale; fix its scale first")
    keys = list({id(m.data.shape_keys): m.data.shape_keys for m, _ in meshes if m.data.shape_keys}.values())
    return Head(ob.name + (f":{bone}" if bone else ""), ob, bone, meshes, keys, spec)


def _bone_weighted(ob: Any, bones: set[str]) -> np.ndarray | None:
    """Vertices weighted mostly (>= 0.5) to the head bone and its children."""
    groups = {g.index for g in ob.vertex_groups if g.name in bones}
    if not groups:
        return None
    weight = np.zeros(len(ob.data.vertices))
    for v in ob.data.vertices:
        for g in v.groups:
            if g.group in groups:
                weight[v.index] += g.weight
    return np.flatnonzero(weight >= 0.5)


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


# ------------------------------------------------------------------------------ collider

class BVHCollider:
    """Time of impact along the approach axis between two rigidly turned heads: rays from the
    front vertices of each into the other's BVH (built once, at rest, in world space)."""

    def __init__(self, verts_a: np.ndarray, tris_a: np.ndarray, face_a: Face,
                 verts_b: np.ndarray, tris_b: np.ndarray, face_b: Face) -> None:
        self.sides = []
        for verts, tris, face in ((verts_a, tris_a, face_a), (verts_b, tris_b, face_b)):
            tree = BVHTree.FromPolygons(verts.tolist(), tris.tolist())
            lip_tri = face.lip_mask[tris].any(axis=1)
            self.sides.append((verts, tree, face, lip_tri))
        self.nose_tri = (face_a.nose_mask[tris_a].any(axis=1), face_b.nose_mask[tris_b].any(axis=1))

    def impact(self, rot_a: np.ndarray, rot_b: np.ndarray, direction: np.ndarray, fine: bool = True) -> Impact:
        (va, tree_a, fa, lip_a), (vb, tree_b, fb, lip_b) = self.sides
        xa = (va - fa.lip) @ rot_a.T + fa.lip
        xb = (vb - fb.lip) @ rot_b.T + fb.lip
        d = np.asarray(direction, np.float64)
        first = [np.inf, np.inf, np.inf, np.inf]  # any, lips, other, nose
        other_at: tuple[float, float, float] | None = None
        band = 0.09 * max(fa.scale, fb.scale)
        reach = float(np.linalg.norm(fb.lip - fa.lip)) + 2 * band
        for x, face, sign, other_x, other_tree, other_face, other_rot, other_lip, other_nose in (
                (xa, fa, 1.0, xb, tree_b, fb, rot_b, lip_b, self.nose_tri[1]),
                (xb, fb, -1.0, xa, tree_a, fa, rot_a, lip_a, self.nose_tri[0])):
            ray = sign * d
            depth = x @ ray
            cand = depth >= face.lip @ ray - band  # whatever is level with the lips or in front of them
            # only where the other head is, seen along the axis
            e1 = np.cross(d, [1.0, 0, 0] if abs(d[0]) < 0.9 else [0, 1.0, 0])
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(d, e1)
            p, q = x @ e1, x @ e2
            op, oq = other_x @ e1, other_x @ e2
            pad = 0.005 * other_face.scale
            cand &= (p >= op.min() - pad) & (p <= op.max() + pad) & (q >= oq.min() - pad) & (q <= oq.max() + pad)
            idx = np.flatnonzero(cand)
            if not fine and len(idx) > 1200:  # a coarse look: every k-th vertex, lips a little denser
                lips = idx[face.lip_mask[idx]]
                idx = np.union1d(idx[:: max(1, len(idx) // 800)], lips[:: max(1, len(lips) // 400)])
            inv = other_rot.T  # into the other head's rest frame
            origins = (x[idx] - other_face.lip) @ inv.T + other_face.lip
            dir_local = Vector(inv @ ray)
            cast = other_tree.ray_cast
            for i, o, lip, nose in zip(idx.tolist(), origins.tolist(), face.lip_mask[idx].tolist(),
                                       face.nose_mask[idx].tolist()):
                hit, _n, tri, dist = cast(Vector(o), dir_local, reach)
                if hit is None:
                    continue
                k = 3 if (nose or other_nose[tri]) else 1 if (lip and other_lip[tri]) else 2
                first[0] = min(first[0], dist)
                if k == 2 and dist < first[2]:
                    # where on A: the vertex itself, or (for B's vertex) the point of A it runs into
                    at = x[i] if sign > 0 else x[i] - d * dist
                    other_at = (float(at[0]), float(at[1]), float(at[2]))
                first[k] = min(first[k], dist)
        return Impact(first[0], first[1], first[2], first[3], other_at)


    def nose_clearance(self, rot_a: np.ndarray, rot_b: np.ndarray, offset: np.ndarray) -> float:
        (va, tree_a, fa, _), (vb, tree_b, fb, _) = self.sides
        xa = (va[fa.nose_mask] - fa.lip) @ rot_a.T + fa.lip + offset
        xb = (vb[fb.nose_mask] - fb.lip) @ rot_b.T + fb.lip - offset
        best = np.inf
        for x, other_tree, other_face, other_rot in ((xa, tree_b, fb, rot_b), (xb, tree_a, fa, rot_a)):
            local = (x - other_face.lip) @ other_rot + other_face.lip  # into the other head's rest frame
            for o in local.tolist():
                hit, normal, _i, dist = other_tree.find_nearest(Vector(o))
                if hit is not None:
                    best = min(best, -dist if (Vector(o) - hit).dot(normal) < 0 else dist)
        return float(best)


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
              settings: ContactSettings, shape_poses: dict[str, dict[Any, dict[str, float]]]) -> Written:
    """One Action: a slot per controller (location and rotation keys at each phase's ends and
    quarter points, with the slopes of the planned motion) and per Key datablock (blink, pucker)."""
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
    for track in face_shape_tracks(plan, settings):
        for key, pose in shape_poses.get(track.role, {}).items():
            if id(key) not in slots:
                slots[id(key)] = action.slots.new(id_type="KEY", name=key.name)
                ids.append(key)
            bag = layer.channelbag(slots[id(key)], ensure=True)
            x = np.array([p[0] for p in track.points])
            for name, w in pose.items():
                y = np.array([p[1] for p in track.points]) * w
                write_keys(bag, f'key_blocks["{bpy.utils.escape_identifier(name)}"].value', hermite_keys(x, y, np.zeros(len(x))))
                keys_written += len(x)
                curves += 1
    start = min(plan.start_frame, min(p[0] for t in face_shape_tracks(plan, settings) for p in t.points))
    end = max(plan.end_frame, max(p[0] for t in face_shape_tracks(plan, settings) for p in t.points))
    # transforms hold their rest pose outside the strip; face shapes leave other animation alone there
    strips = [place_strip(idb, action, slots[id(idb)], TRACK_NAME, STRIP_NAME, start, end,
                          "HOLD" if isinstance(idb, bpy.types.Object) else "NOTHING") for idb in ids]
    return Written(action, ids, strips, keys_written, curves)


def remove_written(written: Written) -> None:
    name = written.action.name
    for idb in written.ids:
        remove_strips(idb, TRACK_NAME, written.strips)
    action = bpy.data.actions.get(name)
    if action is not None and action.users == 0:
        bpy.data.actions.remove(action)


# ---------------------------------------------------------------------------- validation

def _adjacency(tris: np.ndarray, n: int) -> list[np.ndarray]:
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    order = np.argsort(edges[:, 0], kind="stable")
    edges = edges[order]
    splits = np.searchsorted(edges[:, 0], np.arange(n + 1))
    return [edges[splits[i]:splits[i + 1], 1] for i in range(n)]


class FrameProbe:
    """Measures one frame from the evaluated meshes of both heads."""

    def __init__(self, heads: tuple[Head, Head], faces: tuple[Face, Face], geos: tuple[Geometry, Geometry]) -> None:
        self.heads, self.faces = heads, faces
        self.tris = (geos[0].tris, geos[1].tris)
        self.adj = (_adjacency(geos[0].tris, len(geos[0].verts)), _adjacency(geos[1].tris, len(geos[1].verts)))
        self.lip_tri = tuple(f.lip_mask[t].any(axis=1) for f, t in zip(faces, self.tris))
        self.track = tuple(int(np.argmin(np.linalg.norm(g.verts - f.lip, axis=1))) for g, f in zip(geos, faces))

    def _local_tree(self, verts: np.ndarray, tris: np.ndarray, keep: np.ndarray) -> tuple[Any, np.ndarray]:
        """A BVH of only the triangles near the other head (the rest cannot touch it)."""
        tri_ids = np.flatnonzero(keep[tris].any(axis=1))
        used, local = np.unique(tris[tri_ids], return_inverse=True)
        return BVHTree.FromPolygons(verts[used].tolist(), local.reshape(-1, 3).tolist(), all_triangles=True), tri_ids

    def measure(self, depsgraph: Any, with_nose: bool = False) -> dict[str, Any]:
        geos = [head_geometry(h, depsgraph) for h in self.heads]
        va, vb = geos[0].verts, geos[1].verts
        scale = min(f.scale for f in self.faces)
        lips = (va[self.track[0]], vb[self.track[1]])
        out: dict[str, Any] = {"lips": [lips[0].tolist(), lips[1].tolist()], "penetration_mm": 0.0,
                               "compression_mm": 0.0, "lip_gap_mm": None, "contact": False}
        pad = 0.01 * scale
        lo = np.maximum(va.min(axis=0), vb.min(axis=0)) - pad
        hi = np.minimum(va.max(axis=0), vb.max(axis=0)) + pad
        if np.any(lo > hi):  # not even the bounding boxes meet
            out["lip_gap_mm"] = float(np.linalg.norm(lips[1] - lips[0]) / MM / scale)
            return out
        near = [np.all((v >= lo) & (v <= hi), axis=1) for v in (va, vb)]
        trees = []
        for v, t, keep in zip((va, vb), self.tris, near):
            trees.append(self._local_tree(v, t, keep))
        pairs = trees[0][0].overlap(trees[1][0])
        deepest, squeeze = 0.0, 0.0
        for side in (0, 1):
            verts, other_tree = (va, vb)[side], trees[1 - side][0]
            own_tris = trees[side][1]
            seeds = {int(v) for pair in pairs for v in self.tris[side][own_tris[pair[side]]]}
            seen: set[int] = set()
            frontier = list(seeds)
            while frontier:  # flood out from the crossing triangles while vertices stay inside
                nxt: list[int] = []
                for vi in frontier:
                    if vi in seen:
                        continue
                    seen.add(vi)
                    hit, normal, _i, dist = other_tree.find_nearest(Vector(verts[vi]))
                    if hit is None or (Vector(verts[vi]) - hit).dot(normal) >= 0:
                        continue
                    if self.faces[side].lip_mask[vi]:
                        squeeze = max(squeeze, dist)
                    else:
                        deepest = max(deepest, dist)
                    nxt.extend(int(n) for n in self.adj[side][vi] if n not in seen)
                frontier = nxt
        out["penetration_mm"] = deepest / MM / scale
        out["compression_mm"] = squeeze / MM / scale
        gap = np.inf
        for side in (0, 1):
            verts, face, other_tree = (va, vb)[side], self.faces[side], trees[1 - side][0]
            cand = np.flatnonzero(face.lip_mask & near[side])
            if len(cand) == 0:
                continue
            cand = cand[np.argsort(np.linalg.norm(verts[cand] - lips[1 - side], axis=1))[:64]]
            for vi in cand:
                hit, _n, _i, dist = other_tree.find_nearest(Vector(verts[vi]))
                if hit is not None:
                    gap = min(gap, dist)
        touching = squeeze > 0 or any(self.lip_tri[0][trees[0][1][p[0]]] and self.lip_tri[1][trees[1][1][p[1]]] for p in pairs)
        out["lip_gap_mm"] = 0.0 if touching else float(gap / MM / scale)
        out["contact"] = bool(touching or gap <= 0.1 * MM * scale)
        if with_nose:
            clearance = np.inf
            for side in (0, 1):
                verts, face = (va, vb)[side], self.faces[side]
                full = BVHTree.FromPolygons((vb, va)[side].tolist(), self.tris[1 - side].tolist(), all_triangles=True)
                for vi in np.flatnonzero(face.nose_mask):
                    hit, normal, _i, dist = full.find_nearest(Vector(verts[vi]))
                    if hit is not None:
                        inside = (Vector(verts[vi]) - hit).dot(normal) < 0
                        clearance = min(clearance, -dist if inside else dist)
            out["nose_clearance_mm"] = float(clearance / MM / scale)
        return out


def validate(scene: Any, plan: ContactPlan, heads: tuple[Head, Head], probe: FrameProbe, limits: Limits,
             on_frame: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Step every frame of the animation, measure the evaluated meshes, and summarise."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    first, last = int(np.floor(plan.start_frame)), int(np.ceil(plan.end_frame))
    hold = [p for p in plan.phases if p.name == "hold"]
    hold_start, hold_end = hold[0].start, hold[-1].end
    fc = int(round(plan.contact_frame))
    frames, seconds = [], []
    lip_world: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    rigid = {}
    for f in range(first, last + 1):
        t0 = time.perf_counter()
        scene.frame_set(f)
        m = probe.measure(depsgraph, with_nose=(f == fc))
        seconds.append(time.perf_counter() - t0)
        m["frame"] = f
        frames.append(m)
        lip_world[f] = (np.array(m["lips"][0]), np.array(m["lips"][1]))
        rigid[f] = tuple(np.array(h.world_matrix()) for h in heads)
        if on_frame:
            on_frame((f - first + 1) / (last - first + 1))
    worst = max(frames, key=lambda m: (m["penetration_mm"], m["compression_mm"]))
    hold_frames = [m for m in frames if hold_start <= m["frame"] <= hold_end]
    first_contact = next((m["frame"] for m in frames if m["contact"]), None)
    ref = lip_world.get(fc)
    slide = 0.0
    if ref is not None:
        base = (ref[1] - ref[0]) - np.dot(ref[1] - ref[0], plan.axis) * plan.axis
        for m in hold_frames:
            a, b = lip_world[m["frame"]]
            v = (b - a) - np.dot(b - a, plan.axis) * plan.axis
            slide = max(slide, float(np.linalg.norm(v - base)))
    # the heads' rigid motion, read back from Blender: lip points carried by the controllers
    rest = rigid[first]
    def lip_track(f: int) -> np.ndarray:
        return np.array([(rigid[f][i] @ np.linalg.inv(rest[i]) @ np.append(p, 1.0))[:3]
                         for i, p in enumerate((plan.rest_a, plan.rest_b))])
    approach = next(p for p in plan.phases if p.name == "approach")
    a0, a1 = int(np.ceil(approach.start)), int(np.floor(approach.end))
    g0 = float(np.linalg.norm(np.diff(lip_track(a0), axis=0)))
    g1 = float(np.linalg.norm(np.diff(lip_track(a1), axis=0)))
    dev = 0.0
    for f in range(a0, a1 + 1):
        g = float(np.linalg.norm(np.diff(lip_track(f), axis=0)))
        want = float(minimum_jerk((f - approach.start) / (approach.end - approach.start)))
        if abs(g0 - g1) > 1e-12:
            dev = max(dev, abs((g0 - g) / (g0 - g1) - want))
    jump = _velocity_jump(scene, plan, heads, rest)
    summary = {
        "max_penetration_mm": float(worst["penetration_mm"]), "worst_frame": int(worst["frame"]),
        "hold_gap_ok_share": float(np.mean([m["lip_gap_mm"] is not None and m["lip_gap_mm"] <= limits.lip_gap_mm
                                            for m in hold_frames])) if hold_frames else 0.0,
        "max_compression_mm": float(max(m["compression_mm"] for m in frames)),
        "nose_clearance_mm": float(next((m.get("nose_clearance_mm", np.inf) for m in frames if m["frame"] == fc), np.inf)),
        "first_contact_frame": first_contact, "planned_contact_frame": fc,
        "max_slide_mm": slide / MM / plan.scale, "velocity_jump": jump, "minimum_jerk_deviation": dev,
        "validation_ms_per_frame": 1000.0 * float(np.mean(seconds)),
    }
    for m in frames:
        m.pop("lips", None)
    return {"summary": summary, "frames": frames}


def _velocity_jump(scene: Any, plan: ContactPlan, heads: tuple[Head, Head], rest: tuple[np.ndarray, ...]) -> float:
    """Largest change of lip-point velocity across a key, against the peak speed (from Blender's
    own evaluation of the keyed channels at sub-frames)."""
    eps = 0.02
    def lips_at(frame: float) -> np.ndarray:
        scene.frame_set(int(np.floor(frame)), subframe=float(frame - np.floor(frame)))
        return np.array([(np.array(h.world_matrix()) @ np.linalg.inv(r) @ np.append(p, 1.0))[:3]
                         for h, r, p in zip(heads, rest, (plan.rest_a, plan.rest_b))])
    speeds, jumps = [], []
    for k in plan.key_frames():
        before, at, after = lips_at(k - eps), lips_at(k), lips_at(k + eps)
        v_in, v_out = (at - before) / eps, (after - at) / eps
        jumps.append(np.linalg.norm(v_out - v_in, axis=1).max())
    samples = np.arange(plan.start_frame, plan.end_frame, 0.5)
    track = np.array([lips_at(float(f)) for f in samples])
    speeds = np.linalg.norm(np.diff(track, axis=0), axis=2) / 0.5
    peak = float(speeds.max()) if speeds.size else 0.0
    scene.frame_set(int(plan.contact_frame))
    return float(max(jumps) / peak) if peak > 0 else 0.0


# -------------------------------------------------------------------------------- running

def first_failing_frames(frames: list[dict[str, Any]], plan: ContactPlan, limits: Limits) -> dict[str, int | None]:
    """For each per-frame check, the first frame that breaks it (None: none does), so a report says where to look."""
    hold = [p for p in plan.phases if p.name == "hold"]
    in_hold = [m for m in frames if hold and hold[0].start <= m["frame"] <= hold[-1].end]

    def first(rows: list[dict[str, Any]], broken: Callable[[dict[str, Any]], bool]) -> int | None:
        return next((int(m["frame"]) for m in rows if broken(m)), None)

    return {
        "penetration": first(frames, lambda m: m["penetration_mm"] > limits.penetration_mm),
        "compression": first(frames, lambda m: m["compression_mm"] > limits.compression_mm),
        "lip_gap_in_hold": first(in_hold, lambda m: m["lip_gap_mm"] is None or m["lip_gap_mm"] > limits.lip_gap_mm),
    }


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


def _snapshot(heads: tuple[Head, Head]) -> list[tuple[Any, str, Any]]:
    """Values that evaluating the animation writes back into the file, to restore after a failed try."""
    saved = []
    for h in heads:
        owner = h.controller.pose.bones[h.bone] if h.bone else h.controller
        for attr in ("location", "rotation_euler", "rotation_quaternion", "rotation_axis_angle", "scale"):
            saved.append((owner, attr, tuple(getattr(owner, attr))))
        for key in h.keys:
            for kb in key.key_blocks:
                saved.append((kb, "value", kb.value))
    return saved


def _restore(saved: list[tuple[Any, str, Any]]) -> None:
    for owner, attr, value in saved:
        setattr(owner, attr, value)


@dataclass
class _Detached:
    id_block: Any
    action: Any
    slot_handle: int
    name: str
    start: float
    end: float
    extrapolation: str


def _detach_previous(heads: tuple[Head, Head]) -> list[_Detached]:
    """Take Oris's earlier contact strips off (kept, to put back if this run fails) and set the
    channels they drove to their first keys, the pose the heads had before that contact."""
    owners = {id(i): i for h in heads for i in [h.controller, *h.keys]}.values()
    detached = []
    for idb in owners:
        for strip in oris_strips(idb, TRACK_NAME):
            action, slot = strip.action, strip.action_slot
            if action is not None and slot is not None:
                action.use_fake_user = True
                for layer in action.layers:
                    for layer_strip in layer.strips:
                        bag = layer_strip.channelbag(slot)
                        for fc in bag.fcurves if bag else []:
                            if len(fc.keyframe_points):
                                _set_path(idb, fc.data_path, fc.array_index, fc.keyframe_points[0].co[1])
            detached.append(_Detached(idb, action, slot.handle if slot else -1, strip.name, strip.action_frame_start,
                                      strip.action_frame_end, strip.extrapolation))
        remove_strips(idb, TRACK_NAME, oris_strips(idb, TRACK_NAME))
    return detached


def _reattach(detached: list[_Detached]) -> None:
    for d in detached:
        slot = next((sl for sl in d.action.slots if sl.handle == d.slot_handle), None)
        place_strip(d.id_block, d.action, slot, TRACK_NAME, d.name, d.start, d.end, d.extrapolation)
    for d in detached:
        d.action.use_fake_user = False


def _forget(detached: list[_Detached]) -> None:
    actions = {d.action.name: d.action for d in detached}
    for action in actions.values():
        action.use_fake_user = False
        if action.users == 0:
            bpy.data.actions.remove(action)


def _set_path(idb: Any, path: str, index: int, value: float) -> None:
    base, _, attr = path.rpartition(".")
    owner = idb.path_resolve(base) if base else idb
    current = getattr(owner, attr)
    if hasattr(current, "__len__"):
        current[index] = value
    else:
        setattr(owner, attr, value)


def _other_face_animation(heads: tuple[Head, Head], start: float, end: float) -> str:
    """Names of NLA tracks (or an active Action) that move the faces' shape keys during the contact."""
    found = []
    for key in {id(k): k for h in heads for k in h.keys}.values():
        ad = key.animation_data
        if ad is None:
            continue
        if ad.action is not None:
            found.append(f"{key.name}: action {ad.action.name}")
        for track in ad.nla_tracks:
            if track.name != TRACK_NAME and not track.mute and any(
                    s.frame_start < end and s.frame_end > start and not s.mute for s in track.strips):
                found.append(f"{key.name}: track {track.name}")
    return ", ".join(found)


def _pause_subdivision(heads: tuple[Head, Head]) -> list[Any]:
    """Subdivision changes the vertex count that shape keys index: measure the cage instead (the
    smooth surface lies inside it, so a cage without penetration is a surface without it)."""
    paused = []
    for h in heads:
        for ob, _subset in h.meshes:
            for modifier in ob.modifiers:
                if modifier.type in ("SUBSURF", "MULTIRES") and modifier.show_viewport:
                    modifier.show_viewport = False
                    paused.append(modifier)
    return paused


def _check_own_keys(heads: tuple[Head, Head]) -> None:
    """An active Action keying a head's transform would override the contact strip: say so first."""
    for h in heads:
        prefix = h.path_prefix
        moving = [p for p in active_action_paths(h.controller)
                  if p.startswith(prefix) and p[len(prefix):].startswith(("location", "rotation"))]
        if moving:
            raise ContactError(f"{h.name} has its own keys on {', '.join(sorted(set(moving))[:3])} in the action "
                               f"{h.controller.animation_data.action.name!r}, which would override the contact; "
                               "push that action down to the NLA (Dope Sheet > Action > Push Down) or clear those keys first")


def _check_apart(collider: BVHCollider, names: tuple[str, str]) -> None:
    if collider.sides[0][1].overlap(collider.sides[1][1]):
        raise ContactError(f"{names[0]} and {names[1]} already overlap at the start; move them apart first")


def run_contact(scene: Any, spec_a: HeadSpec, spec_b: HeadSpec, settings: ContactSettings,
                limits: Limits | None = None, on_progress: Callable[[float], None] | None = None) -> ContactReport:
    """Plan, key and validate; replan on failure; leave nothing behind when it cannot pass."""
    settings = settings.validated()
    limits = limits or Limits(compression_mm=settings.compression_limit_mm, nose_clearance_mm=settings.nose_clearance_mm)
    if spec_a.obj is not None and spec_a.obj == spec_b.obj and spec_a.bone == spec_b.bone:
        raise ContactError("heads A and B are the same; pick two different heads")
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        view_layer.update()  # world matrices of objects changed since the last redraw
    heads = (resolve_head(spec_a, "A"), resolve_head(spec_b, "B"))
    _check_own_keys(heads)
    fps = scene.render.fps / scene.render.fps_base
    frame_before = scene.frame_current
    smoothing = _pause_subdivision(heads)
    saved = _snapshot(heads)
    detached = _detach_previous(heads)
    done = False
    t0 = time.perf_counter()
    try:
        # plan from where the heads stand when the approach begins
        approach = max(2.0, round(settings.approach_seconds * fps))
        start = int(settings.contact_frame - approach - (round(0.25 * approach) if settings.anticipation else 0))
        scene.frame_set(start)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        sides = [measure_head(h, depsgraph, settings.pucker_strength) for h in heads]
        geos = (sides[0][0], sides[1][0])
        faces = (sides[0][1], sides[1][1])
        shape_poses: dict[str, dict[Any, dict[str, float]]] = {"pucker": {}, "blink": {}}
        for side in sides:
            for role in shape_poses:
                shape_poses[role].update(side[2][role])
        shape_poses["pucker"] = {k: {n: w for n, w in p.items()} for k, p in shape_poses["pucker"].items()}
        collider = BVHCollider(sides[0][3], geos[0].tris, faces[0], sides[1][3], geos[1].tris, faces[1])
        _check_apart(collider, (heads[0].name, heads[1].name))
        rests = tuple((h.world_matrix(), h.basis()) for h in heads)
        probe = FrameProbe(heads, faces, geos)
        measured = time.perf_counter() - t0
        attempts: list[dict[str, Any]] = []
        min_roll = 0.0  # then more roll, then other pitches
        pitches: tuple[float, ...] = (0.0,)
        for attempt in range(4):
            t1 = time.perf_counter()
            plan = plan_contact(faces[0], faces[1], collider, settings, fps, min_roll, pitches)
            written = key_heads(plan, heads, rests, settings, shape_poses)  # type: ignore[arg-type]
            planned = time.perf_counter() - t1 + (measured if attempt == 0 else 0.0)
            t2 = time.perf_counter()
            result = validate(scene, plan, heads, probe, limits, on_progress)
            fails = judge(result["summary"], limits)
            plan_info = {"roll_degrees": plan.roll_degrees, "pitch_degrees": plan.pitch_degrees,
                         "contact_frame": plan.contact_frame, "start_frame": plan.start_frame, "end_frame": plan.end_frame,
                         "leader": settings.leader, "tilt_side": settings.tilt_side,
                         "impact_distance": plan.impact.lips, "scale": plan.scale, "axis": plan.axis.tolist(),
                         "lip_points": [plan.rest_a.tolist(), plan.rest_b.tolist()],
                         "keys_written": written.keys_written, "curves": written.curves, "action": written.action.name}
            attempts.append({"roll_degrees": plan.roll_degrees, "pitch_degrees": plan.pitch_degrees, "failures": fails,
                             "first_failing_frames": first_failing_frames(result["frames"], plan, limits),
                             "summary": result["summary"]})
            if not fails:
                _forget(detached)
                done = True
                notes = plan.notes + [f"{m.id_data.name}: {m.name} measured as its cage" for m in smoothing]
                return ContactReport(True, [], plan_info, result["summary"], result["frames"], attempts,
                                     notes, {"plan_and_key_s": planned, "validate_s": time.perf_counter() - t2})
            remove_written(written)
            _restore(saved)
            min_roll = plan.roll_degrees + 5.0
            if attempt >= 1:
                pitches = (0.0, -6.0, 6.0)
        busy = _other_face_animation(heads, plan.start_frame, plan.end_frame)
        hint = (f". Other animation plays on the faces then ({busy}): mute it over the contact or move the contact"
                if busy else ". Try a larger tilt, a lower pucker strength, or lip point overrides (--tilt, --pucker, "
                "--a-lips/--b-lips on the command line)")
        report = ContactReport(False, attempts[-1]["failures"], plan_info, result["summary"], result["frames"], attempts,
                               plan.notes, {"plan_and_key_s": planned, "validate_s": time.perf_counter() - t2})
        raise ContactFailed("the contact could not pass its checks after 4 plans: "
                            + "; ".join(attempts[-1]["failures"]) + hint, report)
    finally:
        if not done:  # failed or stopped: the earlier contact animation and the values it wrote come back
            _reattach(detached)
            _restore(saved)
        for modifier in smoothing:
            modifier.show_viewport = True
        scene.frame_set(frame_before)
