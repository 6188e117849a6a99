"""Farm batches: a task's share of the rows, resuming a finished batch, the OpenJD templates run by the real
`openjd` CLI, and the Flamenco job compiler run in node. The batches run the real CLI and worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oris.cli import build_parser
from oris.core.batch import chunk_span, done_record_path, select_rows
from oris.core.manifest import ManifestError
from oris.core.outputs import is_temporary
from oris.core.summary import Part, RunIdentity, file_sha256, merge_parts, summary_json

from .conftest import DATA, DEMO_AUDIO, REPO
from .test_cli import BILABIAL_TEXT

OPENJD = Path(sys.executable).with_name("openjd")


def oris(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oris", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


# ------------------------------------------------------------------------------ a task's share

@pytest.mark.parametrize("total", [1, 2, 7, 50, 999, 1000])
@pytest.mark.parametrize("n", [1, 2, 3, 20, 40])
def test_chunks_cover_every_row_exactly_once(total, n):
    rows = list(range(1, total + 1))
    seen = [r for k in range(1, n + 1) for r in sorted(select_rows(rows, rows, None, f"{k}/{n}"))]
    assert seen == rows
    sizes = [chunk_span(f"{k}/{n}", total)[1] - chunk_span(f"{k}/{n}", total)[0] + 1 for k in range(1, n + 1)]
    assert max(sizes) - min(sizes) <= 1  # near-equal shares


def test_rows_that_build_one_output_stay_in_one_share():
    rows = [1, 2, 3, 4, 5, 6]
    leaders = [1, 2, 2, 2, 5, 6]  # rows 2-4 write one shot, row 2 first
    shares = [select_rows(rows, leaders, f"{a}:{b}", None) for a, b in ((1, 2), (3, 4), (5, 6))]
    assert shares == [{1, 2, 3, 4}, set(), {5, 6}]
    assert select_rows(rows, leaders, "5-6", None) == {5, 6}  # OpenJD's chunk syntax
    assert select_rows(rows, leaders, "6", None) == {6}


@pytest.mark.parametrize("rows, chunk, message", [
    ("0:4", None, "numbered from 1"), ("5:2", None, "START may not pass END"), ("9:12", None, "only 6 rows"),
    ("a:b", None, "not START:END"), (None, "0/3", "K runs from 1 to N"), (None, "4/3", "K runs from 1 to N"),
    (None, "2", "not K/N"), ("1:2", "1/2", "not both"),
])
def test_bad_shares_are_named(rows, chunk, message):
    with pytest.raises(ManifestError, match=message):
        select_rows(list(range(1, 7)), list(range(1, 7)), rows, chunk)


def part_of(manifest: Path, rows: list[dict], run: str = "r1") -> str:
    """A task's summary of `manifest`, as a batch writes it."""
    return summary_json(RunIdentity("visemes", run, file_sha256(manifest), "0" * 64), rows)


def test_a_row_no_task_ran_is_listed_as_not_run(tmp_path):
    manifest = tmp_path / "lines.csv"
    manifest.write_text("audio\na.wav\nb.wav\nc.wav\n")
    part = tmp_path / "rows-1-2.json"
    part.write_text(part_of(manifest, [{"row": 1, "status": "written"}, {"row": 2, "status": "skipped"}]))
    result = oris("summary", str(part), "-o", str(tmp_path / "all.json"), "--manifest", str(manifest))
    assert result.returncode == 1 and "row 3 (line 4): no task ran this row" in result.stderr
    assert [r["status"] for r in json.loads((tmp_path / "all.json").read_text())["rows"]] == ["written", "skipped", "not run"]
    assert oris("rows", str(manifest)).stdout == "3\n"


def test_batch_options_without_a_manifest_are_refused():
    result = oris("visemes", str(DATA / "music.flac"), "--chunk", "1/2", "--summary", "s.json")
    assert result.returncode == 2 and result.stderr == (
        "error: --chunk, --summary work on a --batch manifest (oris visemes --batch lines.csv -o out/)\n")


def test_merged_summaries_list_every_row_once_in_order_and_a_disagreement_fails():
    run = RunIdentity("visemes", "r1", "a" * 64, "b" * 64)
    merged = merge_parts([Part(Path("p1.json"), run, [{"row": 3, "status": "written"}, {"row": 1, "status": "failed"}]),
                          Part(Path("p2.json"), run, [{"row": 2, "status": "written"}, {"row": 1, "status": "written"}])])
    assert [(r["row"], r["status"]) for r in merged.rows] == [(1, "failed"), (2, "written"), (3, "written")]
    assert "the tasks disagree" in merged.rows[0]["reason"]


# ------------------------------------------------------------------------------------ resuming

@pytest.fixture
def lines(tmp_path: Path) -> Path:
    """A manifest of three short lines and one broken row, in a folder of its own."""
    for name in ("bilabials_slt.flac", "music.flac", "german_espeak.flac"):
        shutil.copy(DATA / name, tmp_path / name)
    manifest = tmp_path / "lines.csv"
    manifest.write_text("audio,text\nbilabials_slt.flac,\nmusic.flac,\nmissing.flac,\ngerman_espeak.flac,\n")
    return manifest


def summary_of(path: Path) -> dict[int, str]:
    return {r["row"]: r["status"] for r in json.loads(path.read_text())["rows"]}


def test_a_finished_batch_is_skipped_and_a_changed_input_or_option_runs_again(lines, tmp_path):
    out = tmp_path / "out"
    base = ["visemes", "--batch", str(lines), "-o", str(out), "--audio-only"]
    first = oris(*base, "--summary", str(tmp_path / "s1.json"))
    assert first.returncode == 1 and summary_of(tmp_path / "s1.json") == {1: "written", 2: "written", 3: "failed", 4: "written"}
    assert all(done_record_path(out / f"{n}.json").is_file() for n in ("bilabials_slt", "music", "german_espeak"))
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}

    again = oris(*base, "--summary", str(tmp_path / "s2.json"))
    assert summary_of(tmp_path / "s2.json") == {1: "skipped", 2: "skipped", 3: "failed", 4: "skipped"}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == stamps  # nothing rewritten
    assert "0 written, 3 already done, 1 failed" in again.stderr

    shutil.copy(DATA / "spanish_espeak.flac", tmp_path / "music.flac")  # new audio under the same name
    (out / "german_espeak.json").write_text("{}\n")  # an output changed since Oris wrote it
    oris(*base, "--summary", str(tmp_path / "s3.json"))
    assert summary_of(tmp_path / "s3.json") == {1: "skipped", 2: "written", 3: "failed", 4: "written"}

    oris(*base, "--lead-ms", "40", "--summary", str(tmp_path / "s4.json"))  # other options: every row again
    assert summary_of(tmp_path / "s4.json") == {1: "written", 2: "written", 3: "failed", 4: "written"}
    oris(*base, "--lead-ms", "40", "--force", "--summary", str(tmp_path / "s5.json"))
    assert summary_of(tmp_path / "s5.json") == {1: "written", 2: "written", 3: "failed", 4: "written"}


def test_a_task_killed_midway_completes_only_its_missing_rows_when_run_again(tmp_path):
    rows = 8
    for i in range(rows):
        shutil.copy(DATA / "bilabials_slt.flac", tmp_path / f"line{i:02d}.flac")
    manifest = tmp_path / "lines.csv"
    manifest.write_text("audio\n" + "".join(f"line{i:02d}.flac\n" for i in range(rows)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "oris", "visemes", "--batch", str(manifest), "-o", str(out)]  # recognizing: slow enough
    task = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(list(out.glob("*.oris-done"))) < 2 and time.monotonic() < deadline and task.poll() is None:
        time.sleep(0.05)
    os.killpg(task.pid, signal.SIGKILL)  # the farm node goes away: no clean shutdown
    task.wait()
    finished = {p.name.removesuffix(".json.oris-done") for p in out.glob("*.oris-done")}
    assert 2 <= len(finished) < rows
    rerun = oris("visemes", "--batch", str(manifest), "-o", str(out), "--summary", str(tmp_path / "s.json"))
    assert rerun.returncode == 0, rerun.stderr
    status = summary_of(tmp_path / "s.json")
    assert {f"line{n - 1:02d}" for n, s in status.items() if s == "skipped"} == finished
    assert sum(s == "written" for s in status.values()) == rows - len(finished)
    leftovers = [p for p in out.iterdir() if is_temporary(p.name)]  # what the kill left mid-write, if anything
    assert all(p.stat().st_mtime < time.time() + 1 for p in leftovers)
    assert not [p for p in out.glob("*.json") if is_temporary(p.name)]  # never mistaken for an output


# ---------------------------------------------------------------------------------- OpenJD

def openjd(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(OPENJD), *args], capture_output=True, text=True, cwd=cwd, timeout=900)


@pytest.mark.parametrize("template", ["visemes.yaml", "lipsync.yaml"])
def test_the_templates_pass_openjd_check(template):
    result = openjd("check", str(REPO / "farm" / "openjd" / template), cwd=REPO)
    assert result.returncode == 0 and "passes validation" in result.stdout


def test_openjd_runs_the_visemes_template_on_a_manifest_with_a_broken_row(tmp_path):
    for i, name in enumerate(("bilabials_slt.flac", "music.flac", "german_espeak.flac", "spanish_espeak.flac")):
        shutil.copy(DATA / name, tmp_path / f"l{i}.flac")
    (tmp_path / "l4.txt").write_text(BILABIAL_TEXT)
    manifest = tmp_path / "lines.csv"
    manifest.write_text("audio,text_file,output\nl0.flac,,\nl1.flac,,\nbroken.flac,,\nl2.flac,,\nl3.flac,,\n"
                        "l0.flac,l4.txt,again.json\n")
    out = tmp_path / "out"
    result = openjd("run", str(REPO / "farm" / "openjd" / "visemes.yaml"), "-p", f"Manifest={manifest}",
                    "-p", f"OutputDir={out}", "-p", "ChunkSize=2", "-p", "RowCount=6", "-p", f"Python={sys.executable}",
                    cwd=tmp_path)
    assert result.returncode != 0  # the merge step ends with Oris's status 1: a row failed
    assert "Session ended with errors" in result.stdout and "row 3 (line 4): audio file not found" in result.stdout
    (run,) = [p for p in (out / "summaries").iterdir() if p.is_dir()]  # a folder for this run
    assert (out / "summaries" / "run.txt").read_text().strip() == run.name
    assert sorted(p.name for p in run.glob("*.json")) == ["rows-1-2.json", "rows-3-4.json", "rows-5-6.json"]
    summary = json.loads((out / "summary.json").read_text())["rows"]
    assert [(r["row"], r["status"]) for r in summary] == [(1, "written"), (2, "written"), (3, "failed"),
                                                          (4, "written"), (5, "written"), (6, "written")]
    assert {p.name for p in out.glob("*.json") if p.name != "summary.json"} == {"l0.json", "l1.json", "l2.json", "l3.json"}
    assert json.loads((tmp_path / "again.json").read_text())["mode"] == "transcript"


def test_openjd_runs_the_lipsync_template_through_blender_on_six_rows(tmp_path):
    pytest.importorskip("bpy")
    # where only the bpy module is installed (these machines), a stand-in for the Blender launcher:
    # `blender -b -c oris ARGS` runs `python -m oris ARGS` with this Python
    blender = tmp_path / "blender"
    blender.write_text(f'#!/bin/sh\n[ "$1 $2 $3" = "-b -c oris" ] || exit 2\nshift 3\nexec "{sys.executable}" -m oris "$@"\n')
    blender.chmod(0o755)
    shutil.copy(REPO / "demo" / "heads" / "mh_talkinghead_head.blend", tmp_path / "head.blend")
    shutil.copy(DATA / "bilabials_slt.flac", tmp_path / "a.flac")
    shutil.copy(DEMO_AUDIO, tmp_path / "b.flac")
    manifest = tmp_path / "shots.csv"
    manifest.write_text("blend,object,audio,start_frame,output\n"
                        "head.blend,MakeHuman_head,a.flac,1,\n"
                        "head.blend,MakeHuman_head,a.flac,1,shot1.blend\n"
                        "head.blend,MakeHuman_head,b.flac,200,shot1.blend\n"
                        "head.blend,Nobody,a.flac,1,broken.blend\n"
                        "head.blend,MakeHuman_head,b.flac,1,\n"
                        "head.blend,MakeHuman_head,a.flac,1,shot2.blend\n")
    out = tmp_path / "out"
    result = openjd("run", str(REPO / "farm" / "openjd" / "lipsync.yaml"), "-p", f"Manifest={manifest}",
                    "-p", f"OutputDir={out}", "-p", "ChunkSize=2", "-p", "RowCount=6", "-p", f"Blender={blender}",
                    "-p", "Preset=auto", cwd=tmp_path)
    assert result.returncode != 0 and "row 4 (line 5): no object named 'Nobody'" in result.stdout
    summary = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["status"] for r in summary] == ["written", "written", "written", "failed", "written", "written"]
    assert sorted(p.name for p in out.glob("*.blend")) == ["head_a.blend", "head_b.blend"]
    assert (tmp_path / "shot1.blend").is_file() and (tmp_path / "shot2.blend").is_file()
    # rows 2-3 build one shot: they ran in one task (rows 1-2's), and row 3's task ran none of them
    share = {p.name: [r["row"] for r in json.loads(p.read_text())["rows"]] for p in (out / "summaries").glob("*/*.json")}
    assert share == {"rows-1-2.json": [1, 2, 3], "rows-3-4.json": [4], "rows-5-6.json": [5, 6]}


# -------------------------------------------------------------------------------- Flamenco

def test_the_flamenco_job_compiler_authors_a_blender_task_per_chunk_and_a_merge():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    settings = {"manifest": "/studio/ep01/lines.csv", "output": "/studio/ep01/oris", "row_count": 120,
                "chunk_size": 50, "audio_only": True}
    result = subprocess.run([node, str(REPO / "tests" / "flamenco" / "compile_job.mjs"), json.dumps(settings)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    tasks = job["tasks"]
    assert [t["name"] for t in tasks] == ["lipsync-1-of-3", "lipsync-2-of-3", "lipsync-3-of-3", "summary"]
    assert tasks[-1]["dependencies"] == ["lipsync-1-of-3", "lipsync-2-of-3", "lipsync-3-of-3"]
    parser = build_parser()
    covered: list[int] = []
    for k, task in enumerate(tasks[:3], start=1):
        (command,) = task["commands"]
        p = command["parameters"]
        assert command["type"] == "blender-render" and p["exe"] == "{blender}" and p["exeArgs"] == "{blenderArgs}"
        assert p["argsBefore"][:2] == ["-c", "oris"]
        argv = [*p["argsBefore"][2:], p["blendfile"], *p["args"]]  # what Blender hands to `oris`
        args = parser.parse_args(argv)
        assert (args.command, args.batch, args.output, args.chunk) == ("lipsync", settings["manifest"],
                                                                     settings["output"], f"{k}/3")
        run = args.run_id
        assert args.audio_only and args.partial_ok and args.summary == f"/studio/ep01/oris/summaries/{run}/chunk-{k}-of-3.json"
        covered += sorted(select_rows(list(range(1, 121)), list(range(1, 121)), None, args.chunk))
    assert covered == list(range(1, 121))
    merge = tasks[-1]["commands"][0]["parameters"]
    args = parser.parse_args([*merge["argsBefore"][2:], merge["blendfile"], *merge["args"]])
    assert (args.command, args.parts, args.output, args.manifest, args.run_id) == (
        "summary", [f"/studio/ep01/oris/summaries/{run}"], "/studio/ep01/oris/summary.json", settings["manifest"], run)
    missing = subprocess.run([node, str(REPO / "tests" / "flamenco" / "compile_job.mjs"), "{}"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "manifest, output, row_count" in missing.stderr
