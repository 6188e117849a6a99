"""The Oris inference worker: a long-lived process that runs the viseme model.

Started by engine.client as `python -m <package>.engine.worker`; talks protocol v1 on
stdin/stdout (no network listener). Audio streams in; long input is processed in
overlapping chunks so memory stays flat; cancel is honoured between chunks; the
process exits when its input pipe closes or its parent dies. Imports no bpy.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from .model import ModelError, ModelInfo, find_model, find_multilingual, find_recognizer, read_checked, verify
from .protocol import ProtocolError, read_message, write_message
from .recognizer import Listener, Recognizer, RecognizerError

HOP = 160  # samples per 10 ms frame at 16 kHz (contract v1)
CONTEXT_FRAMES = 100  # 1 s of context each side of a chunk for the bidirectional model
# The model was trained on 4 s crops and is most accurate on windows of about that length
# (measured: 4 s chunks beat 20 s chunks and single long passes on held-out speech).
CHUNK_SECONDS = 4.0
BATCH_WINDOWS = 8  # windows run together in one model call
GPU_PROVIDERS = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")
_DEVICE_NAMES = {"CUDAExecutionProvider": "cuda", "DmlExecutionProvider": "directml",
                 "CoreMLExecutionProvider": "coreml", "CPUExecutionProvider": "cpu"}


def choose_providers(available: list[str], device: str) -> list[str]:
    """The execution providers to ask for, best first, for device auto|cpu|gpu."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpus = [p for p in GPU_PROVIDERS if p in available]
    if device == "gpu" and not gpus:
        raise ModelError(
            "no GPU execution provider in this onnxruntime (found: " + ", ".join(available) + "); "
            "install onnxruntime-gpu (NVIDIA) or onnxruntime-directml (Windows), or use device cpu/auto"
        )
    return gpus[:1] + ["CPUExecutionProvider"]


class Channel:
    """The worker's side of the pipes: a reader thread turns stdin into a bounded queue
    (so a fast sender is held back and memory stays flat) and records cancels at once."""

    def __init__(self, inp: IO[bytes], out: IO[bytes]) -> None:
        self.out = out
        self.inbox: queue.Queue[tuple[dict[str, Any], dict[str, np.ndarray]] | None] = queue.Queue(maxsize=4)
        self.cancelled: set[Any] = set()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, args=(inp,), daemon=True)
        self._reader.start()

    def _read(self, inp: IO[bytes]) -> None:
        """Read until shutdown or the end of the pipe, so that at exit no thread is left inside a read
        of stdin (the interpreter aborts when it finalizes a stream another thread holds)."""
        try:
            while True:
                header, arrays = read_message(inp)
                if header.get("type") == "cancel":
                    self.cancelled.add(header.get("id"))
                self.inbox.put((header, arrays))
                if header.get("type") == "shutdown":
                    return
        except (ProtocolError, OSError, ValueError):
            self.inbox.put(None)  # pipe closed or garbage: shut down

    def reader_done(self, timeout: float) -> bool:
        """Wait for the reader to stop (it does on shutdown or the end of the pipe)."""
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def send(self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
        with self._lock:
            write_message(self.out, header, arrays)


def window_weights(chunk_frames: int) -> np.ndarray:
    """Triangular cross-fade over a window's kept frames; two windows half a chunk apart sum to ~1."""
    u = np.arange(chunk_frames) + 0.5
    return np.maximum(1.0 - np.abs(u - chunk_frames / 2) / (chunk_frames / 2), 1e-3).astype(np.float32)


@dataclass
class Stream:
    """One inference request's audio, held only as far as the next window needs it.

    Windows keep `chunk_frames` frames and start every half chunk, each run with CONTEXT_FRAMES
    of audio either side; every frame is the weighted mean of the two windows that keep it, so
    the result does not depend on where one grid of windows happens to fall."""

    id: Any
    total: int
    chunk_frames: int
    received: int = 0
    buffer_start: int = 0  # sample index of buffer[0]
    window: int = 0  # index of the next window to run
    emitted: int = 0  # frames already sent
    pieces: list[np.ndarray] = field(default_factory=list)
    acc: list[np.ndarray] = field(default_factory=list)  # weighted sums for frames from `emitted` on
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def total_frames(self) -> int:
        return self.total // HOP + 1

    @property
    def hop(self) -> int:
        return self.chunk_frames // 2

    def add(self, audio: np.ndarray) -> None:
        self.pieces.append(np.asarray(audio, np.float32))
        self.received += len(audio)

    def window_audio(self, index: int) -> tuple[int, np.ndarray] | None:
        """(first kept frame, samples) of window `index` once its audio is in."""
        first = index * self.hop
        if first >= self.total_frames:
            return None
        want_end = min(self.total, (first + self.chunk_frames + CONTEXT_FRAMES) * HOP)
        if self.received < want_end:
            return None
        if len(self.pieces) > 1:
            self.pieces = [np.concatenate(self.pieces)]
        buf = self.pieces[0] if self.pieces else np.zeros(0, np.float32)
        start = max(0, first - CONTEXT_FRAMES) * HOP
        return first, buf[start - self.buffer_start : want_end - self.buffer_start]

    def ready_windows(self, limit: int) -> tuple[list[tuple[int, np.ndarray]], bool]:
        """The next windows whose audio is in, up to `limit`, all of one length so that they run as
        one batch (only the windows at either end of the audio are shorter), and whether the batch
        is complete: more audio would not make it larger."""
        batch: list[tuple[int, np.ndarray]] = []
        while len(batch) < limit:
            index = self.window + len(batch)
            if index * self.hop >= self.total_frames:
                return batch, True
            window = self.window_audio(index)
            if window is None:
                return batch, False
            if batch and len(window[1]) != len(batch[0][1]):
                return batch, True
            batch.append(window)
        return batch, True

    def accumulate(self, first: int, outputs: list[np.ndarray]) -> tuple[list[np.ndarray], bool]:
        """Add one window's outputs (frames from its input start); return the frames now final."""
        input_first = max(0, first - CONTEXT_FRAMES)
        keep = min(self.chunk_frames, self.total_frames - first)
        w = window_weights(self.chunk_frames)[:keep]
        end = first + keep
        if not self.acc:
            self.acc = [np.zeros((0, o.shape[1]), np.float32) for o in outputs]
        grow = end - self.emitted - len(self.weight)
        if grow > 0:
            self.weight = np.concatenate([self.weight, np.zeros(grow, np.float32)])
            self.acc = [np.concatenate([a, np.zeros((grow, a.shape[1]), np.float32)]) for a in self.acc]
        lo = first - self.emitted
        self.weight[lo : lo + keep] += w
        for a, o in zip(self.acc, outputs):
            a[lo : lo + keep] += o[first - input_first : first - input_first + keep] * w[:, None]
        self.window += 1
        last = self.window * self.hop >= self.total_frames
        final_end = self.total_frames if last else min(self.window * self.hop, self.total_frames)
        n = final_end - self.emitted
        ready = [a[:n] / self.weight[:n, None] for a in self.acc]
        self.acc = [a[n:] for a in self.acc]
        self.weight = self.weight[n:]
        self.emitted = final_end
        drop = max(0, self.window * self.hop - CONTEXT_FRAMES) * HOP - self.buffer_start
        if drop > 0 and self.pieces:
            self.pieces = [self.pieces[0][drop:]]
            self.buffer_start += drop
        return ready, last


ENGLISH = "en"
MULTILINGUAL = "multilingual"


class Worker:
    def __init__(self, session: Any, channel: Channel, chunk_seconds: float,
                 load_recognizer: Callable[[], Recognizer] | None = None,
                 load_multilingual: Callable[[], Any] | None = None) -> None:
        self.session = session
        self.channel = channel
        self.chunk_frames = max(100, int(chunk_seconds * 100))
        self._load_recognizer = load_recognizer
        self._recognizer: Recognizer | None = None
        self._load_multilingual = load_multilingual
        self._multilingual: Any = None

    def viseme_model(self, language: str) -> tuple[str, Any]:
        """The viseme model for a line in `language` (the recognizer's code; "" or "auto": not known): the
        English model for English and where the language is not known, the multilingual one (loaded on the
        first line that needs it) for every other language, where this install has one."""
        if language in ("", "auto", ENGLISH) or self._load_multilingual is None:
            return ENGLISH, self.session
        if self._multilingual is None:
            self._multilingual = self._load_multilingual()
        return MULTILINGUAL, self._multilingual

    def _model_for(self, req_id: Any, language: str) -> tuple[str, Any] | None:
        """viseme_model, or None after telling the caller why the model it needs cannot load."""
        try:
            return self.viseme_model(language)
        except ModelError as exc:
            self.channel.send({"type": "error", "id": req_id, "code": "model", "message": str(exc)})
            return None

    def recognizer(self) -> Recognizer:
        """Whisper, loaded on the first request that asks for words (audio-only users never pay for it)."""
        if self._recognizer is None:
            if self._load_recognizer is None:
                raise RecognizerError("this worker has no speech recognizer")
            self._recognizer = self._load_recognizer()
        return self._recognizer

    def serve(self) -> None:
        while True:
            item = self.channel.inbox.get()
            if item is None:
                return
            header, _ = item
            kind = header.get("type")
            if kind == "shutdown":
                return
            if kind == "infer":
                self._infer(header)
            elif kind not in ("cancel", "audio"):  # stray audio of a cancelled request is dropped
                self.channel.send({"type": "error", "id": header.get("id"), "code": "bad_request",
                                   "message": f"unknown message type {kind!r}"})

    def _infer(self, header: dict[str, Any]) -> None:
        req_id = header.get("id")
        total = int(header.get("samples", -1))
        if header.get("sample_rate") != 16000 or total <= 0:
            self.channel.send({"type": "error", "id": req_id, "code": "bad_request",
                               "message": "infer needs sample_rate 16000 and samples > 0"})
            return
        chunk_frames = int(float(header.get("chunk_seconds", 0)) * 100) or self.chunk_frames
        stream = Stream(req_id, total, max(100, chunk_frames))
        listener: Listener | None = None
        if header.get("recognize"):
            try:
                listener = Listener(self.recognizer(), total, str(header.get("language") or "auto"),
                                    tuple(str(code) for code in header.get("languages") or ()),
                                    words=header.get("recognize") != "language")
            except (RecognizerError, ModelError) as exc:
                self.channel.send({"type": "error", "id": req_id, "code": "recognizer",
                                   "message": f"the speech recognizer cannot run: {exc}; until then, --audio-only or a "
                                              "transcript (--text, --text-file) works without it"})
                return  # the rest of its audio arrives as stray audio, which serve() drops
        language = str(header.get("language") or "auto")
        # told the language (or it does not matter): the model is known now; else the recognizer's first window
        # names it, and the viseme model waits for that window (for a line under 30 s, all of it is heard first)
        model: tuple[str, Any] | None = None
        if language != "auto" or listener is None or self._load_multilingual is None:
            model = self._model_for(req_id, language)
            if model is None:
                return
        held_back: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None
        while stream.emitted < stream.total_frames or (listener is not None and not listener.finished):
            if req_id in self.channel.cancelled:
                self.channel.cancelled.discard(req_id)
                self.channel.send({"type": "cancelled", "id": req_id})
                return
            if listener is not None and listener.ready(final=stream.received >= stream.total):
                # one window of words between viseme batches: cancel stays within one window's time
                heard = listener.next_window()
                self.channel.send({"type": "heard", "id": req_id, **heard.to_dict()})
                if model is None:
                    model = self._model_for(req_id, heard.language)
                    if model is None:
                        return
                self._progress(req_id, stream, listener)
                continue
            if stream.emitted >= stream.total_frames:
                continue
            # a full batch: with windows run 8 at a time, a request costs 2.0-2.4 bare passes of the model
            # over its audio instead of 3.0 (benchmarks/engine.py, 2 CPU cores); memory stays bounded
            batch, complete = stream.ready_windows(BATCH_WINDOWS)
            if not complete or model is None:
                item = self.channel.inbox.get()
                if item is None:
                    raise SystemExit(0)
                msg, arrays = item
                if msg.get("type") == "audio" and msg.get("id") == req_id:
                    stream.add(arrays["audio"])
                    if listener is not None:
                        listener.add(arrays["audio"])
                elif msg.get("type") == "shutdown":
                    raise SystemExit(0)
                continue
            visemes_batch, phones_batch = model[1].run(None, {"audio": np.stack([w[1] for w in batch])})
            for (first, _), window_visemes, window_phones in zip(batch, visemes_batch, phones_batch):
                (visemes, phones), final = stream.accumulate(first, [window_visemes, window_phones])
                self._progress(req_id, stream, listener)
                result = ({"type": "result", "id": req_id, "frames": len(visemes), "final": final, "model": model[0]},
                          {"visemes": visemes, "phones": phones})
                if final and listener is not None and not listener.finished:
                    held_back = result  # the final result closes the request: every heard window comes first
                else:
                    self.channel.send(*result)
        if held_back is not None:
            self.channel.send(*held_back)
        self.channel.cancelled.discard(req_id)

    def _progress(self, req_id: Any, stream: Stream, listener: Listener | None) -> None:
        """Frames of visemes and, when recognizing, of words (which take most of the time), as one count."""
        done, total = stream.emitted, stream.total_frames
        if listener is not None:
            heard = stream.total_frames if listener.finished else listener.done_frames
            done, total = done + 3 * heard, total + 3 * stream.total_frames
        self.channel.send({"type": "progress", "id": req_id, "done": done, "total": total})


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)  # orphaned: the caller died without closing our pipe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="oris-worker", description="Oris inference worker (speaks protocol v1 on stdin/stdout)")
    ap.add_argument("--model", default=None, help="path to the .onnx (default: the shipped model)")
    ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    ap.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS)
    ap.add_argument("--parent-pid", type=int, default=None)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the caller cancels
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the protocol pipe
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    t0 = time.perf_counter()
    try:
        model, session = load_session(args.model, args.device)
    except ModelError as exc:
        write_message(out, {"type": "error", "code": "startup", "message": str(exc)})
        return 2  # no reader thread was started: nothing holds stdin at exit
    channel = Channel(sys.stdin.buffer, out)
    used = session.get_providers()
    channel.send({"type": "ready", "providers": used, "device": _DEVICE_NAMES.get(used[0], used[0]),
                  "model": str(model.path), "sha256": model.sha256, "pid": os.getpid(),
                  "startup_seconds": round(time.perf_counter() - t0, 3)})
    def load_recognizer() -> Recognizer:
        return Recognizer(find_recognizer(), lambda data: make_session(data, used, "the speech recognizer"), read_checked)

    multilingual = find_multilingual(model)

    def load_multilingual() -> Any:
        assert multilingual is not None
        return make_session(verify(multilingual), used, f"the model {multilingual.path}")

    try:
        Worker(session, channel, args.chunk_seconds, load_recognizer,
               load_multilingual if multilingual is not None else None).serve()
    except (BrokenPipeError, SystemExit):
        pass
    if not channel.reader_done(timeout=2.0):
        # the caller left without closing our input: end here rather than let the interpreter
        # finalize stdin under the reader thread
        sys.stderr.flush()
        os._exit(0)
    return 0


def load_session(path: str | None, device: str) -> tuple[ModelInfo, Any]:
    """The model, checked against its card, in an onnxruntime session; ModelError says what went wrong."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(f"onnxruntime is not installed for {sys.executable} ({exc}); reinstall Oris") from None
    model = find_model(path)
    try:
        data = verify(model)
    except OSError as exc:
        raise ModelError(f"cannot read the model {model.path}: {exc.strerror or exc}; reinstall Oris") from None
    providers = choose_providers(ort.get_available_providers(), device)
    return model, make_session(data, providers, f"the model {model.path}")


def make_session(data: bytes, providers: list[str], what: str) -> Any:
    """An onnxruntime session on these providers; ModelError when onnxruntime cannot load the graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime's own errors (InvalidProtobuf, Fail, ...) are not RuntimeErrors
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ModelError(f"onnxruntime could not load {what} ({type(exc).__name__}: {detail}); "
                         "the file is damaged or not an Oris model; reinstall Oris") from None


if __name__ == "__main__":
    sys.exit(main())
