"""Contact animation on the real bpy: the bundled heads at several scales, placements and
sizes, and a head driven by an armature bone. The checks measure the evaluated meshes here,
independently of the planner and of Oris's own validation pass."""

from __future__ import annotations

import json
import math

import pytest

bpy = pytest.importorskip("bpy")

import numpy as np  # noqa: E402
from mathutils import Vector  # noqa: E402
from mathutils.bvhtree import BVHTree  # noqa: E402

from demo.scenes import CASES, make_pair, reset  # noqa: E402
from oris.blender.contact import TRACK_NAME, HeadSpec, run_contact  # noqa: E402
from oris.blender.shapekeys import EditError  # noqa: E402
from oris.core.contact import ContactError, ContactSettings, Limits, minimum_jerk  # noqa: E402

from .contact_checks import assert_contact_on_evaluated_meshes, mesh_of, world_mesh  # noqa: E402

FC = 48


@pytest.mark.parametrize("case", list(CASES))
def test_contact_meets_the_targets_on_the_evaluated_meshes(case):
    reset()
    kwargs = CASES[case]
    pair = make_pair(**kwargs)
    k = kwargs.get("world_scale", 1.0) * min(1.0, kwargs.get("size_b", 1.0))  # metres per human metre
    a_mesh, b_mesh = mesh_of(pair.a), mesh_of(pair.b)
    rest = (a_mesh.matrix_world.copy(), b_mesh.matrix_world.copy())
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b, bone=pair.bone_b), ContactSettings(contact_frame=FC))
    assert_contact_on_evaluated_meshes(report, a_mesh, b_mesh, 0.001 * k, FC, 24.0)
    # heads at rest outside the animation
    bpy.context.scene.frame_set(int(report.plan["start_frame"]) - 5)
    assert np.allclose(np.array(a_mesh.matrix_world), np.array(rest[0]), atol=1e-5 * max(k, 1))


def _channel_curves(head_ob):
    ad = head_ob.animation_data
    strip = next(s for t in ad.nla_tracks if t.name == TRACK_NAME for s in t.strips)
    bag = strip.action.layers[0].strips[0].channelbag(strip.action_slot)
    return list(bag.fcurves)


def _rigid_points(mesh) -> np.ndarray:
    """Vertices no shape key moves: they follow the head's rigid motion only."""
    keys = mesh.data.shape_keys.key_blocks
    basis = np.array([v.co for v in keys[0].data])
    moved = np.zeros(len(basis))
    for kb in keys[1:]:
        moved = np.maximum(moved, np.linalg.norm(np.array([v.co for v in kb.data]) - basis, axis=1))
    return np.flatnonzero(moved < 1e-7)[::40]


def _rigid_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kabsch: R, t with dst ~ src @ R.T + t."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    u, _s, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1, 1, d]) @ u.T
    return r, cd - cs @ r.T


def test_motion_is_minimum_jerk_with_few_editable_keys_and_no_velocity_jumps():
    reset()
    pair = make_pair()
    scene = bpy.context.scene
    report = run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    start, end = report.plan["start_frame"], report.plan["end_frame"]
    curves = _channel_curves(pair.a)
    assert {fc.data_path for fc in curves} >= {"location", "rotation_euler"}
    assert all(len(fc.keyframe_points) <= 20 for fc in curves)  # a few keys to edit, not one per frame
    key_frames = sorted({round(k.co[0], 3) for fc in curves for k in fc.keyframe_points})

    # the leader's motion, read from its evaluated mesh: where its lips go, carried rigidly
    rigid = _rigid_points(pair.a)

    def mesh_at(frame: float) -> np.ndarray:
        scene.frame_set(int(np.floor(frame)), subframe=float(frame - np.floor(frame)))
        return world_mesh(pair.a)[0]

    rest = mesh_at(start)
    scene.frame_set(FC)
    (va, _), (vb, tb) = world_mesh(pair.a), world_mesh(pair.b)
    tree_b = BVHTree.FromPolygons(vb.tolist(), tb.tolist())
    touch = int(np.argmin([tree_b.find_nearest(Vector(p))[3] for p in va]))
    r, t = _rigid_transform(va[rigid], rest[rigid])
    lip_rest = va[touch] @ r.T + t  # the touching point, taken back to where the head started

    def lip_at(frame: float) -> np.ndarray:
        r, t = _rigid_transform(rest[rigid], mesh_at(frame)[rigid])
        return lip_rest @ r.T + t

    # the approach eases in to the touch, a fraction of a frame after the contact frame (the lips are within
    # 0.1 mm from the contact frame on)
    touch_frame = report.plan["touch_frame"]
    assert FC <= touch_frame < FC + 3
    frames = np.append(np.arange(start, touch_frame, 0.5), touch_frame)
    path = np.array([lip_at(f) for f in frames])
    progress = np.linalg.norm(path - path[0], axis=1) / np.linalg.norm(path[-1] - path[0])
    assert np.abs(progress - minimum_jerk((frames - start) / (touch_frame - start))).max() <= 0.01

    whole = np.array([lip_at(f) for f in np.arange(start, end + 0.01, 0.5)])
    peak = np.linalg.norm(np.diff(whole, axis=0), axis=1).max() / 0.5
    for key in key_frames:
        before, at, after = lip_at(key - 0.02), lip_at(key), lip_at(key + 0.02)
        jump = np.linalg.norm((after - at) / 0.02 - (at - before) / 0.02)
        assert jump <= 0.1 * peak, f"velocity jump at key {key}"


def test_running_again_replaces_only_oris_contact_animation():
    reset()
    pair = make_pair()
    scene = bpy.context.scene
    # the user's own animation on another channel and another track
    pair.a.keyframe_insert("scale", frame=1)
    user = bpy.data.actions.new("UserKeys")
    track = pair.b.animation_data_create().nla_tracks.new()
    track.name = "User"
    track.strips.new("User", 200, user)
    run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=60))
    for ob in (pair.a, pair.b):
        strips = [s for t in ob.animation_data.nla_tracks if t.name == TRACK_NAME for s in t.strips]
        assert len(strips) == 1 and strips[0].frame_start == 60 - 24
    assert len([a for a in bpy.data.actions if a.name.startswith("Oris Contact")]) == 1
    assert pair.a.animation_data.action is not None  # the user's scale key is still there
    assert "User" in [t.name for t in pair.b.animation_data.nla_tracks]


def test_a_head_the_artist_overrode_is_made_editable_and_meets(tmp_path):
    """Linked, then Object > Library Override > Make: an override whose mesh, and shape keys, are still linked."""
    reset()
    pair = make_pair()
    path = tmp_path / "lib.blend"
    bpy.data.libraries.write(str(path), {pair.b})
    bpy.data.objects.remove(pair.b)
    with bpy.data.libraries.load(str(path), link=True) as (src, dst):
        dst.objects = ["HeadB"]
    linked = dst.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    bpy.context.view_layer.objects.active = linked
    linked.select_set(True)
    assert bpy.ops.object.make_override_library() == {"FINISHED"}
    head_b = next(o for o in bpy.data.objects if o.name == "HeadB" and o.library is None)
    assert head_b.override_library is not None and head_b.data.library is not None  # its shape keys: linked
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(head_b), ContactSettings(contact_frame=FC))
    assert report.passed
    assert any("made it editable" in n for n in report.notes), report.notes
    assert not head_b.override_library.is_system_override and head_b.data.library is None


def _assert_untouched(*objects):
    assert not [a for a in bpy.data.actions if a.name.startswith("Oris")]
    for ob in objects:
        ad = ob.animation_data
        assert ad is None or not [t for t in ad.nla_tracks if t.name == TRACK_NAME]


def test_a_plan_that_cannot_pass_leaves_the_file_as_it_was():
    reset()
    pair = make_pair()
    bpy.context.view_layer.update()
    before = [np.array(ob.matrix_world) for ob in (pair.a, pair.b)]
    weights = [kb.value for kb in pair.a.data.shape_keys.key_blocks]
    impossible = Limits(penetration_mm=-1.0)
    with pytest.raises(ContactError, match="could not pass") as failed:
        run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(), limits=impossible)
    report = json.loads(failed.value.report.to_json())  # the report of the failure, as --report writes it
    assert report["passed"] is False and len(report["attempts"]) == 4 and report["failures"]
    for attempt in report["attempts"]:
        assert any(f.startswith("penetration outside the lips") for f in attempt["failures"])
        assert attempt["first_failing_frames"]["penetration"] is not None
    _assert_untouched(pair.a, pair.b)
    for ob, m in zip((pair.a, pair.b), before):
        bpy.context.scene.frame_set(FC)
        assert np.allclose(np.array(ob.matrix_world), m, atol=1e-6)
    assert [kb.value for kb in pair.a.data.shape_keys.key_blocks] == weights


def test_a_failed_rerun_keeps_the_earlier_contact():
    reset()
    pair = make_pair()
    scene = bpy.context.scene
    run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    with pytest.raises(ContactError):
        run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=70), limits=Limits(penetration_mm=-1))
    strips = [s for t in pair.a.animation_data.nla_tracks if t.name == TRACK_NAME for s in t.strips]
    assert len(strips) == 1 and strips[0].frame_start == FC - 24 and not strips[0].mute


def test_bad_input_gets_a_clear_message_and_no_keys():
    reset()
    pair = make_pair()
    scene = bpy.context.scene
    with pytest.raises(ContactError, match="same"):
        run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.a), ContactSettings())
    # facing away
    pair.b.rotation_euler.z += math.pi
    with pytest.raises(ContactError, match="faces away"):
        run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings())
    pair.b.rotation_euler.z -= math.pi
    # already overlapping
    saved = pair.b.location.copy()
    pair.b.location = pair.a.location + Vector((0.0, -0.3, 0.0))
    with pytest.raises(ContactError, match="overlap"):
        run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings())
    pair.b.location = saved
    # zero scale
    pair.b.scale = (0.0, 0.0, 0.0)
    with pytest.raises(ContactError, match="zero scale"):
        run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings())
    pair.b.scale = (1.0, 1.0, 1.0)
    # not a head
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    with pytest.raises(ContactError, match="not a head"):
        run_contact(scene, HeadSpec(pair.a), HeadSpec(cam), ContactSettings())
    # no face direction: no shape keys and no override
    plain = pair.b.copy()
    plain.data = pair.b.data.copy()
    plain.shape_key_clear()
    scene.collection.objects.link(plain)
    pair.b.hide_viewport = True
    bpy.data.objects.remove(pair.b)
    with pytest.raises(ContactError, match="which way the face looks"):
        run_contact(scene, HeadSpec(pair.a), HeadSpec(plain), ContactSettings())
    _assert_untouched(pair.a, plain)


def test_a_facing_override_drives_a_head_without_shape_keys():
    reset()
    pair = make_pair()
    pair.b.shape_key_clear()
    lips = bpy.data.objects.new("LipsB", None)
    bpy.context.scene.collection.objects.link(lips)
    # the lips of the bundled head sit near the front, 8 cm below the eyes: put an empty there
    co = np.array([v.co for v in pair.b.data.vertices])
    front = co[np.argsort(co[:, 1])[:400]]
    low = front[front[:, 2] < np.percentile(front[:, 2], 30)]
    lips.location = pair.b.matrix_world @ Vector(low[np.argmin(low[:, 1])])
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b, lip_object=lips, facing="-Y"),
                         ContactSettings(contact_frame=FC))
    assert report.passed
    assert any("no blink" in n or "eyes stay open" in n for n in report.notes)


def test_linked_heads_are_refused(tmp_path):
    reset()
    pair = make_pair()
    path = tmp_path / "lib.blend"
    bpy.data.libraries.write(str(path), {pair.b})
    bpy.data.objects.remove(pair.b)
    with bpy.data.libraries.load(str(path), link=True) as (src, dst):
        dst.objects = ["HeadB"]
    linked = dst.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    with pytest.raises(EditError, match="linked"):
        run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(linked), ContactSettings())
    _assert_untouched(pair.a)


def test_command_line_writes_the_blend_and_the_report(tmp_path):
    from oris.cli import main

    reset()
    make_pair(armature_b=True)
    src = tmp_path / "pair.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(src))
    out, rep = tmp_path / "out.blend", tmp_path / "report.json"
    code = main(["contact", "--blend", str(src), "--a", "HeadA", "--b", "RigB", "--contact-frame", "40",
                 "-o", str(out), "--report", str(rep), "-q"])
    assert code == 0
    doc = json.loads(rep.read_text())
    assert doc["passed"] and doc["summary"]["first_contact_frame"] in (39, 40, 41)
    assert doc["summary"]["max_penetration_mm"] <= 0.5
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert [t.name for t in bpy.data.objects["RigB"].animation_data.nla_tracks] == [TRACK_NAME]
    bpy.ops.wm.open_mainfile(filepath=str(src))
    assert bpy.data.objects["RigB"].animation_data is None  # the input is untouched
    assert main(["contact", "--blend", str(src), "--a", "HeadA", "--b", "Nope", "-o", str(out)]) == 2  # a name not in the file: bad input


def test_a_take_on_the_faces_is_kept_below_and_its_mouth_held_over_the_contact():
    reset()
    pair = make_pair()
    key = pair.a.data.shape_keys
    jaw = key.key_blocks["jawOpen"]
    for frame, value in ((40, 0.0), (52, 1.0), (70, 0.0)):  # the mouth would open wide while kissing
        jaw.value = value
        jaw.keyframe_insert("value", frame=frame)
    take = key.animation_data.action
    with pytest.raises(EditError, match="keys jawOpen, which would play over the contact; run with --existing-animation"):
        run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b),
                    ContactSettings(contact_frame=FC, existing_animation="refuse"))
    assert key.animation_data.action == take
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    assert report.passed and any(f"the action {take.name!r}" in n for n in report.notes)
    assert key.animation_data.action is None and key.animation_data.nla_tracks[0].strips[0].action == take
    bpy.context.scene.frame_set(52)
    assert jaw.value == pytest.approx(0.0, abs=1e-6)  # held where it was when the approach began


def test_other_face_animation_that_plays_over_the_contact_is_named_when_it_breaks_the_checks():
    reset()
    pair = make_pair()
    jaw = pair.a.data.shape_keys.key_blocks["jawOpen"]
    driver = jaw.driver_add("value").driver  # a driver plays over every NLA strip
    driver.type, driver.expression = "SCRIPTED", "min(1.0, max(0.0, (frame - 40) / 12))"
    with pytest.raises(ContactError, match="Other animation plays on the faces"):
        run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    assert pair.a.data.shape_keys.animation_data.drivers[0].driver.expression.startswith("min")


def _lip_travel(ob, start: int, frame: int) -> float:
    scene = bpy.context.scene
    scene.frame_set(start)
    a0 = np.array(ob.matrix_world.translation)
    scene.frame_set(frame)
    return float(np.linalg.norm(np.array(ob.matrix_world.translation) - a0))


def test_leader_tilt_side_anticipation_and_face_shapes():
    reset()
    pair = make_pair()
    scene = bpy.context.scene
    settings = ContactSettings(contact_frame=FC, leader="B", tilt_side="LEFT", anticipation=True)
    report = run_contact(scene, HeadSpec(pair.a), HeadSpec(pair.b), settings)
    start = int(report.plan["start_frame"])
    assert start < FC - 24  # the anticipation comes before the approach
    # B leads: its head moves further than A's (object origins sit at the neck, so compare rotations too)
    assert _lip_travel(pair.b, start, FC) > _lip_travel(pair.a, start, FC)
    # rolled to their own left: A's up axis leans toward A's left (+X for a face looking along -Y)
    scene.frame_set(FC)
    up_a = np.array(pair.a.matrix_world.to_3x3().col[2])
    assert up_a[0] > 0.2
    # eyes closed a few frames before contact and open again after the release; lips puckered at contact
    blink, pucker = pair.a.data.shape_keys.key_blocks["eyeBlinkLeft"], pair.a.data.shape_keys.key_blocks["viseme_U"]
    values = {}
    for f in (start, FC - 2, FC, int(report.plan["end_frame"]) + 5):
        scene.frame_set(f)
        values[f] = (blink.value, pucker.value)
    assert values[start] == (0.0, 0.0)
    assert values[FC - 2][0] > 0.99 and values[FC][0] > 0.99 and values[FC][1] > 0.5
    assert values[int(report.plan["end_frame"]) + 5] == (0.0, 0.0)


def test_an_empty_holding_the_face_mesh_and_a_lip_vertex_group():
    reset()
    pair = make_pair()
    scene = bpy.context.scene
    holder = bpy.data.objects.new("HeadB_root", None)
    scene.collection.objects.link(holder)
    holder.matrix_world = pair.b.matrix_world.copy()
    pair.b.parent = holder
    pair.b.matrix_parent_inverse = holder.matrix_world.inverted()
    # the user marks the lips with a vertex group on A
    co = np.array([v.co for v in pair.a.data.vertices])
    front = np.flatnonzero(co[:, 1] < co[:, 1].min() + 0.004)
    low = front[co[front, 2] < np.percentile(co[:, 2], 45)]
    group = pair.a.vertex_groups.new(name="lips")
    group.add([int(i) for i in low], 1.0, "REPLACE")
    report = run_contact(scene, HeadSpec(pair.a, lip_group="lips"), HeadSpec(holder), ContactSettings(contact_frame=FC))
    assert report.passed
    assert [t.name for t in holder.animation_data.nla_tracks] == [TRACK_NAME]
    assert pair.b.animation_data is None  # the empty carries the motion; the mesh follows it


def test_a_picked_lip_vertex_through_the_command_line(tmp_path):
    from oris.cli import main

    reset()
    pair = make_pair()
    co = np.array([v.co for v in pair.b.data.vertices])
    front = np.flatnonzero(co[:, 1] < co[:, 1].min() + 0.004)
    lips = front[co[front, 2] < np.percentile(co[:, 2], 45)]
    picked = int(lips[np.argmin(co[lips, 1])])
    src = tmp_path / "pair.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(src))
    out, rep = tmp_path / "out.blend", tmp_path / "report.json"
    assert main(["contact", "--blend", str(src), "--a", "HeadA", "--b", "HeadB", "--b-lips", str(picked),
                 "-o", str(out), "--report", str(rep), "-q"]) == 0
    assert json.loads(rep.read_text())["passed"]


def test_a_body_that_touches_first_is_named_in_the_message():
    reset()
    pair = make_pair()
    # chests under both heads, sticking out past their faces, part of the same heads (child meshes)
    for head in (pair.a, pair.b):
        co = np.array([v.co for v in head.data.vertices])
        bpy.ops.mesh.primitive_cube_add(size=1.0)
        chest = bpy.context.active_object
        chest.scale = (0.35, 0.1, 0.12)
        chest.location = (0.0, float(co[:, 1].min()) + 0.01, float(co[:, 2].min()) - 0.06)
        chest.parent = head
    with pytest.raises(ContactError, match="below the lips touches first.*head bone or the head mesh alone"):
        run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    _assert_untouched(pair.a, pair.b)


def test_heads_with_subdivision_are_measured_on_their_cage():
    reset()
    pair = make_pair()
    for head in (pair.a, pair.b):
        head.modifiers.new("Smooth", "SUBSURF").levels = 1
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    assert report.passed and any("measured as its cage" in n for n in report.notes)
    assert all(m.show_viewport for h in (pair.a, pair.b) for m in h.modifiers)


def test_a_head_with_its_own_transform_keys_is_kept_below_or_refused_with_a_way_out():
    reset()
    pair = make_pair()
    pair.b.keyframe_insert("location", frame=1)
    pair.b.keyframe_insert("location", frame=200)
    settings = ContactSettings(contact_frame=FC, existing_animation="refuse")
    with pytest.raises(EditError, match="HeadB: the action .* keys location, which would play over the contact; "
                                        "run with --existing-animation keep"):
        run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), settings)
    assert [a.name for a in bpy.data.actions if a.name.startswith("Oris")] == []
    taken = pair.b.animation_data.action
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    tracks = [t.name for t in pair.b.animation_data.nla_tracks]
    assert report.passed and pair.b.animation_data.action is None and tracks == [taken.name, TRACK_NAME]


@pytest.mark.parametrize("bone_name", ["mixamorig:Head", "DEF-head"])
def test_the_head_bone_of_an_armature_is_found_by_its_name(bone_name):
    reset()
    pair = make_pair(armature_b=True, bone_name=bone_name)
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    assert report.passed
    paths = {fc.data_path for fc in _channel_curves(pair.b)}
    assert any(p.startswith(f'pose.bones["{bone_name}"]') for p in paths), paths
    assert not any(p.startswith('pose.bones["spine"]') for p in paths)


def _front_lip_vertices(mesh) -> np.ndarray:
    co = np.array([v.co for v in mesh.data.vertices])
    front = np.flatnonzero(co[:, 1] < co[:, 1].min() + 0.004)
    return front[co[front, 2] < np.percentile(co[:, 2], 45)]


def test_the_panel_takes_a_lip_point_from_selected_vertices_and_a_lip_vertex_group():
    import oris

    oris.register()
    try:
        reset()
        pair = make_pair()
        s = bpy.context.scene.oris_contact
        s.head_a, s.head_b, s.contact_frame = pair.a, pair.b, FC
        bpy.context.view_layer.objects.active = pair.b
        for v in pair.b.data.vertices:
            v.select = False
        with pytest.raises(RuntimeError, match="no vertex of HeadB is selected"):
            bpy.ops.oris.contact_lip_from_selection(side="B")
        picked = _front_lip_vertices(pair.b)
        for i in picked:
            pair.b.data.vertices[int(i)].select = True
        assert bpy.ops.oris.contact_lip_from_selection(side="B") == {"FINISHED"}
        lips = s.lips_b
        assert lips is not None and lips.parent is pair.b
        expected = pair.b.matrix_world @ Vector(np.array([v.co for v in pair.b.data.vertices])[picked].mean(axis=0))
        assert (lips.matrix_world.translation - expected).length < 1e-6
        group = pair.a.vertex_groups.new(name="lips")
        group.add([int(i) for i in _front_lip_vertices(pair.a)], 1.0, "REPLACE")
        s.lip_group_a = "lips"
        assert bpy.ops.oris.contact() == {"FINISHED"}, s.status
        assert s.status.startswith(f"Contact at frame {FC}")
        lip_a, lip_b = json.loads(s.report_json)["plan"]["lip_points"]  # the overrides were used
        group_centre = pair.a.matrix_world @ Vector(np.array([v.co for v in pair.a.data.vertices])[
            _front_lip_vertices(pair.a)].mean(axis=0))
        assert np.allclose(lip_a, group_centre, atol=1e-6) and np.allclose(lip_b, expected, atol=1e-6)
        s.lip_group_a = "no such group"
        with pytest.raises(RuntimeError, match="vertex group 'no such group' is missing"):
            bpy.ops.oris.contact()
    finally:
        oris.unregister()


def test_a_head_with_only_preston_blair_mouths_is_found_by_its_puckered_mouth():
    reset()
    pair = make_pair()
    keys = pair.b.data.shape_keys.key_blocks
    renames = {"viseme_sil": "rest", "viseme_PP": "MBP", "viseme_FF": "FV", "viseme_DD": "etc", "viseme_nn": "L",
               "viseme_aa": "AI", "viseme_E": "E", "viseme_O": "O", "viseme_I": "U", "viseme_U": "WQ"}
    for kb in list(keys)[1:]:
        if kb.name in renames:
            kb.name = renames[kb.name]
        else:
            pair.b.shape_key_remove(kb)
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b), ContactSettings(contact_frame=FC))
    assert report.passed
    assert any("HeadB" in n and "eyes stay open" in n for n in report.notes)
