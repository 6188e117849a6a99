"""Lip sync in the real pip `bpy`: real rigs, real speech, the real worker."""

import pytest

bpy = pytest.importorskip("bpy")

from oris.blender import lipsync as bl  # noqa: E402
from oris.blender.shapekeys import TRACK_NAME, EditError  # noqa: E402
from oris.core.curves import CurveSettings  # noqa: E402
from oris.core.rigs import RigError  # noqa: E402
from oris.engine.model import find_model  # noqa: E402

from .conftest import DATA, DEMO_AUDIO, REPO  # noqa: E402

HEADS = REPO / "demo" / "heads"


def open_head(name: str):
    bpy.ops.wm.open_mainfile(filepath=str(HEADS / name))
    return bpy.context.scene, next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)


def values_at(key, names, frames):
    scene = bpy.context.scene
    out = {}
    for f in frames:
        scene.frame_set(f)
        out[f] = {n: key.key_blocks[n].value for n in names}
    return out


@pytest.fixture(scope="module")
def card():
    return find_model().card


def test_oculus_rig_gets_an_nla_strip_that_evaluates(worker, card):
    scene, ob = open_head("mh_talkinghead_head.blend")
    report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=10, card=card)
    key = ob.data.shape_keys
    tracks = [t for t in key.animation_data.nla_tracks if t.name == TRACK_NAME]
    assert len(tracks) == 1 and [s.name for s in tracks[0].strips] == ["speech.flac"]
    strip = tracks[0].strips[0]
    assert strip.frame_start == 10 and strip.action_slot is not None
    fps = scene.render.fps / scene.render.fps_base
    assert report.end_frame == pytest.approx(10 + int(20.46 * fps), abs=1)
    arkit_mouth = [n for n in (kb.name for kb in key.key_blocks[1:]) if n.startswith(("mouth", "jaw", "tongue"))]
    assert len(arkit_mouth) == 28 and report.curves == 15 + 28  # the visemes, and the rig's other mouth keys at rest
    # sparse: a dense curve per viseme would be 15 x 24 keys a second; the motion keeps the mouth moving, about 47
    assert report.keys_per_second < 60
    vals = values_at(key, ["viseme_PP", "viseme_aa"], range(10, int(report.end_frame)))
    assert max(v["viseme_PP"] for v in vals.values()) == pytest.approx(1.0, abs=0.02)
    assert max(v["viseme_aa"] for v in vals.values()) > 0.5
    assert all(v["viseme_PP"] == 0 for f, v in vals.items() if f < 12)  # silence at the start
    sounds = [s for s in scene.sequence_editor.strips if s.type == "SOUND"]
    start = getattr(sounds[0], "content_start", None)  # Blender 5.2 renamed frame_start
    assert len(sounds) == 1 and (start if start is not None else sounds[0].frame_start) == 10


def test_running_again_replaces_only_oris_own_strip(worker, card):
    scene, ob = open_head("mh_talkinghead_head.blend")
    key = ob.data.shape_keys
    # the artist's own animation: a blink on a track of their own
    user_action = bpy.data.actions.new("Blink")
    slot = user_action.slots.new(id_type="KEY", name=key.name)
    bag = user_action.layers.new("L").strips.new(type="KEYFRAME").channelbag(slot, ensure=True)
    fc = bag.fcurves.new('key_blocks["eyeBlinkLeft"].value')
    fc.keyframe_points.insert(1, 0.0)
    fc.keyframe_points.insert(5, 1.0)
    key.animation_data_create()
    user_track = key.animation_data.nla_tracks.new()
    user_track.name = "Artist"
    user_track.strips.new("blink", 1, user_action)
    for _ in range(2):
        bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card)
    names = sorted(t.name for t in key.animation_data.nla_tracks)
    assert names == ["Artist", TRACK_NAME]
    assert [s.name for s in key.animation_data.nla_tracks["Artist"].strips] == ["blink"]
    assert len(key.animation_data.nla_tracks[TRACK_NAME].strips) == 1
    assert sorted(a.name for a in bpy.data.actions) == ["Blink", "Oris speech.flac"]
    assert len([s for s in scene.sequence_editor.strips if s.type == "SOUND"]) == 1


def test_arkit_rig_with_suffixes(worker, card):
    scene, ob = open_head("ict_facekit.blend")
    report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card)
    assert any("tongueOut" in n for n in report.notes) or report.curves >= 15
    key = ob.data.shape_keys
    vals = values_at(key, ["jawOpen", "mouthPress_L"], range(1, int(report.end_frame), 2))
    assert max(v["jawOpen"] for v in vals.values()) > 0.3
    assert max(v["mouthPress_L"] for v in vals.values()) == pytest.approx(0.6, abs=0.02)


def test_jaw_and_lips_go_onto_the_jaw_key_and_the_other_mouth_keys(worker, card):
    def _peaks(name, keys, **channels):
        scene, ob = open_head(name)
        report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card, recognize=False,
                        settings=CurveSettings(**channels))
        vals = values_at(ob.data.shape_keys, keys, range(1, int(report.end_frame)))
        return {k: max(v[k] for v in vals.values()) for k in keys}

    # an ARKit rig has a jaw key: --jaw scales it alone, --lips the other mouth keys; closures still press
    arkit = ["jawOpen", "mouthFunnel", "mouthPucker", "mouthPress_L"]
    plain = _peaks("ict_facekit.blend", arkit)
    no_jaw = _peaks("ict_facekit.blend", arkit, jaw=0.0)
    no_lips = _peaks("ict_facekit.blend", arkit, lips=0.0)
    assert plain["jawOpen"] > 0.3 and no_jaw["jawOpen"] < 0.01 and no_lips["jawOpen"] == pytest.approx(plain["jawOpen"], abs=0.02)
    assert no_jaw["mouthFunnel"] == pytest.approx(plain["mouthFunnel"], abs=0.02) and no_lips["mouthFunnel"] < 0.01
    assert no_jaw["mouthPress_L"] == no_lips["mouthPress_L"] == pytest.approx(0.6, abs=0.02)
    # a viseme-only rig: each viseme by its jaw and lip shares
    oculus = ["viseme_aa", "viseme_U", "viseme_PP"]
    plain = _peaks("mh_talkinghead_head.blend", oculus)
    no_jaw = _peaks("mh_talkinghead_head.blend", oculus, jaw=0.0)
    assert no_jaw["viseme_aa"] < 0.35 * plain["viseme_aa"] and no_jaw["viseme_U"] > 0.7 * plain["viseme_U"]
    assert no_jaw["viseme_PP"] == pytest.approx(1.0, abs=0.02)


def test_rig_without_matching_keys_changes_nothing(worker, card):
    scene, ob = open_head("mh_talkinghead_head.blend")
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    cube.shape_key_add(name="Basis")
    cube.shape_key_add(name="Smile")
    with pytest.raises(RigError, match="Expected keys such as .*found Smile"):
        bl.run(scene, [cube], str(DEMO_AUDIO), worker, card=card)
    bpy.ops.mesh.primitive_uv_sphere_add()
    with pytest.raises(RigError, match="no shape keys"):
        bl.run(scene, [bpy.context.active_object], str(DEMO_AUDIO), worker, card=card)
    assert len(bpy.data.actions) == 0
    assert scene.sequence_editor is None or not any(s.type == "SOUND" for s in scene.sequence_editor.strips)


def test_unreadable_audio_is_refused_before_anything_is_written(worker, card, tmp_path):
    scene, ob = open_head("mh_talkinghead_head.blend")
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    from oris.core.audio import AudioError

    with pytest.raises(AudioError, match="could not read"):
        bl.run(scene, [ob], str(bad), worker, card=card)
    with pytest.raises(AudioError, match="not found"):
        bl.run(scene, [ob], str(tmp_path / "missing.wav"), worker, card=card)
    assert ob.data.shape_keys.animation_data is None and len(bpy.data.actions) == 0


def test_a_linked_rig_becomes_an_editable_override_and_is_keyed(worker, card, tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with bpy.data.libraries.load(str(HEADS / "mh_talkinghead_head.blend"), link=True) as (src, dst):
        dst.objects = [n for n in src.objects if n == "MakeHuman_head"]
    ob = dst.objects[0]
    bpy.context.scene.collection.objects.link(ob)
    report = bl.run(bpy.context.scene, [ob], str(DEMO_AUDIO), worker, card=card, recognize=False)
    assert any("editable library override" in n for n in report.notes), report.notes
    face = next(o for o in bpy.context.scene.objects if o.name == "MakeHuman_head" and o.library is None)
    assert face.override_library is not None and not face.override_library.is_system_override
    assert face.data.shape_keys.animation_data.nla_tracks[TRACK_NAME].strips[0].name == "speech.flac"


def test_cancel_mid_run_leaves_the_file_unchanged(worker, card):
    import threading

    from oris.engine.client import Cancelled

    scene, ob = open_head("mh_talkinghead_head.blend")
    job = bl.prepare(scene, [ob], str(DEMO_AUDIO), start_frame=1, card=card)
    cancel = threading.Event()
    seen = []

    def on_progress(fraction: float) -> None:  # the user presses Esc once the worker is under way
        seen.append(fraction)
        cancel.set()

    with pytest.raises(Cancelled):
        job.analyze(worker, on_progress, cancel)
    assert seen and max(seen) < 1.0
    assert ob.data.shape_keys.animation_data is None and len(bpy.data.actions) == 0
    assert scene.sequence_editor is None or not [st for st in scene.sequence_editor.strips if st.type == "SOUND"]
    # the worker is still usable afterwards
    assert bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card).keys_written > 0


def test_two_runs_at_once_are_refused():
    import oris
    from oris.ui import operators

    oris.register()
    try:
        scene, ob = open_head("mh_talkinghead_head.blend")
        ob.select_set(True)
        bpy.context.view_layer.objects.active = ob
        scene.oris_lipsync.audio_path = str(DEMO_AUDIO)
        assert operators._running.acquire(blocking=False)  # a lip sync is under way
        try:
            with pytest.raises(RuntimeError, match="already running"):
                bpy.ops.oris.lipsync()
        finally:
            operators._running.release()
        assert ob.data.shape_keys.animation_data is None
    finally:
        oris.unregister()


def test_a_face_split_over_three_meshes_is_keyed_together(worker, card):
    from demo.scenes import three_mesh_head

    meshes = three_mesh_head()
    scene = bpy.context.scene
    report = bl.run(scene, meshes, str(DEMO_AUDIO), worker, start_frame=1, card=card)
    keys = [m.data.shape_keys for m in meshes]
    assert sorted(report.targets) == sorted(k.name for k in keys)
    strips = [k.animation_data.nla_tracks[TRACK_NAME].strips[0] for k in keys]
    assert len({s.action.name for s in strips}) == 1, "one Action per run"
    assert len({s.action_slot.identifier for s in strips}) == 3, "a slot for each Key datablock"
    opened = 0.0
    for f in range(1, int(report.end_frame), 7):  # every mesh wears the same pose on every frame
        scene.frame_set(f)
        jaw = [k.key_blocks["jawOpen"].value for k in keys]
        assert max(jaw) - min(jaw) < 1e-6, f"frame {f}: {jaw}"
        opened = max(opened, jaw[0])
    assert opened > 0.3


def test_fit_scene_range_grows_the_range_only_when_asked(worker, card):
    scene, ob = open_head("mh_talkinghead_head.blend")
    scene.frame_start, scene.frame_end = 1, 50
    bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=20, card=card)
    assert (scene.frame_start, scene.frame_end) == (1, 50)
    report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=20, extend_range=True, card=card)
    assert scene.frame_start == 1 and scene.frame_end == int(report.end_frame) > 400


def test_a_library_override_whose_shape_keys_are_linked_gets_an_override_of_its_mesh(worker, card):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with bpy.data.libraries.load(str(HEADS / "mh_talkinghead_head.blend"), link=True) as (src, dst):
        dst.objects = [n for n in src.objects if n == "MakeHuman_head"]
    linked = dst.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    ob = linked.override_create(remap_local_usages=True)
    assert ob.override_library is not None and ob.data.library is not None
    bl.run(bpy.context.scene, [ob], str(DEMO_AUDIO), worker, card=card, recognize=False)
    assert ob.data.library is None and ob.data.override_library is not None
    assert [a.name for a in bpy.data.actions] == ["Oris speech.flac"]


@pytest.fixture()
def operator_scene():
    import oris

    oris.register()
    scene, ob = open_head("mh_talkinghead_head.blend")
    ob.select_set(True)
    bpy.context.view_layer.objects.active = ob
    scene.oris_lipsync.audio_path = str(DEMO_AUDIO)
    yield scene, ob
    oris.unregister()


def _nothing_written(scene, ob) -> bool:
    sounds = [s for s in scene.sequence_editor.strips if s.type == "SOUND"] if scene.sequence_editor else []
    return ob.data.shape_keys.animation_data is None and len(bpy.data.actions) == 0 and not sounds


def test_a_worker_that_hangs_or_dies_mid_run_changes_nothing_and_the_next_run_works(operator_scene):
    import os
    import signal
    import threading
    import time

    from oris.ui import operators

    scene, ob = operator_scene
    worker = operators._worker(bpy.context)  # the shared worker the operator uses
    hung = worker.start().pid
    worker.timeout = 2.0
    os.kill(hung, signal.SIGSTOP)
    try:
        with pytest.raises(RuntimeError, match="did not answer within 2 s.*restarted on the next request"):
            bpy.ops.oris.lipsync()
    finally:
        worker.timeout = 120.0
    assert _nothing_written(scene, ob) and not operators._running.locked()

    killed = worker.start().pid
    assert killed != hung
    os.kill(killed, signal.SIGSTOP)  # so it cannot finish before it is killed

    def kill_once_the_request_is_under_way() -> None:
        deadline = time.monotonic() + 30
        while not worker._busy.locked() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        os.kill(killed, signal.SIGKILL)

    killer = threading.Thread(target=kill_once_the_request_is_under_way)
    killer.start()
    with pytest.raises(RuntimeError, match="stopped during request .*signal 9.*next request starts a new one"):
        bpy.ops.oris.lipsync()
    killer.join()
    assert _nothing_written(scene, ob) and not operators._running.locked()

    assert bpy.ops.oris.lipsync() == {"FINISHED"}
    assert worker.info.pid not in (hung, killed)
    assert ob.data.shape_keys.animation_data.nla_tracks[TRACK_NAME].strips[0].name == "speech.flac"


def _own_action(key, name: str, keyed: list[str]):
    """The artist's own active Action on the shape keys (not in the NLA)."""
    action = bpy.data.actions.new(name)
    slot = action.slots.new(id_type="KEY", name=key.name)
    bag = action.layers.new("L").strips.new(type="KEYFRAME").channelbag(slot, ensure=True)
    for k in keyed:
        fc = bag.fcurves.new(f'key_blocks["{k}"].value')
        fc.keyframe_points.insert(1, 0.0)
        fc.keyframe_points.insert(30, 1.0)
    key.animation_data_create()
    key.animation_data.action = action
    key.animation_data.action_slot = slot
    return action


def test_a_captured_take_on_the_mouth_keys_is_kept_below_the_lip_sync_or_muted_or_refused(worker, card):
    take = ["viseme_aa", "mouthSmileLeft", "eyeBlinkLeft"]  # a visemes key, another mouth key, an eye key
    scene, ob = open_head("mh_talkinghead_head.blend")
    key = ob.data.shape_keys
    _own_action(key, "Take 001", take)
    with pytest.raises(EditError, match="action 'Take 001' keys mouthSmileLeft, viseme_aa, which would play over the "
                                        "lip sync; run with --existing-animation keep"):
        bl.run(scene, [ob], str(DEMO_AUDIO), worker, card=card, existing_animation="refuse")
    assert not key.animation_data.nla_tracks and [a.name for a in bpy.data.actions] == ["Take 001"]

    report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card)  # keep, the default
    ad = key.animation_data
    assert ad.action is None and [t.name for t in ad.nla_tracks] == ["Take 001", "Oris"]  # the take below Oris
    assert any("moved to the NLA track 'Take 001'" in n and "Ctrl+Z" in n for n in report.notes)
    scene.frame_set(30)
    assert key.key_blocks["eyeBlinkLeft"].value == pytest.approx(1.0)  # the take's eyes play on
    assert key.key_blocks["mouthSmileLeft"].value == pytest.approx(0.0)  # its mouth does not leak in
    opened = 0.0
    for f in range(1, int(report.end_frame), 5):
        scene.frame_set(f)
        opened = max(opened, key.key_blocks["viseme_aa"].value)
    assert opened > 0.5

    scene, ob = open_head("mh_talkinghead_head.blend")
    key = ob.data.shape_keys
    _own_action(key, "Take 001", take)
    report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card, existing_animation="mute")
    assert key.animation_data.nla_tracks["Take 001"].mute
    scene.frame_set(30)
    assert key.key_blocks["eyeBlinkLeft"].value == pytest.approx(0.0)

    scene, ob = open_head("mh_talkinghead_head.blend")
    key = ob.data.shape_keys
    _own_action(key, "Blink", ["eyeBlinkLeft"])  # no mouth key: nothing to move
    report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card)
    assert key.animation_data.action.name == "Blink" and not any("moved" in n for n in report.notes)


def test_keys_that_rest_above_zero_stay_at_rest_unless_driven(worker, card):
    scene, ob = open_head("mh_talkinghead_head.blend")
    key = ob.data.shape_keys
    key.key_blocks["mouthSmileLeft"].value = 0.3  # a glTF's default weight
    key.key_blocks["browInnerUp"].value = 0.4  # not a mouth key: left alone
    report = bl.run(scene, [ob], str(DEMO_AUDIO), worker, start_frame=1, card=card)
    for f in (1, 40, int(report.end_frame)):
        scene.frame_set(f)
        assert key.key_blocks["mouthSmileLeft"].value == pytest.approx(0.3)
        assert key.key_blocks["browInnerUp"].value == pytest.approx(0.4)
    bl.run(scene, [ob], str(DATA / "bilabials_slt.flac"), worker, start_frame=400, card=card)  # a second clip
    scene.frame_set(420)
    assert key.key_blocks["mouthSmileLeft"].value == pytest.approx(0.3)  # remembered, not read back as keyed


def test_recognized_words_are_kept_in_a_text_to_correct_and_use_as_the_transcript():
    """The artist's loop: recognize, read the words in the Text Editor, fix a misheard word, run again."""
    import oris


    oris.register()
    try:
        scene, ob = open_head("mh_talkinghead_head.blend")
        ob.select_set(True)
        bpy.context.view_layer.objects.active = ob
        s = scene.oris_lipsync
        s.audio_path, s.transcript_source = str(DATA / "bilabials_slt.flac"), "RECOGNIZE"
        assert bpy.ops.oris.lipsync() == {"FINISHED"}
        assert s.status.endswith("recognized mode"), s.status
        text = bpy.data.texts["bilabials_slt.flac words"]
        assert s.recognized_text == text
        heard = text.as_string().split()
        assert "maple" in heard and "puppy" in heard, heard
        text.clear()
        text.write("Bob " + " ".join(heard[1:]))  # whatever it heard first, the artist knows it was "Bob"
        assert bpy.ops.oris.use_words() == {"FINISHED"}
        assert s.status.endswith("transcript mode") and s.transcript_block == text, s.status
        key, closed = ob.data.shape_keys, 0.0
        start = scene.frame_current
        for f in range(start, start + 12):  # "Bob": the lips close at its b's, within the first half second
            scene.frame_set(f)
            closed = max(closed, key.key_blocks["viseme_PP"].value)
        assert closed > 0.9, closed
        s.transcript_source = "RECOGNIZE"  # a new run replaces Oris's own text, and only that
        assert bpy.ops.oris.lipsync() == {"FINISHED"}
        assert [t.name for t in bpy.data.texts] == ["bilabials_slt.flac words"]
    finally:
        oris.unregister()
