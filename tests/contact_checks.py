"""Contact checked on the evaluated meshes, independently of the planner and of Oris's own validation
pass: the lip region is chosen here, from where the faces touch, not from Oris's lip masks."""

from __future__ import annotations

import json

import bpy
import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree


def world_mesh(ob) -> tuple[np.ndarray, np.ndarray]:
    dg = bpy.context.evaluated_depsgraph_get()
    ev = ob.evaluated_get(dg)
    me = ev.data
    co = np.array([v.co for v in me.vertices])
    m = np.array(ev.matrix_world)
    tris = np.array([t.vertices[:] for t in me.loop_triangles])
    return co @ m[:3, :3].T + m[:3, 3], tris


def mesh_of(head) -> bpy.types.Object:
    """The face: the head itself, or the largest mesh under it."""
    if head.type == "MESH":
        return head
    return max((c for c in head.children_recursive if c.type == "MESH"), key=lambda c: len(c.data.vertices))


def penetration(va: np.ndarray, ta: np.ndarray, region: np.ndarray, vb: np.ndarray, tb: np.ndarray) -> float:
    """How deep A's triangles touching `region` vertices cut into B: the vertices of every A
    triangle that crosses a B triangle, measured to B's surface when they lie behind it."""
    sel = ta[region[ta].all(axis=1)]
    if len(sel) == 0:
        return 0.0
    tree_a = BVHTree.FromPolygons(va.tolist(), sel.tolist())
    tree_b = BVHTree.FromPolygons(vb.tolist(), tb.tolist())
    deepest = 0.0
    for ia, _ib in tree_a.overlap(tree_b):
        for v in sel[ia]:
            hit, normal, _i, dist = tree_b.find_nearest(Vector(va[v]))
            if hit is not None and (Vector(va[v]) - hit).dot(normal) < 0:
                deepest = max(deepest, dist)
    return deepest


def nearest(points: np.ndarray, verts: np.ndarray, tris: np.ndarray) -> float:
    tree = BVHTree.FromPolygons(verts.tolist(), tris.tolist())
    return min(tree.find_nearest(Vector(p))[3] for p in points)




def assert_contact_on_evaluated_meshes(report, a_mesh, b_mesh, mm: float, fc: int, fps: float) -> None:
    """The lips meet on the planned frame and not before, nothing else passes through, the lips stay
    within 1 mm over the hold, the noses clear by 2 mm, and the report on disk says so."""
    assert report.passed and report.failures == []
    scene = bpy.context.scene

    def state(frame: int):
        scene.frame_set(frame)
        return world_mesh(a_mesh), world_mesh(b_mesh)

    (va, ta), (vb, tb) = state(fc)
    tree_a, tree_b = BVHTree.FromPolygons(va.tolist(), ta.tolist()), BVHTree.FromPolygons(vb.tolist(), tb.tolist())
    dists = np.array([tree_b.find_nearest(Vector(p))[3] for p in va])
    back = np.array([tree_a.find_nearest(Vector(p))[3] for p in vb])
    touch = va[np.argmin(dists)] if dists.min() <= back.min() else vb[np.argmin(back)]
    assert min(dists.min(), back.min()) <= 0.1 * mm
    (va2, _), (vb2, _) = state(fc - 2)
    assert nearest(va2[np.linalg.norm(va2 - touch, axis=1) < 40 * mm], vb2, tb) > 0.1 * mm, "touched early"
    lips_a = np.linalg.norm(va - touch, axis=1) < 30 * mm  # the lip region, chosen here, not by Oris
    lips_b = np.linalg.norm(vb - touch, axis=1) < 30 * mm

    hold_end = fc + round(1.5 * fps)
    gaps = []
    for f in range(fc - 4, hold_end + 1, max(2, round(fps / 12))):
        (va, ta), (vb, tb) = state(f)
        outside = max(penetration(va, ta, ~lips_a, vb, tb), penetration(vb, tb, ~lips_b, va, ta))
        assert outside <= 0.5 * mm, f"penetration {outside / mm:.2f} mm at frame {f}"
        squeeze = penetration(va, ta, lips_a, vb, tb)
        assert squeeze <= 1.0 * mm, f"lip compression at frame {f}"
        if f >= fc:
            gaps.append(0.0 if squeeze > 0 else nearest(va[lips_a], vb, tb))
    assert np.mean(np.array(gaps) <= 1.0 * mm) >= 0.95

    # the nose (the face's most forward point above the lips) clears the other face at contact
    (va, ta), (vb, tb) = state(fc)
    for verts, other, other_tris, mesh in ((va, vb, tb, a_mesh), (vb, va, ta, b_mesh)):
        local = np.array([v.co for v in mesh.data.vertices])
        above = local[:, 2] > np.percentile(local[:, 2], 55)
        tip = np.flatnonzero(above)[np.argmin(local[above, 1])]
        assert nearest(verts[[tip]], other, other_tris) >= 2.0 * mm

    doc = json.loads(report.to_json())
    assert doc["passed"] and doc["summary"]["first_contact_frame"] in (fc - 1, fc, fc + 1)
    assert len(doc["frames"]) == int(doc["plan"]["end_frame"]) - int(doc["plan"]["start_frame"]) + 1
    assert doc["summary"]["plan_vs_keyed_mm"] <= 0.1  # the plan was made on the face as keyed
