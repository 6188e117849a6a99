"""The output-safety rule (core.outputs) and the manifest reader (core.batch), without Blender."""

import json
import os

import pytest

from oris.core import outputs
from oris.core.manifest import ManifestError, read_manifest
from oris.core.outputs import Labelled, OutputError, check_outputs, save_with, write_text

COLUMNS = ("blend", "object", "audio", "start_frame", "output", "text")
REQUIRED = ("blend", "object", "audio")


def test_an_output_is_never_an_input_through_links_and_relative_paths(tmp_path, monkeypatch):
    audio = tmp_path / "line.wav"
    audio.write_bytes(b"RIFF")
    (tmp_path / "sub").mkdir()
    (tmp_path / "alias.json").symlink_to(audio)
    os.link(audio, tmp_path / "hard.json")
    monkeypatch.chdir(tmp_path / "sub")
    inputs = [Labelled("the audio", audio)]
    for path in ("../line.wav", str(tmp_path / "alias.json"), "../hard.json", "../sub/../line.wav"):
        with pytest.raises(OutputError, match="is an input"):
            check_outputs([Labelled("-o", outputs.Path(path))], inputs)
    check_outputs([Labelled("-o", tmp_path / "line.json")], inputs)


def test_outputs_that_collide_or_cannot_be_written_are_refused_before_any_work(tmp_path):
    a, b = Labelled("row 1", tmp_path / "x.json"), Labelled("row 2", tmp_path / "." / "x.json")
    with pytest.raises(OutputError, match="row 1 and row 2 are the same file"):
        check_outputs([a, b], [])
    with pytest.raises(OutputError, match="is a folder"):
        check_outputs([Labelled("-o", tmp_path)], [])
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_outputs([Labelled("-o", tmp_path / "file" / "x.json")], [])
    with pytest.raises(OutputError, match="not a regular file"):
        check_outputs([Labelled("-o", outputs.Path("/dev/null"))], [], regular_only=True)
    check_outputs([Labelled("-o", tmp_path / "new" / "deeper" / "x.json")], [])  # created when written
    assert not (tmp_path / "new").exists()


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    out = Labelled("-o", tmp_path / "x.json")
    write_text(out, "good\n")
    os.chmod(out.path, 0o640)

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text(out, "half")
    monkeypatch.undo()
    assert out.path.read_text() == "good\n" and os.listdir(tmp_path) == ["x.json"]
    write_text(out, "new\n")
    assert out.path.read_text() == "new\n" and (os.stat(out.path).st_mode & 0o777) == 0o640


def test_a_save_that_fails_part_way_leaves_nothing(tmp_path):
    out = Labelled("-o", tmp_path / "shot.blend")

    def save(path):
        with open(path, "wb") as f:
            f.write(b"BLENDER-half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="could not write -o .*no space left"):
        save_with(out, save)
    assert os.listdir(tmp_path) == []


def test_a_full_device_is_a_clear_error():
    with pytest.raises(OutputError, match="could not write -o /dev/full: no space left on the device"):
        write_text(Labelled("-o", outputs.Path("/dev/full")), "x" * 100000)


def test_bad_manifest_rows_fail_alone_with_their_line_numbers(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("blend,object,audio,start_frame,output,text\n"
                    "no commas here\n"
                    'a.blend,Face,"b.wav,1,o.blend\n'
                    "a.blend,Face,c.wav,1,o.blend,\"one line,\nand the next\"\n"
                    "\n"
                    'a.blend,Face,d.wav,1,o.blend,"x"y\n'
                    "a.blend,Face,e.wav,1,o.blend,t,extra\n"
                    "a.blend,Face,f.wav\n")
    rows = read_manifest(path, COLUMNS, REQUIRED)
    assert [(r.number, r.where) for r in rows] == [(1, "line 2"), (2, "line 3"), (3, "lines 4-5"), (4, "line 7"),
                                                    (5, "line 8"), (6, "line 9")]
    assert "missing object, audio" in rows[0].error
    assert "unclosed quote" in rows[1].error
    assert not rows[2].error and rows[2].fields["text"] == "one line,\nand the next"
    assert "not valid CSV" in rows[3].error
    assert "7 fields but the header names 6" in rows[4].error
    assert not rows[5].error and rows[5].fields["audio"] == "f.wav"


def test_json_entries_that_are_not_objects_fail_alone(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"blend": "a", "object": "F", "audio": "x.wav"}, ["a", "F", "x.wav"], 7,
                                {"blend": "a", "object": "F", "audio": "y.wav", "strat_frame": 3}]))
    rows = read_manifest(path, COLUMNS, REQUIRED)
    assert not rows[0].error
    assert "not an object" in rows[1].error and "not an object" in rows[2].error
    assert "unknown column strat_frame" in rows[3].error


@pytest.mark.parametrize("text,why", [("", "is empty"), ("[1, 2", "not valid JSON"), ("{}", "list of objects"),
                                      ("[]", "has no rows")])
def test_a_manifest_that_cannot_be_read_at_all_stops_the_batch(tmp_path, text, why):
    path = tmp_path / ("m.csv" if text == "" else "m.json")
    path.write_text(text)
    with pytest.raises(ManifestError, match=why):
        read_manifest(path, COLUMNS, REQUIRED)
