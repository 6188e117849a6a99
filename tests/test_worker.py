"""The real worker process: start, request, progress, cancel, crash, hang, restart."""

import os
import signal
import sys
import threading
import time

import numpy as np
import onnxruntime as ort
import pytest

from oris.engine.client import Cancelled, WorkerClient, WorkerCrashed, WorkerError, WorkerTimeout
from oris.engine.model import find_model

from . import procs


def test_ready_reports_the_device_and_providers(worker):
    info = worker.start()
    assert info.device == "cpu" and info.providers == ["CPUExecutionProvider"]
    assert info.pid != os.getpid()


def test_output_matches_the_model_run_directly(worker, speech_16k):
    audio = speech_16k[16000 : 16000 * 2 + 8000]  # shorter than half a chunk: a single window
    post = worker.infer(audio)
    session = ort.InferenceSession(str(find_model().path), providers=["CPUExecutionProvider"])
    visemes, phones = session.run(None, {"audio": audio[None]})
    assert post.visemes.shape == (len(audio) // 160 + 1, 15) and post.phones.shape[1] == 40
    assert np.allclose(post.visemes, visemes[0], atol=1e-4)


def test_long_audio_is_processed_in_overlapping_chunks(speech_16k):
    """Windows keep 4 s and start every 2 s, each with 1 s of context each side; each frame is the
    triangle-weighted mean of the two windows that keep it. Checked against a plain re-implementation."""
    from oris.engine.worker import CHUNK_SECONDS, CONTEXT_FRAMES

    audio = np.tile(speech_16k, 3)[: 16000 * 50 + 1234]
    progress = []
    with WorkerClient(device="cpu") as client:
        client.start()
        post = client.infer(audio, on_progress=progress.append)
    session = ort.InferenceSession(str(find_model().path), providers=["CPUExecutionProvider"])
    total, chunk = len(audio) // 160 + 1, int(CHUNK_SECONDS * 100)
    tri = np.maximum(1 - np.abs(np.arange(chunk) + 0.5 - chunk / 2) / (chunk / 2), 1e-3)
    acc, weight = np.zeros((total, 15)), np.zeros(total)
    for first in range(0, total, chunk // 2):
        start = max(0, first - CONTEXT_FRAMES)
        end = min(len(audio), (first + chunk + CONTEXT_FRAMES) * 160)
        out = session.run(None, {"audio": audio[None, start * 160 : end]})[0][0]
        keep = min(chunk, total - first)
        acc[first : first + keep] += out[first - start : first - start + keep] * tri[:keep, None]
        weight[first : first + keep] += tri[:keep]
    assert np.allclose(post.visemes, acc / weight[:, None], atol=1e-3)
    assert len(progress) >= 20 and progress == sorted(progress) and progress[-1] == 1.0


def test_windows_run_in_batches_of_one_length_and_only_once_their_audio_is_in():
    """The worker batches windows to save time, but never holds more than a batch of audio and never
    pads a window: the first and last windows (shorter, without context on one side) run apart."""
    from oris.engine.worker import BATCH_WINDOWS, Stream

    stream = Stream(id=1, total=16000 * 60, chunk_frames=400)  # 31 windows, one every 2 s
    lengths = []
    while stream.emitted < stream.total_frames:
        batch, complete = stream.ready_windows(BATCH_WINDOWS)
        if not complete:
            assert stream.received < stream.total
            stream.add(np.zeros(16000, np.float32))  # audio arrives a second at a time
            continue
        assert batch and len({len(samples) for _, samples in batch}) == 1
        assert stream.received - stream.buffer_start <= (BATCH_WINDOWS * 2 + 4) * 16000
        lengths.append([len(samples) // 160 for _, samples in batch])
        for first, samples in batch:
            frames = len(samples) // 160 + 1
            stream.accumulate(first, [np.zeros((frames, 15), np.float32)])
    assert lengths == [[500], [600] * 8, [600] * 8, [600] * 8, [600] * 3, [500], [300], [100]]


def test_audio_given_in_blocks_of_any_size(worker, speech_16k):
    audio = speech_16k[: 16000 * 6]
    blocks = (audio[i : i + 12345] for i in range(0, len(audio), 12345))
    a = worker.infer(blocks, total_samples=len(audio))
    b = worker.infer(audio)
    assert np.allclose(a.visemes, b.visemes)


def test_cancel_stops_the_request_and_the_worker_serves_the_next(speech_16k):
    audio = np.tile(speech_16k, 10)  # about 200 s
    cancel = threading.Event()
    with WorkerClient(device="cpu") as client:
        pid = client.start().pid

        def on_progress(fraction):
            if fraction > 0.1:
                cancel.set()

        with pytest.raises(Cancelled):
            client.infer(audio, on_progress=on_progress, cancel=cancel)
        post = client.infer(speech_16k[:16000])
        assert client.info.pid == pid, "cancel must not cost a restart"
        assert post.visemes.shape[0] == 101


def test_kill_9_mid_request_gives_a_clear_error_and_the_next_request_restarts(speech_16k):
    audio = np.tile(speech_16k, 10)
    with WorkerClient(device="cpu") as client:
        pid = client.start().pid

        def kill_once(fraction):
            if client.info and client.info.pid == pid:
                os.kill(pid, signal.SIGKILL)

        with pytest.raises(WorkerCrashed, match="stopped during request.*signal 9.*next request starts a new one"):
            client.infer(audio, on_progress=kill_once)
        post = client.infer(speech_16k[:16000])
        assert client.info.pid != pid and post.visemes.shape[0] == 101


def test_a_cancel_sent_to_a_worker_that_already_died_is_a_clear_error_not_a_broken_pipe(speech_16k):
    """The user presses Esc just after the worker died: writing the cancel finds no reader (EPIPE). That is the
    crash, reported as such; the next request starts a new worker."""
    audio = np.tile(speech_16k, 10)
    cancel = threading.Event()
    with WorkerClient(device="cpu") as client:
        pid = client.start().pid

        def die_then_cancel(fraction):
            if client.info and client.info.pid == pid and not cancel.is_set():
                os.kill(pid, signal.SIGKILL)
                client._proc.wait(timeout=10)  # gone for sure: the cancel below meets a closed pipe
                cancel.set()

        with pytest.raises(WorkerCrashed, match="stopped during request"):
            client.infer(audio, on_progress=die_then_cancel, cancel=cancel)
        assert client.infer(speech_16k[:16000]).visemes.shape[0] == 101


def test_a_hung_worker_times_out_and_is_replaced(speech_16k):
    with WorkerClient(device="cpu") as client:
        pid = client.start().pid
        client.timeout = 1.5  # the request, not the start-up, is what hangs here
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(WorkerTimeout, match="did not answer within 2 s"):
            client.infer(speech_16k[: 16000 * 30])
        assert time.monotonic() - t0 < 10
        client.timeout = 60.0
        post = client.infer(speech_16k[:16000])
        assert client.info.pid != pid and post.visemes.shape[0] == 101


def test_two_requests_at_once_are_refused(speech_16k):
    audio = np.tile(speech_16k, 10)
    with WorkerClient(device="cpu") as client:
        client.start()
        started = threading.Event()
        errors = []

        def first():
            try:
                client.infer(audio, on_progress=lambda f: started.set())
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        t = threading.Thread(target=first)
        t.start()
        started.wait(10)
        with pytest.raises(WorkerError, match="busy"):
            client.infer(speech_16k[:16000])
        t.join()
        assert not errors


def test_worker_exits_when_its_parent_dies(tmp_path):
    script = (
        "import sys, os\n"
        "from oris.engine.client import WorkerClient\n"
        "c = WorkerClient(device='cpu'); print(c.start().pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = procs.run([sys.executable, "-c", script], timeout=60 * procs.machine_factor())
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 5 * procs.machine_factor()
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)  # not left running
    pytest.fail("worker outlived its parent")


def test_model_that_does_not_match_its_card_is_refused(tmp_path):
    model = find_model()
    bad = tmp_path / "oris_visemes.onnx"
    data = bytearray(model.path.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    (tmp_path / "oris_visemes.json").write_text(model.path.with_suffix(".json").read_text())
    with WorkerClient(device="cpu", model=str(bad)) as client:
        with pytest.raises(WorkerError, match="does not match its card"):
            client.start()


def test_a_damaged_multilingual_model_fails_that_line_clearly_and_english_lines_go_on(tmp_path, speech_16k):
    from oris.engine.model import MULTILINGUAL_FILE, find_multilingual

    model = find_model()
    other = find_multilingual(model)
    assert other is not None
    for source in (model.path, model.path.with_suffix(".json"), other.path.with_suffix(".json")):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    data = bytearray(other.path.read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / MULTILINGUAL_FILE).write_bytes(bytes(data))
    with WorkerClient(device="cpu", model=str(tmp_path / model.path.name)) as client:
        with pytest.raises(WorkerError, match="does not match its card"):
            client.infer(speech_16k[:32000], language="fr")
        assert client.alive and client.infer(speech_16k[:32000]).model == "en"


def test_gpu_requested_without_a_gpu_provider_says_what_to_install():
    if any(p in ort.get_available_providers() for p in ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")):
        pytest.skip("this machine has a GPU provider")
    with WorkerClient(device="gpu") as client:
        with pytest.raises(WorkerError, match="onnxruntime-gpu"):
            client.start()


def test_missing_python_is_a_clear_error():
    with WorkerClient(python="/nonexistent/python3") as client:
        with pytest.raises(WorkerError, match="could not start the worker"):
            client.start()


def test_recognition_goes_in_windows_of_at_most_30_s_with_progress_and_cancel_between_them(speech_16k):
    audio = np.tile(speech_16k, 4)  # about 82 s: three windows
    progress = []
    with WorkerClient(device="cpu") as client:
        post = client.infer(audio, on_progress=progress.append, recognize=True)
        spans = [(h["start"], h["end"]) for h in post.heard]
        assert spans[0][0] == 0 and spans[-1][1] == pytest.approx(len(audio) / 16000, abs=1e-3)
        assert all(b[0] == a[1] for a, b in zip(spans, spans[1:])), "windows tile the audio"
        assert all(0 < e - s <= 30.0 for s, e in spans) and len(spans) in (3, 4)
        assert progress == sorted(progress) and progress[-1] == 1.0
        assert all(h["text"] for h in post.heard)
        plain = client.infer(audio)
        assert np.allclose(post.visemes, plain.visemes), "recognition leaves the visemes as they are"
        cancel = threading.Event()
        started = []

        def on_progress(fraction):
            started.append(time.monotonic())
            if fraction > 0.05:
                cancel.set()

        with pytest.raises(Cancelled):
            client.infer(np.tile(speech_16k, 12), on_progress=on_progress, cancel=cancel, recognize=True)
        assert time.monotonic() - started[-1] < 8.0, "cancel is honoured within a window, not at the end of 4 minutes"
        assert client.infer(speech_16k[:16000], recognize=True).visemes.shape[0] == 101


def test_a_window_greedy_decoding_is_unsure_of_is_decoded_again_by_beam_search():
    """The demo clip's learner: greedy decoding runs her three sentences into one unsure sentence (the whole clip fell
    back to audio alone); beam search hears it as sentences the recognizer trusts. A clear voice never pays for it."""
    from oris.core.audio import decode_file
    from oris.engine.model import find_recognizer, read_checked
    from oris.engine.recognizer import Recognizer

    from .conftest import DATA, DEMO_AUDIO

    recognizer = Recognizer(find_recognizer(), lambda data: ort.InferenceSession(data, providers=["CPUExecutionProvider"]),
                            read_checked)
    beams = []
    search = recognizer._beam_decode

    def spy(*args, **kwargs):
        beams.append(search(*args, **kwargs))
        return beams[-1]

    recognizer._beam_decode = spy  # type: ignore[method-assign]
    heard = recognizer.window(decode_file(DEMO_AUDIO).samples, 0.0, "en")
    assert len(beams) == 1 and heard.trusted and all(s.trusted for s in heard.sentences), heard
    text = heard.text.lower()
    assert "my people" in text and "to the shop" in text and "is good" in text, text  # "compatition" on some runtimes
    clear = recognizer.window(decode_file(DATA / "bilabials_slt.flac").samples, 0.0, "en")
    assert len(beams) == 1 and clear.trusted
