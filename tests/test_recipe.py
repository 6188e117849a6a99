"""The training recipe's reference checks (numpy only; the recipe's torch parts are not needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "recipe"))
from corpus import closure_free_pronunciations, implausible_alignment, native_role  # noqa: E402

SR = 16000


def _clip(loud_from: float, loud_to: float, seconds: float = 3.0, floor: float = 0.002) -> np.ndarray:
    """Quiet noise with a stretch of syllable-like loud bursts (4 per second) between two times."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    x = rng.standard_normal(len(t)) * floor
    inside = (t >= loud_from) & (t < loud_to)
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)  # never drops to the floor: connected speech
    x[inside] += 0.3 * syllables[inside] * np.sin(2 * np.pi * 180 * t[inside])
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def test_an_alignment_that_covers_the_speech_is_plausible() -> None:
    audio = _clip(0.5, 2.0)
    segments = [(0.0, 0.5, "sil"), (0.5, 1.0, "ah"), (1.0, 1.5, "m"), (1.5, 2.0, "ow"), (2.0, 3.0, "sil")]
    assert implausible_alignment(audio, segments) is None


def test_speech_labelled_silence_is_caught() -> None:
    # the aligner crammed the words into the first half second of speech and called the rest silence
    audio = _clip(0.5, 2.0)
    segments = [(0.0, 0.5, "sil"), (0.5, 0.8, "ah"), (0.8, 1.0, "m"), (1.0, 3.0, "sil")]
    why = implausible_alignment(audio, segments)
    assert why is not None and "labelled silence at 1.00 s" in why


def test_a_short_loud_noise_in_a_pause_is_not_speech() -> None:
    audio = _clip(0.5, 0.8)  # a 0.3 s cough or click
    assert implausible_alignment(audio, [(0.0, 3.0, "sil")]) is None


def test_steady_background_noise_sets_the_floor() -> None:
    audio = _clip(0.0, 0.0, floor=0.2)  # a loud fan, no speech: nothing is 25 dB above the floor
    assert implausible_alignment(audio, [(0.0, 3.0, "sil")]) is None


@pytest.mark.parametrize("phone", ["ng", "aa"])
def test_a_phone_longer_than_a_second_is_caught(phone: str) -> None:
    audio = _clip(0.5, 2.0)
    why = implausible_alignment(audio, [(0.0, 0.5, "sil"), (0.5, 1.8, phone), (1.8, 3.0, "sil")])
    assert why is not None and f"'{phone}' lasts 1.30 s" in why


def test_reference_quality_scores_an_alignment_against_exact_timings(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from corpus import Utterance, save_set
    from evaluate import reference_quality
    from labels import LabelledSet

    audio = np.zeros(SR, np.int16)  # 1 s: 101 frames at 100 Hz
    # times exact in binary, so that float32 storage moves no frame
    exact = [(0.0, 0.25, "sil"), (0.25, 0.5, "m"), (0.5, 0.75, "aa"), (0.75, 1.0, "sil")]
    late = [(0.0, 0.375, "sil"), (0.375, 0.5, "m"), (0.5, 0.75, "aa"), (0.75, 1.0, "sil")]  # closure 125 ms late
    missing = [(0.0, 0.25, "sil"), (0.25, 0.75, "aa"), (0.75, 1.0, "sil")]  # no closure at all
    save_set(tmp_path / "exact.npz", [Utterance("a", audio, exact), Utterance("b", audio, exact)])
    save_set(tmp_path / "aligned.npz", [Utterance("a", audio, late), Utterance("b", audio, missing)])
    quality = reference_quality(LabelledSet(tmp_path / "exact.npz"), LabelledSet(tmp_path / "aligned.npz"))
    # utterance a misses 13 closure frames (0.25-0.37 s), b all 25 (0.25-0.49 s), of 202 frames
    assert quality["viseme15_frame_accuracy"] == pytest.approx(round(1 - 38 / 202, 4))
    assert quality["bilabial_recall"] == 0.5 and quality["bilabial_precision"] == 1.0
    assert (quality["utterances"], quality["of"]) == (2, 2)


def test_closure_recall_is_split_by_what_follows_the_closure() -> None:
    from labels import Score

    from addon.core.visemes import PHONES, PP, SIL

    ids = {p: PHONES.index(p) for p in ("sil", "m", "aa", "p", "s")}
    segments = [(0.0, 0.2, ids["sil"]), (0.2, 0.3, ids["m"]), (0.3, 0.5, ids["aa"]), (0.5, 0.6, ids["p"]),
                (0.6, 0.7, ids["sil"]), (0.7, 0.8, ids["m"]), (0.8, 0.9, ids["s"]), (0.9, 1.0, ids["sil"])]
    predicted = np.full(101, SIL)
    predicted[22:28] = PP  # the onset m is shown; the p before a pause and the m before s are not
    score = Score()
    score.add(predicted, predicted.copy(), segments)
    summary = score.summary()
    assert summary["bilabials"] == 3 and summary["bilabials_before_vowel"] == 1
    assert summary["bilabial_recall_before_vowel"] == 1.0
    assert summary["bilabial_recall_syllable_final"] == 0.0


def test_the_score_says_which_shapes_it_misses_and_what_false_closures_sit_on() -> None:
    from labels import Score

    from addon.core.visemes import PHONES, PP, SIL, VISEME_INDEX

    ids = {p: PHONES.index(p) for p in ("sil", "m", "aa", "n")}
    segments = [(0.0, 0.2, ids["sil"]), (0.2, 0.3, ids["m"]), (0.3, 0.5, ids["aa"]), (0.5, 0.6, ids["n"]),
                (0.6, 1.0, ids["sil"])]
    reference = np.full(101, SIL)
    reference[20:30], reference[30:50], reference[50:60] = PP, VISEME_INDEX["aa"], VISEME_INDEX["nn"]
    predicted = reference.copy()
    predicted[40:50] = SIL  # half the open vowel shown at rest
    predicted[52:57] = PP  # a closure on the n: m heard for n
    score = Score()
    score.add(predicted, reference, segments)
    summary = score.summary()
    assert summary["mouth_recall"]["open"] == 0.5
    assert summary["mouth_recall"]["closed"] == 1.0
    assert summary["mouth_recall"]["spread"] == 0.5  # the nn frames: 5 of 10 shown as a closure
    assert summary["false_closures_on"] == {"n": 1}
    assert summary["vowel_mouth_recall"] == {"aa": 0.5}
    assert summary["bilabial_precision"] == 0.5


ESPEAK_SR = 22050


def _espeak_like(closure_level: float) -> np.ndarray:
    """A vowel, a 40 ms closure at `closure_level` (0 for the plain voices' digital silence, breath noise
    for some variants), a 30 ms burst, and a second vowel: what espeak-ng synthesizes for 'a pa'."""
    rng = np.random.default_rng(1)
    t = np.arange(int(0.5 * ESPEAK_SR)) / ESPEAK_SR
    x = 0.3 * np.sin(2 * np.pi * 150 * t)
    closure, burst = (t >= 0.20) & (t < 0.24), (t >= 0.24) & (t < 0.27)
    x[closure] = closure_level * rng.standard_normal(int(closure.sum()))
    x[burst] = 0.1 * rng.standard_normal(int(burst.sum()))
    return (x * 32767).astype(np.int16)


@pytest.mark.parametrize("closure_level", [0.0, 0.003])
def test_an_espeak_stop_gets_the_closure_before_its_burst(closure_level: float) -> None:
    from corpus import espeak_segments

    audio = _espeak_like(closure_level)
    onsets = [(0, "a"), (int(0.24 * ESPEAK_SR), "p"), (int(0.27 * ESPEAK_SR), "A@")]
    segments = espeak_segments(audio, ESPEAK_SR, onsets)
    assert [p for _, _, p in segments] == ["ae", "p", "aa", "r"]  # the r-coloured vowel is split in two
    (_, vowel_end, _), (p_start, p_end, _) = segments[0], segments[1]
    assert vowel_end == p_start == pytest.approx(0.20, abs=0.006)  # the event came at the burst, 0.24 s
    assert p_end == pytest.approx(0.27, abs=1e-3)
    assert segments[-1][1] == pytest.approx(0.5, abs=1e-3)


def test_an_espeak_stop_after_a_pause_keeps_its_event_time() -> None:
    from corpus import espeak_segments

    audio = _espeak_like(0.0)
    onsets = [(0, "_:"), (int(0.24 * ESPEAK_SR), "p"), (int(0.27 * ESPEAK_SR), "a")]
    segments = espeak_segments(audio, ESPEAK_SR, onsets)
    assert [p for _, _, p in segments] == ["sil", "p", "ae"]
    assert segments[1][0] == pytest.approx(0.24, abs=1e-3)  # silence before a pause-initial stop stays silence


def test_an_unknown_espeak_phoneme_is_refused_not_guessed() -> None:
    from corpus import espeak_segments

    with pytest.raises(KeyError):
        espeak_segments(_espeak_like(0.0), ESPEAK_SR, [(0, "a"), (1000, "Q#")])


def test_closure_free_pronunciations_drop_each_bilabial_or_say_m_as_n() -> None:
    assert closure_free_pronunciations("F R AH M".split()) == [["F", "R", "AH"], ["F", "R", "AH", "N"]]
    assert closure_free_pronunciations("B AE P".split()) == [["AE", "P"], ["B", "AE"]]  # one closure at a time
    assert closure_free_pronunciations("T UW".split()) == []
    assert closure_free_pronunciations(["M"]) == [["N"]]  # a word is never left without phones


@pytest.mark.parametrize("n, words", [(0, "zero"), (7, "seven"), (15, "fifteen"), (40, "forty"), (42, "forty two"),
                                      (100, "one hundred"), (911, "nine hundred eleven"),
                                      (2024, "two thousand twenty four"), (1000, "one thousand")])
def test_a_prompt_voice_reads_numbers_as_words(n: int, words: str) -> None:
    from corpus import spoken_number

    assert spoken_number(n) == words


def test_prompt_transcripts_become_the_words_the_voice_says() -> None:
    from corpus import prompt_words

    assert prompt_words("Press 1 for A.M., or 2 for P.M.") == "press one for a m or two for p m"
    assert prompt_words("...has joined the conference.") == "has joined the conference"
    assert prompt_words("You've got 13 new messages!") == "you've got thirteen new messages"


def test_the_card_credits_every_speech_source_with_its_licence() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from evaluate import PROMPT_VOICES, speech_credits

    used = {"speechocean762": {"utterances": 2086, "hours": 2.25},
            "asterisk-allison-en-us": {"utterances": 1790, "hours": 1.02},
            "asterisk-en-gb": {"utterances": 520, "hours": 0.38}}
    text = "\n".join(speech_credits(used))
    for licence in ("CC BY 4.0", "CC BY-SA 3.0", "CC BY 3.0"):
        assert licence in text
    assert "2,086 aligned utterances (2.25 h)" in text and "1,790 aligned utterances (1.02 h)" in text
    lines = {voice: next(line for line in text.splitlines() if credit in line) for voice, credit in PROMPT_VOICES.items()}
    assert "held out whole" in lines["asterisk-en-au"]
    assert lines["freeswitch-callie-en-us"].endswith("not used.")  # a voice training did not see is not claimed
    assert "offered under CC BY-SA 3.0" in text
    without_allison = {k: v for k, v in used.items() if k != "asterisk-allison-en-us"}
    assert "offered under CC BY-SA 3.0" not in "\n".join(speech_credits(without_allison))  # share-alike only if trained on it
    assert "kept out of training" not in text
    assert "365 (one in ten) were kept out of training" in "\n".join(speech_credits(used, native_dev_prompts=365))
    left_out = "\n".join(speech_credits(used, left_out=frozenset({"freeswitch-callie-en-us"})))
    assert next(line for line in left_out.splitlines() if PROMPT_VOICES["freeswitch-callie-en-us"] in line).endswith(
        "left out of this model's training and tuning; evaluated as held-out speech.")
    for voice in PROMPT_VOICES:  # every voice's licence travels with the model
        assert list((Path(__file__).resolve().parents[1] / "models" / "licenses" / voice).glob("LICENSE*"))


def test_about_one_prompt_in_ten_of_each_training_voice_is_kept_for_development() -> None:
    names = [f"{voice}__prompt-{i:04d}" for voice in ("asterisk-en-gb", "freeswitch-callie-en-us") for i in range(2000)]
    roles = [native_role(n, set()) for n in names]
    for voice in ("asterisk-en-gb", "freeswitch-callie-en-us"):
        dev = sum(r == "dev" for n, r in zip(names, roles) if n.startswith(voice))
        assert 150 <= dev <= 250, dev  # one in ten of 2,000, by a hash of the name
    assert set(roles) == {"train", "dev"}
    assert roles == [native_role(n, set()) for n in names], "the split must not change between runs"
    # a voice left out of training gives neither training nor development prompts
    left = [native_role(n, {"asterisk-en-gb"}) for n in names]
    assert {r for n, r in zip(names, left) if n.startswith("asterisk-en-gb")} == {"left out"}
    assert [r for n, r in zip(names, left) if n.startswith("freeswitch")] == roles[2000:]
