"""Wire format between Oris and its inference worker (protocol v1).

A message is a 4-byte big-endian header length, a UTF-8 JSON header, then the raw
little-endian bytes of each array the header lists under "arrays" (name, dtype, shape),
in order. JSON plus raw arrays only: nothing is ever unpickled.

Caller -> worker:  infer {id, samples, sample_rate, chunk_seconds?, language?, recognize?, languages?},
                   audio {id} + array "audio"
                   (float32 16 kHz mono, in order, summing to `samples`), cancel {id}, shutdown
Worker -> caller:  ready {providers, device, model, sha256, pid}, progress {id, done, total},
                   heard {id, start, end, text, language, ...} (one per recognized window),
                   result {id, frames, model} + arrays "visemes" [frames,15] and "phones" [frames,P]
                   (one per processed chunk, in order; the last has "final": true; model: "en" or
                   "multilingual", the viseme model the language chose),
                   cancelled {id}, error {id?, code, message}
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

import numpy as np

PROTOCOL_VERSION = 1
_ALLOWED_DTYPES = {"float32", "int16", "int32", "int64", "uint8"}
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAY_BYTES = 1 << 31


class ProtocolError(RuntimeError):
    """The other side sent something that is not a v1 message, or the pipe closed."""


def write_message(stream: IO[bytes], header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
    arrays = arrays or {}
    contiguous = {name: np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")) for name, a in arrays.items()}
    header = {"v": PROTOCOL_VERSION, **header,
              "arrays": [{"name": n, "dtype": a.dtype.name, "shape": list(a.shape)} for n, a in contiguous.items()]}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    stream.write(struct.pack(">I", len(raw)))
    stream.write(raw)
    for a in contiguous.values():
        stream.write(a.data)  # C-contiguous: written as raw bytes, no copy
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise ProtocolError("the pipe closed in the middle of a message" if buf else "the pipe closed")
        buf += chunk
    return bytes(buf)


def read_message(stream: IO[bytes]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    (length,) = struct.unpack(">I", _read_exact(stream, 4))
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"message header of {length} bytes is too large")
    try:
        header = json.loads(_read_exact(stream, length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"message header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"expected protocol v{PROTOCOL_VERSION}, got {header.get('v') if isinstance(header, dict) else header!r}")
    arrays: dict[str, np.ndarray] = {}
    for spec in header.get("arrays", []):
        dtype = spec.get("dtype")
        if dtype not in _ALLOWED_DTYPES:
            raise ProtocolError(f"array dtype {dtype!r} is not allowed")
        shape = tuple(int(s) for s in spec["shape"])
        if any(s < 0 for s in shape):
            raise ProtocolError(f"negative array shape {shape}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if nbytes > MAX_ARRAY_BYTES:
            raise ProtocolError(f"array of {nbytes} bytes is too large")
        arrays[spec["name"]] = np.frombuffer(_read_exact(stream, nbytes), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    return header, arrays
