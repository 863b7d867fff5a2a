"""Captured output: one group of streams per captured process tree.

When a process's stdout or stderr goes to a capture stream, every process it
spawns writes to a new stream of the same group (HOSTAPI.md section 3.7): if
the parent's stdout and stderr are one stream, the child's share one new
stream; otherwise each gets its own. The test mode captures each test's tree
this way and prints it when the test fails.
"""

from __future__ import annotations

from typing import BinaryIO

__all__ = ["CaptureGroup", "CaptureStream"]


class CaptureStream:
    """One captured stream: bytes in write order, optionally echoed."""

    __slots__ = ("_data", "group", "index")

    def __init__(self, group: CaptureGroup, index: int) -> None:
        self.group = group
        self.index = index
        self._data = bytearray()

    def write(self, data: bytes) -> int:
        self._data += data
        echo = self.group.echo
        if echo is not None:
            echo.write(data)
            echo.flush()
        return len(data)

    def next(self) -> CaptureStream:
        """A new stream in the same group (for a spawned child)."""
        return self.group.new_stream()

    @property
    def data(self) -> bytes:
        return bytes(self._data)

    def text(self) -> str:
        return self._data.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<CaptureStream {self.index}: {len(self._data)} bytes>"


class CaptureGroup:
    """The streams of one captured process tree.

    ``echo`` (a binary file such as ``sys.stdout.buffer``) also receives
    everything written, as ``--nocapture`` asks.
    """

    def __init__(self, echo: BinaryIO | None = None) -> None:
        self.streams: list[CaptureStream] = []
        self.echo = echo

    def new_stream(self) -> CaptureStream:
        s = CaptureStream(self, len(self.streams))
        self.streams.append(s)
        return s

    def text(self) -> str:
        """Everything captured: one stream as is, several under headers."""
        if len(self.streams) == 1:
            return self.streams[0].text()
        parts = []
        for s in self.streams:
            if s.data:
                parts.append(f" --- process {s.index} stdout ---\n{s.text()}")
        return "".join(parts)
