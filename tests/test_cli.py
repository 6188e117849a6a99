"""`python -m oris visemes` as users run it: real process, real files, every bad input."""

import json
import sys

import numpy as np
import pytest
import soundfile as sf

from oris.core.formats import read_cues, read_tsv_frames

from . import procs
from .conftest import DATA, DEMO_AUDIO, DEMO_TEXT


def oris(*args, timeout=300):
    return procs.run([sys.executable, "-m", "oris", *args], timeout=timeout)


def assert_clean_error(result, code, pattern):
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert pattern in result.stderr, result.stderr


@pytest.fixture(scope="module")
def demo_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "demo.json"
    result = oris("visemes", DEMO_AUDIO, "-o", out, "--fps", 24)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), result


def test_json_follows_the_schema(demo_json):
    doc, result = demo_json
    info = sf.info(DEMO_AUDIO)
    assert doc["version"] == 1 and doc["fps"] == 24 and len(doc["visemes"]) == 15
    assert doc["duration"] == pytest.approx(info.duration, abs=1e-3)
    assert len(doc["frames"]) == int(np.floor(info.duration * 24)) + 1
    assert np.allclose(np.array(doc["frames"]).sum(axis=1), 1.0, atol=1e-3)
    names = {c["viseme"] for c in doc["cues"]}
    assert "PP" in names and len(names) >= 8, "real speech should use many shapes"
    assert doc["cues"][0]["start"] == 0 and doc["cues"][-1]["end"] == pytest.approx(doc["duration"], abs=1e-3)


def test_summary_but_no_progress_bar_when_piped(demo_json):
    _doc, result = demo_json
    assert "cues" in result.stderr and "closures" in result.stderr
    assert "\r" not in result.stderr and "%" not in result.stderr


@pytest.mark.parametrize("fmt", ["tsv", "rhubarb-json", "rhubarb-tsv", "dat"])
def test_every_format_parses_back(tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    result = oris("visemes", DEMO_AUDIO, "-f", fmt, "-o", out, "--fps", 30)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    if fmt == "tsv":
        times, frames = read_tsv_frames(text)
        assert frames.shape[1] == 15 and times[1] == pytest.approx(1 / 30, abs=1e-4)
    else:
        cues = read_cues(text, fmt, fps=30)
        assert len(cues) > 10 and any(c.name == "PP" for c in cues)


def test_stdout_when_no_output_file():
    result = oris("visemes", DEMO_AUDIO, "-f", "rhubarb-tsv", "-q", "--audio-only")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines()[-1].endswith("\tX")


@pytest.mark.parametrize("fps", ["12", "23.976", "29.97", "120"])
def test_frame_rates(tmp_path, fps):
    out = tmp_path / "x.json"
    assert oris("visemes", DEMO_AUDIO, "--fps", fps, "-o", out, "-q").returncode == 0
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) == int(np.floor(doc["duration"] * float(fps) + 1e-9)) + 1


def test_stepped_mode(tmp_path):
    out = tmp_path / "x.json"
    assert oris("visemes", DEMO_AUDIO, "--stepped", "--fps", 24, "-o", out, "-q").returncode == 0
    frames = np.array(json.loads(out.read_text())["frames"])
    assert ((frames > 0).sum(axis=1) == 1).all()


def test_transcript_guided_mode_gives_word_timings(tmp_path):
    out = tmp_path / "x.json"
    result = oris("visemes", DEMO_AUDIO, "--text-file", DEMO_TEXT, "-o", out)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["mode"] == "transcript"
    words = [w["word"].lower() for w in doc["words"]]
    assert words[:4] == ["we", "have", "climbed", "one"] and "ship" in words
    starts = [w["start"] for w in doc["words"]]
    assert starts == sorted(starts) and doc["words"][-1]["end"] <= doc["duration"]


@pytest.mark.parametrize("text,language,why", [
    ("the quick brown fox jumps over the lazy dog while seven zebras quietly knit yellow scarves", "auto",
     "does not seem to match"),
    ("   ", "auto", "empty"),
    ("!!! ... ???", "auto", "no words (only punctuation"),
    # a Mandarin script on English audio: read as Mandarin, it does not match the audio
    ("我们已经爬上了梯子的一级", "auto", "does not seem to match"),
    # and said to be English, it is named as the wrong language
    ("我们已经爬上了梯子的一级", "en", "looks like Mandarin Chinese, not English: it does not match --language en"),
])
def test_unusable_transcripts_fall_back_to_audio_with_a_warning(tmp_path, text, language, why):
    out = tmp_path / "x.json"
    result = oris("visemes", DEMO_AUDIO, "--text", text, "--language", language, "-o", out)
    assert result.returncode == 0, result.stderr
    assert why in result.stderr and "used the audio alone" in result.stderr
    assert json.loads(out.read_text())["mode"] == "audio"


def test_missing_transcript_file():
    assert_clean_error(oris("visemes", DEMO_AUDIO, "--text-file", "/no/such/file.txt"), 2, "cannot read the transcript")


def test_missing_audio():
    assert_clean_error(oris("visemes", "/no/such/line.wav"), 2, "audio file not found")


def test_text_renamed_wav(tmp_path):
    (tmp_path / "line.wav").write_text("hello\n" * 100)
    assert_clean_error(oris("visemes", tmp_path / "line.wav"), 2, "could not read")


def test_empty_and_zero_length(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    assert_clean_error(oris("visemes", tmp_path / "empty.wav"), 2, "empty (0 bytes)")
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    assert_clean_error(oris("visemes", tmp_path / "zero.wav"), 2, "no audio samples")


def test_silence_gives_rest(tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(16000 * 3, np.float32), 16000)
    result = oris("visemes", tmp_path / "quiet.wav", "-o", tmp_path / "q.json")
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "q.json").read_text())
    assert [c["viseme"] for c in doc["cues"]] == ["sil"]


@pytest.mark.parametrize("rate,channels,subtype", [(8000, 1, "PCM_16"), (96000, 1, "PCM_24"), (48000, 6, "PCM_16"), (44100, 2, "FLOAT")])
def test_unusual_rates_channels_and_float_nan(tmp_path, rate, channels, subtype):
    speech, _ = sf.read(DEMO_AUDIO, dtype="float32")
    from scipy.signal import resample_poly

    x = resample_poly(speech[: 16000 * 5], rate, 16000).astype(np.float32)
    x = np.stack([x] * channels, axis=1) if channels > 1 else x
    if subtype == "FLOAT":
        x[1000:1100] = np.nan
        x[2000] = np.inf
    path = tmp_path / "in.wav"
    sf.write(path, x, rate, subtype=subtype)
    result = oris("visemes", path, "-o", tmp_path / "o.json")
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["duration"] == pytest.approx(5.0, abs=0.01)
    assert any(c["viseme"] != "sil" for c in doc["cues"])
    if subtype == "FLOAT":
        assert "NaN/Inf" in result.stderr


def test_several_inputs_one_bad(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    result = oris("visemes", DEMO_AUDIO, bad, "-o", tmp_path / "out")
    assert_clean_error(result, 1, "could not read")
    assert (tmp_path / "out" / "speech.json").exists()


def test_bad_options():
    assert oris("visemes", DEMO_AUDIO, "--fps", "0").returncode == 2
    assert_clean_error(oris("visemes", DEMO_AUDIO, "--intensity", "5"), 2, "intensity")
    assert_clean_error(oris("visemes", DEMO_AUDIO, "--jaw", "-1"), 2, "--jaw")
    assert_clean_error(oris("visemes", DEMO_AUDIO, "--lips", "nan"), 2, "--lips")


def test_jaw_and_lips_shape_the_output_and_are_recorded(tmp_path, demo_json):
    out = tmp_path / "no_jaw.json"
    result = oris("visemes", DEMO_AUDIO, "-o", out, "--fps", 24, "--jaw", 0, "--lips", 2)
    assert result.returncode == 0, result.stderr
    doc, (plain, _) = json.loads(out.read_text()), demo_json
    assert doc["jaw"] == 0 and doc["lips"] == 2 and plain["jaw"] == plain["lips"] == 1
    aa, ou = doc["visemes"].index("aa"), doc["visemes"].index("ou")
    frames, before = np.array(doc["frames"]), np.array(plain["frames"])
    assert frames[:, aa].sum() < 0.5 * before[:, aa].sum()  # the open vowel is mostly jaw
    assert frames[:, ou].sum() > before[:, ou].sum()  # the rounded one mostly lips


def test_an_hour_of_audio(tmp_path):
    speech, _ = sf.read(DEMO_AUDIO, dtype="float32")
    # pad the clip to whole 4 s chunks so that every repetition meets the same chunk windows
    clip = np.concatenate([speech, np.zeros(-len(speech) % (4 * 16000), np.float32)])
    sf.write(tmp_path / "clip.flac", clip, 16000, subtype="PCM_16")
    hour = np.tile(clip, int(np.ceil(3600 * 16000 / len(clip))))[: 3600 * 16000]
    sf.write(tmp_path / "hour.flac", hour, 16000, subtype="PCM_16")
    out = tmp_path / "hour.tsv"
    result = oris("visemes", tmp_path / "hour.flac", "-f", "rhubarb-tsv", "-o", out, "--audio-only", timeout=600)
    assert result.returncode == 0, result.stderr
    cues = read_cues(out.read_text(), "rhubarb-tsv")
    assert cues[-1].end == pytest.approx(3600.0, abs=0.01)
    # Every interior repetition meets identical chunk windows, so an hour must decode each one
    # the same: no drift, nothing lost, memory and state flat across the whole file.
    period = len(clip) / 16000
    reps = int(3600 // period)
    counts = [sum(c.name == "PP" and k * period <= c.start < (k + 1) * period for c in cues) for k in range(1, reps - 1)]
    assert min(counts) >= 3 and max(counts) - min(counts) <= 1, counts[:20]


def _missed_closures(doc) -> tuple[list, int]:
    """Bilabials (flite's own timings) with no closed-mouth frame within the phone +- 40 ms."""
    is_closed = np.array(doc["frames"]).argmax(axis=1) == 1
    start, missed, total = 0.0, [], 0
    for token in (DATA / "bilabials_slt.phones").read_text().split():
        phone, end = token.rsplit(":", 1)
        end = float(end)
        if phone in ("p", "b", "m"):
            total += 1
            lo, hi = int((start - 0.04) * 100), int(np.ceil((end + 0.04) * 100))
            if not is_closed[max(0, lo) : hi + 1].any():
                missed.append((phone, start))
        start = end
    return missed, total


BILABIAL_TEXT = "Bob and Pam made maple buns, but the puppy ate them."


def test_closures_land_on_the_bilabials_of_speech():
    result = oris("visemes", DATA / "bilabials_slt.flac", "--lead-ms", 0, "-q", "--audio-only")
    assert result.returncode == 0
    missed, total = _missed_closures(json.loads(result.stdout))
    assert total == 12 and len(missed) <= total * 0.2, f"no closed mouth at {missed}"


def test_with_the_transcript_every_bilabial_closes():
    result = oris("visemes", DATA / "bilabials_slt.flac", "--lead-ms", 0, "-q", "--text", BILABIAL_TEXT)
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["mode"] == "transcript"
    missed, _total = _missed_closures(doc)
    assert not missed, f"no closed mouth at {missed}"


def test_without_a_transcript_the_recognizer_supplies_the_words():
    result = oris("visemes", DATA / "bilabials_slt.flac", "--lead-ms", 0, "-q")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["mode"] == "recognized"
    heard = doc["recognized_text"].lower()
    assert all(w in heard for w in ("pam", "maple", "buns", "puppy")), heard
    assert [r["used"] for r in doc["recognized"]] == [True] and doc["recognized"][0]["end"] == doc["duration"]
    assert [w["word"].lower() for w in doc["words"]][1:4] == ["and", "pam", "made"]
    missed, _total = _missed_closures(doc)
    # every closure after the first word: tiny.en hears "Bob" as "God" here, and no model can close what it did not hear
    assert all(start < 0.5 for _phone, start in missed), f"no closed mouth at {missed}"


@pytest.mark.parametrize("clip, language", [("german_espeak.flac", "de"), ("spanish_espeak.flac", "es"),
                                            ("music.flac", None)])
def test_no_invented_words_on_other_languages_music_or_silence(tmp_path, clip, language):
    """Where the recognizer's words cannot be trusted, the result is exactly the audio-only one, and says so. Words it
    does use on a line in another language Oris reads are that language's words, never English guesses."""
    path = DATA / clip
    if clip == "music.flac":  # and a stretch of silence after the music
        music, rate = sf.read(path, dtype="float32")
        path = tmp_path / "music_then_silence.wav"
        sf.write(path, np.concatenate([music, np.zeros(rate * 3, np.float32)]), rate)
    heard = oris("visemes", path, "--fps", 24)
    assert heard.returncode == 0, heard.stderr
    doc = json.loads(heard.stdout)
    if doc["mode"] == "recognized":  # beam search heard the Spanish line's last two sentences, in Spanish
        assert language is not None and doc["language"] == language, doc["recognized"]
        assert [r["language"] for r in doc["recognized"] if r["used"]] == [language]
        return
    # where the recognizer named another language, its viseme model ran: audio alone told any other language runs it too
    other = ["--language", "fr"] if doc["model"]["visemes"] == "multilingual" else []
    plain = oris("visemes", path, "--fps", 24, "--audio-only", *other)
    assert plain.returncode == 0, plain.stderr
    ref = json.loads(plain.stdout)
    assert doc["mode"] == "audio" and not doc.get("words") and ref["mode"] == "audio"
    assert not any(r["used"] for r in doc["recognized"])
    assert doc["frames"] == ref["frames"]
    assert "used the audio alone there" in heard.stderr
