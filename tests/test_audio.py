"""Decoding real files of every kind the issue lists, good and bad."""

import numpy as np
import pytest
import soundfile as sf

from oris.core.audio import AudioError, decode_file

RATE = 16000


def tone(rate: int, seconds: float, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000])
def test_any_rate_becomes_16k_with_the_same_duration_and_pitch(tmp_path, rate):
    path = tmp_path / f"t{rate}.wav"
    sf.write(path, tone(rate, 2.5), rate)
    out = decode_file(path)
    assert len(out.samples) == pytest.approx(2.5 * RATE, abs=2)
    assert out.source_rate == rate and out.samples.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out.samples[4000:36000]))
    assert np.argmax(spectrum) * RATE / 32000 == pytest.approx(440, abs=2)


def test_long_file_is_resampled_in_blocks_without_seams(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(44100, 50.0), 44100)
    out = decode_file(path, block_seconds=3.0)
    ref = tone(RATE, 50.0)
    assert len(out.samples) == len(ref)
    assert np.max(np.abs(out.samples[1000:-1000] - ref[1000:-1000])) < 0.01


def test_six_channels_are_averaged(tmp_path):
    x = tone(48000, 1.0, channels=6)
    x[:, 3:] = 0.0
    path = tmp_path / "six.wav"
    sf.write(path, x, 48000)
    out = decode_file(path)
    assert out.channels == 6
    assert np.max(np.abs(out.samples)) == pytest.approx(0.25, abs=0.01)


def test_float_nan_inf_become_silence_with_a_warning(tmp_path):
    x = tone(RATE, 1.0)
    x[100:200] = np.nan
    x[300] = np.inf
    x[400] = 3.0
    path = tmp_path / "bad.wav"
    sf.write(path, x, RATE, subtype="FLOAT")
    out = decode_file(path)
    assert np.isfinite(out.samples).all() and np.max(np.abs(out.samples)) <= 1.0
    assert any("NaN/Inf" in w for w in out.warnings) and any("clipped" in w for w in out.warnings)


@pytest.mark.parametrize("fmt,subtype", [("FLAC", None), ("OGG", "VORBIS"), ("MP3", None)])
def test_compressed_formats(tmp_path, fmt, subtype):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, tone(44100, 2.0), 44100, format=fmt, subtype=subtype)
    out = decode_file(path)
    assert out.duration == pytest.approx(2.0, abs=0.1)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        decode_file(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        decode_file(tmp_path / "empty.wav")


def test_text_renamed_wav(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match="could not read .* as audio"):
        decode_file(tmp_path / "notes.wav")


def test_corrupt_bytes(tmp_path):
    (tmp_path / "noise.flac").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError):
        decode_file(tmp_path / "noise.flac")


def test_zero_length_audio(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), RATE)
    with pytest.raises(AudioError, match="no audio samples"):
        decode_file(tmp_path / "zero.wav")


def test_truncated_wav_keeps_what_is_there(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(RATE, 2.0), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = decode_file(path)
    assert 0.9 < out.duration < 1.1


def test_folder_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="folder"):
        decode_file(tmp_path)
