"""The sequencer as the scene's dialogue: strips matched to characters (no bpy), then a real scene with two heads
and four sound strips through the panel's operator and the command line."""

import sys

import pytest

from oris.core.dialogue import SoundStrip, match_lines, parse_channel_map

from . import procs
from .conftest import DATA


def strip(name, channel, start, **kw):
    return SoundStrip(name, channel, f"/audio/{name}.wav", start, **kw)


def test_strips_are_matched_by_name_then_channel_and_the_rest_said_so():
    strips = [strip("Anna:line_02", 2, 300), strip("anna: line_01", 2, 10), strip("Ben:x", 5, 50),
              strip("take_7", 4, 100), strip("music", 1, 1), strip("Anna:muted", 2, 400, muted=True),
              strip("Carl:hello", 2, 500)]
    lines, notes = match_lines(strips, ["Anna", "Ben", "Lamp"], {4: "Ben", 5: "Anna"})
    assert [(line.strip.name, line.character) for line in lines] == [
        ("anna: line_01", "Anna"), ("Ben:x", "Anna"), ("take_7", "Ben"), ("Anna:line_02", "Anna")]
    joined = " | ".join(notes)
    assert "'music' (channel 1): it names no character" in joined and "--strip-channel" in joined
    assert "'Carl:hello' (channel 2): its name says 'Carl', which is not an object here" in joined
    assert "'Anna:muted': muted, left out" in joined


def test_channel_maps_are_checked():
    assert parse_channel_map(["3=Anna", " 4 = Ben Two "]) == {3: "Anna", 4: "Ben Two"}
    with pytest.raises(ValueError, match="'Anna' is not CHANNEL=OBJECT"):
        parse_channel_map(["Anna"])


# ------------------------------------------------------------------------------ a real scene (bpy)

LINES = [("MakeHuman_head:hello", 2, 1, DATA / "bilabials_slt.flac"),
         ("Head B:bonjour", 3, 1, DATA / "languages" / "fr_asterisk.flac"),
         ("take_3", 4, 200, DATA / "languages" / "es_asterisk.flac"),  # channel 4: Head B's, by the mapping
         ("MakeHuman_head:again", 2, 300, DATA / "languages" / "it_asterisk.flac")]


def dialogue_scene():
    bpy = pytest.importorskip("bpy")
    from oris.blender.clips import sound_strips

    from .test_clips import two_heads

    scene, a, b = two_heads()
    scene.frame_end = 600
    scene.sequence_editor_create()
    for name, channel, start, path in LINES:
        sound_strips(scene).new_sound(name, str(path), channel, start)
    sound_strips(scene).new_sound("music", str(DATA / "music.flac"), 6, 1)
    return bpy, scene, a, b


def strips_of(ob):
    ad = ob.data.shape_keys.animation_data
    return sorted((int(s.frame_start), s.name) for t in ad.nla_tracks for s in t.strips) if ad else []


def check_scene(bpy, scene, a, b):
    from oris.blender.clips import sound_strips

    assert [s[0] for s in strips_of(a)] == [1, 300] and [s[0] for s in strips_of(b)] == [1, 200]
    assert sorted(s.name for s in sound_strips(scene)) == sorted([n for n, *_ in LINES] + ["music"]), "no duplicates"
    key_a = a.data.shape_keys
    scene.frame_set(150)  # between A's lines: A rests while nothing of its own plays
    assert max(kb.value for kb in key_a.key_blocks if kb.name.startswith("viseme_") and kb.name != "viseme_sil") < 0.05
    opened = 0.0
    for f in range(300, 340):
        scene.frame_set(f)
        opened = max(opened, key_a.key_blocks["viseme_aa"].value, key_a.key_blocks["viseme_E"].value)
    assert opened > 0.3, "A's second line animates A at its own frame"


def test_the_panel_lip_syncs_every_strip_on_its_character(worker):
    import oris

    bpy, scene, a, b = dialogue_scene()
    oris.register()
    try:
        row = scene.oris_lipsync.channels.add()
        row.channel, row.character = 4, b
        scene.oris_lipsync.transcript_source = "NONE"
        assert bpy.ops.oris.lipsync_dialogue() == {"FINISHED"}
        assert scene.oris_lipsync.status.startswith("4 lines on 2 face(s)"), scene.oris_lipsync.status
        check_scene(bpy, scene, a, b)
    finally:
        oris.unregister()


def test_the_command_line_lip_syncs_the_scene_strips(tmp_path):
    bpy, scene, a, b = dialogue_scene()
    shot, out = tmp_path / "shot.blend", tmp_path / "out.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    result = procs.run([sys.executable, "-m", "oris", "lipsync", "--blend", str(shot), "--scene-strips",
                        "--strip-channel", "4=Head B", "--audio-only", "-o", str(out)], timeout=600)
    assert result.returncode == 0, result.stderr
    assert "4 of 4 lines written" in result.stderr and "'music' (channel 6): it names no character" in result.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    check_scene(bpy, scene, bpy.data.objects["MakeHuman_head"], bpy.data.objects["Head B"])


def test_scene_strips_without_lines_is_a_clear_error(tmp_path):
    bpy = pytest.importorskip("bpy")
    from .test_clips import two_heads

    two_heads()
    shot = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    result = procs.run([sys.executable, "-m", "oris", "lipsync", "--blend", str(shot), "--scene-strips",
                        "-o", str(tmp_path / "out.blend")], timeout=300)
    assert result.returncode == 2 and "no sound strip" in result.stderr and "--strip-channel" in result.stderr
    assert not (tmp_path / "out.blend").exists()
