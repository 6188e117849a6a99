"""Paths Oris stores in a .blend are relative to that .blend (//...) or absolute, never relative to the
working directory the command ran in: a shot opened from anywhere finds its sound."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import procs
from .conftest import DATA, REPO

HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"
needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the bpy module")

# prints, one a line: the stored path, the path it resolves to, and whether that is a file
READ_STRIP = """
import os, sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
strips = [s for s in bpy.context.scene.sequence_editor.strips if s.type == "SOUND"]
assert len(strips) == 1, [s.name for s in strips]
stored = strips[0].sound.filepath
found = os.path.abspath(bpy.path.abspath(stored))
print("STORED", stored)
print("FOUND", found)
print("ISFILE", os.path.isfile(found))
"""


def run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """In a session of its own, killed with everything it started if it overruns (tests/procs.py)."""
    return procs.run(cmd, cwd=cwd, timeout=timeout)


def read_strip(shot: Path, cwd: Path) -> dict[str, str]:
    result = run([sys.executable, "-c", READ_STRIP, str(shot)], cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("STORED", "FOUND", "ISFILE")))


@needs_bpy
@pytest.mark.parametrize("output", ["out/shot.blend", "../renders/deep/shot.blend"])
def test_a_shot_written_from_the_audios_folder_finds_its_sound_from_anywhere(tmp_path, output):
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    (tmp_path / "rigs").mkdir()
    shutil.copy(HEAD, tmp_path / "rigs" / "head.blend")
    shutil.copy(DATA / "bilabials_slt.flac", audio_dir / "a.flac")
    env_cmd = [sys.executable, "-m", "oris", "lipsync", "--blend", "../rigs/head.blend", "--object", "MakeHuman_head",
               "--audio", "a.flac", "-o", output, "--audio-only", "-q"]
    result = run(env_cmd, audio_dir, timeout=600)
    assert result.returncode == 0, result.stderr
    shot = (audio_dir / output).resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    strip = read_strip(shot, elsewhere)
    stored = strip["STORED"]
    assert stored.startswith("//") or os.path.isabs(stored), f"stored relative to the working folder: {stored!r}"
    assert strip["ISFILE"] == "True", strip
    assert os.path.samefile(strip["FOUND"], audio_dir / "a.flac")
    # the shot and its audio move together: the path is relative to the .blend
    assert stored.startswith("//"), stored
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path, moved, ignore=shutil.ignore_patterns("moved"))
    strip = read_strip(moved / shot.relative_to(tmp_path), elsewhere)
    assert os.path.samefile(strip["FOUND"], moved / "audio" / "a.flac")


@needs_bpy
def test_paths_the_artists_file_already_had_are_kept_pointing_at_their_files(tmp_path):
    """A `//` path already in the input (a texture beside the rig) still finds its file from the output's folder,
    and an absolute one is left as it was."""
    (tmp_path / "rigs" / "tex").mkdir(parents=True)
    (tmp_path / "audio").mkdir()
    shutil.copy(DATA / "bilabials_slt.flac", tmp_path / "audio" / "a.flac")
    shutil.copy(DATA / "music.flac", tmp_path / "rigs" / "tex" / "room.flac")
    shutil.copy(DATA / "german_espeak.flac", tmp_path / "fixed.flac")
    make = ("import sys, bpy; bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False); "
            "s = bpy.data.sounds.load(sys.argv[2]); s.filepath = '//tex/room.flac'; s.use_fake_user = True; "
            "t = bpy.data.sounds.load(sys.argv[3]); t.use_fake_user = True; "
            "bpy.ops.wm.save_as_mainfile(filepath=sys.argv[4], relative_remap=False)")
    made = run([sys.executable, "-c", make, str(HEAD), str(tmp_path / "rigs" / "tex" / "room.flac"),
                str(tmp_path / "fixed.flac"), str(tmp_path / "rigs" / "head.blend")], tmp_path, timeout=300)
    assert made.returncode == 0, made.stderr
    result = run([sys.executable, "-m", "oris", "lipsync", "--blend", "rigs/head.blend", "--object", "MakeHuman_head",
                  "--audio", "audio/a.flac", "-o", "out/deep/shot.blend", "--audio-only", "-q"], tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    check = ("import os, sys, bpy; bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False); "
             "[print('SOUND', s.name, s.filepath, os.path.isfile(bpy.path.abspath(s.filepath))) for s in bpy.data.sounds]")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = run([sys.executable, "-c", check, str(tmp_path / "out" / "deep" / "shot.blend")], elsewhere, timeout=300)
    assert listed.returncode == 0, listed.stderr
    sounds = {parts[1]: parts[2:] for parts in (ln.split(" ") for ln in listed.stdout.splitlines()) if parts[0] == "SOUND"}
    assert sounds["room.flac"] == ["//../../rigs/tex/room.flac", "True"]
    assert sounds["fixed.flac"] == [str(tmp_path / "fixed.flac"), "True"]
    assert sounds["a.flac"][1] == "True" and sounds["a.flac"][0].startswith("//")
