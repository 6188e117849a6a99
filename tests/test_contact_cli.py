"""`oris contact` on bad input and long animations: exit 2 and one line for a name that is not in the file or
an unreadable --blend, a frame range check before any work, and progress through the slow stages."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from demo.scenes import make_pair, reset  # noqa: E402
from oris.blender.contact import HeadSpec, PickError, frame_span, run_contact  # noqa: E402
from oris.cli import main  # noqa: E402
from oris.core.contact import ContactError, ContactSettings  # noqa: E402
from oris.core.keys import MAX_FRAME  # noqa: E402

from . import procs  # noqa: E402
from .conftest import REPO  # noqa: E402

OPTIONS = ("--contact-frame", "--approach", "--hold", "--release")


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real CLI."""
    return run_python(["-m", "oris", *args], cwd, timeout)


def run_python(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """This Python in a session of its own, killed with everything it started if it overruns (tests/procs.py)."""
    return procs.run([sys.executable, *args], cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def pair_blend(tmp_path_factory) -> Path:
    """Two heads facing each other (HeadA, HeadB), as the contact tests build them, saved once."""
    path = tmp_path_factory.mktemp("pair") / "pair.blend"
    script = ("import sys, bpy; sys.path.insert(0, sys.argv[1]); from demo.scenes import make_pair, reset; "
              "reset(); make_pair(); bpy.ops.wm.save_as_mainfile(filepath=sys.argv[2])")
    made = run_python(["-c", script, str(REPO), str(path)], path.parent, timeout=300)
    assert made.returncode == 0, made.stderr
    return path


@pytest.fixture
def folder(pair_blend, tmp_path) -> Path:
    shutil.copy(pair_blend, tmp_path / "pair.blend")
    return tmp_path


def lines(result: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


BASE = ["contact", "--blend", "pair.blend", "--a", "HeadA", "--b", "HeadB", "-o", "out.blend", "--report", "r.json"]


@pytest.mark.parametrize("change,first", [
    ({"--b": "Nope"}, r"error: no object or collection named 'Nope' for head B \(objects: .*HeadA"),
    ({"--a": "Nope"}, r"error: no object or collection named 'Nope' for head A \(objects: .*HeadB"),
    ({"--a-lips": "NoSuchPoint"}, r"error: no object or vertex group named 'NoSuchPoint' for head A's lip point "
                                  r"\(--a-lips; objects: .*HeadA"),
    ({"--b-lips": "99999999"}, r"error: HeadB: there is no vertex 99999999"),
    ({"--blend": "missing.blend"}, r"error: blend file not found: missing.blend$"),
    ({"--blend": "notes.blend"}, r"error: cannot open notes.blend as a .blend file"),
])
def test_a_name_not_in_the_file_or_an_unreadable_blend_is_exit_2_in_one_line(folder, change, first):
    (folder / "notes.blend").write_text("not a blend file\n")
    args = list(BASE)
    for option, value in change.items():
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    before = sorted(p.name for p in folder.iterdir())
    result = run(args, folder)
    assert result.returncode == 2, result.stderr
    assert len(lines(result)) == 1, result.stderr
    assert re.match(first, lines(result)[0]), lines(result)[0]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written: no .blend, no report


@pytest.mark.parametrize("extra,where", [
    (["--contact-frame", "1048000", "--hold", "30"], "to 1048739 "),
    (["--contact-frame", "-1048000", "--approach", "30", "--anticipation"], "from frame -1048900 "),
])
def test_a_contact_beyond_blenders_frame_range_is_refused_naming_the_options(folder, extra, where):
    result = run(BASE + extra, folder)
    assert result.returncode == 2, result.stderr
    assert len(lines(result)) == 1, result.stderr
    line = lines(result)[0]
    assert line.startswith("error: the contact would run from frame ") and where in line, line
    assert all(option in line for option in OPTIONS), line
    assert f"({-MAX_FRAME} to {MAX_FRAME})" in line
    assert not (folder / "out.blend").exists() and not (folder / "r.json").exists()


def test_the_frame_span_is_the_plans_and_overflow_is_refused_before_any_work():
    reset()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    assert frame_span(ContactSettings(contact_frame=48), 24.0) == (24.0, 48.0 + 36 + 19)
    assert frame_span(ContactSettings(contact_frame=48, anticipation=True), 24.0) == (18.0, 103.0)
    for settings in (ContactSettings(contact_frame=MAX_FRAME - 10, hold_seconds=1.0),
                     ContactSettings(contact_frame=-MAX_FRAME + 10),
                     ContactSettings(contact_frame=48, hold_seconds=1e300),
                     ContactSettings(contact_frame=48, release_seconds=math.inf),
                     ContactSettings(contact_frame=math.nan)):
        # no heads at all: the range is checked before anything about them is read
        with pytest.raises(PickError, match=r"--contact-frame, --approach, --hold, --release"):
            run_contact(scene, HeadSpec(None), HeadSpec(None), settings)
    with pytest.raises(ContactError, match="choose head A"):  # within range, the heads come next
        run_contact(scene, HeadSpec(None), HeadSpec(None), ContactSettings(contact_frame=MAX_FRAME - 200))


def test_progress_is_reported_through_each_stage_and_every_frame_checked():
    reset()
    pair = make_pair()
    calls: list[tuple[str, float]] = []
    report = run_contact(bpy.context.scene, HeadSpec(pair.a), HeadSpec(pair.b),
                         ContactSettings(contact_frame=48, hold_seconds=4.0), on_progress=lambda s, f: calls.append((s, f)))
    stages = list(dict.fromkeys(stage for stage, _ in calls))
    assert stages[0] == "measuring the heads"
    first, last = math.floor(report.plan["start_frame"]), math.ceil(report.plan["end_frame"])
    checking = f"plan 1, frames {first}-{last}"
    assert stages[1:3] == ["plan 1, planning", checking], stages
    shares = [f for stage, f in calls if stage == checking]
    assert len(shares) > last - first + 1  # every frame measured, and the velocity samples after them
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == pytest.approx(1.0)
    assert all(0.0 <= f <= 1.0 for _, f in calls)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_the_command_draws_a_bar_on_a_terminal_and_none_with_q(folder, monkeypatch, quiet):
    monkeypatch.chdir(folder)
    err = Terminal()
    code = main(BASE[:-2] + ["--hold", "3"] + (["-q"] if quiet else []), err=err)
    text = err.getvalue()
    assert code == 0, text
    assert (folder / "out.blend").is_file()
    assert ("\r" in text) is not quiet
    if not quiet:
        assert "contact: measuring the heads [" in text and "contact: plan 1, frames 24-" in text
        bars = [part for part in text.split("\r") if part.endswith("%")]
        assert bars and max(len(bar) for bar in bars) < 80  # one line on an 80-column terminal
        assert "100%" in text
        last = text.rsplit("\r", 1)[-1]
        assert last.startswith("contact: contact at frame "), last  # the bar is cleared before the summary
