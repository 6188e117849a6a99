"""Build the exactly aligned training and evaluation corpus.

Sources:
  * TTS: the CMU ARCTIC prompts spoken by flite and festival voices at several rates
    and pitches; each engine reports the phone timings it synthesized, so labels are exact.
  * Real speech: the speechocean762 TRAIN subset in ../shared/data, force-aligned to
    phones with pocketsphinx (about one utterance in ten fails alignment and is dropped).

Held out from training (used only by models/evaluate.py):
  * real speech of every 8th speaker (sorted by id),
  * the festival ked_diphone voice speaking the last 100 ARCTIC prompts, which no
    training voice speaks either.

Each set is written as one .npz: int16 audio at 16 kHz concatenated, utterance
offsets, and phone segments (start s, end s, phone index) per utterance.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
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


_DECODER = None


def _aligner_init(lexicon_path: str) -> None:
    global _DECODER
    from pocketsphinx import Decoder

    _DECODER = Decoder(lm=None, samprate=SR, loglevel="FATAL")
    for line in Path(lexicon_path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and _DECODER.lookup_word(parts[0].lower()) is None:
            _DECODER.add_word(parts[0].lower(), " ".join(p.rstrip("012") for p in parts[1:]), False)


MISSED_SPEECH_SECONDS = 0.5  # this much continuous loud audio inside a "silence" is speech the aligner missed
LOUD_DB = 25.0  # above the utterance's noise floor (5th percentile of 10 ms frame energies)
LONGEST_PHONE_SECONDS = 1.0


def implausible_alignment(audio16: np.ndarray, segments: list[tuple[float, float, str]]) -> str | None:
    """Why the audio contradicts a forced alignment, or None. Judged from the signal alone, never a model:
    pocketsphinx sometimes crams the words into part of a slow reading and labels the rest silence."""
    hop = SR // 100
    n = len(audio16) // hop
    if n == 0:
        return "no audio"
    x = audio16[: n * hop].astype(np.float64) / 32768.0
    energy_db = 10 * np.log10((x.reshape(n, hop) ** 2).mean(axis=1) + 1e-10)
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


def align_real(job: tuple[str, str, str]) -> Utterance | None:
    """Force-align one speechocean762 utterance to phones."""
    name, flac, text = job
    audio, sr = sf.read(flac, dtype="float32")
    audio16 = to_int16_16k(audio, sr)
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


def build(out_dir: Path, voices_per_prompt: int, workers: int, seed: int = 0) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    prompts = read_prompts(SHARED / "text" / "cmuarctic.data")
    train_prompts, heldout_prompts = prompts[:-HELDOUT_PROMPTS], prompts[-HELDOUT_PROMPTS:]
    t0 = time.time()

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
        print(f"TTS train: {len(flite_utts)} flite + {len(fest_utts)} festival ({time.time() - t0:.0f} s)", flush=True)
        save_set(out_dir / "tts_train.npz", flite_utts + fest_utts)

        held_jobs = [(f"{n}_ked", t, FESTIVAL_HELDOUT_VOICE, 1.0) for n, t in heldout_prompts]
        held = [u for chunk in pool.map(synth_festival, [held_jobs[i::workers] for i in range(workers)]) for u in chunk]
        save_set(out_dir / "tts_heldout.npz", held)

    # Real speech, force-aligned
    so = SHARED / "speechocean762-train"
    texts = dict(line.split("\t", 1) for line in (so / "text").read_text().splitlines() if "\t" in line)
    utt2spk = dict(line.split() for line in (so / "utt2spk").read_text().splitlines() if line.strip())
    speakers = sorted(set(utt2spk.values()))
    heldout_speakers = set(speakers[::HELDOUT_SPEAKER_EVERY])
    jobs = [(u, str(so / "audio" / f"{u}.flac"), texts[u].strip()) for u in sorted(texts)]
    with mp.Pool(workers, initializer=_aligner_init, initargs=(str(so / "lexicon.txt"),)) as pool:
        aligned = pool.map(align_real, jobs, chunksize=8)
        realigned = pool.map(realign_tts, held, chunksize=8)
    rejected = {u.name: u.rejected for u in aligned if u is not None and u.rejected}
    ok = [u for u in aligned if u is not None and not u.rejected]
    failed = sum(u is None for u in aligned)
    print(f"aligned {len(ok)} of {len(jobs)} real utterances: {failed} failed alignment, {len(rejected)} implausible "
          f"({time.time() - t0:.0f} s)", flush=True)
    (out_dir / "implausible_alignments.json").write_text(json.dumps({
        "failed": failed, "implausible": rejected,
        "heldout_implausible": sorted(n for n in rejected if utt2spk[n] in heldout_speakers)}, indent=1))
    save_set(out_dir / "real_train.npz", [u for u in ok if utt2spk[u.name] not in heldout_speakers])
    save_set(out_dir / "real_heldout.npz", [u for u in ok if utt2spk[u.name] in heldout_speakers])
    save_set(out_dir / "tts_heldout_pocketsphinx.npz", [u for u in realigned if u is not None])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "models" / ".cache" / "corpus")
    ap.add_argument("--voices-per-prompt", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)
    for tool in ("flite", "festival"):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found; install it: apt-get install flite festival "
                  "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts", file=sys.stderr)
            return 2
    build(args.out, args.voices_per_prompt, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
