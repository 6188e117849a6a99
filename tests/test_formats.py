"""Every output format is parsed back and agrees with what was written."""

import json

import numpy as np
import pytest

from oris.core.curves import Animation, Cue, CurveSettings, animate
from oris.core.formats import FORMATS, read_cues, read_tsv_frames, render
from oris.core.visemes import VISEME_INDEX as V


@pytest.fixture
def anim() -> Animation:
    cues = [Cue(0.0, 0.3, V["sil"]), Cue(0.3, 0.5, V["aa"]), Cue(0.5, 0.55, V["PP"]), Cue(0.55, 0.8, V["ou"]),
            Cue(0.8, 0.95, V["FF"]), Cue(0.95, 1.2, V["E"]), Cue(1.2, 1.5, V["sil"])]
    return animate(cues, 1.5, 24.0, CurveSettings(lead_seconds=0.0))


def test_oris_json_schema_round_trip(anim):
    doc = json.loads(render("json", anim, "line.wav", {"mode": "audio"}))
    assert doc["version"] == 1 and doc["audio"] == "line.wav" and doc["fps"] == 24.0
    assert doc["duration"] == pytest.approx(1.5)
    assert len(doc["visemes"]) == 15 and len(doc["frames"]) == len(anim.frames)
    assert all(len(row) == 15 for row in doc["frames"])
    assert np.allclose(np.array(doc["frames"]), anim.frames, atol=1e-4)
    assert read_cues(json.dumps(doc), "json") == [Cue(round(c.start, 4), round(c.end, 4), c.viseme) for c in anim.cues]


def test_tsv_round_trip(anim):
    times, frames = read_tsv_frames(render("tsv", anim, "x.wav"))
    assert np.allclose(times, np.arange(len(anim.frames)) / 24.0, atol=1e-4)
    assert np.allclose(frames, anim.frames, atol=1e-4)


@pytest.mark.parametrize("fmt", ["rhubarb-json", "rhubarb-tsv"])
def test_rhubarb_formats_round_trip(anim, fmt):
    text = render(fmt, anim, "x.wav")
    cues = read_cues(text, fmt)
    assert [c.name for c in cues] == ["sil", "aa", "PP", "ou", "FF", "E", "sil"]
    assert cues[2].start == pytest.approx(0.5) and cues[-1].end == pytest.approx(1.5)
    if fmt == "rhubarb-json":
        doc = json.loads(text)
        assert [c["value"] for c in doc["mouthCues"]] == ["X", "D", "A", "F", "G", "C", "X"]
        assert doc["metadata"]["duration"] == 1.5


def test_moho_dat_round_trip(anim):
    text = render("dat", anim, "x.wav")
    lines = text.splitlines()
    assert lines[0] == "MohoSwitch1" and lines[1] == "1 rest"
    cues = read_cues(text, "dat", fps=24.0)
    assert [c.name for c in cues] == ["sil", "aa", "PP", "ou", "FF", "E", "sil"]
    assert cues[2].start == pytest.approx(round(0.5 * 24) / 24)


def test_all_formats_are_covered():
    assert set(FORMATS) == {"json", "tsv", "rhubarb-json", "rhubarb-tsv", "dat"}
