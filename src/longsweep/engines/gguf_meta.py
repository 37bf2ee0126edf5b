"""Read the key-value metadata of a GGUF file (the tokenizer's vocabulary, merges, settings).

Only the header is read, never the tensors. Format: magic ``GGUF``, version,
tensor count, kv count, then ``key: string, type: u32, value`` pairs, little-endian.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

from longsweep.errors import GGUFError  # noqa: F401

MAGIC = b"GGUF"


def require_magic(f: BinaryIO, path: str) -> None:
    """The file's first four bytes must be ``GGUF``."""
    head = f.read(4)
    if head != MAGIC:
        raise GGUFError(f"{path} is not a GGUF file (it starts with {head!r}, not {MAGIC!r})")


_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _u(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    raw = f.read(size)
    if len(raw) != size:
        raise GGUFError("the GGUF header ends early")
    return struct.unpack(fmt, raw)[0]


def _string(f: BinaryIO) -> str:
    n = _u(f, "<Q")
    raw = f.read(n)
    if len(raw) != n:
        raise GGUFError("the GGUF header ends early")
    return raw.decode("utf-8", errors="surrogateescape")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        sub, n = _u(f, "<I"), _u(f, "<Q")
        if sub == _STRING:
            return [_string(f) for _ in range(n)]
        if sub not in _SCALAR:
            raise GGUFError(f"unsupported array element type {sub}")
        fmt = _SCALAR[sub]
        size = struct.calcsize(fmt)
        raw = f.read(size * n)
        return list(struct.unpack(f"<{n}{fmt[1:]}", raw))
    if kind not in _SCALAR:
        raise GGUFError(f"unsupported value type {kind}")
    return _u(f, _SCALAR[kind])


def read_metadata(path: str, prefix: str = "") -> dict[str, Any]:
    """All metadata keys starting with ``prefix`` (values of other keys are read and dropped)."""
    out: dict[str, Any] = {}
    with open(path, "rb") as f:
        require_magic(f, path)
        version = _u(f, "<I")
        if version not in (2, 3):
            raise GGUFError(f"{path}: GGUF version {version} is not supported (2 or 3, little-endian)")
        _u(f, "<Q")  # tensor count
        for _ in range(_u(f, "<Q")):
            key = _string(f)
            value = _value(f, _u(f, "<I"))
            if key.startswith(prefix):
                out[key] = value
    return out
