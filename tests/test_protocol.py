import io
import json
import struct

import numpy as np
import pytest

from oris.engine.protocol import ProtocolError, read_message, write_message


def test_round_trip_with_arrays():
    buf = io.BytesIO()
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_message(buf, {"type": "result", "id": 7}, {"visemes": a, "n": np.array([1, 2], np.int64)})
    buf.seek(0)
    header, arrays = read_message(buf)
    assert header["type"] == "result" and header["id"] == 7 and header["v"] == 1
    assert np.array_equal(arrays["visemes"], a) and arrays["n"].tolist() == [1, 2]


def _raw(header: dict, payload: bytes = b"") -> io.BytesIO:
    raw = json.dumps(header).encode()
    return io.BytesIO(struct.pack(">I", len(raw)) + raw + payload)


def test_other_versions_are_refused():
    with pytest.raises(ProtocolError, match="protocol v1"):
        read_message(_raw({"v": 2, "type": "ready"}))


def test_object_arrays_are_never_unpickled():
    with pytest.raises(ProtocolError, match="not allowed"):
        read_message(_raw({"v": 1, "type": "x", "arrays": [{"name": "a", "dtype": "object", "shape": [1]}]}, b"\x80\x04"))


def test_truncated_message_and_garbage():
    with pytest.raises(ProtocolError, match="closed"):
        read_message(_raw({"v": 1, "type": "x", "arrays": [{"name": "a", "dtype": "float32", "shape": [10]}]}, b"\0" * 8))
    with pytest.raises(ProtocolError, match="not JSON"):
        read_message(io.BytesIO(struct.pack(">I", 5) + b"hello"))
    with pytest.raises(ProtocolError, match="too large"):
        read_message(io.BytesIO(struct.pack(">I", 1 << 30)))
