"""The measurement behind the recognizer's runtime: Oris's int8 ONNX graphs in onnxruntime against
CTranslate2 through faster-whisper (int8, greedy), on the same minute of speech, same threads.

    pip install faster-whisper==1.2.1 && python models/recipe/whisper_runtime.py

Prints each runtime's seconds for the minute, the text each wrote, and what each would add to the
extension zip per platform (the wheels it needs and the weights).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
from whisper_export import fetch  # noqa: E402

from addon.engine.client import WorkerClient  # noqa: E402


def main() -> int:
    audio, _ = sf.read(ROOT / "demo" / "speech.flac", dtype="float32")
    minute = np.tile(audio, 3)[: 16000 * 60]
    with WorkerClient(device="cpu") as worker:
        worker.infer(minute[:16000], recognize=True)
        t = time.perf_counter()
        ours = worker.infer(minute, recognize=True)
        onnx_seconds = time.perf_counter() - t
    from faster_whisper import WhisperModel

    model = WhisperModel(str(fetch()), device="cpu", compute_type="int8", cpu_threads=2)
    t = time.perf_counter()
    segments, _info = model.transcribe(minute, beam_size=1, without_timestamps=True, language="en",
                                       condition_on_previous_text=False, vad_filter=False)
    theirs = " ".join(s.text.strip() for s in segments)  # the generator decodes as it is read
    ct2_seconds = time.perf_counter() - t
    onnx_mb = sum(p.stat().st_size for p in (ROOT / "models").glob("oris_whisper*")) / 1e6
    print(f"onnxruntime (Oris, int8 ONNX, viseme model included): {onnx_seconds:.2f} s for 60 s; weights {onnx_mb:.0f} MB; "
          "no extra wheels (the worker's onnxruntime)")
    print(f"CTranslate2 (faster-whisper, int8): {ct2_seconds:.2f} s for 60 s; weights "
          f"{(fetch() / 'model.bin').stat().st_size / 1e6:.0f} MB; wheels ctranslate2 (one per platform and Python), "
          "av, tokenizers, faster-whisper")
    print("Oris heard:", " ".join(h["text"] for h in ours.heard)[:300])
    print("faster-whisper heard:", theirs[:300])
    return 0


if __name__ == "__main__":
    sys.exit(main())
