"""Read key/value metadata from a GGUF file's header, without loading the model (and without
llama.cpp, whose loader prints to stderr). The format: magic `GGUF`, version, tensor count,
key/value count, then typed key/value pairs (github.com/ggml-org/ggml/blob/master/docs/gguf.md)."""
from __future__ import annotations

import struct
from pathlib import Path

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    pass


def _read(f, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise GGUFError("truncated header")
    return struct.unpack(fmt, data)[0]


def _length(f, what: str, unit: int = 1) -> int:
    """A length or count from the header, checked against what is left of the file (a header that claims
    a string of 2^60 bytes is malformed, not a reason to allocate them)."""
    n = _read(f, "<Q")
    here = f.tell()
    end = f.seek(0, 2)
    f.seek(here)
    if n * unit > end - here:
        raise GGUFError(f"malformed header: {what} of {n:,} {'bytes' if unit == 1 else 'items'} at offset "
                        f"{here - 8:,}, past the end of the file ({end:,} bytes)")
    return n


def _value(f, kind: int, keep: bool):
    if kind in _SCALARS:
        return _read(f, _SCALARS[kind])
    if kind == _STRING:
        n = _length(f, "a string")
        if not keep:
            f.seek(n, 1)
            return None
        return f.read(n).decode("utf-8", errors="replace")
    if kind == _ARRAY:
        item = _read(f, "<I")
        count = _length(f, "an array", struct.calcsize(_SCALARS[item]) if item in _SCALARS else 1)
        if item in _SCALARS and not keep:
            f.seek(struct.calcsize(_SCALARS[item]) * count, 1)
            return None
        values = [_value(f, item, keep) for _ in range(count)]
        return values if keep else None
    raise GGUFError(f"unknown value type {kind}")


def metadata(path: str | Path, keep=lambda key: True) -> dict:
    """The header's key/values for which `keep(key)` holds (the others are skipped unread)."""
    out = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise GGUFError(f"{path}: not a GGUF file")
        version = _read(f, "<I")
        if version < 2:
            raise GGUFError(f"{path}: GGUF version {version} is too old")
        _read(f, "<Q")  # tensor count
        for _ in range(_length(f, "a key/value count", 9)):  # each pair takes 9 bytes at least
            key = f.read(_length(f, "a key")).decode("utf-8", errors="replace")
            wanted = keep(key)
            value = _value(f, _read(f, "<I"), wanted)
            if wanted:
                out[key] = value
    return out


def trained_context(path: str | Path) -> int | None:
    """`<architecture>.context_length`: the context the model was trained for."""
    meta = metadata(path, keep=lambda k: k == "general.architecture" or k.endswith(".context_length"))
    value = meta.get(f"{meta.get('general.architecture')}.context_length")
    return int(value) if value else None
