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
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from .model import ModelError, find_model, verify
from .protocol import ProtocolError, read_message, write_message

HOP = 160  # samples per 10 ms frame at 16 kHz (contract v1)
CONTEXT_FRAMES = 100  # 1 s of context each side of a chunk for the bidirectional model
# The model was trained on 4 s crops and is most accurate on windows of about that length
# (measured: 4 s chunks beat 20 s chunks and single long passes on held-out speech).
CHUNK_SECONDS = 4.0
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
        threading.Thread(target=self._read, args=(inp,), daemon=True).start()

    def _read(self, inp: IO[bytes]) -> None:
        try:
            while True:
                header, arrays = read_message(inp)
                if header.get("type") == "cancel":
                    self.cancelled.add(header.get("id"))
                self.inbox.put((header, arrays))
        except (ProtocolError, OSError, ValueError):
            self.inbox.put(None)  # pipe closed or garbage: shut down

    def send(self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
        with self._lock:
            write_message(self.out, header, arrays)


@dataclass
class Stream:
    """One inference request's audio, held only as far as the next chunk needs it."""

    id: Any
    total: int
    chunk_frames: int
    received: int = 0
    buffer_start: int = 0  # sample index of buffer[0]
    next_frame: int = 0
    pieces: list[np.ndarray] = field(default_factory=list)

    @property
    def total_frames(self) -> int:
        return self.total // HOP + 1

    def add(self, audio: np.ndarray) -> None:
        self.pieces.append(np.asarray(audio, np.float32))
        self.received += len(audio)

    def ready_window(self) -> tuple[int, np.ndarray, int] | None:
        """(first global frame of the model input, samples, frames to keep) when enough audio is in."""
        if self.next_frame >= self.total_frames:
            return None
        want_end = min(self.total, (self.next_frame + self.chunk_frames + CONTEXT_FRAMES) * HOP)
        if self.received < want_end:
            return None
        if len(self.pieces) > 1:
            self.pieces = [np.concatenate(self.pieces)]
        buf = self.pieces[0] if self.pieces else np.zeros(0, np.float32)
        start = max(0, self.next_frame - CONTEXT_FRAMES) * HOP
        window = buf[start - self.buffer_start : want_end - self.buffer_start]
        keep = min(self.chunk_frames, self.total_frames - self.next_frame)
        return start // HOP, window, keep

    def advance(self, kept: int) -> None:
        self.next_frame += kept
        drop = max(0, self.next_frame - CONTEXT_FRAMES) * HOP - self.buffer_start
        if drop > 0 and self.pieces:
            self.pieces = [self.pieces[0][drop:]]
            self.buffer_start += drop


class Worker:
    def __init__(self, session: Any, channel: Channel, chunk_seconds: float) -> None:
        self.session = session
        self.channel = channel
        self.chunk_frames = max(100, int(chunk_seconds * 100))

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
        while stream.next_frame < stream.total_frames:
            if req_id in self.channel.cancelled:
                self.channel.cancelled.discard(req_id)
                self.channel.send({"type": "cancelled", "id": req_id})
                return
            window = stream.ready_window()
            if window is None:
                item = self.channel.inbox.get()
                if item is None:
                    raise SystemExit(0)
                msg, arrays = item
                if msg.get("type") == "audio" and msg.get("id") == req_id:
                    stream.add(arrays["audio"])
                elif msg.get("type") == "shutdown":
                    raise SystemExit(0)
                continue
            first, samples, keep = window
            visemes, phones = self.session.run(None, {"audio": samples[None, :]})
            offset = stream.next_frame - first
            stream.advance(keep)
            final = stream.next_frame >= stream.total_frames
            self.channel.send({"type": "progress", "id": req_id, "done": stream.next_frame, "total": stream.total_frames})
            self.channel.send({"type": "result", "id": req_id, "frames": keep, "final": final},
                              {"visemes": visemes[0, offset : offset + keep], "phones": phones[0, offset : offset + keep]})
        self.channel.cancelled.discard(req_id)


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
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the protocol pipe
    channel = Channel(sys.stdin.buffer, out)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    t0 = time.perf_counter()
    try:
        import onnxruntime as ort

        model = find_model(args.model)
        data = verify(model)
        providers = choose_providers(ort.get_available_providers(), args.device)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except (ModelError, ImportError, OSError, RuntimeError) as exc:
        channel.send({"type": "error", "code": "startup", "message": str(exc)})
        return 2
    used = session.get_providers()
    channel.send({"type": "ready", "providers": used, "device": _DEVICE_NAMES.get(used[0], used[0]),
                  "model": str(model.path), "sha256": model.sha256, "pid": os.getpid(),
                  "startup_seconds": round(time.perf_counter() - t0, 3)})
    try:
        Worker(session, channel, args.chunk_seconds).serve()
    except (BrokenPipeError, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
