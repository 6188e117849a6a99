"""Issue 24: batches and farm jobs that never lose a row or report a false success. A test per defect; the
batches run the real CLI and worker (audio only, for speed), the farm runs the real `openjd`."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from oris.cli import build_parser, main
from oris.commands import visemes as visemes_command
from oris.core.outputs import Labelled as L
from oris.core.outputs import is_temporary, write_text
from oris.core.summary import RunIdentity, file_sha256, summary_json

from .conftest import DATA, REPO
from .procs import run

OPENJD = Path(sys.executable).with_name("openjd")


def oris(*args: object, cwd: Path | None = None, timeout: float = 300):
    return run([sys.executable, "-m", "oris", *map(str, args)], cwd=cwd, timeout=timeout)


def rows_of(path: Path) -> dict[int, str]:
    return {r["row"]: r["status"] for r in json.loads(path.read_text())["rows"]}


@pytest.fixture
def lines(tmp_path: Path) -> Path:
    for name in ("bilabials_slt.flac", "music.flac", "german_espeak.flac", "spanish_espeak.flac"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


# ---------------------------------------------------------- 2. stale task summaries never win the merge

def test_openjd_rerun_with_another_chunk_size_reports_the_row_that_now_fails(lines):
    manifest = lines / "lines.csv"
    manifest.write_text("audio\nbilabials_slt.flac\nmusic.flac\ngerman_espeak.flac\nspanish_espeak.flac\n")
    out = lines / "out"

    def job(chunk: int):
        return run([OPENJD, "run", REPO / "farm" / "openjd" / "visemes.yaml", "-p", f"Manifest={manifest}",
                    "-p", f"OutputDir={out}", "-p", f"ChunkSize={chunk}", "-p", "RowCount=4",
                    "-p", f"Python={sys.executable}", "-p", "Words=--audio-only"], cwd=lines, timeout=600)

    first = job(2)
    assert first.returncode == 0, first.stdout[-3000:]
    assert rows_of(out / "summary.json") == {1: "written", 2: "written", 3: "written", 4: "written"}
    (lines / "german_espeak.flac").write_bytes(b"not audio any more")  # row 3's audio changes
    second = job(3)
    assert second.returncode != 0  # the merge step ends with Oris's status: a row failed
    assert rows_of(out / "summary.json") == {1: "skipped", 2: "skipped", 3: "failed", 4: "skipped"}
    runs = [p for p in (out / "summaries").iterdir() if p.is_dir()]
    assert len(runs) == 2  # the earlier run's summaries (rows-3-4.json: row 3 written) are still there, unmerged


def test_summaries_of_two_runs_are_not_merged_unless_one_run_is_named(lines):
    manifest = lines / "lines.csv"
    manifest.write_text("audio\nbilabials_slt.flac\nmusic.flac\n")
    sha = file_sha256(manifest)
    parts = lines / "parts"
    parts.mkdir()
    (parts / "rows-1-2.json").write_text(summary_json(RunIdentity("visemes", "old", sha, "o" * 64),
                                                      [{"row": 1, "status": "written"}, {"row": 2, "status": "written"}]))
    (parts / "rows-1-1.json").write_text(summary_json(RunIdentity("visemes", "new", sha, "o" * 64),
                                                      [{"row": 1, "status": "failed", "reason": "bad audio"}]))
    mixed = oris("summary", parts, "--manifest", manifest)
    assert mixed.returncode == 2 and "come from different runs" in mixed.stderr and "rows-1-2.json" in mixed.stderr
    one = oris("summary", parts, "--manifest", manifest, "--run-id", "new", "-o", lines / "all.json")
    assert one.returncode == 2 and "1 of other runs left out" in one.stderr  # none written: 2
    assert rows_of(lines / "all.json") == {1: "failed", 2: "not run"}


def test_a_changed_manifest_is_refused_by_the_merge(lines):
    manifest = lines / "lines.csv"
    manifest.write_text("audio\nbilabials_slt.flac\n")
    part = lines / "part.json"
    part.write_text(summary_json(RunIdentity("visemes", "", file_sha256(manifest), "o" * 64),
                                 [{"row": 1, "status": "written"}]))
    manifest.write_text("audio\nmusic.flac\n")
    result = oris("summary", part, "--manifest", manifest)
    assert result.returncode == 2 and "changed since the tasks ran" in result.stderr


# ---------------------------------------------------------------- 3. summary -o never writes its inputs

def test_summary_never_overwrites_the_manifest(lines):
    manifest = lines / "lines.csv"
    manifest.write_text("audio\nbilabials_slt.flac\n")
    before = manifest.read_bytes()
    part = lines / "part.json"
    part.write_text(summary_json(RunIdentity("visemes", "", file_sha256(manifest), "o" * 64),
                                 [{"row": 1, "status": "written"}]))
    result = oris("summary", part, "-o", manifest, "--manifest", manifest)
    assert result.returncode == 2 and "is an input (--manifest" in result.stderr
    assert manifest.read_bytes() == before


# ---------------------------------------------------- 4. a row's output is never the job's merged summary

def test_a_line_named_summary_is_refused_and_the_merged_summary_stands(lines):
    shutil.copy(lines / "music.flac", lines / "summary.flac")
    manifest = lines / "lines.csv"
    manifest.write_text("audio\nbilabials_slt.flac\nsummary.flac\n")
    out = lines / "out"
    result = run([OPENJD, "run", REPO / "farm" / "openjd" / "visemes.yaml", "-p", f"Manifest={manifest}",
                  "-p", f"OutputDir={out}", "-p", "ChunkSize=1", "-p", "RowCount=2", "-p", f"Python={sys.executable}",
                  "-p", "Words=--audio-only"], cwd=lines, timeout=600)
    assert result.returncode != 0 and "where the job's merged summary goes" in result.stdout
    merged = json.loads((out / "summary.json").read_text())  # the merge, not a viseme file
    assert merged["oris_summary"] == 2 and [r["status"] for r in merged["rows"]] == ["written", "failed"]


# --------------------------------------------------- 6. a FIFO or a device fails its row, it never hangs

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_device_in_a_manifest_fails_its_row_at_once(lines):
    os.mkfifo(lines / "pipe.flac")
    (lines / "text.txt").unlink(missing_ok=True)
    os.mkfifo(lines / "text.txt")
    manifest = lines / "lines.csv"
    manifest.write_text("audio,text_file,output\npipe.flac,,a.json\n/dev/zero,,b.json\nmusic.flac,text.txt,c.json\n"
                        "bilabials_slt.flac,,d.json\n")
    t0 = time.monotonic()
    result = oris("visemes", "--batch", manifest, "-o", lines / "out", "--audio-only", "--summary", lines / "s.json",
                  timeout=120)
    assert time.monotonic() - t0 < 60
    assert result.returncode == 1 and rows_of(lines / "s.json") == {1: "failed", 2: "failed", 3: "failed", 4: "written"}
    assert "is a FIFO, not a regular file" in result.stderr and "is a device, not a regular file" in result.stderr


# ------------------------------------------------------------------- 7. a task reads only its own rows

def test_a_task_touches_no_file_of_another_rows(lines, monkeypatch):
    manifest = lines / "lines.csv"
    manifest.write_text("audio,output\n" + "".join(f"other{n}.flac,o{n}/x.json\n" for n in range(2000))
                        + "music.flac,mine.json\n")
    touched: list[str] = []
    for name in ("stat", "lstat", "open", "access"):
        real = getattr(os, name)

        def spy(path, *a, _real=real, **k):
            touched.append(os.fspath(path) if isinstance(path, (str, os.PathLike)) else "")
            return _real(path, *a, **k)

        monkeypatch.setattr(os, name, spy)
    args = build_parser().parse_args(["visemes", "--batch", str(manifest), "-o", str(lines / "out"),
                                      "--rows", "2001-2001"])
    args.fps = 100.0
    plan = visemes_command.read_lines(args, visemes_command.find_model())
    assert [ln.number for ln in plan.lines] == [2001] and not plan.lines[0].error
    assert not [p for p in touched if "other" in p or "/o1" in p]


# ------------------------------------------------------------------ 8. oris summary on malformed parts

@pytest.mark.parametrize("rows_text, code, message", [
    ('[{"row": Infinity, "status": "written"}]', 2, "not valid JSON"),
    ("[" * 100000 + "]" * 100000, 2, "nested too deeply"),
    ("[]", 2, "hold no rows"),
    ('[{"row": true, "status": "written"}]', 2, "entry 1 is not a row"),
    ('[{"row": 1, "status": "written"}', 2, "not valid JSON"),
])
def test_malformed_parts_are_named_and_never_a_traceback(tmp_path, rows_text, code, message, capsys):
    part = tmp_path / "part.json"
    head = '{"oris_summary": 2, "command": "visemes", "run": "", "manifest_sha256": null, "options_sha256": "o", "rows": '
    part.write_text(head + rows_text + "}")
    assert main(["summary", str(part)]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(part) in err and message in err and "Traceback" not in err


@pytest.mark.parametrize("status", [None, "done", 3])
def test_a_row_without_a_known_status_counts_as_failed(tmp_path, status, capsys):
    part = tmp_path / "part.json"
    row = {"row": 1} if status is None else {"row": 1, "status": status}
    part.write_text(summary_json(RunIdentity("visemes", "", None, "o" * 64), [row, {"row": 2, "status": "written"}]))
    assert main(["summary", str(part), "-o", str(tmp_path / "all.json")]) == 1
    assert rows_of(tmp_path / "all.json") == {1: "failed", 2: "written"}
    assert "no known status" in capsys.readouterr().err


def test_an_empty_folder_or_a_list_without_identity_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["summary", str(tmp_path / "empty")]) == 2
    assert "no summary found" in capsys.readouterr().err
    old = tmp_path / "old.json"
    old.write_text('[{"row": 1, "status": "written"}]')
    assert main(["summary", str(old)]) == 2
    assert "without a run identity" in capsys.readouterr().err


# -------------------------------------------------- 9. temporary files: never an output, swept at start

def test_temporary_files_match_no_output_pattern_and_stale_ones_are_swept(lines):
    out = lines / "out"
    out.mkdir()
    write_text(L("-o", out / "probe.json"), "{}\n")
    assert sorted(p.name for p in out.iterdir()) == ["probe.json"]  # the temporary was renamed away
    stale = [out / ".music.json.oris-tmp-0123abcd", out / ".x.json.oris-89abcdef.json"]  # this and earlier versions
    fresh = out / ".other.json.oris-tmp-fedcba98"  # another task may be writing it now
    for p in stale + [fresh]:
        p.write_text("half")
        assert is_temporary(p.name)
    for p in stale:
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    assert not is_temporary("music.json") and not is_temporary("summary.json")
    manifest = lines / "lines.csv"
    manifest.write_text("audio\nmusic.flac\n")
    result = oris("visemes", "--batch", manifest, "-o", out, "--audio-only", "--summary", out / "part.json")
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in stale) and fresh.exists()
    merged = oris("summary", out / "part.json")
    assert merged.returncode == 0


def test_a_stale_temporary_file_among_the_summaries_does_not_break_the_merge(lines):
    parts = lines / "parts"
    parts.mkdir()
    (parts / "rows-1-1.json").write_text(summary_json(RunIdentity("visemes", "", None, "o" * 64),
                                                      [{"row": 1, "status": "written"}]))
    (parts / ".rows-2-2.json.oris-1234abcd.json").write_text('{"half')  # an earlier version's, killed mid-write
    result = oris("summary", parts)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------- 10. a resume record is never another row's output

def test_a_row_named_like_a_resume_record_is_refused(lines):
    manifest = lines / "lines.csv"
    manifest.write_text("audio,output\nmusic.flac,a.json.oris-done\nbilabials_slt.flac,a.json\n")
    result = oris("visemes", "--batch", manifest, "-o", lines / "out", "--audio-only", "--summary", lines / "s.json")
    assert result.returncode == 1 and rows_of(lines / "s.json") == {1: "failed", 2: "written"}
    assert "has the name of one of Oris's own files" in result.stderr
    assert json.loads((lines / "a.json.oris-done").read_text())["oris_done"] == 1  # row 2's record, untouched


# ----------------------------------------------------- 11. one bad JSON row fails alone, end to end

def test_a_json_row_with_a_nul_or_a_list_fails_alone(lines):
    manifest = lines / "lines.json"
    manifest.write_text(json.dumps([{"audio": "music.flac"}, {"audio": "bad\u0000.flac"},
                                    {"audio": ["a.flac", "b.flac"]}, {"audio": "bilabials_slt.flac"}]))
    result = oris("visemes", "--batch", manifest, "-o", lines / "out", "--audio-only", "--summary", lines / "s.json")
    assert result.returncode == 1, result.stderr
    assert rows_of(lines / "s.json") == {1: "written", 2: "failed", 3: "failed", 4: "written"}


# ----------------------------------------------------- 12. every numeric option checked at the parser

@pytest.mark.parametrize("args, message", [
    (["--tilt", "abc"], "argument --tilt: not a number: 'abc'"),
    (["--tilt", "nan"], "argument --tilt: must be auto or a roll from 0 to 60 degrees"),
    (["--contact-frame", "inf"], "argument --contact-frame: must be a frame from"),
    (["--contact-frame", "1e12"], "argument --contact-frame: must be a frame from"),
    (["--hold", "1e6"], "argument --hold: must be a number of seconds above 0 and at most 60"),
    (["--approach", "nan"], "argument --approach: must be a number of seconds"),
    (["--compression-mm", "nan"], "argument --compression-mm: must be between 0.4 and 10 mm"),
])
def test_contact_numbers_are_refused_in_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["contact", "--a", "A", "--b", "B", "-o", "x.blend", *args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["visemes", "lipsync"])
@pytest.mark.parametrize("option, value", [("--lead-ms", "nan"), ("--lead-ms", "1e9"), ("--intensity", "inf"),
                                           ("--intensity", "-1"), ("--timeout", "nan")])
def test_animation_numbers_are_refused_at_the_parser(command, option, value, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, option, value])
    assert stop.value.code == 2 and f"argument {option}:" in capsys.readouterr().err


def test_contact_help_shows_defaults_and_format_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["contact", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "the frame the lips meet (default: 48.0)" in shown and "seconds of contact (default: 1.5)" in shown
    with pytest.raises(SystemExit):
        main(["visemes", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "dat: Moho/Papagayo switch data" in shown


# ------------------------------------------------------------------------------ 13. smaller problems

def test_dat_without_fps_is_written_at_24_fps_and_says_so(lines):
    result = oris("visemes", lines / "bilabials_slt.flac", "-f", "dat", "-o", lines / "a.dat", "--audio-only")
    assert result.returncode == 0 and "-f dat numbers frames at 24 fps" in result.stderr
    last = int((lines / "a.dat").read_text().split()[-2])  # the last switch's frame number
    assert last <= 3.7 * 24 + 2  # a 3.6 s clip: frames at 24 fps, not 100


def test_lipsync_and_visemes_share_the_transcript_rule(lines):
    pytest.importorskip("bpy")
    shutil.copy(REPO / "demo" / "heads" / "mh_talkinghead_head.blend", lines / "head.blend")
    (lines / "empty.txt").write_text("")
    vis = oris("visemes", lines / "bilabials_slt.flac", "--text-file", lines / "empty.txt", "-o", lines / "v.json")
    lip = oris("lipsync", "--blend", lines / "head.blend", "--object", "MakeHuman_head", "--audio",
               lines / "bilabials_slt.flac", "--text-file", lines / "empty.txt", "-o", lines / "shot.blend")
    assert vis.returncode == 0 and lip.returncode == 0, lip.stderr
    assert "the transcript is empty" in vis.stderr and "the transcript is empty" in lip.stderr
    assert json.loads((lines / "v.json").read_text())["mode"] == "audio"
    assert "audio mode" in lip.stderr  # not recognized mode
