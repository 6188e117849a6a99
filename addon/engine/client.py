"""Caller side of the worker: start it, stream audio to it, collect posteriors, cancel.

Used by the command line now and by Blender (from a background thread) next. No bpy.
A worker that dies mid-request raises WorkerCrashed and the next request starts a new one;
one that stops answering for `timeout` seconds is killed and raises WorkerTimeout.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import os
import queue
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import LoudnessMeter
from .protocol import ProtocolError, read_message, write_message

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000


class WorkerError(RuntimeError):
    """The worker could not start, or it reported an error."""


class WorkerCrashed(WorkerError):
    """The worker process exited during a request."""


class WorkerTimeout(WorkerError):
    """The worker stopped answering."""


class Cancelled(Exception):
    """The request was cancelled by its caller."""


@dataclass(frozen=True)
class Posteriors:
    """Model output at 100 Hz: frame t is centred at t*10 ms."""

    visemes: np.ndarray  # [frames, 15] logits
    phones: np.ndarray  # [frames, P] logits
    frame_rate: float = 100.0
    heard: tuple[dict[str, Any], ...] = ()  # the recognizer's windows, when words were asked for
    loudness: np.ndarray | None = None  # the audio's level in dB per frame (core.audio.LoudnessMeter), where known
    model: str = "en"  # which viseme model ran: "en", or "multilingual" for a line in another language


@dataclass(frozen=True)
class WorkerInfo:
    device: str
    providers: list[str]
    pid: int
    startup_seconds: float


def worker_command(python: str | None = None, device: str = "auto", model: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start a worker for this package."""
    cmd = [python or sys.executable, "-m", f"{_PACKAGE_DIR.name}.engine.worker", "--device", device,
           "--parent-pid", str(os.getpid())]
    if model:
        cmd += ["--model", str(model)]
    env = dict(os.environ)
    # The worker imports this package from its folder, and finds numpy and onnxruntime
    # where this interpreter finds them (Blender's extension site-packages included).
    paths = [str(_PACKAGE_DIR.parent)]
    if python is None:
        paths += [p for p in sys.path if p and os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONNOUSERSITE"] = "1"
    return cmd, env


_LIVE: weakref.WeakSet[WorkerClient] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Stop every worker still running when the caller exits (Blender quitting, a script ending)."""
    for client in list(_LIVE):
        client.close()


class WorkerClient:
    """One worker process, started on first use and kept across requests."""

    def __init__(self, python: str | None = None, device: str = "auto", model: str | None = None,
                 timeout: float = 60.0, audio_block_seconds: float = 10.0) -> None:
        self.python, self.device, self.model = python, device, model
        self.timeout = timeout
        self.block = int(audio_block_seconds * SAMPLE_RATE)
        self.info: WorkerInfo | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._events: queue.Queue[tuple[dict[str, Any], dict[str, np.ndarray]] | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._busy = threading.Lock()
        _LIVE.add(self)

    # -- lifecycle -------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> WorkerInfo:
        if self.alive and self.info is not None:
            return self.info
        self.close()
        cmd, env = worker_command(self.python, self.device, self.model)
        self._events = queue.Queue()
        self._stderr.clear()
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            raise WorkerError(f"could not start the worker with {cmd[0]!r}: {exc}") from exc
        assert self._proc.stdout and self._proc.stderr
        threading.Thread(target=self._read_events, args=(self._proc.stdout, self._events), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self._proc.stderr,), daemon=True).start()
        header, _ = self._wait_event(None, what="start")
        if header.get("type") == "error":
            self.close()
            raise WorkerError(f"the worker could not start: {header.get('message')}")
        if header.get("type") != "ready":
            self.close()
            raise WorkerError(f"the worker sent {header.get('type')!r} instead of ready")
        self.info = WorkerInfo(str(header["device"]), list(header["providers"]), int(header["pid"]),
                               float(header.get("startup_seconds", 0.0)))
        return self.info

    def close(self) -> None:
        proc, self._proc, self.info = self._proc, None, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                with self._write_lock:
                    assert proc.stdin
                    write_message(proc.stdin, {"type": "shutdown"})
                    proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if pipe:
                    pipe.close()
            except OSError:
                pass

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------
    def infer(self, audio: np.ndarray | Iterable[np.ndarray], total_samples: int | None = None,
              on_progress: Callable[[float], None] | None = None,
              cancel: threading.Event | None = None, recognize: bool | str = False, language: str = "auto",
              languages: tuple[str, ...] = ()) -> Posteriors:
        """Run the model over 16 kHz mono float32 audio (an array, or blocks with total_samples);
        with recognize, the speech recognizer's words too (Posteriors.heard), in `language` (a code, or
        "auto": the recognizer names each window's language, preferring `languages` where it hesitates).
        The language also picks the viseme model: English, or the multilingual one for any other language
        (told, or named by the recognizer's first window; not known and not recognizing: English).
        recognize="language": only each window's language (Posteriors.heard without text), which costs
        the recognizer's encoder alone."""
        if isinstance(audio, np.ndarray):
            total_samples = len(audio)
            blocks: Iterable[np.ndarray] = (audio[i : i + self.block] for i in range(0, len(audio), self.block))
        else:
            blocks = audio
        if not total_samples or total_samples <= 0:
            raise ValueError("no audio samples to process")
        if not self._busy.acquire(blocking=False):
            raise WorkerError("the worker is busy with another request; wait for it or cancel it")
        try:
            self.start()
            return self._request(blocks, int(total_samples), on_progress, cancel, recognize, language, languages)
        finally:
            self._busy.release()

    def _request(self, blocks: Iterable[np.ndarray], total: int, on_progress: Callable[[float], None] | None,
                 cancel: threading.Event | None, recognize: bool | str, language: str = "auto",
                 languages: tuple[str, ...] = ()) -> Posteriors:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        stdin = proc.stdin
        req_id = next(self._ids)
        stop_sending = threading.Event()
        send_error: list[BaseException] = []
        meter = LoudnessMeter()  # the audio's level, for the motion (core.motion opens the mouth with the voice)

        def send() -> None:
            try:
                with self._write_lock:
                    write_message(stdin, {"type": "infer", "id": req_id, "samples": total, "sample_rate": SAMPLE_RATE,
                                          "language": language,
                                          **({"recognize": recognize, "languages": list(languages)} if recognize else {})})
                sent = 0
                for block in blocks:
                    if stop_sending.is_set():
                        return
                    block = np.asarray(block, np.float32)[: total - sent]
                    meter.add(block)
                    with self._write_lock:
                        write_message(stdin, {"type": "audio", "id": req_id}, {"audio": block})
                    sent += len(block)
                    if sent >= total:
                        break
                if sent < total and not stop_sending.is_set():
                    send_error.append(ValueError(f"the audio ended after {sent} of {total} samples"))
                    stop_sending.set()
            except (OSError, ValueError) as exc:
                if not stop_sending.is_set():
                    send_error.append(exc)
            except Exception as exc:  # an error while decoding the caller's audio blocks
                send_error.append(exc)
                stop_sending.set()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        visemes: list[np.ndarray] = []
        phones: list[np.ndarray] = []
        heard: list[dict[str, Any]] = []
        cancel_sent = False
        last_event = time.monotonic()
        while True:
            if (cancel is not None and cancel.is_set() or send_error) and not cancel_sent:
                stop_sending.set()
                with self._write_lock:
                    try:
                        write_message(stdin, {"type": "cancel", "id": req_id})
                    except OSError:  # the worker is gone: its event stream ends, and that says how it stopped
                        pass
                cancel_sent = True
            event = self._next_event(req_id, what="request", wait=0.05)
            if event is None:  # nothing yet: look at cancel again, unless the worker went quiet
                if time.monotonic() - last_event > self.timeout:
                    self._timed_out("request")
                continue
            last_event = time.monotonic()
            header, arrays = event
            kind = header.get("type")
            if kind == "progress" and on_progress is not None:
                on_progress(header["done"] / max(1, header["total"]))
            elif kind == "heard":
                heard.append({k: v for k, v in header.items() if k not in ("v", "type", "id", "arrays")})
            elif kind == "result":
                visemes.append(np.array(arrays["visemes"]))
                phones.append(np.array(arrays["phones"]))
                if header.get("final"):
                    sender.join(timeout=1)
                    return Posteriors(np.concatenate(visemes), np.concatenate(phones), heard=tuple(heard),
                                      loudness=None if sender.is_alive() else meter.levels(),
                                      model=str(header.get("model", "en")))
            elif kind == "cancelled":
                if send_error:
                    raise send_error[0]
                raise Cancelled("cancelled")
            elif kind == "error":
                stop_sending.set()
                raise WorkerError(str(header.get("message")))

    # -- plumbing --------------------------------------------------------
    def _wait_event(self, req_id: Any, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        event = self._next_event(req_id, what, wait=self.timeout)
        if event is None:
            self._timed_out(what)
        assert event is not None
        return event

    def _timed_out(self, what: str) -> None:
        self._kill()
        raise WorkerTimeout(f"the worker did not answer within {self.timeout:.0f} s during {what}; "
                            "it was stopped and will be restarted on the next request")

    def _next_event(self, req_id: Any, what: str, wait: float) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The next event for req_id (or for no request), None after `wait` seconds without one."""
        deadline = time.monotonic() + wait
        while True:
            try:
                item = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if item is None:
                code = self._proc.wait(timeout=5) if self._proc else None
                detail = self._stderr_tail()
                self._kill()
                why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                raise WorkerCrashed(f"the worker process stopped during {what} ({why}); "
                                    f"the next request starts a new one.{detail}")
            header, arrays = item
            if req_id is None or header.get("id") in (req_id, None):
                return header, arrays

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.close()

    def _stderr_tail(self) -> str:
        time.sleep(0.05)
        lines = [ln for ln in self._stderr if ln.strip()]
        return (" Worker output: " + " | ".join(lines[-5:])) if lines else ""

    @staticmethod
    def _read_events(stream: Any, events: queue.Queue[Any]) -> None:
        try:
            while True:
                events.put(read_message(stream))
        except (ProtocolError, OSError, ValueError):
            events.put(None)

    def _read_stderr(self, stream: Any) -> None:
        for line in iter(stream.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace").rstrip())
