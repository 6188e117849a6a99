"""Build the exactly aligned training and evaluation corpus.

Sources:
  * TTS: the CMU ARCTIC prompts spoken by flite and festival voices at several rates
    and pitches, and (--espeak-per-prompt) by espeak-ng voice variants; each engine reports
    the phone timings it synthesized, so labels are exact.
  * Real speech: the speechocean762 TRAIN split in ../shared/data (both halves: FLAC and Opus),
    force-aligned to phones with pocketsphinx (an utterance that fails alignment, or whose alignment the
    audio contradicts, is dropped and listed in implausible_alignments.json).
  * Native speech: the telephone prompt voices of ../shared/data/prompts-en, normalized to words
    (digits spelled out, punctuation dropped) and force-aligned the same way.

Held out from training (used only by models/evaluate.py):
  * real speech of every 8th speaker (sorted by id),
  * one whole native voice, asterisk-en-au (Australian, male): native_heldout.npz,
  * the festival ked_diphone voice speaking the last 100 ARCTIC prompts, which no
    training voice speaks either.

Each set is written as one .npz: int16 audio at 16 kHz concatenated, utterance
offsets, and phone segments (start s, end s, phone index) per utterance.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the recipe imports the shipped phone tables from the package
from addon.core.align import pronounce  # noqa: E402
from addon.core.curves import runs  # noqa: E402
from addon.core.visemes import PHONE_INDEX, normalize_phone  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SR = 16000
HELDOUT_PROMPTS = 100
HELDOUT_SPEAKER_EVERY = 8
NATIVE_HELDOUT_VOICE = "asterisk-en-au"  # a whole voice no training or tuning hears

FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
FESTIVAL_TRAIN_VOICES = ("voice_kal_diphone", "voice_cmu_us_slt_arctic_hts")
FESTIVAL_HELDOUT_VOICE = "voice_ked_diphone"


@dataclass
class Utterance:
    name: str
    audio: np.ndarray  # int16, 16 kHz
    segments: list[tuple[float, float, str]]  # (start s, end s, phone)
    text: str = ""
    rejected: str = ""  # why the alignment is implausible, if it is (the utterance is then left out)


def read_prompts(path: Path) -> list[tuple[str, str]]:
    prompts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r'\(\s*(\S+)\s+"(.*)"\s*\)', line)
        if m:
            prompts.append((m.group(1), m.group(2)))
    return prompts


def segments_from_end_times(ends: list[tuple[str, float]], duration: float) -> list[tuple[float, float, str]]:
    segs, start = [], 0.0
    for label, end in ends:
        end = min(end, duration)
        if end > start:
            segs.append((start, end, normalize_phone(label)))
        start = max(start, end)
    if start < duration:
        segs.append((start, duration, "sil"))
    return segs


def to_int16_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    audio = audio.astype(np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sr != SR:
        g = np.gcd(sr, SR)
        audio = resample_poly(audio, SR // g, sr // g).astype(np.float32)
    return np.clip(audio * 32767.0, -32768, 32767).astype(np.int16)


def synth_flite(job: tuple[str, str, str, float, float]) -> Utterance | None:
    name, text, voice, stretch, f0 = job
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "x.wav")
        cmd = ["flite", "-voice", voice, "-psdur", "--setf", f"duration_stretch={stretch:.3f}",
               "--setf", f"int_f0_target_mean={f0:.1f}", "-t", text, "-o", wav]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0 or not os.path.exists(wav):
            return None
        audio, sr = sf.read(wav, dtype="float32")
    ends = [(tok.rsplit(":", 1)[0], float(tok.rsplit(":", 1)[1])) for tok in out.stdout.split() if ":" in tok]
    audio16 = to_int16_16k(audio, sr)
    return Utterance(name, audio16, segments_from_end_times(ends, len(audio16) / SR), text)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def synth_festival(jobs: list[tuple[str, str, str, float]]) -> list[Utterance]:
    """Synthesize many prompts in one festival process (its start-up dominates otherwise)."""
    utts: list[Utterance] = []
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for i, (_name, text, voice, stretch) in enumerate(jobs):
            lines += [f"({voice})", f"(Parameter.set 'Duration_Stretch {stretch:.3f})",
                      f"(set! utt (Utterance Text {_scheme_string(text)}))", "(utt.synth utt)",
                      f'(utt.save.wave utt "{tmp}/{i}.wav" \'riff)', f'(utt.save.segs utt "{tmp}/{i}.segs")']
        script = os.path.join(tmp, "run.scm")
        Path(script).write_text("\n".join(lines) + "\n")
        subprocess.run(["festival", "-b", script], capture_output=True, timeout=3600)
        for i, (name, text, _voice, _stretch) in enumerate(jobs):
            wav, segf = f"{tmp}/{i}.wav", f"{tmp}/{i}.segs"
            if not (os.path.exists(wav) and os.path.exists(segf)):
                continue
            audio, sr = sf.read(wav, dtype="float32")
            ends = []
            for row in Path(segf).read_text().splitlines():
                parts = row.split()
                if len(parts) == 3 and parts[0] != "#":
                    ends.append((parts[2], float(parts[0])))
            audio16 = to_int16_16k(audio, sr)
            try:
                utts.append(Utterance(name, audio16, segments_from_end_times(ends, len(audio16) / SR), text))
            except KeyError:
                continue
    return utts


# espeak-ng phoneme mnemonics (en-us) onto PHONES; a two-phone symbol (an r-coloured vowel) is split.
ESPEAK_PHONES = {
    "p": "p", "b": "b", "t": "t", "t2": "t", "t#": "d", "?": "t", "d": "d", "k": "k", "g": "g",
    "m": "m", "m-": "m", "n": "n", "n-": "n", "N": "ng", "f": "f", "v": "v", "T": "th", "D": "dh",
    "s": "s", "z": "z", "S": "sh", "Z": "zh", "tS": "ch", "dZ": "jh", "h": "hh", "l": "l", "r": "r",
    "r-": "r", "w": "w", "j": "y", ";": "y",
    "a": "ae", "a#": "ae", "aa": "aa", "A:": "aa", "0": "aa", "V": "ah", "@": "ah", "@2": "ah", "@-": "ah",
    "@5": "ah", "E": "eh", "E2": "eh", "I": "ih", "I2": "ih", "I#": "ih", "i": "iy", "i:": "iy",
    "O:": "ao", "O": "ao", "O2": "ao", "oU": "ow", "OI": "oy", "aI": "ay", "aU": "aw", "eI": "ey",
    "u:": "uw", "U": "uh", "3": "er", "3:": "er",
    "A@": "aa r", "e@": "eh r", "O@": "ao r", "o@": "ao r", "i@": "ih r", "i@3": "ih r", "U@": "uh r",
    "aI@": "ay er", "aI3": "ay er", "aU@": "aw er", "@L": "ah l",
}
ESPEAK_VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5",
                   "+klatt", "+klatt2", "+klatt3", "+klatt4", "+croak", "+whisper")
STOPS = frozenset({"p", "b", "t", "d", "k", "g", "ch", "jh"})
# espeak-ng's phoneme events come about 10 ms after the boundaries pocketsphinx finds in its audio, the
# aligner of the real-speech references. espeak_timing.py measures it: on 60 prompts, viseme-frame
# agreement 0.817 with this shift applied, 0.803 and 0.814 5 ms either side; flite's exact times,
# for comparison, peak 0-5 ms earlier than given (0.865 unshifted, 0.879 at -5 ms).
ESPEAK_EVENT_LAG = 0.010
_ESPEAK = None


class _EspeakEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("name", ctypes.c_char * 8)]


class Espeak:
    """libespeak-ng in this process, synthesizing synchronously with a phoneme event at each phone
    onset (the command line prints phoneme names but no times)."""

    PHONEME_EVENT, SYNCHRONOUS, PHONEME_EVENTS, RATE, PITCH = 7, 2, 0x0001, 1, 3

    def __init__(self) -> None:
        # the same library and data the add-on reads scripts with (espeakng-loader's wheel): a second copy by
        # soname would resolve to that one once loaded, and without its data path it exits the process
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.rate = self.lib.espeak_Initialize(self.SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                                               self.PHONEME_EVENTS)
        if self.rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self.chunks: list[np.ndarray] = []
        self.onsets: list[tuple[int, str]] = []  # (sample, mnemonic)
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                         ctypes.POINTER(_EspeakEvent))
        self._callback = callback_type(self._collect)  # kept alive as long as the library may call it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n: int, events) -> int:
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:
            if events[i].type == self.PHONEME_EVENT:
                self.onsets.append((events[i].sample, events[i].name.decode("utf-8", "replace")))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        self.chunks, self.onsets = [], []
        self.lib.espeak_SetVoiceByName(voice.encode())
        self.lib.espeak_SetParameter(self.RATE, rate, 0)
        self.lib.espeak_SetParameter(self.PITCH, pitch, 0)
        data = text.encode("utf-8")
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)  # POS_CHARACTER, espeakCHARS_UTF8
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return audio, self.onsets


def frame_energy_db(audio: np.ndarray, hop: int) -> np.ndarray:
    """Energy in dB of each whole `hop`-sample frame of int16 audio."""
    n = len(audio) // hop
    x = audio[: n * hop].astype(np.float64) / 32768.0
    return 10 * np.log10((x.reshape(n, hop) ** 2).mean(axis=1) + 1e-10)


def closure_onset(energy_db: np.ndarray, previous: int, burst: int, silence_db: float) -> int:
    """espeak-ng puts a voiceless stop's event at the burst and leaves its closure to the phone before;
    the closure is part of the stop (as in flite, festival and forced alignments), so the stop starts
    where the dip before its burst does: frames 15 dB below the phone before or below `silence_db` (digital
    silence in the plain voices, breath noise in some variants). The phone before keeps at least 20 ms (4 frames)."""
    before = energy_db[previous:burst]
    if len(before) <= 4:
        return burst
    quiet = max(silence_db, float(np.percentile(before, 75)) - 15.0)
    frame = burst
    while frame > previous + 4 and energy_db[frame - 1] < quiet:
        frame -= 1
    return frame


def espeak_segments(audio: np.ndarray, sr: int, onsets: list[tuple[int, str]]) -> list[tuple[float, float, str]]:
    """Phone segments (start s, end s, phone) from espeak-ng's phoneme onsets (sample, mnemonic); a pause
    mnemonic (_, _:, _!) is silence, and each phone runs to the next onset."""
    hop = sr // 200  # 5 ms energy frames
    energy_db = frame_energy_db(audio, hop)
    silence_db = float(energy_db.max()) - 45.0
    marks = [(s, "sil" if name.startswith("_") else ESPEAK_PHONES[name]) for s, name in onsets]
    marks.append((len(audio), "sil"))
    starts = [s for s, _ in marks]
    for k in range(1, len(marks) - 1):
        if marks[k][1] in STOPS and marks[k - 1][1] != "sil":
            starts[k] = max(starts[k - 1], closure_onset(energy_db, starts[k - 1] // hop, starts[k] // hop, silence_db) * hop)
    segs = [(0.0, starts[0] / sr, "sil")] if starts[0] > 0 else []
    for k in range(len(marks) - 1):
        begin, end = starts[k] / sr, starts[k + 1] / sr
        parts = marks[k][1].split()
        cut = begin + (end - begin) * (0.6 if len(parts) == 2 else 1.0)
        for phone, (a, b) in zip(parts, ((begin, cut), (cut, end))):
            if b > a:
                segs.append((a, b, phone))
    return segs


def synth_espeak(jobs: list[tuple[str, str, str, int, int]]) -> list[Utterance]:
    global _ESPEAK
    if _ESPEAK is None:
        _ESPEAK = Espeak()
    utts = []
    for name, text, voice, rate, pitch in jobs:
        audio, onsets = _ESPEAK.synth(text, voice, rate, pitch)
        if len(audio) < _ESPEAK.rate // 4 or not onsets:
            continue
        try:
            segs = espeak_segments(audio, _ESPEAK.rate, onsets)
        except KeyError:  # a mnemonic outside the table: leave the utterance out rather than guess
            continue
        audio16 = to_int16_16k(audio.astype(np.float32) / 32768.0, _ESPEAK.rate)
        scale = len(audio16) / SR / (len(audio) / _ESPEAK.rate)
        end = len(audio16) / SR
        segs = [(max(0.0, a * scale - ESPEAK_EVENT_LAG), min(end, b * scale - ESPEAK_EVENT_LAG), p) for a, b, p in segs]
        segs[-1] = (segs[-1][0], end, segs[-1][2])  # the last phone still runs to the end of the audio
        utts.append(Utterance(name, audio16, [s for s in segs if s[1] > s[0]], text))
    return utts


_DECODER = None


def _aligner_init(lexicon_path: str) -> None:
    global _DECODER
    from pocketsphinx import Decoder

    # bestpath=False: the aligner keeps its first-pass lattice path, which aligns more of the learners' utterances
    _DECODER = Decoder(lm=None, samprate=SR, bestpath=False, loglevel="FATAL")
    for line in Path(lexicon_path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and _DECODER.lookup_word(parts[0].lower()) is None:
            _DECODER.add_word(parts[0].lower(), " ".join(p.rstrip("012") for p in parts[1:]), False)


def _known(words: str) -> None:
    """Teach the aligner the words its dictionary lacks (names, abbreviations, spelled-out letters), with
    CMUdict's or espeak-ng's pronunciation, the ones transcript mode uses."""
    decoder = _DECODER
    assert decoder is not None
    for word in words.split():
        if decoder.lookup_word(word) is None:
            phones = [ph for _w, pron in pronounce(word)[0] for ph, _viseme in pron]
            if phones:
                decoder.add_word(word, " ".join(ph.upper() for ph in phones), False)


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spoken_number(n: int) -> str:
    """0-9999 as words, the way a prompt voice reads them."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + spoken_number(n % 100))
    return spoken_number(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + spoken_number(n % 1000))


def prompt_voice(name: str) -> str:
    """The prompt voice of a native utterance, from the name align_speech() gives it (voice__prompt)."""
    return name.split("__")[0]


def native_dev(name: str) -> bool:
    """About one prompt in ten of each training voice, kept out of training for choosing the checkpoint and tuning
    the decoding on fluent native speech (the held-out voice stays unheard by both). Fixed by the name alone."""
    return zlib.crc32(name.encode()) % 10 == 0


def native_role(name: str, left_out: set[str]) -> str:
    """What the recipe does with a training voice's prompt: "train", "dev" (native_dev), or "left out" when
    its voice was left out of training (train.py --leave-out-voice)."""
    if prompt_voice(name) in left_out:
        return "left out"
    return "dev" if native_dev(name) else "train"


def prompt_words(text: str) -> str:
    """A prompt's transcript as the words the voice says: numbers spelled out, letters of an abbreviation
    apart (A.M -> a m), punctuation dropped."""
    out = []
    for token in re.findall(r"\d+|[A-Za-z]+(?:'[A-Za-z]+)?", text.replace(".", " ")):
        out.append(spoken_number(int(token)) if token.isdigit() and int(token) < 10000 else token.lower())
    return " ".join(out)


MISSED_SPEECH_SECONDS = 0.5  # this much continuous loud audio inside a "silence" is speech the aligner missed
LOUD_DB = 25.0  # above the utterance's noise floor (5th percentile of 10 ms frame energies)
LONGEST_PHONE_SECONDS = 1.0


def implausible_alignment(audio16: np.ndarray, segments: list[tuple[float, float, str]]) -> str | None:
    """Why the audio contradicts a forced alignment, or None. Judged from the signal alone, never a model:
    pocketsphinx sometimes crams the words into part of a slow reading and labels the rest silence."""
    energy_db = frame_energy_db(audio16, SR // 100)
    if len(energy_db) == 0:
        return "no audio"
    loud = energy_db > np.percentile(energy_db, 5) + LOUD_DB
    for start, end, phone in segments:
        if phone != "sil" and end - start > LONGEST_PHONE_SECONDS:
            return f"'{phone}' lasts {end - start:.2f} s"
        if phone == "sil":
            stretches = runs(loud[int(start * 100) : int(end * 100)].astype(np.int64), 100.0)
            longest = max((r.duration for r in stretches if r.viseme), default=0.0)
            if longest >= MISSED_SPEECH_SECONDS - 1e-9:
                return f"{longest:.2f} s of loud audio labelled silence at {start:.2f} s"
    return None


def force_align(audio16: np.ndarray, text: str) -> list[tuple[float, float, str]] | None:
    """Phone segments (silence filled in) of `text` in the audio by pocketsphinx, or None where
    alignment fails or skips a word (two passes, as its docs advise)."""
    decoder = _DECODER
    assert decoder is not None
    pad = np.zeros(int(0.3 * SR), np.int16)  # the aligner needs silence around speech
    raw = np.concatenate([pad, audio16, pad]).tobytes()
    try:
        decoder.set_align_text(text.lower())
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
    except (RuntimeError, ValueError):
        return None
    if alignment is None:
        return None
    duration = len(audio16) / SR
    segs = []
    n_words = 0
    for word in alignment:
        if not word.name.startswith("<") and not word.name.startswith("["):
            n_words += 1
        for phone in word:
            start = (phone.start - 30) / 100.0
            end = (phone.start + phone.duration - 30) / 100.0
            start, end = max(start, 0.0), min(end, duration)
            if end > start:
                segs.append((start, end, normalize_phone(phone.name)))
    if n_words < len(text.split()) or not segs:
        return None
    filled, t = [], 0.0
    for s, e, p in segs:
        if s > t + 1e-6:
            filled.append((t, s, "sil"))
        filled.append((s, e, p))
        t = e
    if t < duration:
        filled.append((t, duration, "sil"))
    return filled


def closure_free_pronunciations(pronunciation: list[str]) -> list[list[str]]:
    """The word said without one of its bilabial closures: that p, b or m dropped, or an m said as n
    (Mandarin syllables end only in n or ng, so learners often do both)."""
    variants: list[list[str]] = []
    for i, phone in enumerate(pronunciation):
        if phone in ("M", "P", "B"):
            variants.append(pronunciation[:i] + pronunciation[i + 1 :])
            if phone == "M":
                variants.append(pronunciation[:i] + ["N"] + pronunciation[i + 1 :])
    return [v for v in variants if v and v != pronunciation]


def allow_closure_free_words(words: str) -> None:
    """Give the aligner's dictionary, for each of these words, its closure-free pronunciations as
    alternatives; pocketsphinx then picks whichever the audio fits best."""
    decoder = _DECODER
    assert decoder is not None
    for word in words.split():
        prons = []
        while (pron := decoder.lookup_word(word if not prons else f"{word}({len(prons) + 1})")) is not None:
            prons.append(pron.split())
        for variant in (v for pron in list(prons) for v in closure_free_pronunciations(pron)):
            if variant not in prons:
                prons.append(variant)
                decoder.add_word(f"{word}({len(prons)})", " ".join(variant), False)


def align_real(job: tuple[str, str, str]) -> Utterance | None:
    """Force-align one real utterance (FLAC or Opus) to phones."""
    name, path, text = job
    audio, sr = sf.read(path, dtype="float32")
    audio16 = to_int16_16k(audio, sr)
    _known(text.lower())
    segments = force_align(audio16, text)
    if segments is None:
        return None
    return Utterance(name, audio16, segments, text, implausible_alignment(audio16, segments) or "")


def realign_tts(utt: Utterance) -> Utterance | None:
    """The TTS utterance with pocketsphinx's alignment in place of the engine's exact timings:
    scored against the exact ones, it shows how far the real-speech references can be trusted."""
    words = " ".join(word.lower() for word, _phones in pronounce(utt.text)[0])  # the words transcript mode reads
    segments = force_align(utt.audio, words) if words else None
    return None if segments is None else Utterance(utt.name, utt.audio, segments, utt.text)


def save_set(path: Path, utts: list[Utterance]) -> None:
    utts = [u for u in utts if u is not None and len(u.audio) > SR // 4]
    offsets = np.cumsum([0] + [len(u.audio) for u in utts]).astype(np.int64)
    seg_rows = [(i, s, e, PHONE_INDEX[p]) for i, u in enumerate(utts) for (s, e, p) in u.segments]
    np.savez(
        path,
        audio=np.concatenate([u.audio for u in utts]) if utts else np.zeros(0, np.int16),
        offsets=offsets,
        names=np.array([u.name for u in utts]),
        text=np.array([u.text for u in utts]),
        seg_utt=np.array([r[0] for r in seg_rows], np.int32),
        seg_start=np.array([r[1] for r in seg_rows], np.float32),
        seg_end=np.array([r[2] for r in seg_rows], np.float32),
        seg_phone=np.array([r[3] for r in seg_rows], np.int16),
    )
    hours = offsets[-1] / SR / 3600
    print(f"  wrote {path.name}: {len(utts)} utterances, {hours:.2f} h", flush=True)


def tts_engine(name: str) -> str:
    """Which engine spoke a training utterance, from the name build() gave it."""
    return "espeak-ng" if "_espeak" in name else "festival" if "_voice_" in name else "flite"


def espeak_jobs(prompts: list[tuple[str, str]], per_prompt: int, seed: int, workers: int) -> list[list]:
    """espeak-ng renditions of each prompt (voice variant, rate in words per minute, pitch 0-100), in
    one chunk per worker; a generator of their own keeps the flite and festival choices as they were."""
    rng = random.Random(seed + 1)
    jobs = []
    for name, text in prompts:
        for i in range(per_prompt):
            voice = "en-us" + rng.choice(ESPEAK_VARIANTS)
            jobs.append((f"{name}_espeak{i}", text, voice, rng.randint(130, 230), rng.randint(15, 85)))
    return [jobs[i::workers] for i in range(workers)] if jobs else []


def build(out_dir: Path, voices_per_prompt: int, workers: int, espeak_per_prompt: int = 0, seed: int = 0,
          real_only: bool = False, heldout_only: bool = False) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    prompts = read_prompts(SHARED / "text" / "cmuarctic.data")
    train_prompts, heldout_prompts = prompts[:-HELDOUT_PROMPTS], prompts[-HELDOUT_PROMPTS:]
    t0 = time.time()
    held: list[Utterance] = []
    if heldout_only:  # the held-out voice needs no random choice: the same utterances as a full build's
        with mp.Pool(workers) as pool:
            held = synthesize_heldout(pool, out_dir, heldout_prompts, workers)
    elif not real_only:
        held = synthesize(out_dir, rng, train_prompts, heldout_prompts, voices_per_prompt, workers, espeak_per_prompt,
                          seed, t0)
    align_speech(out_dir, held, workers, t0, heldout_only)


def synthesize(out_dir: Path, rng: random.Random, train_prompts: list[tuple[str, str]],
               heldout_prompts: list[tuple[str, str]], voices_per_prompt: int, workers: int, espeak_per_prompt: int,
               seed: int, t0: float) -> list[Utterance]:
    """The TTS sets (exact phone timings); returns the held-out voice's utterances."""
    with mp.Pool(workers) as pool:
        # TTS, training voices
        flite_jobs, fest_jobs = [], []
        all_voices = [("flite", v) for v in FLITE_VOICES] + [("festival", v) for v in FESTIVAL_TRAIN_VOICES]
        for name, text in train_prompts:
            for engine, voice in rng.sample(all_voices, voices_per_prompt):
                stretch = rng.uniform(0.8, 1.35)
                if engine == "flite":
                    f0 = rng.uniform(85, 130) if voice in ("kal", "kal16", "awb", "rms") else rng.uniform(150, 230)
                    flite_jobs.append((f"{name}_{voice}", text, voice, stretch, f0))
                else:
                    fest_jobs.append((f"{name}_{voice}", text, voice, stretch))
        chunks = [fest_jobs[i::workers * 4] for i in range(workers * 4)]
        fest_async = pool.map_async(synth_festival, chunks)
        flite_utts = [u for u in pool.imap(synth_flite, flite_jobs, chunksize=16) if u is not None]
        fest_utts = [u for chunk in fest_async.get() for u in chunk]
        espeak_utts = [u for chunk in pool.map(synth_espeak, espeak_jobs(train_prompts, espeak_per_prompt, seed, workers))
                       for u in chunk]
        print(f"TTS train: {len(flite_utts)} flite + {len(fest_utts)} festival + {len(espeak_utts)} espeak-ng "
              f"({time.time() - t0:.0f} s)", flush=True)
        save_set(out_dir / "tts_train.npz", flite_utts + fest_utts + espeak_utts)
        return synthesize_heldout(pool, out_dir, heldout_prompts, workers)


def synthesize_heldout(pool: Pool, out_dir: Path, heldout_prompts: list[tuple[str, str]], workers: int) -> list[Utterance]:
    """The held-out voice speaking the held-out prompts (tts_heldout.npz); returns its utterances."""
    held_jobs = [(f"{n}_ked", t, FESTIVAL_HELDOUT_VOICE, 1.0) for n, t in heldout_prompts]
    held = [u for chunk in pool.map(synth_festival, [held_jobs[i::workers] for i in range(workers)]) for u in chunk]
    save_set(out_dir / "tts_heldout.npz", held)
    return held


def align_speech(out_dir: Path, held: list[Utterance], workers: int, t0: float, heldout_only: bool = False) -> None:
    """The real speech sets, force-aligned: learners (train / held-out speakers) and native voices
    (train / the held-out voice); with `held`, also the held-out TTS voice re-aligned by pocketsphinx.
    `heldout_only` aligns and writes only the held-out speakers and voice (no *_train.npz)."""
    so = SHARED / "speechocean762-train"
    texts = dict(line.split("\t", 1) for line in (so / "text").read_text().splitlines() if "\t" in line)
    utt2spk = dict(line.split() for line in (so / "utt2spk").read_text().splitlines() if line.strip())
    speakers = sorted(set(utt2spk.values()))
    heldout_speakers = set(speakers[::HELDOUT_SPEAKER_EVERY])
    # both halves: the FLAC utterances the recipe was first built on and the Opus ones added since
    jobs = [(u, str(audio), texts[u].strip()) for u in sorted(texts)
            for audio in (so / "audio" / f"{u}.flac", so / "audio" / f"{u}.opus") if audio.is_file()]
    native_jobs = [(f"{voice.name}__{ident}", str(voice / "audio" / f"{ident}.opus"), prompt_words(text))
                   for voice in sorted((SHARED / "prompts-en").iterdir()) if (voice / "text").is_file()
                   for ident, _, text in (line.partition("\t") for line in (voice / "text").read_text().splitlines())
                   if prompt_words(text) and (voice / "audio" / f"{ident}.opus").is_file()]
    if heldout_only:
        jobs = [job for job in jobs if utt2spk[job[0]] in heldout_speakers]
        native_jobs = [job for job in native_jobs if prompt_voice(job[0]) == NATIVE_HELDOUT_VOICE]
    with mp.Pool(workers, initializer=_aligner_init, initargs=(str(so / "lexicon.txt"),)) as pool:
        aligned = pool.map(align_real, jobs, chunksize=8)
        native = pool.map(align_real, native_jobs, chunksize=8)
        realigned = pool.map(realign_tts, held, chunksize=8) if held else []
    report: dict[str, object] = {}
    kept: dict[str, list[Utterance]] = {}
    for label, results, total in (("learners", aligned, jobs), ("native", native, native_jobs)):
        rejected = {u.name: u.rejected for u in results if u is not None and u.rejected}
        kept[label] = [u for u in results if u is not None and not u.rejected]
        failed = sorted(job[0] for job, u in zip(total, results) if u is None)
        report[label] = {"failed": failed, "implausible": rejected}
        print(f"aligned {len(kept[label])} of {len(total)} {label} utterances: {len(failed)} failed alignment, "
              f"{len(rejected)} implausible ({time.time() - t0:.0f} s)", flush=True)
    learner_rejects = report["learners"]["implausible"]  # type: ignore[index]
    summary = {"failed": len(report["learners"]["failed"]), "implausible": learner_rejects,  # type: ignore[index]
               "heldout_implausible": sorted(n for n in learner_rejects if utt2spk[n] in heldout_speakers),
               "by_set": report}
    if heldout_only:  # the whole-corpus counts (by_set, which the model card quotes) are unknown: left out
        summary = {**{k: v for k, v in summary.items() if k != "by_set"}, "heldout_only": report}
    (out_dir / "implausible_alignments.json").write_text(json.dumps(summary, indent=1))
    ok = kept["learners"]
    if not heldout_only:
        save_set(out_dir / "real_train.npz", [u for u in ok if utt2spk[u.name] not in heldout_speakers])
    save_set(out_dir / "real_heldout.npz", [u for u in ok if utt2spk[u.name] in heldout_speakers])
    if not heldout_only:
        save_set(out_dir / "native_train.npz", [u for u in kept["native"] if prompt_voice(u.name) != NATIVE_HELDOUT_VOICE])
    save_set(out_dir / "native_heldout.npz", [u for u in kept["native"] if prompt_voice(u.name) == NATIVE_HELDOUT_VOICE])
    if held:
        save_set(out_dir / "tts_heldout_pocketsphinx.npz", [u for u in realigned if u is not None])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "models" / ".cache" / "corpus")
    ap.add_argument("--voices-per-prompt", type=int, default=3)
    ap.add_argument("--espeak-per-prompt", type=int, default=0, help="espeak-ng renditions of each training prompt")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--real-only", action="store_true", help="rebuild only the force-aligned real speech sets")
    ap.add_argument("--heldout-only", action="store_true",
                    help="build only the held-out sets models/evaluate.py reads (no *_train.npz)")
    args = ap.parse_args(argv)
    if args.heldout_only and args.real_only:
        ap.error("--heldout-only and --real-only exclude each other")
    tools = ("festival",) if args.heldout_only else ("flite", "festival") + (("espeak-ng",) if args.espeak_per_prompt else ())
    for tool in tools if not args.real_only else ():
        if shutil.which(tool) is None:
            print(f"error: {tool} not found; install it: apt-get install flite festival "
                  "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts espeak-ng", file=sys.stderr)
            return 2
    build(args.out, args.voices_per_prompt, args.workers, args.espeak_per_prompt, real_only=args.real_only,
          heldout_only=args.heldout_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
