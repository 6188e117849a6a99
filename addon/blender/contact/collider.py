"""Stage 3: time of impact between two rigidly turned heads, for the planner (core.contact.plan_contact)."""

from __future__ import annotations

from typing import Any

import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree as _BVHTree

from ...core.contact import (
    ContactError,
    Face,
    Impact,
)

BVHTree: Any = _BVHTree  # the stubs type its constructors as returning None

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

    def impact(self, rot_a: np.ndarray, rot_b: np.ndarray, direction: np.ndarray, fine: bool = True,
               lateral: np.ndarray | None = None) -> Impact:
        (va, tree_a, fa, lip_a), (vb, tree_b, fb, lip_b) = self.sides
        moved = np.zeros(3) if lateral is None else np.asarray(lateral, np.float64)
        xa = (va - fa.lip) @ rot_a.T + fa.lip + moved
        xb = (vb - fb.lip) @ rot_b.T + fb.lip
        d = np.asarray(direction, np.float64)
        first = [np.inf, np.inf, np.inf, np.inf]  # any, lips, other, nose
        other_at: tuple[float, float, float] | None = None
        band = 0.09 * max(fa.scale, fb.scale)
        reach = float(np.linalg.norm(fb.lip - fa.lip)) + 2 * band
        for x, face, sign, other_x, other_tree, other_face, other_rot, other_lip, other_nose, other_moved in (
                (xa, fa, 1.0, xb, tree_b, fb, rot_b, lip_b, self.nose_tri[1], np.zeros(3)),
                (xb, fb, -1.0, xa, tree_a, fa, rot_a, lip_a, self.nose_tri[0], moved)):
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
            origins = (x[idx] - other_moved - other_face.lip) @ inv.T + other_face.lip
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



def check_apart(collider: BVHCollider, names: tuple[str, str]) -> None:
    if collider.sides[0][1].overlap(collider.sides[1][1]):
        raise ContactError(f"{names[0]} and {names[1]} already overlap at the start; move them apart first")

