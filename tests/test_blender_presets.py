"""Every rig preset, end to end on the real bpy: a rig carrying that convention's shape-key names
speaks a clip, and at each p/b/m (the TTS voice's own phone timings) the preset's closed-mouth
pose is reached, read back by evaluating the shape keys with frame_set."""

import shutil

import numpy as np
import pytest
import soundfile as sf

bpy = pytest.importorskip("bpy")

from oris.blender import lipsync as bl  # noqa: E402
from oris.core.align import Transcript  # noqa: E402
from oris.core.rigs import PRESETS  # noqa: E402
from oris.engine.model import find_model  # noqa: E402

from .conftest import DATA  # noqa: E402
from .test_cli import BILABIAL_TEXT  # noqa: E402

FPS = 24
LEAD = 0.06


def bilabials() -> list[tuple[float, float]]:
    out, start = [], 0.0
    for token in (DATA / "bilabials_slt.phones").read_text().split():
        phone, end = token.rsplit(":", 1)
        if phone in ("p", "b", "m"):
            out.append((start, float(end)))
        start = float(end)
    return out


def rig_with_keys(names: list[str], fps: float = FPS):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=8, y_subdivisions=8)
    ob = bpy.context.active_object
    ob.name = "Face"
    ob.shape_key_add(name="Basis")
    for i, name in enumerate(names):
        kb = ob.shape_key_add(name=name, from_mix=False)
        kb.data[i % len(kb.data)].co.z += 0.01
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = (int(fps), 1.0) if fps == int(fps) else (round(fps * 1.001), 1.001)
    return scene, ob


def peak_closure_at_each_bilabial(scene, key, closed: dict[str, float], fps: float) -> list[tuple[float, float, float]]:
    """(start, end, how far the closed-mouth pose got) for each p/b/m, reading frames from the lead
    before the phone to 40 ms after it; frame f shows time (f - 1) / fps."""
    main = max(closed, key=closed.get)
    out = []
    for start, end in bilabials():
        frames = range(int(np.floor((start - LEAD - 0.04) * fps)) + 1, int(np.ceil((end + 0.04) * fps)) + 2)
        peak = 0.0
        for f in frames:
            scene.frame_set(f)
            peak = max(peak, key.key_blocks[main].value / closed[main])
        out.append((start, end, peak))
    return out


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_closes_the_mouth_at_every_bilabial(preset, worker):
    p = PRESETS[preset]
    names = sorted(set(p.keys) | {k for pose in p.extras.values() for k in pose})
    scene, ob = rig_with_keys(names)
    report = bl.run(scene, [ob], str(DATA / "bilabials_slt.flac"), worker, start_frame=1, preset="auto",
                    transcript=Transcript(BILABIAL_TEXT), card=find_model().card)
    assert report.curves == len(p.keys)
    key = ob.data.shape_keys
    for start, end, peak in peak_closure_at_each_bilabial(scene, key, p.poses["PP"], FPS):
        assert peak >= 0.95, f"{preset}: mouth not closed for the bilabial at {start:.2f}-{end:.2f} s ({peak:.2f})"
    # and it opens in between: some open-vowel key of the preset goes well above zero
    open_key = max(p.poses["aa"], key=p.poses["aa"].get)
    values = []
    for f in range(1, int(report.end_frame), 2):
        scene.frame_set(f)
        values.append(key.key_blocks[open_key].value)
    assert max(values) >= 0.5 * p.poses["aa"][open_key]


@pytest.mark.parametrize("fps", [24000 / 1001, 30000 / 1001, 60.0])
def test_fractional_and_high_frame_rates_close_the_mouth_on_the_right_frames(fps, worker):
    p = PRESETS["oculus"]
    scene, ob = rig_with_keys(sorted(p.keys), fps)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(fps, rel=1e-6)
    report = bl.run(scene, [ob], str(DATA / "bilabials_slt.flac"), worker, start_frame=1,
                    transcript=Transcript(BILABIAL_TEXT), card=find_model().card)
    duration = 1.0 + report.end_frame - report.start_frame
    assert duration / fps == pytest.approx(len(sf.read(DATA / "bilabials_slt.flac")[0]) / 16000, abs=1.5 / fps)
    peaks = peak_closure_at_each_bilabial(scene, ob.data.shape_keys, p.poses["PP"], fps)
    assert len(peaks) >= 5 and all(peak >= 0.95 for _s, _e, peak in peaks), peaks
    # and nowhere far from a bilabial is the mouth held closed
    far = [f for f in range(1, int(report.end_frame))
           if all(abs((f - 1) / fps - (s + e) / 2) > 0.25 for s, e, _p in peaks)]
    closed_far = 0
    for f in far:
        scene.frame_set(f)
        closed_far += ob.data.shape_keys.key_blocks["viseme_PP"].value > 0.95
    assert closed_far <= 0.02 * len(far)


def test_custom_mapping_is_edited_saved_loaded_and_used(tmp_path):
    import oris

    oris.register()
    try:
        blend = tmp_path / "head.blend"
        shutil.copy(DATA.parent.parent / "demo" / "heads" / "mh_talkinghead_head.blend", blend)
        bpy.ops.wm.open_mainfile(filepath=str(blend))
        scene = bpy.context.scene
        ob = bpy.data.objects["MakeHuman_head"]
        ob.select_set(True)
        bpy.context.view_layer.objects.active = ob
        s = scene.oris_lipsync
        assert bpy.ops.oris.mapping_from_detected() == {"FINISHED"}
        rows = [(r.target, r.key, r.weight) for r in s.mapping]
        assert ("PP", "viseme_PP", 1.0) in rows and ("aa", "viseme_aa", 1.0) in rows
        for r in s.mapping:  # the artist's edit: their closed mouth is the ARKit mouthClose key
            if r.target == "PP":
                r.key = "mouthClose"
        before = blend.read_bytes()
        with pytest.raises(RuntimeError, match="never writes over an input"):  # the open file is an input
            bpy.ops.oris.mapping_save(filepath=str(blend))
        assert blend.read_bytes() == before
        assert bpy.ops.oris.mapping_save(filepath=str(tmp_path / "mine.json")) == {"FINISHED"}
        s.mapping.clear()
        assert bpy.ops.oris.mapping_load(filepath=str(tmp_path / "mine.json")) == {"FINISHED"}
        assert s.preset == "custom"
        assert ("PP", "mouthClose", 1.0) in [(r.target, r.key, r.weight) for r in s.mapping]
        s.audio_path, s.transcript, s.transcript_source = str(DATA / "bilabials_slt.flac"), BILABIAL_TEXT, "TEXT"
        assert bpy.ops.oris.lipsync() == {"FINISHED"}
        key = ob.data.shape_keys
        strip = key.animation_data.nla_tracks["Oris"].strips[0]
        curves = {fc.data_path: fc for fc in strip.action.layers[0].strips[0].channelbag(strip.action_slot).fcurves}
        moves = {p for p, fc in curves.items() if len({round(k.co[1], 4) for k in fc.keyframe_points}) > 1}
        # the mapping drives mouthClose; the rig's own viseme_PP is only held at rest with the other mouth keys
        assert 'key_blocks["mouthClose"].value' in moves and 'key_blocks["viseme_PP"].value' not in moves
        peak = 0.0
        for f in range(1, 100):
            scene.frame_set(f)
            peak = max(peak, key.key_blocks["mouthClose"].value)
        assert peak > 0.95
        s.mapping.clear()
        with pytest.raises(RuntimeError, match="maps no viseme"):  # an empty mapping: a message, nothing written
            bpy.ops.oris.lipsync()
    finally:
        oris.unregister()
