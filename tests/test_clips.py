"""Clips in a studio shot (real bpy, real rigs, the real worker): two clips with one file name, re-takes that
replace or stack, and the sequencer left alone when asked."""

import os
import shutil
import sys

import pytest

from . import procs

bpy = pytest.importorskip("bpy")

from oris.blender import lipsync as bl  # noqa: E402
from oris.blender.clips import sound_strips  # noqa: E402
from oris.blender.shapekeys import TRACK_NAME  # noqa: E402
from oris.engine.model import find_model  # noqa: E402

from .conftest import DATA, DEMO_AUDIO, REPO  # noqa: E402

HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"


@pytest.fixture(scope="module")
def card():
    return find_model().card


def two_heads():
    """The demo head and a full copy of it (its own mesh and shape keys), side by side."""
    bpy.ops.wm.open_mainfile(filepath=str(HEAD))
    scene = bpy.context.scene
    a = next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)
    b = a.copy()
    b.data = a.data.copy()
    b.name = "Head B"
    b.location.x += 0.4
    scene.collection.objects.link(b)
    assert a.data.shape_keys != b.data.shape_keys
    return scene, a, b


def oris_sounds(scene):
    return sorted((s.name, s.sound.filepath) for s in sound_strips(scene) if s.type == "SOUND")


def oris_strips(ob):
    ad = ob.data.shape_keys.animation_data
    return [(t.name, s.name, int(s.frame_start)) for t in ad.nla_tracks for s in t.strips] if ad else []


def test_two_clips_with_one_file_name_in_two_folders_keep_their_own_sound_and_words(tmp_path, worker, card):
    """A/line_01 on one head, B/line_01 on another: nothing of A's is touched by B's run."""
    (tmp_path / "A").mkdir(), (tmp_path / "B").mkdir()
    first = shutil.copy(DATA / "bilabials_slt.flac", tmp_path / "A" / "line_01.flac")
    second = shutil.copy(DATA / "languages" / "fr_asterisk.flac", tmp_path / "B" / "line_01.flac")
    scene, a, b = two_heads()
    one = bl.run(scene, [a], str(first), worker, start_frame=1, card=card)
    two = bl.run(scene, [b], str(second), worker, start_frame=1, card=card)
    assert oris_strips(a) == [(TRACK_NAME, "line_01.flac", 1)]
    assert oris_strips(b) == [(TRACK_NAME, "B/line_01.flac", 1)]
    sounds = oris_sounds(scene)
    assert [name for name, _ in sounds] == ["B/line_01.flac", "line_01.flac"], sounds
    assert {os.path.realpath(bpy.path.abspath(p)) for _, p in sounds} == {os.path.realpath(first), os.path.realpath(second)}
    texts = {t.name: t.as_string() for t in bpy.data.texts}
    assert set(texts) == {one.words_text, two.words_text} and one.words_text != two.words_text
    assert "maple" in texts[one.words_text].lower()  # the bilabials line: "... maple ... puppy ..."
    assert "maple" not in texts[two.words_text].lower() and "appel" in texts[two.words_text].lower()
    # running A again replaces A's own strip, sound and words, and still leaves B's alone
    bl.run(scene, [a], str(first), worker, start_frame=1, card=card)
    assert oris_sounds(scene) == sounds and len(bpy.data.texts) == 2
    assert oris_strips(a) == [(TRACK_NAME, "line_01.flac", 1)] and oris_strips(b) == [(TRACK_NAME, "B/line_01.flac", 1)]


def test_a_retake_that_overlaps_replaces_the_old_clip_and_its_sound(tmp_path, worker, card):
    scene, a, _b = two_heads()
    old = bl.run(scene, [a], str(DEMO_AUDIO), worker, start_frame=1, card=card, recognize=False)
    later = bl.run(scene, [a], str(DATA / "music.flac"), worker, start_frame=int(old.end_frame) + 5, card=card,
                   recognize=False)  # a clip after it, not overlapping: it stays
    take = shutil.copy(DATA / "bilabials_slt.flac", tmp_path / "take_2.flac")
    report = bl.run(scene, [a], str(take), worker, start_frame=15, card=card, recognize=False)
    assert sorted(oris_strips(a)) == [(TRACK_NAME, "music.flac", int(later.start_frame)), (TRACK_NAME, "take_2.flac", 15)]
    assert [name for name, _ in oris_sounds(scene)] == ["music.flac", "take_2.flac"]  # the old audio is gone
    assert not any(act.name == old.action for act in bpy.data.actions)
    assert any("replaced Oris's clip 'speech.flac'" in n and "--keep-overlapping" in n for n in report.notes), report.notes
    # the mouth now plays the take alone: after the take ends, before the later clip, it rests
    key = a.data.shape_keys
    scene.frame_set(int(report.end_frame) + 20)
    assert max(kb.value for kb in key.key_blocks if kb.name.startswith("viseme_") and kb.name != "viseme_sil") < 0.05


def test_keep_overlapping_stacks_takes_on_their_own_tracks(tmp_path, worker, card):
    scene, a, _b = two_heads()
    bl.run(scene, [a], str(DEMO_AUDIO), worker, start_frame=1, card=card, recognize=False)
    take = shutil.copy(DATA / "bilabials_slt.flac", tmp_path / "take_2.flac")
    report = bl.run(scene, [a], str(take), worker, start_frame=15, card=card, recognize=False, keep_overlapping=True)
    assert sorted(oris_strips(a)) == [(TRACK_NAME, "speech.flac", 1), (TRACK_NAME, "take_2.flac", 15)]
    tracks = a.data.shape_keys.animation_data.nla_tracks
    assert len(tracks) == 2 and tracks[1].strips[0].name == "take_2.flac"  # the newer take plays on top
    assert [name for name, _ in oris_sounds(scene)] == ["speech.flac", "take_2.flac"]
    assert not any("replaced" in n for n in report.notes)


def test_no_sound_leaves_the_sequencer_alone_and_an_artist_strip_is_not_doubled(worker, card):
    scene, a, b = two_heads()
    bl.run(scene, [a], str(DEMO_AUDIO), worker, start_frame=1, card=card, recognize=False, add_sound=False)
    assert scene.sequence_editor is None or not list(sound_strips(scene))
    scene.sequence_editor_create()
    sound_strips(scene).new_sound("dialogue", str(DEMO_AUDIO), 3, 30)  # the artist's own edit
    report = bl.run(scene, [b], str(DEMO_AUDIO), worker, start_frame=30, card=card, recognize=False)
    assert [s.name for s in sound_strips(scene)] == ["dialogue"]
    assert any("already plays this clip" in n for n in report.notes), report.notes


def oris(*args):
    return procs.run([sys.executable, "-m", "oris", *map(str, args)], timeout=600)


def test_command_line_keep_overlapping_and_no_sound(tmp_path):
    out1, out2 = tmp_path / "one.blend", tmp_path / "two.blend"
    common = ("--object", "MakeHuman_head", "--audio-only", "--no-sound")
    first = oris("lipsync", "--blend", HEAD, "--audio", DEMO_AUDIO, "--start-frame", "1", *common, "-o", out1)
    assert first.returncode == 0, first.stderr
    take = shutil.copy(DATA / "bilabials_slt.flac", tmp_path / "take_2.flac")
    second = oris("lipsync", "--blend", out1, "--audio", take, "--start-frame", "20", "--keep-overlapping", *common,
                  "-o", out2)
    assert second.returncode == 0, second.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out2))
    ob = bpy.data.objects["MakeHuman_head"]
    assert sorted(oris_strips(ob)) == [(TRACK_NAME, "speech.flac", 1), (TRACK_NAME, "take_2.flac", 20)]
    assert bpy.context.scene.sequence_editor is None or not list(sound_strips(bpy.context.scene))
