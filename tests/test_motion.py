"""Mouth motion between the shapes (core.motion): coarticulation rules on cue timelines, no bpy."""

import numpy as np
import pytest

from oris.core.audio import LoudnessMeter
from oris.core.curves import Articulation, Cue, CurveSettings, animate
from oris.core.motion import MotionSettings, coarticulate
from oris.core.visemes import PP, SIL, VISEME_INDEX

FPS = 100.0
V = VISEME_INDEX


def timeline(*spans):
    """Cues from (viseme, seconds) in order, starting at 0."""
    cues, t = [], 0.0
    for name, seconds in spans:
        cues.append(Cue(t, t + seconds, V[name]))
        t += seconds
    return cues, t


def weights_of(cues, duration, **motion):
    settings = CurveSettings(lead_seconds=0.0, motion=MotionSettings(**motion))
    return animate(cues, duration, FPS, settings).frames


def frames_in(cues, i):
    return slice(int(np.ceil(cues[i].start * FPS)), int(np.floor(cues[i].end * FPS)))


def test_anticipatory_rounding_on_stew():
    # s t ew: the lips round on the s, before the vowel, and most just before it
    cues, end = timeline(("sil", 0.2), ("SS", 0.12), ("DD", 0.05), ("ou", 0.25), ("sil", 0.3))
    w = weights_of(cues, end)
    s = w[frames_in(cues, 1), V["ou"]]
    assert s.max() > 0.15 and s[-1] > s[0], s
    plain = animate(cues, end, FPS, CurveSettings(lead_seconds=0.0, motion=None)).frames
    assert plain[frames_in(cues, 1), V["ou"]].max() < 0.05  # without coarticulation the s is not rounded


def test_a_tongue_consonant_between_open_vowels_keeps_the_lips_open():
    cues, end = timeline(("sil", 0.2), ("aa", 0.2), ("DD", 0.07), ("aa", 0.2), ("sil", 0.3))
    w = weights_of(cues, end)
    t = w[frames_in(cues, 2)]
    assert t[:, PP].max() == 0.0
    assert t[:, V["aa"]].min() > 0.3, t[:, V["aa"]]  # the vowels' opening carries through the t
    assert (t[:, SIL] < 0.5).all()


def test_closures_still_close_fully_and_on_time():
    cues, end = timeline(("sil", 0.2), ("aa", 0.15), ("PP", 0.06), ("aa", 0.15), ("sil", 0.3))
    w = weights_of(cues, end)
    closure = w[frames_in(cues, 2), PP]
    assert closure.max() == pytest.approx(1.0) and (closure > 0.99).sum() >= 5


def test_a_short_pause_keeps_the_lips_parted_and_a_long_one_rests():
    cues, end = timeline(("sil", 0.3), ("E", 0.2), ("sil", 0.2), ("aa", 0.2), ("sil", 1.2), ("E", 0.2), ("sil", 0.3))
    w = weights_of(cues, end)
    short = w[frames_in(cues, 2)]
    assert (short[:, SIL] < 0.9).all(), short[:, SIL]  # 200 ms: parted throughout
    long_pause = w[frames_in(cues, 4)]
    assert (long_pause[45:75, SIL] > 0.99).all()  # 1.2 s: at rest mid-way
    # the lips close gradually after speech and part before it resumes (the breath in), never jumping
    assert long_pause[5, SIL] < long_pause[20, SIL] < 1.0 and long_pause[-5, SIL] < long_pause[-25, SIL] < 1.0
    assert np.abs(np.diff(w[:, SIL])).max() < 0.25


def test_a_flash_of_an_open_vowel_is_under_reached_and_a_long_one_is_full():
    cues, end = timeline(("sil", 0.3), ("aa", 0.04), ("sil", 0.3), ("aa", 0.3), ("sil", 0.3))
    w = weights_of(cues, end)
    assert w[frames_in(cues, 1), V["aa"]].max() < 0.8
    assert w[frames_in(cues, 3), V["aa"]].max() > 0.95


def test_loud_frames_are_never_at_rest():
    cues, end = timeline(("sil", 0.3), ("aa", 0.2), ("sil", 0.25), ("E", 0.2), ("sil", 0.3))
    n = int(end * 100) + 1
    loudness = np.full(n, -60.0)
    loudness[30:75] = -10.0  # the decoder called 0.50-0.75 s silence, but the voice goes on, loud
    settings = CurveSettings(lead_seconds=0.0)
    w = coarticulate(animate(cues, end, FPS, CurveSettings(lead_seconds=0.0, motion=None)).frames, cues, FPS,
                     settings.motion, loudness_db=loudness)
    loud_rows = np.arange(30, 75)
    assert (w[loud_rows].argmax(axis=1) != SIL).all()


def test_rows_stay_a_full_pose():
    rng = np.random.default_rng(0)
    names = ["sil", "aa", "DD", "ou", "PP", "E", "SS", "oh", "FF", "nn", "ih", "sil"]
    cues, end = timeline(*[(names[i % len(names)], float(rng.uniform(0.03, 0.25))) for i in range(40)])
    w = weights_of(cues, end)
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-5) and w.min() >= 0.0


def test_stepped_mode_is_unchanged():
    cues, end = timeline(("sil", 0.2), ("SS", 0.12), ("ou", 0.25), ("sil", 0.3))
    stepped = animate(cues, end, FPS, CurveSettings(lead_seconds=0.0, stepped=True)).frames
    assert set(np.unique(stepped)) <= {0.0, 1.0} and (stepped.sum(axis=1) == 1).all()
    assert (stepped[frames_in(cues, 1), V["SS"]] == 1.0).all()


def test_the_loudness_meter_reads_blocks_of_any_size_as_one_signal():
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(16000) * np.linspace(0.01, 0.5, 16000)).astype(np.float32)
    whole = LoudnessMeter()
    whole.add(audio)
    pieces = LoudnessMeter()
    for start in range(0, len(audio), 999):
        pieces.add(audio[start:start + 999])
    assert len(whole.levels()) == 100
    np.testing.assert_allclose(pieces.levels(), whole.levels(), atol=1e-9)
    assert whole.levels()[-1] - whole.levels()[0] > 20  # the level rises with the amplitude


def test_the_worker_reports_the_audio_level_beside_the_visemes(worker, speech_16k):
    post = worker.infer(speech_16k[:32000])
    assert post.loudness is not None and len(post.loudness) == 200
    assert post.loudness.max() > -40  # speech, in dB full scale


def test_jaw_and_lips_intensities_scale_their_share_of_each_shape():
    cues, end = timeline(("sil", 0.3), ("aa", 0.3), ("PP", 0.08), ("ou", 0.3), ("sil", 0.3))

    def peak(name, **gains):
        settings = CurveSettings(lead_seconds=0.0, **gains)
        return animate(cues, end, FPS, settings).frames[frames_in(cues, 1 if name == "aa" else 3), V[name]].max()

    base_aa, base_ou = peak("aa"), peak("ou")
    # no jaw: the open vowel (mostly jaw) nearly vanishes, the rounded one (mostly lips) keeps most of its shape
    assert peak("aa", jaw=0.0) < 0.3 * base_aa and peak("ou", jaw=0.0) > 0.7 * base_ou
    # no lips: the other way round
    assert peak("ou", lips=0.0) < 0.3 * base_ou and peak("aa", lips=0.0) > 0.7 * base_aa
    # above 1, the blends between shapes open wider (a frame never exceeds a full pose)
    wide = animate(cues, end, FPS, CurveSettings(lead_seconds=0.0, jaw=2.0)).frames[:, V["aa"]].sum()
    assert wide > animate(cues, end, FPS, CurveSettings(lead_seconds=0.0)).frames[:, V["aa"]].sum() * 1.05
    for gains in ({"jaw": 0.0}, {"lips": 0.0}, {"jaw": 0.0, "lips": 0.0}):
        w = animate(cues, end, FPS, CurveSettings(lead_seconds=0.0, **gains)).frames
        assert w[frames_in(cues, 2), PP].max() == pytest.approx(1.0)  # p, b and m close whatever the gains
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="jaw"):
        animate(cues, end, FPS, CurveSettings(jaw=2.5))


def test_a_diphthong_glides_toward_its_second_vowel_and_keeps_its_first_shape_strongest():
    # "now": n, then aw; over the last 40% of aw the lips round toward ou, while aa stays the strongest shape
    cues, end = timeline(("sil", 0.3), ("nn", 0.08), ("aa", 0.3), ("sil", 0.5))
    glide = (0.38 + 0.18, 0.68, V["ou"])
    w = animate(cues, end, FPS, CurveSettings(lead_seconds=0.0), articulation=Articulation(glides=(glide,))).frames
    plain = weights_of(cues, end)
    vowel = frames_in(cues, 2)
    rounded = w[vowel, V["ou"]]
    assert rounded[-8:].max() > 0.25 and rounded[:8].max() < 0.05, rounded  # rounds toward the end only
    assert (w.argmax(axis=1) == plain.argmax(axis=1)).all()  # every frame keeps its strongest shape
    late = int(np.argmax(rounded))
    assert w[vowel, V["aa"]][late] < plain[vowel, V["aa"]][late] - 0.2  # the jaw closes as the lips round


def _logits_for(phones_and_frames):
    """Phone logits that say each phone over its frames, clearly."""
    from oris.core.visemes import PHONE_INDEX, PHONES

    rows = []
    for phone, frames in phones_and_frames:
        row = np.full(len(PHONES), -4.0, np.float32)
        row[PHONE_INDEX[phone]] = 4.0
        rows += [row] * frames
    return np.stack(rows)


def test_the_aligner_marks_the_end_of_an_english_diphthong_as_a_glide_and_not_a_plain_foreign_vowel():
    from oris.core.align import Transcript, align_transcript

    now = align_transcript(Transcript("now", "en"), _logits_for([("sil", 20), ("n", 10), ("aw", 30), ("sil", 40)]), 100.0)
    assert [(round(s, 2), round(e, 2), v) for s, e, v in now.articulation.glides] == [(0.48, 0.6, V["ou"])]
    assert [v for _s, _e, v in now.viseme_segments if v != SIL] == [V["nn"], V["aa"]]  # the cues are unchanged
    # French "beau" is a plain o (espeak-ng's o, the acoustic class ow): it does not glide
    beau = align_transcript(Transcript("beau", "fr"), _logits_for([("sil", 20), ("b", 8), ("ow", 30), ("sil", 40)]),
                            100.0)
    assert beau.articulation.glides == ()


def test_an_unstressed_vowel_opens_less_than_a_stressed_one_and_stays_its_shape():
    # "a ... ah": two equal open vowels, the words leave the first unstressed
    cues, end = timeline(("sil", 0.3), ("aa", 0.15), ("DD", 0.08), ("aa", 0.15), ("sil", 0.4))
    said = Articulation(unstressed=((0.3, 0.45),))
    w = animate(cues, end, FPS, CurveSettings(lead_seconds=0.0), articulation=said).frames
    plain = weights_of(cues, end)
    weak, strong = w[frames_in(cues, 1), V["aa"]], w[frames_in(cues, 3), V["aa"]]
    assert weak.max() < 0.7 * strong.max(), (weak.max(), strong.max())
    assert np.allclose(strong, plain[frames_in(cues, 3), V["aa"]], atol=0.02)  # the stressed one as before
    assert (w.argmax(axis=1) == plain.argmax(axis=1)).all()  # a weak vowel is still that vowel, not rest
    vowel_first = plain[frames_in(cues, 1)].argmax(axis=1) == V["aa"]
    assert vowel_first.sum() >= 10 and (w[frames_in(cues, 1), SIL][vowel_first] < weak[vowel_first]).all()


def test_the_aligner_reads_lexical_stress_from_the_dictionary():
    from oris.core.align import Transcript, align_transcript, dictionary_stress

    assert dictionary_stress("about") == (0, None, 1, None)  # AH0 B AW1 T
    about = align_transcript(Transcript("about", "en"),
                             _logits_for([("sil", 20), ("ah", 8), ("b", 8), ("aw", 25), ("t", 8), ("sil", 30)]), 100.0)
    assert [(round(s, 2), round(e, 2)) for s, e in about.articulation.unstressed] == [(0.2, 0.28)]
    # French says every vowel full: its stress opens nothing less
    assert align_transcript(Transcript("bonjour", "fr"), _logits_for(
        [("sil", 20), ("b", 8), ("ao", 20), ("zh", 8), ("uw", 20), ("r", 8), ("sil", 30)]), 100.0).articulation.unstressed == ()


def test_languages_that_weaken_unstressed_vowels_take_the_stress_from_espeak():
    from oris.core.align import word_stress

    assert word_stress("Wasser", "de") == (None, 1, None, 0)  # v ˈa s ɜ
    assert word_stress("хорошо", "ru") == (None, 0, None, 0, None, 1)  # x ʌ r ʌ ʃ ˈo
    guessed = word_stress("brunchzyx", "en")  # not in CMUdict: espeak-ng's marks
    assert guessed is not None and guessed.count(1) == 1 and 0 in guessed
    assert word_stress("hablamos", "es") is None and word_stress("bonjour", "fr") is None


def test_audio_alone_glides_where_the_phone_head_hears_a_diphthong():
    from oris.core.curves import heard_glides
    from oris.engine.client import Posteriors
    from oris.lipsync import animate_posteriors

    phones = _logits_for([("sil", 30), ("f", 8), ("ay", 30), ("v", 8), ("sil", 40)])  # "five"
    cues = [Cue(0.0, 0.38, SIL), Cue(0.38, 0.68, V["aa"]), Cue(0.68, 1.16, SIL)]
    assert heard_glides(phones, cues).glides == ((0.56, 0.68, V["ih"]),)
    assert heard_glides(_logits_for([("sil", 38), ("aa", 30), ("sil", 48)]), cues).glides == ()  # a plain "ah"
    visemes = np.full((len(phones), 15), -4.0, np.float32)
    visemes[:, SIL] = 4.0
    visemes[38:68, SIL], visemes[38:68, V["aa"]] = -4.0, 4.0
    english = animate_posteriors(Posteriors(visemes, phones), len(phones) / 100, 100.0, CurveSettings())
    other = animate_posteriors(Posteriors(visemes, phones, model="multilingual"), len(phones) / 100, 100.0,
                               CurveSettings())
    spread = slice(55, 66)  # the end of the vowel, after the 30 ms lead
    assert english.animation.frames[spread, V["ih"]].max() > 0.2
    assert other.animation.frames[spread, V["ih"]].max() < 0.01  # the multilingual model's ay is no English one
