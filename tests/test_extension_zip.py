"""The built extension zip installs into the real bpy through the extension API, and works."""

import os
import sys

import pytest

pytest.importorskip("bpy")

from . import procs  # noqa: E402
from .conftest import DEMO_AUDIO, REPO  # noqa: E402

SCRIPT = """
import sys, bpy
zip_path, head, audio = sys.argv[-3:]
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True) == {"FINISHED"}
assert "bl_ext.user_default.oris" in sys.modules
from bl_ext.user_default.oris.core.espeak import word_phonemes  # the bundled espeak-ng, inside Blender
assert word_phonemes("bonjour", "fr")[0] == "b"
from bl_ext.user_default.oris.core.languages import japanese_words  # the bundled Janome reads kanji
assert japanese_words("毎晩")[0][1] == "マイバン"
bpy.ops.wm.open_mainfile(filepath=head)
ob = bpy.data.objects["MakeHuman_head"]
ob.select_set(True)
bpy.context.view_layer.objects.active = ob
bpy.context.scene.oris_lipsync.audio_path = audio
assert bpy.ops.oris.lipsync() == {"FINISHED"}
key = ob.data.shape_keys
assert key.animation_data.nla_tracks["Oris"].strips[0].name == "speech.flac"
assert "speech.flac words" in bpy.data.texts  # the bundled recognizer heard the words (Words: Recognize)
peak = 0.0
for f in range(1, 480, 2):
    bpy.context.scene.frame_set(f)
    peak = max(peak, key.key_blocks["viseme_aa"].value)
assert peak > 0.5, peak
# the contact operator, through the installed extension: a second copy of the head faces the first
other = ob.copy()
other.data = ob.data.copy()
bpy.context.scene.collection.objects.link(other)
other.location, other.rotation_euler = (0.0, -0.46, 0.0), (0.0, 0.0, 3.14159265)
contact = bpy.context.scene.oris_contact
contact.head_a, contact.head_b, contact.contact_frame = ob, other, 640  # after the line is spoken
assert bpy.ops.oris.contact() == {"FINISHED"}, contact.status
assert contact.status.startswith("Contact at frame 640"), contact.status
assert other.animation_data.nla_tracks["Oris Contact"].strips[0].frame_start == 616
assert bpy.ops.oris.contact_worst_frame() == {"FINISHED"}
print("EXTENSION-OK", sys.modules["bl_ext.user_default.oris"].__file__)
"""


def test_built_zip_installs_and_runs_a_lip_sync(tmp_path):
    dist = tmp_path / "dist"
    build = procs.run([sys.executable, REPO / "build.py", "--platform", "linux-x64", "--out", dist], timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    zips = list(dist.glob("oris-*-linux_x64.zip"))
    assert len(zips) == 1
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    env.pop("ORIS_MODEL", None)
    run = procs.run([sys.executable, "-c", SCRIPT, zips[0], REPO / "demo" / "heads" / "mh_talkinghead_head.blend", DEMO_AUDIO],
                    timeout=600, env=env, cwd=tmp_path)
    assert "EXTENSION-OK" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert str(tmp_path / "user" / "extensions") in run.stdout
