"""Full characters for contact tests: the MakeHuman body (../shared/assets) under a generated armature (hips,
spine, chest, neck, head) with smooth weights along its height, two of them facing each other."""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets" / "heads"
BODY = ASSETS / "mh_talkinghead_body.blend"
# bone heads along the body's height (the body stands from z -0.82 to 0.85, facing -Y)
BONES = (("hips", -0.05), ("spine", 0.10), ("chest", 0.35), ("neck", 0.52), ("head", 0.62))
TOP = 0.86
BLEND = 0.04  # weights fade over this far on each side of a joint


def _weights(z: np.ndarray) -> np.ndarray:
    """[n, bones] weights: each vertex to the bone whose span holds it, blended across each joint."""
    starts = np.array([b[1] for b in BONES])
    w = np.zeros((len(z), len(BONES)))
    for i, lo in enumerate(starts):
        hi = starts[i + 1] if i + 1 < len(starts) else np.inf
        rise = np.clip((z - (lo - BLEND)) / (2 * BLEND), 0, 1) if i else np.ones_like(z)
        fall = np.clip(((hi + BLEND) - z) / (2 * BLEND), 0, 1) if np.isfinite(hi) else np.ones_like(z)
        w[:, i] = np.minimum(rise, fall)
    return w / np.maximum(w.sum(axis=1, keepdims=True), 1e-9)


def character(name: str, prefix: str = "") -> tuple[bpy.types.Object, bpy.types.Object]:
    """The body appended as `name`, under an armature `name`_rig with bones named prefix + hips ... head."""
    with bpy.data.libraries.load(str(BODY), link=False) as (_src, dst):
        dst.objects = ["MakeHuman_body"]
    body = dst.objects[0]
    body.name = name
    scene = bpy.context.scene
    scene.collection.objects.link(body)
    rig = bpy.data.objects.new(f"{name}_rig", bpy.data.armatures.new(f"{name}_rig"))
    scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for i, (bone, z) in enumerate(BONES):
        eb = rig.data.edit_bones.new(prefix + bone)
        top = BONES[i + 1][1] if i + 1 < len(BONES) else TOP
        eb.head, eb.tail = (0.0, -0.02, z), (0.0, -0.02, top)
        eb.parent, eb.use_connect = parent, parent is not None
        parent = eb
    bpy.ops.object.mode_set(mode="OBJECT")
    n = len(body.data.vertices)
    co = np.empty(n * 3, np.float32)
    body.data.vertices.foreach_get("co", co)
    weights = _weights(co.reshape(n, 3)[:, 2])
    for i, (bone, _z) in enumerate(BONES):
        group = body.vertex_groups.new(name=prefix + bone)
        for w in np.unique(np.round(weights[:, i], 3)):
            if w > 0:
                group.add(np.flatnonzero(np.round(weights[:, i], 3) == w).tolist(), float(w), "REPLACE")
    body.parent = rig
    body.modifiers.new("Armature", "ARMATURE").object = rig
    return rig, body


def facing_pair(gap: float = 0.5, prefix_b: str = "") -> tuple[bpy.types.Object, bpy.types.Object,
                                                                   bpy.types.Object, bpy.types.Object]:
    """Two characters in their rest pose facing each other, `gap` metres between their lips."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    rig_a, body_a = character("CharA")
    rig_b, body_b = character("CharB", prefix_b)
    front = 0.16  # the face's front is about 16 cm ahead of the bones' line
    rig_b.matrix_world = Matrix.Translation((0.0, -(2 * front + gap), 0.0)) @ Matrix.Rotation(math.pi, 4, "Z")
    bpy.context.view_layer.update()
    return rig_a, body_a, rig_b, body_b
