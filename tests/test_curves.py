"""The animation rules, checked on constructed posteriors (no model involved)."""

import numpy as np
import pytest

from oris.core.curves import CurveSettings, animate, cues_from_posteriors, cues_from_segments
from oris.core.visemes import PP, SIL, VISEME_INDEX, VISEMES
from oris.lipsync import decoding_settings


def posteriors(*spans: tuple[str, int] | tuple[str, int, float], rival: str | None = None) -> np.ndarray:
    """Logits at 100 Hz: each span is (viseme, frames[, probability]); the rest of the mass goes
    to `rival` when given, else it is spread over the other classes."""
    rows = []
    for span in spans:
        name, n, p = (span + (0.9,))[:3] if len(span) == 2 else span
        row = np.full(15, (1 - p) / 14)
        if rival:
            row[:] = 1e-4
            row[VISEME_INDEX[rival]] = 1 - p
        row[VISEME_INDEX[name]] = p
        rows += [row] * n
    return np.log(np.array(rows))


def run(logits, fps=100.0, **kw):
    settings = CurveSettings(**kw)
    cues = cues_from_posteriors(logits, settings)
    return animate(cues, len(logits) / 100.0, fps, settings)


def cue_names(anim):
    return [c.name for c in anim.cues]


@pytest.mark.parametrize("lead_ms", [0, 60, 100])
def test_lead_moves_the_mouth_ahead_of_the_sound(lead_ms):
    anim = run(posteriors(("sil", 50), ("aa", 30), ("sil", 50)), lead_seconds=lead_ms / 1000)
    aa = next(c for c in anim.cues if c.name == "aa")
    assert aa.start == pytest.approx(0.50 - lead_ms / 1000, abs=1e-6)
    assert aa.end == pytest.approx(0.80 - lead_ms / 1000, abs=1e-6)


def test_default_lead_is_30_ms():  # where the animation lines up with real lips (benchmarks/motion.py)
    assert CurveSettings().lead_seconds == pytest.approx(0.03)


def test_a_three_frame_blip_does_not_flicker():
    anim = run(posteriors(("aa", 40), ("SS", 3), ("aa", 40)), lead_seconds=0)
    assert cue_names(anim) == ["aa"]
    assert not (anim.frames.argmax(axis=1) == VISEME_INDEX["SS"]).any()


def test_no_interior_shape_shorter_than_70_ms_on_noisy_posteriors():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(600, 15)) * 2.0
    logits[:, PP] -= 5  # no closures here: every cue must obey the minimum
    anim = run(logits, lead_seconds=0.06)
    for cue in anim.cues[1:-1]:
        assert cue.duration >= 0.07 - 1e-9, cue


@pytest.mark.parametrize("shortest", [0.03, 0.05, 0.07])
def test_the_model_cards_shortest_shape_sets_the_flicker_minimum(shortest):
    settings = decoding_settings({"decoding": {"min_seconds": shortest}}, CurveSettings(lead_seconds=0))
    assert decoding_settings({}, CurveSettings()).min_seconds == CurveSettings().min_seconds  # no card value: the default
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(600, 15)) * 2.0
    logits[:, PP] -= 5
    anim = animate(cues_from_posteriors(logits, settings), 6.0, 100.0, settings)
    assert all(cue.duration >= shortest - 1e-9 for cue in anim.cues[1:-1])
    blip = animate(cues_from_posteriors(posteriors(("aa", 40), ("SS", 4), ("aa", 40)), settings), 0.84, 100.0, settings)
    assert ("SS" in cue_names(blip)) == (shortest <= 0.04)  # a 40 ms shape is kept only below that minimum


@pytest.mark.parametrize("fps", [12, 23.976, 24, 25, 29.97, 30, 60, 120])
def test_every_closure_shows_a_fully_closed_mouth_at_any_rate(fps):
    # Two 40 ms closures the argmax would miss (PP at 0.45 against aa at 0.55).
    logits = posteriors(("sil", 30), ("aa", 25), ("PP", 4, 0.45), ("aa", 25), ("PP", 4, 0.45), ("oh", 30), ("sil", 30), rival="aa")
    anim = run(logits, fps=fps)
    closures = [c for c in anim.cues if c.viseme == PP]
    assert len(closures) == 2
    for c in closures:
        k = np.arange(len(anim.frames)) / fps
        near = (k >= c.start - 1.0 / fps) & (k <= c.end + 1.0 / fps)
        closed = anim.frames[near][:, PP] == 1.0
        assert closed.any(), f"no closed frame for closure {c} at {fps} fps"
        row = anim.frames[near][closed][0]
        assert row.sum() == pytest.approx(1.0) and row[PP] == 1.0


def test_frame_count_and_timing_at_fractional_rates():
    anim = run(posteriors(("sil", 200)), fps=29.97)
    assert len(anim.frames) == int(np.floor(2.0 * 29.97)) + 1
    anim = run(posteriors(("sil", 200)), fps=23.976)
    assert len(anim.frames) == 48


def test_silence_relaxes_to_rest():
    anim = run(posteriors(("sil", 150)))
    assert cue_names(anim) == ["sil"]
    assert np.allclose(anim.frames[:, SIL], 1.0)


def test_short_pause_holds_and_long_pause_rests():
    short = run(posteriors(("aa", 30), ("sil", 8), ("oh", 30)), lead_seconds=0)
    assert "sil" not in cue_names(short)
    long = run(posteriors(("aa", 30), ("sil", 30), ("oh", 30)), lead_seconds=0)
    assert cue_names(long) == ["aa", "sil", "oh"]


def test_smooth_mode_blends_and_weights_form_a_partition():
    anim = run(posteriors(("sil", 30), ("aa", 30), ("oh", 30), ("sil", 30)), fps=100, lead_seconds=0)
    aa, oh = anim.frames[:, VISEME_INDEX["aa"]], anim.frames[:, VISEME_INDEX["oh"]]
    assert ((aa > 0.05) & (oh > 0.05)).any(), "no crossfade between aa and oh"
    assert np.allclose(anim.frames.sum(axis=1), 1.0, atol=1e-5)
    assert (anim.frames >= -1e-7).all()


def test_stepped_mode_holds_one_shape_at_a_time():
    anim = run(posteriors(("sil", 30), ("aa", 30), ("PP", 5, 0.45), ("oh", 30), ("sil", 30), rival="oh"), fps=24, stepped=True)
    assert np.allclose(anim.frames.max(axis=1), 1.0)
    assert ((anim.frames > 0).sum(axis=1) == 1).all()
    assert (anim.frames[:, PP] == 1.0).any()


def test_intensity_scales_open_shapes_but_not_closures():
    logits = posteriors(("sil", 30), ("aa", 30), ("PP", 6, 0.9), ("aa", 30), ("sil", 30))
    half = run(logits, intensity=0.5)
    assert half.frames[:, VISEME_INDEX["aa"]].max() == pytest.approx(0.5, abs=1e-4)
    assert half.frames[:, PP].max() == 1.0
    with pytest.raises(ValueError):
        run(logits, intensity=3.0)


def test_transcript_segments_keep_short_closures_and_merge_flicker():
    segs = [(0.0, 0.3, SIL), (0.3, 0.5, VISEME_INDEX["aa"]), (0.5, 0.53, PP), (0.53, 0.56, VISEME_INDEX["DD"]),
            (0.56, 0.8, VISEME_INDEX["oh"]), (0.8, 1.2, SIL)]
    cues = cues_from_segments(segs, CurveSettings())
    names = [VISEMES[c.viseme] for c in cues]
    assert "PP" in names and "DD" not in names
