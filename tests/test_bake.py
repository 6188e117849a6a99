"""Bake for export (real bpy, real rigs, the real worker): two clips and a jaw bone flattened into one Action
that plays the same, then FBX and glTF exported with the README's settings and imported back with the keys."""

import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from oris.blender import lipsync as bl  # noqa: E402
from oris.blender.bake import BAKE_NAME, BakeError, bake  # noqa: E402
from oris.engine.model import find_model  # noqa: E402

from . import procs  # noqa: E402
from .conftest import DATA, REPO  # noqa: E402

HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"
FACE = "MakeHuman_head"
WATCHED = ("viseme_PP", "viseme_aa", "viseme_O", "viseme_FF")


def two_clips(worker):
    bpy.ops.wm.open_mainfile(filepath=str(HEAD))
    scene = bpy.context.scene
    face = bpy.data.objects[FACE]
    card = find_model().card
    first = bl.run(scene, [face], str(DATA / "bilabials_slt.flac"), worker, start_frame=1, card=card, recognize=False)
    second = bl.run(scene, [face], str(DATA / "languages" / "es_asterisk.flac"), worker,
                    start_frame=int(first.end_frame) + 10, card=card, recognize=False)
    scene.frame_start, scene.frame_end = 1, int(second.end_frame) + 5
    return scene, face


def values(scene, key, frames):
    out = []
    for f in frames:
        scene.frame_set(f)
        out.append([key.key_blocks[n].value for n in WATCHED])
    return np.array(out)


def test_two_clips_bake_into_one_action_that_plays_the_same(worker):
    scene, face = two_clips(worker)
    key = face.data.shape_keys
    frames = range(scene.frame_start, scene.frame_end + 1)
    before = values(scene, key, frames)
    report = bake(scene, [face])
    assert report.action == BAKE_NAME and report.datablocks == [key.name]
    assert key.animation_data.action.name == BAKE_NAME
    assert all(t.mute for t in key.animation_data.nla_tracks), "Oris's tracks are muted, not deleted"
    after = values(scene, key, frames)
    assert np.abs(after - before).max() < 0.02, np.abs(after - before).max()
    assert report.keys < 0.5 * len(frames) * report.curves, "sparse: far fewer keys than frames"
    bag = key.animation_data.action.layers[0].strips[0].channelbag(key.animation_data.action_slot)
    fc = bag.fcurves.find('key_blocks["viseme_PP"].value')
    assert {k.interpolation for k in fc.keyframe_points} == {"BEZIER"}
    # baking again bakes the same, and leaves one bake
    again = bake(scene, [face])
    assert again.keys == report.keys and len([a for a in bpy.data.actions if a.name.startswith(BAKE_NAME)]) == 1


def test_nothing_to_bake_is_a_clear_error():
    bpy.ops.wm.open_mainfile(filepath=str(HEAD))
    with pytest.raises(BakeError, match="nothing to bake.*--object"):
        bake(bpy.context.scene, [bpy.data.objects[FACE]])


def _imported_values(frames, offset):
    face = next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)
    return values(bpy.context.scene, face.data.shape_keys, [f + offset for f in frames])


@pytest.mark.parametrize("fmt", ["fbx", "gltf"])
def test_a_baked_shot_exports_and_imports_with_its_keys(worker, tmp_path, fmt):
    scene, face = two_clips(worker)
    bake(scene, [face])
    frames = list(range(scene.frame_start + 2, scene.frame_end - 2))
    before = values(scene, face.data.shape_keys, frames)
    path = tmp_path / f"shot.{'glb' if fmt == 'gltf' else 'fbx'}"
    if fmt == "fbx":  # the README's settings: the timeline baked, not one take per NLA strip or Action
        bpy.ops.export_scene.fbx(filepath=str(path), bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False)
    else:
        bpy.ops.export_scene.gltf(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    getattr(bpy.ops.import_scene, fmt)(filepath=str(path))
    # FBX's known offset: its keys land a frame late
    errors = {offset: np.abs(_imported_values(frames, offset) - before).max() for offset in (0, 1)}
    assert min(errors.values()) < 0.02, errors
    assert before[:, 0].max() > 0.9 and before[:, 1].max() > 0.3  # the closures and openings were there to carry


def test_command_line_bake(worker, tmp_path):
    scene, face = two_clips(worker)
    shot, out = tmp_path / "shot.blend", tmp_path / "baked.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    result = procs.run([sys.executable, "-m", "oris", "bake", "--blend", str(shot), "-o", str(out)], timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"into the Action '{BAKE_NAME}'" in result.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert bpy.data.objects[FACE].data.shape_keys.animation_data.action.name == BAKE_NAME
    missing = procs.run([sys.executable, "-m", "oris", "bake", "--blend", str(shot), "--object", "Nobody", "-o",
                         str(tmp_path / "x.blend")], timeout=300)
    assert missing.returncode == 2 and "no object named 'Nobody'" in missing.stderr


def test_a_jaw_bone_is_baked_with_the_face_it_opens(worker):
    from .test_jaw import CLIP, _rig

    _bpy, face, arm, _chin = _rig("jaw", weighted=True)
    scene = bpy.context.scene
    report = bl.run(scene, [face], str(CLIP), worker, start_frame=1, card=find_model().card, recognize=False)
    pb = arm.pose.bones["jaw"]
    frames = range(1, int(report.end_frame))
    angles = []
    for f in frames:
        scene.frame_set(f)
        angles.append(pb.rotation_quaternion.angle)
    baked = bake(scene, [face])  # the face alone chosen: its armature's jaw comes with it
    assert set(baked.datablocks) == {face.data.shape_keys.name, arm.name}
    assert arm.animation_data.action.name == BAKE_NAME
    after = []
    for f in frames:
        scene.frame_set(f)
        after.append(pb.rotation_quaternion.angle)
    assert max(angles) > np.radians(8) and np.abs(np.array(after) - np.array(angles)).max() < np.radians(0.5)
