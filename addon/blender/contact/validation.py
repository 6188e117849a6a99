"""Stage 5: every frame of the keyed animation measured on the evaluated meshes (not from the plan)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import bpy
import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree as _BVHTree

from ...core.contact import (
    MM,
    TOUCH_MM,
    ContactPlan,
    Face,
    Limits,
    delta_matrix,
    minimum_jerk,
)
from .geometry import EvaluatedMeshes, Geometry, head_geometry
from .heads import Head, deformed_by

BVHTree: Any = _BVHTree  # the stubs type its constructors as returning None

# ---------------------------------------------------------------------------- validation

def _adjacency(tris: np.ndarray, n: int) -> list[np.ndarray]:
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    order = np.argsort(edges[:, 0], kind="stable")
    edges = edges[order]
    splits = np.searchsorted(edges[:, 0], np.arange(n + 1))
    return [edges[splits[i]:splits[i + 1], 1] for i in range(n)]


def inside_vertices(verts: np.ndarray, seeds: set[int], other_tree: Any,
                    adjacency: list[np.ndarray]) -> list[tuple[int, int, float]]:
    """The vertices inside the other mesh, flooding out from `seeds` (those of the crossing triangles) while they
    stay inside: (vertex, the other mesh's nearest triangle in its tree, depth)."""
    found: list[tuple[int, int, float]] = []
    seen: set[int] = set()
    frontier = list(seeds)
    while frontier:
        nxt: list[int] = []
        for vi in frontier:
            if vi in seen:
                continue
            seen.add(vi)
            hit, normal, tri, dist = other_tree.find_nearest(Vector(verts[vi]))
            if hit is None or (Vector(verts[vi]) - hit).dot(normal) >= 0:
                continue
            found.append((vi, int(tri), float(dist)))
            nxt.extend(int(n) for n in adjacency[vi] if n not in seen)
        frontier = nxt
    return found


def near_other(verts: np.ndarray, other: np.ndarray, pad: float) -> np.ndarray:
    """Per vertex: inside the box of the other body's vertices at its own height (that height band and the bands
    beside it), grown by `pad`. One box over the whole height would keep most of two standing bodies, whose feet reach
    further forward than their chests. Bands are at least 5 pads tall, so no triangle spans more than one."""
    z, oz = verts[:, 2], other[:, 2]  # world z: Blender's up
    bottom = min(z.min(), oz.min())
    height = max(z.max(), oz.max()) - bottom
    count = int(min(64, max(1, height // (5 * pad)))) if pad > 0 else 1
    size = height / count if height > 0 else 1.0

    def bands_of(values: np.ndarray) -> np.ndarray:
        return np.clip(((values - bottom) / size).astype(np.int64), 0, count - 1)

    lo, hi = np.full((count, 3), np.inf), np.full((count, 3), -np.inf)
    theirs = bands_of(oz)
    order = np.argsort(theirs, kind="stable")
    sorted_bands, sorted_other = theirs[order], other[order]
    starts = np.searchsorted(sorted_bands, np.arange(count))
    filled = np.bincount(theirs, minlength=count) > 0
    lo[filled] = np.minimum.reduceat(sorted_other, starts[filled], axis=0)
    hi[filled] = np.maximum.reduceat(sorted_other, starts[filled], axis=0)
    # each band's box takes in the bands beside it (the end bands stand beside themselves)
    lo = np.vstack([lo[:1], lo, lo[-1:]])
    hi = np.vstack([hi[:1], hi, hi[-1:]])
    lo = np.minimum(np.minimum(lo[:-2], lo[1:-1]), lo[2:])
    hi = np.maximum(np.maximum(hi[:-2], hi[1:-1]), hi[2:])
    mine = bands_of(z)
    return np.all((verts >= lo[mine] - pad) & (verts <= hi[mine] + pad), axis=1)


def _triples(a: np.ndarray) -> list[tuple[Any, Any, Any]]:
    """An (n, 3) array as n tuples: a third of the time of tolist()'s nested lists, which each frame's BVHs paid."""
    flat = iter(a.ravel().tolist())
    return list(zip(flat, flat, flat))


def triangles_tree(verts: np.ndarray, tris: np.ndarray) -> Any:
    return BVHTree.FromPolygons(_triples(verts), _triples(tris), all_triangles=True)


def local_tree(verts: np.ndarray, tris: np.ndarray, keep: np.ndarray) -> tuple[Any, np.ndarray]:
    """A BVH of only the triangles with a vertex in `keep` (near the other head or body: the rest cannot touch it),
    and those triangles' indices."""
    tri_ids = np.flatnonzero(keep[tris[:, 0]] | keep[tris[:, 1]] | keep[tris[:, 2]])
    picked = tris[tri_ids]
    used = np.zeros(len(verts), bool)
    used[picked.ravel()] = True
    remap = np.cumsum(used) - 1  # each used vertex's index among the used ones
    return triangles_tree(verts[used], remap[picked]), tri_ids


class FrameProbe:
    """Measures one frame from the evaluated meshes of both heads."""

    def __init__(self, heads: tuple[Head, Head], faces: tuple[Face, Face], geos: tuple[Geometry, Geometry],
                 planned: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.heads, self.faces = heads, faces
        self.planned = planned  # the world vertices the plan was made on (puckered as keyed), at rest
        self.tris = (geos[0].tris, geos[1].tris)
        self.adj = (_adjacency(geos[0].tris, len(geos[0].verts)), _adjacency(geos[1].tris, len(geos[1].verts)))
        self.lip_tri = tuple(f.lip_mask[t].any(axis=1) for f, t in zip(faces, self.tris))
        self.track = tuple(int(np.argmin(np.linalg.norm(g.verts - f.lip, axis=1))) for g, f in zip(geos, faces))

    def lip_drift(self, meshes: EvaluatedMeshes, plan: ContactPlan, frame: float) -> tuple[np.ndarray, np.ndarray]:
        """Where each side's evaluated lips lie from where the plan put them, on average (world space): on a body
        the skin at the lips follows the neck a little as well as the head."""
        out = []
        for side, head, face, planned, rest_lip in zip("AB", self.heads, self.faces, self.planned or (None, None),
                                                       (plan.rest_a, plan.rest_b)):
            if planned is None:
                out.append(np.zeros(3))
                continue
            m = delta_matrix(rest_lip, plan.pose_at(side, frame))
            predicted = planned[face.lip_mask] @ m[:3, :3].T + m[:3, 3]
            out.append((head_geometry(head, meshes).verts[face.lip_mask] - predicted).mean(axis=0))
        return out[0], out[1]

    def plan_error(self, meshes: EvaluatedMeshes, plan: ContactPlan, frame: float) -> float | None:
        """How far the evaluated lips lie from where the plan put them (its puckered rest shape carried by
        its pose at that frame), at human scale: the plan is only as good as this agreement."""
        if self.planned is None:
            return None
        worst = 0.0
        for side, head, face, planned, rest_lip in zip("AB", self.heads, self.faces, self.planned, (plan.rest_a, plan.rest_b)):
            m = delta_matrix(rest_lip, plan.pose_at(side, frame))
            predicted = planned[face.lip_mask] @ m[:3, :3].T + m[:3, 3]
            actual = head_geometry(head, meshes).verts[face.lip_mask]
            worst = max(worst, float(np.linalg.norm(actual - predicted, axis=1).max()))
        return worst / MM / plan.scale

    def measure(self, meshes: EvaluatedMeshes, with_nose: bool = False) -> dict[str, Any]:
        geos = [head_geometry(h, meshes) for h in self.heads]
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
            trees.append(local_tree(v, t, keep))
        pairs = trees[0][0].overlap(trees[1][0])
        deepest, squeeze = 0.0, 0.0
        for side in (0, 1):
            own_tris = trees[side][1]
            seeds = {int(v) for pair in pairs for v in self.tris[side][own_tris[pair[side]]]}
            for vi, _tri, dist in inside_vertices((va, vb)[side], seeds, trees[1 - side][0], self.adj[side]):
                if self.faces[side].lip_mask[vi]:
                    squeeze = max(squeeze, dist)
                else:
                    deepest = max(deepest, dist)
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
        out["contact"] = bool(touching or gap <= TOUCH_MM * MM * scale)
        if with_nose:
            clearance = np.inf
            for side in (0, 1):
                verts, face = (va, vb)[side], self.faces[side]
                full = triangles_tree((vb, va)[side], self.tris[1 - side])
                for vi in np.flatnonzero(face.nose_mask):
                    hit, normal, _i, dist = full.find_nearest(Vector(verts[vi]))
                    if hit is not None:
                        inside = (Vector(verts[vi]) - hit).dot(normal) < 0
                        clearance = min(clearance, -dist if inside else dist)
            out["nose_clearance_mm"] = float(clearance / MM / scale)
        return out


class StretchProbe:
    """How far any edge of the characters' evaluated meshes stretches or shrinks from its length when the
    approach begins: a head pulled off its body stretches the neck. Every mesh the heads' controllers move is
    watched (a whole body under an armature), except the vertices that the shape keys the contact keys (pucker,
    blink, held mouth keys) move: those shapes are the rig's own, not a distortion."""

    def __init__(self, heads: tuple[Head, Head], depsgraph: Any, shaped: dict[Any, set[str]]) -> None:
        watched: list[Any] = []
        for head in heads:
            deformed = [m for m, _ in deformed_by(head.controller)] if head.bone else []
            for ob in [m for m, _ in head.meshes] + deformed:
                if ob not in watched:
                    watched.append(ob)
        evaluated = EvaluatedMeshes(depsgraph)
        self.objects: list[Any] = []
        self.edges: list[np.ndarray] = []
        self.rest: list[np.ndarray] = []
        for ob in watched:
            me = ob.data
            edges = np.empty(len(me.edges) * 2, np.int32)
            me.edges.foreach_get("vertices", edges)
            edges = edges.reshape(-1, 2)
            moved = _moved_by(ob, shaped.get(me.shape_keys, set()))
            edges = edges[~(moved[edges[:, 0]] | moved[edges[:, 1]])]
            rest = self._lengths(evaluated, ob, edges)
            keep = rest > 1e-9
            self.objects.append(ob)
            self.edges.append(edges[keep])
            self.rest.append(rest[keep])

    @staticmethod
    def _lengths(meshes: EvaluatedMeshes, ob: Any, edges: np.ndarray) -> np.ndarray:
        world = meshes.world(ob)
        return np.linalg.norm(world[edges[:, 0]] - world[edges[:, 1]], axis=1)

    def measure(self, meshes: EvaluatedMeshes) -> tuple[float, str]:
        """The largest relative change of an edge's length on this frame, and where: the mesh and the vertex
        group that holds the edge most."""
        worst, where = 0.0, ""
        for ob, edges, rest in zip(self.objects, self.edges, self.rest):
            if not len(edges):
                continue
            change = np.abs(self._lengths(meshes, ob, edges) / rest - 1.0)
            i = int(np.argmax(change))
            if change[i] > worst:
                worst, where = float(change[i]), _region(ob, int(edges[i, 0]))
        return worst, where


def character_meshes(head: Head) -> list[tuple[Any, np.ndarray]]:
    """Every mesh of a head's character, with the vertices that are its head: a head on a body brings every mesh
    its armature deforms; a head of its own, its face meshes."""
    out: list[tuple[Any, np.ndarray]] = []
    parts = {id(m): subset for m, subset in head.meshes}
    meshes = [m for m, _ in head.meshes]
    if head.chain:
        meshes += [m for m, _ in deformed_by(head.controller) if m not in meshes]
    for ob in meshes:
        is_head = np.zeros(len(ob.data.vertices), bool)
        if id(ob) in parts:
            is_head[slice(None) if parts[id(ob)] is None else parts[id(ob)]] = True
        out.append((ob, is_head))
    return out


class BodyProbe:
    """Penetration between whole characters: torsos, necks, arms and hands, on the evaluated meshes. Where the two
    heads meet (the lips pressing, the noses passing) is FrameProbe's: a head's vertex inside the other head is
    not counted here."""

    def __init__(self, heads: tuple[Head, Head]) -> None:
        self.sides = [character_meshes(h) for h in heads]
        self.adj: list[list[np.ndarray]] = []
        self.tris: list[np.ndarray] = []
        self.is_head: list[np.ndarray] = []
        for side in self.sides:
            tris, offset = [], 0
            for ob, is_head in side:
                ob.data.calc_loop_triangles()
                t = np.empty(len(ob.data.loop_triangles) * 3, np.int32)
                ob.data.loop_triangles.foreach_get("vertices", t)
                tris.append(t.reshape(-1, 3) + offset)
                offset += len(is_head)
            self.tris.append(np.concatenate(tris))
            self.is_head.append(np.concatenate([h for _, h in side]))
            self.adj.append(_adjacency(self.tris[-1], offset))

    @property
    def needed(self) -> bool:
        """Only characters have more than their heads to collide."""
        return any(not mask.all() for mask in self.is_head)

    def measure(self, meshes: EvaluatedMeshes, scale: float) -> tuple[float, str]:
        """The deepest vertex of either character inside the other (not head in head), in human mm, and where."""
        verts = [np.concatenate([meshes.world(ob) for ob, _ in side]) for side in self.sides]
        pad = 0.01 * scale
        # where the two bodies' boxes overlap, then only where they overlap at the same height
        lo = np.maximum(verts[0].min(axis=0), verts[1].min(axis=0)) - pad
        hi = np.minimum(verts[0].max(axis=0), verts[1].max(axis=0)) + pad
        near = [np.all((v >= lo) & (v <= hi), axis=1) for v in verts]
        if not (near[0].any() and near[1].any()):
            return 0.0, ""
        a, b = verts[0][near[0]], verts[1][near[1]]
        near[0][near[0]], near[1][near[1]] = near_other(a, b, pad), near_other(b, a, pad)
        if not (near[0].any() and near[1].any()):
            return 0.0, ""
        trees = [local_tree(v, t, keep) for v, t, keep in zip(verts, self.tris, near)]
        pairs = trees[0][0].overlap(trees[1][0])
        worst, where = 0.0, ""
        for side in (0, 1):
            other = 1 - side
            seeds = {int(v) for pair in pairs for v in self.tris[side][trees[side][1][pair[side]]]}
            for vi, tri, dist in inside_vertices(verts[side], seeds, trees[other][0], self.adj[side]):
                head_in_head = self.is_head[side][vi] and self.is_head[other][self.tris[other][trees[other][1][tri]]].all()
                if not head_in_head and dist > worst:
                    worst, where = dist, f"{self._region(side, vi)} inside {self._region(other, int(self.tris[other][trees[other][1][tri]][0]))}"
        return worst / MM / scale, where

    def _region(self, side: int, vertex: int) -> str:
        for ob, is_head in self.sides[side]:
            if vertex < len(is_head):
                return _region(ob, vertex)
            vertex -= len(is_head)
        return ""


def _moved_by(ob: Any, names: set[str]) -> np.ndarray:
    """The vertices any of these shape keys moves (more than a micron)."""
    n = len(ob.data.vertices)
    moved = np.zeros(n, bool)
    key = ob.data.shape_keys
    if key is None or not names:
        return moved
    basis = np.empty(n * 3, np.float32)
    key.reference_key.data.foreach_get("co", basis)
    for name in names & set(key.key_blocks.keys()):
        co = np.empty(n * 3, np.float32)
        key.key_blocks[name].data.foreach_get("co", co)
        moved |= np.linalg.norm((co - basis).reshape(-1, 3), axis=1) > 1e-6
    return moved


def _region(ob: Any, vertex: int) -> str:
    groups = sorted(ob.data.vertices[vertex].groups, key=lambda g: -g.weight)
    named = [ob.vertex_groups[g.group].name for g in groups if g.group < len(ob.vertex_groups)]
    return f"{ob.name}, near {named[0]!r}" if named else ob.name


FRAMES_SHARE = 0.85  # of validate's time, measuring each frame; the rest samples the lips' velocity


def validate(scene: Any, plan: ContactPlan, heads: tuple[Head, Head], probe: FrameProbe, limits: Limits,
             on_progress: Callable[[float], None] | None = None,
             stretch: StretchProbe | None = None, bodies: BodyProbe | None = None) -> dict[str, Any]:
    """Step every frame of the animation, measure the evaluated meshes, and summarise. on_progress gets the
    share of the work done (0 to 1), after every frame measured and every velocity sample."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    first, last = int(np.floor(plan.start_frame)), int(np.ceil(plan.end_frame))
    hold = [p for p in plan.phases if p.name == "hold"]
    hold_start, hold_end = hold[0].start, hold[-1].end
    fc = int(round(plan.contact_frame))
    frames, seconds = [], []
    plan_error: float | None = None
    lip_world: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    rigid = {}
    for f in range(first, last + 1):
        t0 = time.perf_counter()
        scene.frame_set(f)
        meshes = EvaluatedMeshes(depsgraph)
        m = probe.measure(meshes, with_nose=(f == fc))
        if stretch is not None:
            m["edge_stretch"], m["edge_stretch_region"] = stretch.measure(meshes)
        if bodies is not None:
            m["body_penetration_mm"], m["body_penetration_region"] = bodies.measure(meshes, plan.scale)
        seconds.append(time.perf_counter() - t0)
        if f == fc:
            plan_error = probe.plan_error(meshes, plan, f)
        m["frame"] = f
        frames.append(m)
        lip_world[f] = (np.array(m["lips"][0]), np.array(m["lips"][1]))
        rigid[f] = tuple(np.array(h.world_matrix()) for h in heads)
        if on_progress:
            on_progress(FRAMES_SHARE * (f - first + 1) / (last - first + 1))
    worst = max(frames, key=lambda m: (m["penetration_mm"], m["compression_mm"]))
    stretched = max(frames, key=lambda m: m.get("edge_stretch", 0.0))
    crossed = max(frames, key=lambda m: m.get("body_penetration_mm", 0.0))
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
    def gap(f: int) -> float:  # along the approach: lips that meet off centre keep a gap across it
        return float(np.diff(lip_track(f), axis=0)[0] @ plan.axis)

    g0, g1 = gap(a0), gap(a1)
    dev = 0.0
    for f in range(a0, a1 + 1):
        g = gap(f)
        want = float(minimum_jerk((f - approach.start) / (approach.end - approach.start)))
        if abs(g0 - g1) > 1e-12:
            dev = max(dev, abs((g0 - g) / (g0 - g1) - want))
    # the velocity check reads only the heads' transforms: the meshes need not deform meanwhile
    deforming = [mod for h in heads for _, mod in deformed_by(h.controller) if mod.show_viewport]
    try:
        for mod in deforming:
            mod.show_viewport = False
        jump = _velocity_jump(scene, plan, heads, rest, on_progress)
    finally:
        for mod in deforming:
            mod.show_viewport = True
    summary = {
        "max_penetration_mm": float(worst["penetration_mm"]), "worst_frame": int(worst["frame"]),
        "hold_gap_ok_share": float(np.mean([m["lip_gap_mm"] is not None and m["lip_gap_mm"] <= limits.lip_gap_mm
                                            for m in hold_frames])) if hold_frames else 0.0,
        "max_compression_mm": float(max(m["compression_mm"] for m in frames)),
        "nose_clearance_mm": float(next((m.get("nose_clearance_mm", np.inf) for m in frames if m["frame"] == fc), np.inf)),
        "first_contact_frame": first_contact, "planned_contact_frame": fc,
        "max_slide_mm": slide / MM / plan.scale, "velocity_jump": jump, "minimum_jerk_deviation": dev,
        "validation_ms_per_frame": 1000.0 * float(np.mean(seconds)),
        "max_edge_stretch": float(stretched.get("edge_stretch", 0.0)), "edge_stretch_frame": int(stretched["frame"]),
        "edge_stretch_region": stretched.get("edge_stretch_region", ""),
        "max_body_penetration_mm": float(crossed.get("body_penetration_mm", 0.0)),
        "body_penetration_frame": int(crossed["frame"]), "body_penetration_region": crossed.get("body_penetration_region", ""),
        "plan_vs_keyed_mm": plan_error,
    }
    for m in frames:
        m.pop("lips", None)
    return {"summary": summary, "frames": frames}


def _velocity_jump(scene: Any, plan: ContactPlan, heads: tuple[Head, Head], rest: tuple[np.ndarray, ...],
                   on_progress: Callable[[float], None] | None = None) -> float:
    """Largest change of lip-point velocity across a key, against the peak speed (from Blender's
    own evaluation of the keyed channels at sub-frames)."""
    eps = 0.02
    samples = np.arange(plan.start_frame, plan.end_frame, 0.5)
    keys = plan.key_frames()
    total, done = 3 * len(keys) + len(samples), 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if on_progress:
            on_progress(FRAMES_SHARE + (1.0 - FRAMES_SHARE) * done / total)

    def lips_at(frame: float) -> np.ndarray:
        scene.frame_set(int(np.floor(frame)), subframe=float(frame - np.floor(frame)))
        return np.array([(np.array(h.world_matrix()) @ np.linalg.inv(r) @ np.append(p, 1.0))[:3]
                         for h, r, p in zip(heads, rest, (plan.rest_a, plan.rest_b))])
    speeds, jumps = [], []
    for k in keys:
        before, at, after = lips_at(k - eps), lips_at(k), lips_at(k + eps)
        v_in, v_out = (at - before) / eps, (after - at) / eps
        jumps.append(np.linalg.norm(v_out - v_in, axis=1).max())
        step(3)
    track_rows = []
    for f in samples:
        track_rows.append(lips_at(float(f)))
        step(1)
    track = np.array(track_rows)
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
        "edge_stretch": first(frames, lambda m: m.get("edge_stretch", 0.0) > limits.edge_stretch),
        "body_penetration": first(frames, lambda m: m.get("body_penetration_mm", 0.0) > limits.penetration_mm),
    }

