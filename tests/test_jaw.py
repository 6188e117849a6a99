"""Jaws opened by a bone: the rules (no bpy), and real rigs in the real bpy with the real worker, measured on the
evaluated mesh."""

import numpy as np
import pytest

from oris.core.jaw import DEFAULT_JAW_DEGREES, JAW_OPEN_BY_VISEME, find_jaw_bone, jaw_degrees, jaw_open, opening_axis
from oris.core.visemes import VISEMES

from .conftest import DATA, REPO


@pytest.mark.parametrize("names, jaw", [
    (["mixamorig:Hips", "mixamorig:Head", "mixamorig:Jaw", "mixamorig:HeadTop_End"], "mixamorig:Jaw"),
    (["root", "DEF-jaw", "ORG-jaw", "MCH-jaw_master", "jaw_master", "DEF-teeth.B"], "jaw_master"),  # Rigify
    (["CC_Base_Head", "CC_Base_JawRoot", "CC_Base_Teeth02", "CC_Base_Tongue01"], "CC_Base_JawRoot"),  # CC4
    (["Bip01 Head", "Bip01 MJaw", "Bip01 MUpperLip"], "Bip01 MJaw"),  # 3ds Max biped
    (["FACIAL_C_FacialRoot", "FACIAL_C_Jaw", "FACIAL_C_LowerLipRotation"], "FACIAL_C_Jaw"),  # MetaHuman
    (["head", "c_jawbone.x", "jawbone.x"], "c_jawbone.x"),  # Auto-Rig Pro: the control
    (["Head", "Jaw", "Jaw_end"], "Jaw"),
    (["Head", "UpperJaw", "LeftEye"], None),  # an upper jaw does not open the mouth
    (["Hips", "Spine", "Neck", "Head"], None),
])
def test_jaw_bones_of_common_rigs_are_found_by_name(names, jaw):
    assert find_jaw_bone(names) == jaw


def test_the_jaw_opens_with_open_vowels_and_shuts_on_closures():
    frames = np.eye(len(VISEMES), dtype=np.float32)
    opening = dict(zip(VISEMES, jaw_open(frames)))
    assert opening["aa"] == 1.0 and opening["PP"] == 0.0 and opening["sil"] == 0.0
    assert opening["E"] > opening["ih"] > opening["SS"] and JAW_OPEN_BY_VISEME.max() == 1.0


def test_the_range_comes_from_the_option_then_the_rig_then_the_default():
    assert jaw_degrees({"jaw_open_degrees": 14}, 25.0) == (25.0, "--jaw-degrees")
    assert jaw_degrees({"jaw_open_degrees": 14}, None) == (14.0, "the bone's jaw_open_degrees property")
    assert jaw_degrees({"jaw_open_degrees": "wide"}, None)[0] == DEFAULT_JAW_DEGREES
    assert jaw_degrees({}, None) == (DEFAULT_JAW_DEGREES, "the default")


def test_the_opening_axis_is_the_one_that_moves_the_chin_down():
    # a jaw hinged at the origin, the chin ahead (-Y) and below; turning about +X by a positive angle drops it
    axes = {"X": np.array([1.0, 0, 0]), "Z": np.array([0, 0, 1.0])}
    axis, sign, per_radian = opening_axis(axes, np.zeros(3), np.array([0, -0.1, -0.05]), np.array([0, 0, 1.0]))
    assert (axis, sign) == ("X", 1.0) and per_radian == pytest.approx(0.1)
    axis, sign, _ = opening_axis({"X": -axes["X"], "Z": axes["Z"]}, np.zeros(3), np.array([0, -0.1, -0.05]),
                                 np.array([0, 0, 1.0]))
    assert (axis, sign) == ("X", -1.0)


# ------------------------------------------------------------------------------ real rigs (bpy)

HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"
CLIP = DATA / "bilabials_slt.flac"  # "... maple ... puppy ...": closures and open vowels


def _rig(bone: str, weighted: bool):
    """The demo head without its viseme keys (ARKit keys remain), under an armature with a head bone and a jaw
    bone hinged below the ear; weighted: the jaw region skinned to the jaw (weights from the rig's own jawOpen
    shape, how far it moves each vertex), and jawOpen removed, as on game rigs."""
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.open_mainfile(filepath=str(HEAD))
    face = bpy.data.objects["MakeHuman_head"]
    key = face.data.shape_keys
    n = len(face.data.vertices)
    basis, opened = np.empty(n * 3), np.empty(n * 3)
    key.reference_key.data.foreach_get("co", basis)
    key.key_blocks["jawOpen"].data.foreach_get("co", opened)
    moved = np.linalg.norm((opened - basis).reshape(n, 3), axis=1)
    for kb in list(key.key_blocks):
        if kb.name.startswith("viseme_") or (weighted and kb.name == "jawOpen"):
            face.shape_key_remove(kb)
    arm = bpy.data.objects.new("Armature", bpy.data.armatures.new("Armature"))
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    head = arm.data.edit_bones.new("head")
    head.head, head.tail = (0, 0, 0.60), (0, 0, 0.85)
    jaw = arm.data.edit_bones.new(bone)
    jaw.head, jaw.tail, jaw.parent = (0, -0.01, 0.715), (0, -0.14, 0.655), head
    bpy.ops.object.mode_set(mode="OBJECT")
    face.parent = arm
    modifier = face.modifiers.new("Armature", "ARMATURE")
    modifier.object = arm
    head_group = face.vertex_groups.new(name="head")
    head_group.add(range(n), 1.0, "REPLACE")
    if weighted:
        weight = np.clip(moved / (0.6 * moved.max()), 0.0, 1.0)
        jaw_group = face.vertex_groups.new(name=bone)
        for i in np.flatnonzero(weight > 0.01):
            jaw_group.add([int(i)], float(weight[i]), "REPLACE")
            head_group.add([int(i)], float(1.0 - weight[i]), "REPLACE")
    return bpy, face, arm, int(np.argmax(moved))


def _chin_drop(bpy, face, chin: int, rest_z: float) -> float:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = face.evaluated_get(depsgraph)
    return rest_z - (evaluated.matrix_world @ evaluated.data.vertices[chin].co).z


def _drops_over_the_clip(bpy, face, chin, start, frames):
    scene = bpy.context.scene
    scene.frame_set(start - 5)
    rest_z = (face.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices[chin].co).z
    drops = []
    for k in range(len(frames)):
        scene.frame_set(start + k)
        drops.append(_chin_drop(bpy, face, chin, rest_z))
    return np.array(drops), rest_z


def _assert_opens_and_closes(result, drops, full):
    pp = result.animation.frames[:, VISEMES.index("PP")]
    assert drops.max() >= 0.6 * full, (drops.max(), full)
    assert drops[pp >= 0.9].size and drops[pp >= 0.9].max() <= 0.2 * full, (drops[pp >= 0.9], full)


def test_a_skinned_jaw_without_a_jaw_key_is_opened_by_its_bone(worker):
    from oris.blender import lipsync as bl
    from oris.engine.model import find_model

    bpy, face, arm, chin = _rig("jaw", weighted=True)
    job = bl.prepare(bpy.context.scene, [face], str(CLIP), start_frame=10, card=find_model().card, recognize=False)
    assert job.jaw is not None and job.jaw.bone == "jaw"
    result = job.analyze(worker)
    report = job.apply(result)
    assert any("the jaw: Armature's bone 'jaw'" in n and "20 degrees" in n for n in report.notes), report.notes
    drops, rest_z = _drops_over_the_clip(bpy, face, chin, 10, result.animation.frames)
    # the chin's full range: the bone turned the rig's full 20 degrees by hand, Oris's track muted
    arm.animation_data.nla_tracks[0].mute = True
    pb = arm.pose.bones["jaw"]
    pb.rotation_mode = "XYZ"
    pb.rotation_euler[{"X": 0, "Z": 2}[job.jaw.axis]] = np.radians(20.0) * job.jaw.sign
    full = _chin_drop(bpy, face, chin, rest_z)
    assert full > 0.02  # 20 degrees about the hinge: a few centimetres at the chin
    _assert_opens_and_closes(result, drops, full)


def test_a_jaw_key_driven_by_a_rigify_style_bone_is_opened_through_the_bone(worker):
    from oris.blender import lipsync as bl
    from oris.engine.model import find_model

    bpy, face, arm, chin = _rig("jaw_master", weighted=False)
    key = face.data.shape_keys
    driver = key.key_blocks["jawOpen"].driver_add("value").driver
    var = driver.variables.new()
    var.type = "TRANSFORMS"
    var.targets[0].id, var.targets[0].bone_target = arm, "jaw_master"
    var.targets[0].transform_type, var.targets[0].transform_space = "ROT_X", "LOCAL_SPACE"
    driver.expression = f"-{var.name} / {np.radians(20.0)}"  # the jaw opens turning about -X; 20 degrees: wide
    job = bl.prepare(bpy.context.scene, [face], str(CLIP), start_frame=10, card=find_model().card, recognize=False)
    assert job.jaw is not None and job.jaw.bone == "jaw_master" and job.jaw.sign == -1.0
    result = job.analyze(worker)
    report = job.apply(result)
    assert any("'jawOpen' is driven by Armature's bone 'jaw_master'" in n for n in report.notes), report.notes
    bpy.context.scene.frame_set(1)
    rest_z = (face.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices[chin].co).z
    key.key_blocks["jawOpen"].driver_remove("value")
    key.animation_data.nla_tracks[0].mute = True
    key.key_blocks["jawOpen"].value = 1.0
    full = _chin_drop(bpy, face, chin, rest_z)
    key.key_blocks["jawOpen"].value = 0.0
    key.animation_data.nla_tracks[0].mute = False
    driver = key.key_blocks["jawOpen"].driver_add("value").driver  # the rig as it was
    var = driver.variables.new()
    var.type = "TRANSFORMS"
    var.targets[0].id, var.targets[0].bone_target = arm, "jaw_master"
    var.targets[0].transform_type, var.targets[0].transform_space = "ROT_X", "LOCAL_SPACE"
    driver.expression = f"-{var.name} / {np.radians(20.0)}"
    drops, _ = _drops_over_the_clip(bpy, face, chin, 10, result.animation.frames)
    _assert_opens_and_closes(result, drops, full)


def test_a_rig_whose_shapes_open_the_jaw_keeps_its_jaw_bone_still(worker):
    from oris.blender import lipsync as bl
    from oris.engine.model import find_model

    bpy, face, arm, _chin = _rig("jaw", weighted=True)
    face.shape_key_add(name="jawOpen", from_mix=False)  # an ARKit rig: the shapes open the jaw
    n = len(face.data.vertices)
    co = np.empty(n * 3)
    face.data.shape_keys.reference_key.data.foreach_get("co", co)
    co = co.reshape(n, 3)
    jaw_ids = [v.index for v in face.data.vertices if any(g.group == face.vertex_groups["jaw"].index and g.weight > 0.5
                                                          for g in v.groups)]
    co[jaw_ids, 2] -= 0.03
    face.data.shape_keys.key_blocks["jawOpen"].data.foreach_set("co", co.ravel())
    job = bl.prepare(bpy.context.scene, [face], str(CLIP), start_frame=10, card=find_model().card, recognize=False)
    assert job.jaw is None
    assert any("opened by the shape keys" in n for n in job.notes), job.notes


def test_command_line_jaw_degrees_sets_the_range(tmp_path):
    import sys

    from . import procs

    bpy, _face, _arm, _chin = _rig("mixamorig:Jaw", weighted=True)
    shot, out = tmp_path / "shot.blend", tmp_path / "out.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    result = procs.run([sys.executable, "-m", "oris", "lipsync", "--blend", str(shot), "--object", "MakeHuman_head",
                        "--audio", str(CLIP), "--audio-only", "--jaw-degrees", "12", "-o", str(out)], timeout=600)
    assert result.returncode == 0, result.stderr
    assert "'mixamorig:Jaw'" in result.stdout + result.stderr and "12 degrees fully open (--jaw-degrees" in (
        result.stdout + result.stderr)
    bpy.ops.wm.open_mainfile(filepath=str(out))
    pb = bpy.data.objects["Armature"].pose.bones["mixamorig:Jaw"]
    angles = []
    for f in range(1, 90):
        bpy.context.scene.frame_set(f)
        angles.append(np.degrees(pb.rotation_quaternion.angle))
    assert 8.0 < max(angles) <= 12.0 + 0.5, max(angles)


def test_a_jaw_named_otherwise_is_found_by_its_weights_below_the_mouth(worker):
    from oris.blender import lipsync as bl
    from oris.engine.model import find_model

    bpy, face, _arm, _chin = _rig("Bone.003", weighted=True)
    job = bl.prepare(bpy.context.scene, [face], str(CLIP), start_frame=10, card=find_model().card, recognize=False)
    assert job.jaw is not None and job.jaw.bone == "Bone.003"
    assert "found by its weights below the mouth" in job.jaw.how
