"""The bincode 1.x (legacy configuration) wire formats of ``lunatic::sqlite``:
``BindList`` in, ``SqliteValue``, ``SqliteRow``, column names and
``SqliteError`` out (HOSTAPI.md section 2.12)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .alloc import bincode_str
from .sqlite_db import Result, Text, Value

__all__ = ["decode_bind_list", "encode_error", "encode_names", "encode_row", "encode_value"]


# -- bincode (1.x, legacy configuration) -----------------------------------------------


class _Malformed(Exception):
    pass


class _Reader:
    """Reads bincode's fixed-width little-endian encoding from a buffer."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _Malformed(f"unexpected end of input at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def raw(self) -> bytes:
        return self.take(self.u64())

    def text(self) -> str:
        try:
            return self.raw().decode()
        except UnicodeDecodeError as e:
            raise _Malformed(f"invalid UTF-8 in a string: {e}") from None


def _bind_key(r: _Reader) -> int | None:
    """BindKey: 0 None, 1 Numeric(u64), 2 String; only Numeric keeps its index."""
    variant = r.u32()
    if variant == 1:
        return r.u64()
    if variant == 2:
        r.text()
    elif variant != 0:
        raise _Malformed(f"invalid BindKey variant {variant}")
    return None


def _bind_value(r: _Reader) -> Value:
    """BindValue: 0 Null, 1 Blob, 2 Text, 3 Double, 4 Int(i32), 5 Int64."""
    variant = r.u32()
    if variant == 0:
        return None
    if variant == 1:
        return r.raw()
    if variant == 2:
        return r.text()
    if variant == 3:
        value: float = struct.unpack("<d", r.take(8))[0]
        return value
    if variant == 4:
        return int.from_bytes(r.take(4), "little", signed=True)
    if variant == 5:
        return int.from_bytes(r.take(8), "little", signed=True)
    raise _Malformed(f"invalid BindValue variant {variant}")


def decode_bind_list(data: bytes) -> list[tuple[int | None, Value]]:
    """A bincode ``BindList`` as ``(index or None, value)`` pairs (trailing
    bytes are ignored, as ``bincode::deserialize`` does); raises
    ``ValueError`` when it is malformed."""
    r = _Reader(data)
    try:
        count = r.u64()
        return [(_bind_key(r), _bind_value(r)) for _ in range(count)]
    except _Malformed as e:
        raise ValueError(f"malformed BindList: {e}") from None


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def encode_value(value: Value) -> bytes:
    """A bincode ``SqliteValue``, its variant chosen by the storage class:
    0 Null, 1 Blob, 2 Text, 3 Double, 4 Integer."""
    if value is None:
        return _u32(0)
    if isinstance(value, Text):
        return _u32(2) + bincode_str(value.decode("utf-8", "replace"))
    if isinstance(value, bytes):
        return _u32(1) + _u64(len(value)) + value
    if isinstance(value, str):  # never read back from a row; bound values only
        return _u32(2) + bincode_str(value)
    if isinstance(value, float):
        return _u32(3) + struct.pack("<d", value)
    return _u32(4) + struct.pack("<q", value)


def encode_row(values: Sequence[Value]) -> bytes:
    return _u64(len(values)) + b"".join(encode_value(v) for v in values)


def encode_names(names: Sequence[str]) -> bytes:
    return _u64(len(names)) + b"".join(bincode_str(n) for n in names)


def encode_error(result: Result) -> bytes:
    """``SqliteError { code: Option<u32>, message: Option<String> }``."""
    return b"\x01" + _u32(result.code) + b"\x01" + bincode_str(result.message)
