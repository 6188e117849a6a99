"""Full characters for contact (tests, benchmark, README picture): the bundled MakeHuman body under a generated
armature (hips, spine, chest, neck, head and both arms) skinned with Blender's automatic weights, two of them facing
each other. Bones are named as a plain rig, Mixamo or Rigify's deform bones name them."""

from __future__ import annotations

import math
from pathlib import Path

import bpy
from mathutils import Matrix, Vector

BODY = Path(__file__).resolve().parent / "heads" / "mh_talkinghead_body.blend"
# bone heads along the body's height (the body stands from z -0.82 to 0.85, facing -Y)
BONES = (("hips", -0.05), ("spine", 0.10), ("chest", 0.35), ("neck", 0.52), ("head", 0.62))
TOP = 0.86
# each arm: upper arm, forearm, hand (joints read off the mesh: the forearms reach forward, hands at the waist)
ARM = (("upper_arm", (0.16, -0.02, 0.46), (0.33, -0.02, 0.29)), ("forearm", (0.33, -0.02, 0.29), (0.44, -0.22, 0.19)),
       ("hand", (0.44, -0.22, 0.19), (0.47, -0.32, 0.15)))
# generic name -> each convention's (".L" and ".R" become Left/Right where the convention says so)
CONVENTIONS = {
    "plain": {},
    "mixamo": {"hips": "mixamorig:Hips", "spine": "mixamorig:Spine", "chest": "mixamorig:Spine2",
               "neck": "mixamorig:Neck", "head": "mixamorig:Head", "upper_arm.L": "mixamorig:LeftArm",
               "forearm.L": "mixamorig:LeftForeArm", "hand.L": "mixamorig:LeftHand", "upper_arm.R": "mixamorig:RightArm",
               "forearm.R": "mixamorig:RightForeArm", "hand.R": "mixamorig:RightHand"},
    "rigify": {"hips": "DEF-spine", "spine": "DEF-spine.001", "chest": "DEF-spine.003", "neck": "DEF-spine.004",
               "head": "DEF-spine.006", "upper_arm.L": "DEF-upper_arm.L", "forearm.L": "DEF-forearm.L",
               "hand.L": "DEF-hand.L", "upper_arm.R": "DEF-upper_arm.R", "forearm.R": "DEF-forearm.R",
               "hand.R": "DEF-hand.R"},
}


def bone_name(convention: str, generic: str) -> str:
    return CONVENTIONS[convention].get(generic, generic)


def character(name: str, convention: str = "plain") -> tuple[bpy.types.Object, bpy.types.Object]:
    """The body appended as `name`, under an armature `name`_rig with bones named by `convention`."""
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
        eb = rig.data.edit_bones.new(bone_name(convention, bone))
        top = BONES[i + 1][1] if i + 1 < len(BONES) else TOP
        eb.head, eb.tail = (0.0, -0.02, z), (0.0, -0.02, top)
        eb.parent, eb.use_connect = parent, parent is not None
        parent = eb
    chest = rig.data.edit_bones[bone_name(convention, "chest")]
    for side, sign in ((".L", 1.0), (".R", -1.0)):
        parent = chest
        for bone, head, tail in ARM:
            eb = rig.data.edit_bones.new(bone_name(convention, bone + side))
            eb.head, eb.tail = (sign * head[0], *head[1:]), (sign * tail[0], *tail[1:])
            eb.parent, eb.use_connect = parent, parent is not chest
            parent = eb
    if convention == "rigify":  # the face's own bones hang under the head, deforming nothing
        face = rig.data.edit_bones.new("ORG-face")
        face.head, face.tail = (0.0, -0.06, 0.70), (0.0, -0.06, 0.78)
        face.parent, face.use_deform = rig.data.edit_bones[bone_name(convention, "head")], False
    bpy.ops.object.mode_set(mode="OBJECT")
    # Blender's automatic weights (bone heat), as an artist's first skinning pass: smooth across the joints
    bpy.ops.object.select_all(action="DESELECT")
    body.select_set(True)
    rig.select_set(True)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.parent_set(type="ARMATURE_AUTO")
    if not body.vertex_groups or body.find_armature() != rig:
        raise RuntimeError(f"{name}: automatic weights failed")
    # bone heat leaks a little of each hand's weight onto the legs it hangs beside, down to the feet, which then
    # follow the hands off the floor: an artist paints it out
    arms = [body.vertex_groups[bone_name(convention, bone + side)] for bone, _h, _t in ARM for side in (".L", ".R")]
    legs = [v.index for v in body.data.vertices if v.co.z < BONES[0][1]]
    for group in arms:
        group.remove(legs)
    # bone heat cannot reach loose parts inside the head (eyes, teeth, tongue): an artist weights them to the head
    loose = [v.index for v in body.data.vertices if not v.groups and v.co.z > BONES[-1][1]]
    body.vertex_groups[bone_name(convention, "head")].add(loose, 1.0, "REPLACE")
    return rig, body


def arms_down(rig: bpy.types.Object, convention: str = "plain") -> None:
    """Posed as an artist stages two characters close: the forearms hang by the sides instead of reaching forward."""
    for side, sign in ((".L", 1.0), (".R", -1.0)):
        bone = rig.data.bones[bone_name(convention, "forearm" + side)]
        rest = bone.matrix_local.to_3x3()
        turn = (bone.tail_local - bone.head_local).rotation_difference(Vector((0.08 * sign, 0.03, -1.0)))
        pb = rig.pose.bones[bone.name]
        pb.rotation_mode = "QUATERNION"
        pb.rotation_quaternion = (rest.inverted() @ turn.to_matrix() @ rest).to_quaternion()


def facing_pair(gap: float = 0.5, convention_b: str = "plain", arms_in: bool = True,
                unit: float = 1.0) -> tuple[bpy.types.Object, bpy.types.Object, bpy.types.Object, bpy.types.Object]:
    """Two characters facing each other, `gap` (human) metres between their lips, their forearms down (arms_in) or
    reaching forward as the mesh was modelled; `unit` scales the whole scene (100: a scene in centimetres)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    rig_a, body_a = character("CharA")
    rig_b, body_b = character("CharB", convention_b)
    if arms_in:
        arms_down(rig_a)
        arms_down(rig_b, convention_b)
    front = 0.16  # the face's front is about 16 cm ahead of the bones' line
    rig_b.matrix_world = Matrix.Translation((0.0, -(2 * front + gap), 0.0)) @ Matrix.Rotation(math.pi, 4, "Z")
    if unit != 1.0:
        for rig in (rig_a, rig_b):
            rig.matrix_world = Matrix.Scale(unit, 4) @ rig.matrix_world
    bpy.context.view_layer.update()
    return rig_a, body_a, rig_b, body_b
