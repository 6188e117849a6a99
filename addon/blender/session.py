"""The one worker Blender shares across operators, started with the add-on's preferences."""

from __future__ import annotations

import threading

from ..engine.client import WorkerClient

_lock = threading.Lock()
_client: WorkerClient | None = None
_config: tuple[str, str] | None = None


def get_worker(python: str = "", device: str = "auto", timeout: float = 120.0) -> WorkerClient:
    """The shared worker for these settings; a change of settings starts a new one on next use."""
    global _client, _config
    with _lock:
        config = (python, device)
        if _client is None or _config != config:
            if _client is not None:
                _client.close()
            _client = WorkerClient(python=python or None, device=device, timeout=timeout)
            _config = config
        return _client


def status() -> str:
    client = _client
    if client is None or not client.alive or client.info is None:
        return "not running (starts on first use)"
    return f"running on {client.info.device} (pid {client.info.pid}; {', '.join(client.info.providers)})"


def shutdown() -> None:
    global _client, _config
    with _lock:
        if _client is not None:
            _client.close()
        _client, _config = None, None
