"""`python -m oris lipsync` with the pip bpy: one line, batches, partial failure, never overwriting input."""

import hashlib
import json
import sys

import pytest

pytest.importorskip("bpy")

from . import procs  # noqa: E402
from .conftest import DATA, DEMO_AUDIO, REPO  # noqa: E402

HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"


def oris(*args, cwd=None):
    return procs.run([sys.executable, "-m", "oris", "lipsync", *args], timeout=600, cwd=cwd)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strips_in(blend):
    script = ("import bpy, json, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[-1]); "
              "k = bpy.data.objects['MakeHuman_head'].data.shape_keys; "
              "print('STRIPS', json.dumps([[s.name, s.frame_start] for t in k.animation_data.nla_tracks for s in t.strips]))")
    out = procs.run([sys.executable, "-c", script, blend], timeout=120).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("STRIPS"))[7:])


def test_one_line_writes_a_new_file_and_leaves_the_input_alone(tmp_path):
    before = digest(HEAD)
    out = tmp_path / "shot.blend"
    result = oris("--blend", HEAD, "--object", "MakeHuman_head", "--audio", DEMO_AUDIO, "--start-frame", 25, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "[1/1] speech.flac" in result.stderr and "1 written, 0 failed" in result.stderr
    assert digest(HEAD) == before
    assert strips_in(out) == [["speech.flac", 25.0]]


def test_batch_reports_each_row_and_keeps_the_good_ones(tmp_path):
    manifest = tmp_path / "lines.csv"
    manifest.write_text(
        "blend,object,audio,start_frame,output\n"
        f"{HEAD},MakeHuman_head,{DEMO_AUDIO},1,out/shot.blend\n"
        f"{HEAD},NoSuchFace,{DEMO_AUDIO},1,out/bad.blend\n"
        f"{HEAD},MakeHuman_head,{DATA / 'bilabials_slt.flac'},600,out/shot.blend\n"
        f"{HEAD},MakeHuman_head,missing.wav,1,out/missing.blend\n")
    result = oris("--batch", manifest)
    assert result.returncode == 1, result.stderr
    assert "[2/4] FAILED" in result.stderr and "no object named 'NoSuchFace'" in result.stderr
    assert "[4/4] FAILED" in result.stderr and "audio file not found" in result.stderr
    assert "2 written, 2 failed" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shot.blend", "shot.blend.oris-done"]  # its record
    assert sorted(strips_in(tmp_path / "out" / "shot.blend")) == [["bilabials_slt.flac", 600.0], ["speech.flac", 1.0]]


def test_json_manifest_and_output_folder(tmp_path):
    manifest = tmp_path / "lines.json"
    manifest.write_text(json.dumps([{"blend": str(HEAD), "object": "MakeHuman_head", "audio": str(DEMO_AUDIO)}]))
    result = oris("--batch", manifest, "-o", tmp_path / "renders")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "renders" / "mh_talkinghead_head_speech.blend").exists()


def test_bad_usage_is_a_clear_message(tmp_path):
    result = oris("--blend", HEAD, "--audio", DEMO_AUDIO)
    assert result.returncode == 2 and "lipsync needs --object, -o" in result.stderr
    (tmp_path / "m.csv").write_text("blend,audio\nx.blend,y.wav\n")
    result = oris("--batch", tmp_path / "m.csv", "-o", tmp_path)
    assert result.returncode == 2 and "missing object" in result.stderr
    result = oris("--blend", HEAD, "--object", "MakeHuman_head", "--audio", DEMO_AUDIO, "-o", HEAD)
    assert result.returncode == 2 and "never writes over an input" in result.stderr


def test_a_custom_mapping_saved_as_json_overrides_detection_headless(tmp_path):
    from oris.core.rigs import PRESETS, Preset

    oculus = PRESETS["oculus"]
    poses = {v: dict(p) for v, p in oculus.poses.items()}
    poses["PP"] = {"mouthClose": 1.0}  # the artist's closed mouth is the ARKit key
    mapping = tmp_path / "mine.json"
    mapping.write_text(Preset("mine", "Mine", poses, oculus.extras).to_json())
    out = tmp_path / "shot.blend"
    result = oris("--blend", HEAD, "--object", "MakeHuman_head", "--audio", DATA / "bilabials_slt.flac",
                  "--preset", mapping, "-o", out)
    assert result.returncode == 0, result.stderr
    script = ("import bpy, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[-1]); "
              "k = bpy.data.objects['MakeHuman_head'].data.shape_keys; s = k.animation_data.nla_tracks['Oris'].strips[0]; "
              "bag = s.action.layers[0].strips[0].channelbag(s.action_slot); "
              "print('MOVES', sorted(f.data_path.split(chr(34))[1] for f in bag.fcurves "
              "if len({round(p.co[1], 3) for p in f.keyframe_points}) > 1))")
    shown = procs.run([sys.executable, "-c", script, out], timeout=120).stdout
    moves = next(line for line in shown.splitlines() if line.startswith("MOVES"))
    assert "'mouthClose'" in moves and "'viseme_PP'" not in moves
    bad = oris("--blend", HEAD, "--object", "MakeHuman_head", "--audio", DEMO_AUDIO, "--preset", DATA / "music.flac.json",
               "-o", tmp_path / "x.blend")
    assert bad.returncode == 2 and "cannot read the preset" in bad.stderr
