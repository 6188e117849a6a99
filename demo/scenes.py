"""Two-head scenes built from the bundled rigs: any scale, placement, rotation, size, or an
armature's head bone. Shared by the demo, the contact tests and benchmarks/contact.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

REPO = Path(__file__).resolve().parents[1]
MH_HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"
ICT_HEAD = REPO / "demo" / "heads" / "ict_facekit.blend"


def load_head(path: Path, name: str) -> bpy.types.Object:
    """Append the file's face mesh (with its own copy of the mesh and shape keys)."""
    with bpy.data.libraries.load(str(path), link=False) as (src, dst):
        dst.objects = list(src.objects)
    ob = next(o for o in dst.objects if o is not None and o.type == "MESH")
    for other in dst.objects:
        if other is not None and other is not ob:
            bpy.data.objects.remove(other)
    ob.name = name
    bpy.context.scene.collection.objects.link(ob)
    return ob


def _front(ob: bpy.types.Object) -> float:
    """How far the face sticks out in front of the object origin (the rigs face -Y)."""
    return -min(v.co.y for v in ob.data.vertices)


def _middle_height(ob: bpy.types.Object) -> float:
    z = [v.co.z for v in ob.data.vertices]
    return (min(z) + max(z)) / 2


@dataclass
class Pair:
    a: bpy.types.Object  # what to pass as head A (a mesh or an armature)
    b: bpy.types.Object
    bone_b: str = ""


def make_pair(path_a: Path = MH_HEAD, path_b: Path | None = None, world_scale: float = 1.0, size_b: float = 1.0,
              gap: float = 0.12, yaw: float = 0.0, tilt: float = 0.0, height_b: float = 0.0,
              offset: tuple[float, float, float] = (0.0, 0.0, 0.0), armature_b: bool = False,
              roll_b: float = 0.0, bone_name: str = "head", bone_parent: bool = False) -> Pair:
    """Head A looks along -Y (turned by yaw), head B faces it `gap` metres (human scale) away,
    rolled by `roll_b` about its own facing axis, both scaled by world_scale about the origin,
    the whole pair tilted by `tilt` about X and moved."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    a = load_head(path_a, "HeadA")
    b = load_head(path_b or path_a, "HeadB")
    fa, fb = _front(a), _front(b) * size_b
    level = _middle_height(a) - _middle_height(b) * size_b  # faces at the same height before height_b
    place = Matrix.Translation(Vector(offset)) @ Matrix.Rotation(tilt, 4, "X") @ Matrix.Scale(world_scale, 4) \
        @ Matrix.Rotation(yaw, 4, "Z")
    a.matrix_world = place
    b_local = Matrix.Translation((0.0, -(fa + fb + gap), level + height_b)) @ Matrix.Rotation(math.pi, 4, "Z") \
        @ Matrix.Rotation(roll_b, 4, "Y") @ Matrix.Scale(size_b, 4)
    if not armature_b:
        b.matrix_world = place @ b_local
        return Pair(a, b)
    arm_data = bpy.data.armatures.new("RigB")
    arm = bpy.data.objects.new("RigB", arm_data)
    scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    co = np.array([v.co for v in b.data.vertices])
    neck = Vector((0.0, float(co[:, 1].mean()), float(np.percentile(co[:, 2], 15))))
    bpy.ops.object.mode_set(mode="EDIT")
    spine = arm_data.edit_bones.new("spine")
    spine.head, spine.tail = neck - Vector((0, 0, 0.25)), neck
    head = arm_data.edit_bones.new(bone_name)
    head.head, head.tail, head.parent = neck, neck + Vector((0, 0, 0.15)), spine
    bpy.ops.object.mode_set(mode="OBJECT")
    arm.matrix_world = place @ b_local
    b.parent = arm
    if bone_parent:  # parented to the bone itself, no deforming
        b.parent_type, b.parent_bone = "BONE", bone_name
        bpy.context.view_layer.update()
        b.matrix_world = place @ b_local
        return Pair(a, arm, bone_name)
    b.matrix_world = place @ b_local
    group = b.vertex_groups.new(name=bone_name)
    group.add(list(range(len(b.data.vertices))), 1.0, "REPLACE")
    mod = b.modifiers.new("Armature", "ARMATURE")
    mod.object = arm
    return Pair(a, arm, bone_name)


def split_face(ob: bpy.types.Object) -> list[bpy.types.Object]:
    """A face mesh split by loose parts: the largest part (the face), then the others joined into two meshes
    (on the bundled heads: the eyes, and the teeth and mouth), each keeping the shape keys."""
    name = ob.name
    bpy.ops.object.select_all(action="DESELECT")
    bpy.context.view_layer.objects.active = ob
    ob.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.mesh.separate(type="LOOSE")
    bpy.ops.object.mode_set(mode="OBJECT")
    parts = sorted(bpy.context.selected_objects, key=lambda o: -len(o.data.vertices))
    meshes = [parts[0]]
    for label, group in (("Eyes", parts[1::2]), ("Mouth", parts[2::2])):
        bpy.ops.object.select_all(action="DESELECT")
        for part in group:
            part.select_set(True)
        bpy.context.view_layer.objects.active = group[0]
        bpy.ops.object.join()
        group[0].name = label if name == "Face" else f"{name}_{label}"
        meshes.append(group[0])
    meshes[0].name = name if name == "Face" else f"{name}_Face"
    return meshes


def three_mesh_head() -> list[bpy.types.Object]:
    """ICT-FaceKit as the face, the eyes and the mouth parts in three meshes."""
    reset()
    return split_face(load_head(ICT_HEAD, "Face"))


def reset() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


# the placements the contact tests and benchmarks/contact.py --quality run
CASES: dict[str, dict] = {
    "metres": dict(),
    "centimetre_scale": dict(world_scale=0.01),
    "hundredfold": dict(world_scale=100.0),
    "rotated_and_moved": dict(yaw=0.8, tilt=0.35, offset=(2.0, -3.0, 1.5)),
    "different_heights": dict(height_b=0.06),
    "different_sizes": dict(size_b=0.85),
    "one_head_tilted": dict(roll_b=0.5),
    "ict_with_makehuman": dict(path_a=ICT_HEAD, path_b=MH_HEAD),
    "armature_bone": dict(armature_b=True),
}
