"""Fault injection: the real CLI and the real worker against hostile but realistic use.

Every case asserts four things: the exit code, the first line of the message, no traceback, and
that the sha256 of every input is unchanged. The Blender cases need the bpy module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from . import procs
from .conftest import DEMO_AUDIO, DEMO_TEXT, REPO

HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"
MODEL = REPO / "models" / "oris_visemes.onnx"
HAS_BPY = importlib.util.find_spec("bpy") is not None
needs_bpy = pytest.mark.skipif(not HAS_BPY, reason="needs the bpy module")


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def start(*args, env=None, user=False, **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "oris", *map(str, args)]
    if user and os.geteuid() == 0:  # root reads and writes anywhere: drop the capabilities that let it
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    return procs.start(cmd, env={**os.environ, **(env or {})}, **popen)


def finish(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    return procs.finish(proc, timeout)


def run(*args, **kw) -> subprocess.CompletedProcess:
    return finish(start(*args, **kw))


def first_line(result: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return lines[0] if lines else ""


def check(result: subprocess.CompletedProcess, code: int, first: str, inputs: dict[Path, str]) -> None:
    """The four assertions of every case."""
    assert result.returncode == code, result.stderr
    assert re.search(first, first_line(result)), f"first line {first_line(result)!r} !~ {first!r}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout and "Fatal Python error" not in result.stderr
    for path, digest in inputs.items():
        assert path.exists() and sha(path) == digest, f"{path} was changed"


def digests(*paths: Path) -> dict[Path, str]:
    return {Path(p): sha(p) for p in paths}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder holding copies of the inputs."""
    folder = tmp_path
    shutil.copy(DEMO_AUDIO, folder / "line.flac")
    shutil.copy(DEMO_TEXT, folder / "line.txt")
    speech, rate = sf.read(DEMO_AUDIO, dtype="float32")
    sf.write(folder / "line.wav", speech[: rate * 4], rate, subtype="PCM_16")
    return folder


@pytest.fixture
def model_copy(work) -> dict[str, str]:
    """The model in a folder of its own, so that a case that targets it can never touch the shipped one."""
    folder = work / "model"
    folder.mkdir()
    shutil.copy(MODEL, folder / MODEL.name)
    shutil.copy(MODEL.with_suffix(".json"), folder / MODEL.with_suffix(".json").name)
    return {"ORIS_MODEL": str(folder / MODEL.name)}


# -- outputs: never an input, checked before any work, written atomically --------------------------------
@pytest.mark.parametrize("target", ["line.wav", "./sub/../line.wav", "link.json", "hard.json", "line.txt"])
def test_visemes_never_writes_over_an_input(work, target):
    (work / "sub").mkdir()
    (work / "link.json").symlink_to(work / "line.wav")
    os.link(work / "line.wav", work / "hard.json")
    inputs = digests(work / "line.wav", work / "line.txt")
    result = run("visemes", "line.wav", "--text-file", "line.txt", "-o", target, cwd=work)
    check(result, 2, r"^error: -o .* is an input \((the audio|the transcript file) ", inputs)


def test_visemes_never_writes_over_the_model(work, model_copy):
    model = Path(model_copy["ORIS_MODEL"])
    inputs = digests(work / "line.wav", model, model.with_suffix(".json"))
    for target in (model, model.with_suffix(".json")):
        result = run("visemes", work / "line.wav", "-o", target, env=model_copy)
        check(result, 2, r"^error: -o .* is an input \(the model( card)? ", inputs)


def test_inputs_with_the_same_stem_are_refused_before_any_work(work):
    (work / "a").mkdir()
    (work / "b").mkdir()
    shutil.copy(work / "line.wav", work / "a" / "clip.wav")
    sf.write(work / "b" / "clip.ogg", np.zeros(16000, np.float32), 16000)
    inputs = digests(work / "a" / "clip.wav", work / "b" / "clip.ogg")
    result = run("visemes", work / "a" / "clip.wav", work / "b" / "clip.ogg", "-o", work / "out")
    check(result, 2, r"^error: .*a/clip.wav and .*b/clip.ogg would both write .*clip.json", inputs)
    assert not (work / "out").exists()


def test_a_missing_output_folder_is_created(work):
    inputs = digests(work / "line.wav")
    result = run("visemes", work / "line.wav", "-o", work / "new" / "deeper" / "line.json", "--audio-only")
    check(result, 0, r"line.wav: 4.00 s, .* -> .*new/deeper/line.json$", inputs)
    assert json.loads((work / "new" / "deeper" / "line.json").read_text())["version"] == 1


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv to drop root")
def test_a_read_only_folder_is_refused_before_any_work(work):
    (work / "locked").mkdir()
    os.chmod(work / "locked", 0o555)
    inputs = digests(work / "line.wav")
    result = run("visemes", work / "line.wav", "-o", work / "locked" / "x.json", user=True)
    check(result, 2, r"^error: -o .*locked/x.json cannot be written: permission denied", inputs)


def test_a_full_disk_is_a_clear_error(work):
    inputs = digests(work / "line.wav")
    check(run("visemes", work / "line.wav", "-o", "/dev/full"), 2,
          r"^error: could not write -o /dev/full: no space left on the device", inputs)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv to drop root")
def test_an_unreadable_audio_file_says_permission_denied(work):
    os.chmod(work / "line.wav", 0o000)
    result = run("visemes", work / "line.wav", user=True)
    os.chmod(work / "line.wav", 0o644)
    check(result, 2, r"^error: cannot read the audio file .*line.wav: permission denied", digests(work / "line.wav"))


def test_two_runs_at_once_on_one_output_leave_one_whole_file(work):
    inputs = digests(work / "line.flac")
    out = work / "same.json"
    procs = [start("visemes", work / "line.flac", "-o", out, "-q", "--audio-only") for _ in range(2)]
    for proc in procs:
        check(finish(proc), 0, r"^$", inputs)
    assert len(json.loads(out.read_text())["frames"]) > 100
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []


# -- inputs ------------------------------------------------------------------------------------------------
def _truncated_wav(work: Path) -> Path:
    data = (work / "line.wav").read_bytes()
    (work / "cut.wav").write_bytes(data[: len(data) // 2])
    return work / "cut.wav"


def _huge_header_wav(work: Path) -> Path:
    data = bytearray((work / "line.wav").read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = (0xFFFFFFF0).to_bytes(4, "little")  # promises 4 GB, holds 4 s
    (work / "huge.wav").write_bytes(bytes(data))
    return work / "huge.wav"


def _nan_wav(work: Path) -> Path:
    x = np.full(16000, np.nan, np.float32)
    sf.write(work / "nan.wav", x, 16000, subtype="FLOAT")
    return work / "nan.wav"


def _file(name: str, content: bytes):
    def make(work: Path) -> Path:
        (work / name).write_bytes(content)
        return work / name

    return make


def _rate(rate: int):
    def make(work: Path) -> Path:
        sf.write(work / f"r{rate}.wav", np.zeros(rate * 2, np.float32), rate)
        return work / f"r{rate}.wav"

    return make


@pytest.mark.parametrize("make,code,first", [
    (_truncated_wav, 0, r"^warning: .*cut.wav: the file is truncated: its header promises \d+ more bytes"),
    (_huge_header_wav, 0, r"^warning: .*huge.wav: the file is truncated"),
    (_nan_wav, 0, r"^warning: .*nan.wav: 16000 NaN/Inf samples were replaced by silence"),
    (_file("text.wav", b"hello\n" * 100), 2, r"^error: could not read .*text.wav as audio"),
    (_file("empty.wav", b""), 2, r"^error: audio file .*empty.wav is empty \(0 bytes\)"),
    (_rate(2000), 2, r"^error: .*r2000.wav has a sample rate of 2000 Hz, which cannot hold speech"),
], ids=["truncated", "huge-header", "nan", "corrupt", "empty", "2kHz"])
def test_bad_audio(work, make, code, first):
    path = make(work)
    check(run("visemes", path, "-o", work / "out.json"), code, first, digests(path))


@pytest.mark.parametrize("args,first", [
    (["--timeout", "0"], r"^error: argument --timeout: must be a number of seconds above 0, not '0'; see `oris visemes --help`"),
    (["--timeout", "-5"], r"^error: argument --timeout: must be a number of seconds above 0"),
    (["--fps", "0"], r"^error: argument --fps: fps must be between 1 and 1000"),
])
def test_bad_options_are_one_line(work, args, first):
    check(run("visemes", work / "line.wav", *args), 2, first, digests(work / "line.wav"))


# -- the worker ----------------------------------------------------------------------------------------------
def _worker_of(proc: subprocess.Popen, timeout: float = 60) -> int:
    """The pid of the worker process the CLI `proc` started."""
    deadline = time.monotonic() + timeout * procs.machine_factor()
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == proc.pid and b"engine.worker" in cmdline:
                return int(pid)
        time.sleep(0.02)
    raise AssertionError("the CLI started no worker")


def _long_audio(work: Path, seconds: int = 240) -> Path:
    speech, _ = sf.read(DEMO_AUDIO, dtype="float32")
    sf.write(work / "long.flac", np.tile(speech, seconds * 16000 // len(speech) + 1)[: seconds * 16000], 16000)
    return work / "long.flac"


@pytest.mark.skipif(sys.platform != "linux", reason="finds the worker through /proc")
@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_after_a_worker_fault_the_next_input_gets_a_new_worker(work, fault):
    long = _long_audio(work)
    inputs = digests(long, work / "line.wav")
    limit = max(3, round(3 * procs.machine_factor()))  # the second input's new worker must start within it
    proc = start("visemes", long, work / "line.wav", "-o", work / "out", "--timeout", limit)
    pid = _worker_of(proc)
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
    result = finish(proc)  # the CLI kills a hung worker itself
    why = r"stopped during (start|request) \(signal 9\)" if fault == "killed" else rf"did not answer within {limit} s"
    check(result, 1, rf"^error: .*long.flac: the worker .*{why}", inputs)
    assert (work / "out" / "line.json").exists() and not (work / "out" / "long.json").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="finds the worker through /proc")
def test_ctrl_c_during_inference_cancels_and_writes_nothing(work):
    long = _long_audio(work)
    inputs = digests(long)
    proc = start("visemes", long, "-o", work / "long.json")
    _worker_of(proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    check(finish(proc), 130, r"^cancelled$", inputs)
    assert sorted(p.name for p in work.iterdir()) == ["line.flac", "line.txt", "line.wav", "long.flac"]


def test_ctrl_c_during_the_output_write_is_a_clean_cancel(work):
    fifo = work / "pipe.json"
    os.mkfifo(fifo)  # writing blocks until someone reads: the CLI is interrupted inside its write
    inputs = digests(work / "line.wav")
    proc = start("visemes", work / "line.wav", "-o", fifo)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _blocked_in_open(proc.pid, fifo):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    check(finish(proc), 130, r"^cancelled$", inputs)


def _blocked_in_open(pid: int, fifo: Path) -> bool:
    try:
        return Path(f"/proc/{pid}/wchan").read_text() in ("fifo_open", "wait_for_partner") or \
            any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == str(fifo) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_a_damaged_model_is_a_clear_start_up_error(work, model_copy):
    model = Path(model_copy["ORIS_MODEL"])
    model.write_bytes(model.read_bytes()[:5000])
    card = json.loads(model.with_suffix(".json").read_text())
    card["sha256"] = sha(model)  # the card matches: only onnxruntime can tell
    model.with_suffix(".json").write_text(json.dumps(card))
    result = run("visemes", work / "line.wav", "-o", work / "x.json", env=model_copy)
    check(result, 3, r"^error: .*line.wav: the worker could not start: onnxruntime could not load the model .*"
                     r"\(InvalidProtobuf: .*reinstall Oris", digests(work / "line.wav", model))


def test_a_model_that_does_not_match_its_card_is_refused(work, model_copy):
    model = Path(model_copy["ORIS_MODEL"])
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    result = run("visemes", work / "line.wav", "-o", work / "x.json", env=model_copy)
    check(result, 3, r"^error: .*the worker could not start: model .* does not match its card", digests(model))


def test_the_worker_shuts_down_cleanly_every_time():
    """An ordinary shutdown, repeated: the exit code is 0 and there is no 'Fatal Python error'."""
    from oris.engine.client import worker_command
    from oris.engine.protocol import read_message, write_message

    cmd, env = worker_command(device="cpu")
    for n in range(20):
        proc = procs.start(cmd, stdin=subprocess.PIPE, text=False, env=env)
        with procs.watch(proc, timeout=30 * procs.machine_factor()):
            assert read_message(proc.stdout)[0]["type"] == "ready"
            if n % 3 == 0:
                proc.stdin.close()  # the caller vanished without a word
            else:
                write_message(proc.stdin, {"type": "shutdown"})
                if n % 3 == 2:
                    proc.stdin.close()
            proc.wait()
            err = proc.stderr.read()
        assert proc.returncode == 0 and b"Fatal Python error" not in err, err.decode()


# -- Blender: lipsync and contact ----------------------------------------------------------------------------
@pytest.fixture
def blend(work) -> Path:
    shutil.copy(HEAD, work / "head.blend")
    return work / "head.blend"


@needs_bpy
@pytest.mark.parametrize("target,first", [
    ("line.wav", r"^error: -o .*line.wav is an input \(--audio "),
    ("head.blend", r"^error: -o .*head.blend is an input \(--blend "),
    ("line.txt", r"^error: -o .*line.txt is an input \(--text-file "),
])
def test_lipsync_never_writes_over_an_input(work, blend, target, first):
    inputs = digests(work / "line.wav", blend, work / "line.txt")
    result = run("lipsync", "--blend", blend, "--object", "MakeHuman_head", "--audio", work / "line.wav",
                 "--text-file", work / "line.txt", "-o", work / target)
    check(result, 2, first, inputs)


@needs_bpy
def test_a_batch_with_bad_rows_writes_the_good_ones_and_a_summary(work, blend):
    (work / "folder.blend").mkdir()
    (work / "m.csv").write_text(
        "blend,object,audio,start_frame,output\n"
        "no commas at all\n"
        'head.blend,MakeHuman_head,"line.wav,1,q.blend\n'
        "head.blend,MakeHuman_head,line.wav,one,one.blend\n"
        "head.blend,MakeHuman_head,line.wav,99999999,late.blend\n"
        "head.blend,MakeHuman_head,line.wav,1048500,edge.blend\n"
        "head.blend,MakeHuman_head,line.wav,1,line.wav\n"
        "head.blend,MakeHuman_head,line.wav,1,folder.blend\n"
        "head.blend,NoFace,line.wav,1,noface.blend\n"
        "head.blend,MakeHuman_head,line.wav,1,good.blend\n")
    inputs = digests(work / "line.wav", blend, work / "m.csv")
    result = run("lipsync", "--batch", work / "m.csv", "--summary", work / "summary.json")
    check(result, 1, r"^\[1/9\] FAILED row 1 \(line 2\): missing object, audio", inputs)
    for expected in (r"\[2/9\] FAILED row 2 \(line 3\): an unclosed quote",
                     r"\[3/9\] FAILED row 3 \(line 4\) line.wav: start frame 'one' is not a whole number",
                     r"\[4/9\] FAILED row 4 \(line 5\) line.wav: start frame 99999999 is outside Blender's frame range",
                     r"\[5/9\] FAILED row 5 \(line 6\) line.wav: the clip would run from frame 1048500 to 1048596",
                     r"\[6/9\] FAILED row 6 \(line 7\) line.wav: its output .*line.wav is an input \(its audio ",
                     r"\[7/9\] FAILED row 7 \(line 8\) line.wav: its output .*folder.blend is a folder",
                     r"\[8/9\] FAILED row 8 \(line 9\) line.wav: no object named 'NoFace'",
                     r"\[9/9\] row 9 \(line 10\) line.wav -> .*good.blend", r"lipsync: 1 written, 8 failed"):
        assert re.search(expected, result.stderr), expected
    summary = json.loads((work / "summary.json").read_text())["rows"]
    assert [r["status"] for r in summary] == ["failed"] * 8 + ["written"]
    assert summary[-1]["output"].endswith("good.blend") and summary[3]["where"] == "line 5"
    assert summary[-1]["mode"] in ("recognized", "audio") and summary[0]["mode"] == ""
    assert sorted(p.name for p in work.glob("*.blend")) == ["folder.blend", "good.blend", "head.blend"]


@needs_bpy
def test_json_entries_that_are_not_objects_fail_alone(work, blend):
    (work / "m.json").write_text(json.dumps([["head.blend", "MakeHuman_head", "line.wav"],
                                             {"blend": "head.blend", "object": "MakeHuman_head", "audio": "line.wav"}]))
    inputs = digests(work / "line.wav", blend)
    result = run("lipsync", "--batch", work / "m.json", "-o", work / "renders")
    check(result, 1, r'^\[1/2\] FAILED row 1 \(entry 1\): it is \["head.blend", .* not an object', inputs)
    assert (work / "renders" / "head_line.blend").is_file()


@needs_bpy
def test_lipsync_into_a_folder_and_into_a_missing_folder(work, blend):
    inputs = digests(work / "line.wav", blend)
    for target, written in ((work, work / "head_line.blend"), (work / "new" / "shot.blend", work / "new" / "shot.blend")):
        result = run("lipsync", "--blend", blend, "--object", "MakeHuman_head", "--audio", work / "line.wav", "-o", target)
        check(result, 0, r"^\[1/1\] line.wav -> ", inputs)
        assert written.is_file()


@needs_bpy
@pytest.mark.parametrize("args,code,first", [
    (["-o", "/dev/full"], 2, r"^error: -o /dev/full is not a regular file"),
    (["-o", "x.blend", "--start-frame", "-100000000"], 2, r"^error: argument --start-frame: start frame -100000000 is outside"),
    (["-o", "x.blend", "--summary", "line.wav"], 2, r"^error: --summary line.wav is an input \(--audio "),
    (["-o", "x.blend", "--summary", "x.blend"], 2, r"^error: -o and --summary are the same file"),
])
def test_lipsync_bad_outputs_and_options(work, blend, args, code, first):
    inputs = digests(work / "line.wav", blend)
    result = run("lipsync", "--blend", "head.blend", "--object", "MakeHuman_head", "--audio", "line.wav", *args, cwd=work)
    check(result, code, first, inputs)


@needs_bpy
@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv to drop root")
def test_lipsync_into_a_read_only_folder(work, blend):
    (work / "locked").mkdir()
    os.chmod(work / "locked", 0o555)
    inputs = digests(work / "line.wav", blend)
    result = run("lipsync", "--blend", blend, "--object", "MakeHuman_head", "--audio", work / "line.wav",
                 "-o", work / "locked" / "x.blend", user=True)
    check(result, 2, r"^error: -o .*locked/x.blend cannot be written: permission denied", inputs)


@needs_bpy
def test_lipsync_refuses_audio_the_engine_refuses(work, blend):
    path = _rate(2000)(work)
    inputs = digests(path, blend)
    result = run("lipsync", "--blend", blend, "--object", "MakeHuman_head", "--audio", path, "-o", work / "x.blend")
    check(result, 2, r"^\[1/1\] FAILED .*r2000.wav: .*sample rate of 2000 Hz", inputs)


@pytest.fixture(scope="module")
def pair_blend(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pair") / "pair.blend"
    script = ("import sys, bpy; sys.path.insert(0, sys.argv[1]); from demo.scenes import make_pair, reset; "
              "reset(); make_pair(); bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2])")
    procs.run([sys.executable, "-c", script, REPO, path], check=True, timeout=300)
    return path


@needs_bpy
@pytest.mark.parametrize("args,code,first", [
    (["-o", "out.blend", "--report", "pair.blend"], 2, r"^error: --report .*pair.blend is an input \(the input .blend "),
    (["-o", "pair.blend"], 2, r"^error: -o .*pair.blend is an input \(the input .blend "),
    (["-o", "out.blend", "--report", "out.blend"], 2, r"^error: -o and --report are the same file"),
    (["-o", "."], 2, r"^error: -o \. is a folder; give a file path"),
    (["-o", "out.blend", "--eyes", "5"], 2, r"^error: argument --eyes: must be between 0 and 1, not '5'"),
    (["-o", "out.blend", "--b-facing", "-Y", "--b", "Nope"], 2, r"^error: no object or collection named 'Nope' for head B"),
])
def test_contact_bad_outputs_and_options(pair_blend, tmp_path, args, code, first):
    shutil.copy(pair_blend, tmp_path / "pair.blend")
    inputs = digests(tmp_path / "pair.blend")
    base = ["contact", "--blend", "pair.blend", "--a", "HeadA", "--b", "HeadB"]
    result = run(*base, *args, cwd=tmp_path)
    check(result, code, first, inputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair.blend"]


@needs_bpy
def test_contact_writes_the_blend_and_the_report_into_a_missing_folder(pair_blend, tmp_path):
    shutil.copy(pair_blend, tmp_path / "pair.blend")
    inputs = digests(tmp_path / "pair.blend")
    result = run("contact", "--blend", "pair.blend", "--a", "HeadA", "--b", "HeadB", "-o", "new/out.blend",
                 "--report", "reports/r.json", "-q", cwd=tmp_path)
    check(result, 0, r"^$", inputs)
    assert json.loads((tmp_path / "reports" / "r.json").read_text())["passed"]
    assert (tmp_path / "new" / "out.blend").stat().st_size > 100000


@pytest.fixture
def recognizer_copy(work) -> dict[str, str]:
    folder = work / "recognizer"
    folder.mkdir()
    for path in (REPO / "models").glob("oris_whisper*"):
        shutil.copy(path, folder / path.name)
    return {"ORIS_RECOGNIZER": str(folder / "oris_whisper.json")}


@pytest.mark.parametrize("damage", ["bytes", "card-matches"])
def test_a_damaged_recognizer_is_a_clear_error_and_nothing_is_written(work, recognizer_copy, damage):
    card_path = Path(recognizer_copy["ORIS_RECOGNIZER"])
    decoder = card_path.parent / "oris_whisper_decoder.onnx"
    decoder.write_bytes(decoder.read_bytes()[:100000])
    if damage == "card-matches":
        card = json.loads(card_path.read_text())
        card["files"]["decoder"]["sha256"] = sha(decoder)
        card_path.write_text(json.dumps(card))
    why = "does not match its card" if damage == "bytes" else r"onnxruntime could not load the speech recognizer"
    inputs = digests(work / "line.wav", decoder)
    result = run("visemes", work / "line.wav", "-o", work / "x.json", env=recognizer_copy)
    check(result, 3, rf"^error: .*line.wav: the speech recognizer cannot run: .*{why}.*--audio-only", inputs)
    assert not (work / "x.json").exists()
    check(run("visemes", work / "line.wav", "-o", work / "x.json", "--audio-only", env=recognizer_copy), 0,
          r"line.wav: .* audio mode", inputs)


@needs_bpy
def test_a_contact_that_fails_still_writes_its_report_and_no_blend(pair_blend, tmp_path):
    shutil.copy(pair_blend, tmp_path / "pair.blend")
    inputs = digests(tmp_path / "pair.blend")
    result = run("contact", "--blend", "pair.blend", "--a", "HeadA", "--b", "HeadB", "--tilt", "0", "-o", "out.blend",
                 "--report", "r.json", cwd=tmp_path)
    check(result, 1, r"^error: no tilt lets the lips meet with the noses clear: .*--tilt-side on the command line", inputs)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is False and "no tilt lets the lips meet" in report["failures"][0]
    assert not (tmp_path / "out.blend").exists()


def test_after_a_recognizer_error_the_same_worker_serves_the_next_request(recognizer_copy, monkeypatch, speech_16k):
    from oris.engine.client import WorkerClient, WorkerError

    card_path = Path(recognizer_copy["ORIS_RECOGNIZER"])
    (card_path.parent / "oris_whisper_encoder.onnx").write_bytes(b"not a model")
    monkeypatch.setenv("ORIS_RECOGNIZER", str(card_path))
    with WorkerClient(device="cpu") as client:
        pid = client.start().pid
        with pytest.raises(WorkerError, match="the speech recognizer cannot run: .* does not match its card"):
            client.infer(np.tile(speech_16k, 3), recognize=True)  # long enough that audio is still on its way
        post = client.infer(speech_16k[:16000])
        assert client.info.pid == pid and post.visemes.shape[0] == 101


@needs_bpy
def test_the_summary_never_writes_over_an_input_of_a_refused_row(work, blend):
    (work / "m.csv").write_text("blend,object,audio,start_frame,output\n"
                                "head.blend,MakeHuman_head,line.wav,1,line.wav\n")  # refused: its output is its audio
    inputs = digests(work / "line.wav", blend, work / "m.csv")
    result = run("lipsync", "--batch", work / "m.csv", "--summary", work / "line.wav")
    check(result, 2, r"^error: --summary .*line.wav is an input \(row 1 \(line 2\)'s audio ", inputs)
