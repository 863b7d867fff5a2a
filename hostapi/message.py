"""``lunatic::message``: the scratch area, sending and receiving (sections 2.2, 4).

Every process has one scratch slot. ``create_data`` and ``receive`` replace
what it holds, ``send`` takes it, and the data functions read or append to the
data message in it. LinkDied and ProcessDied messages can be inspected
(``get_tag``, ``get_process_id``) and forwarded, but not read as data.
"""

from __future__ import annotations

from typing import Any, Final

import outcome

from .abi import MASK64, TIMEOUT, HostTrap, Namespace, Suspend, lookup_trap
from .data import DataMessage, Message
from .protocols import HostProcess

__all__ = ["namespace", "take_scratch", "timeout_from_guest"]

namespace = Namespace("lunatic::message")

_NS: Final = "lunatic::message"


def timeout_from_guest(timeout_ms: int) -> int | None:
    """Decode a guest timeout: ``u64::MAX`` means none (section 0.4)."""
    t = timeout_ms & MASK64
    return None if t == MASK64 else t


def _scratch(proc: HostProcess, fn: str) -> Message:
    m = proc.scratch
    if m is None:
        raise lookup_trap(f"{_NS}::{fn}")
    return m


def _data(proc: HostProcess, fn: str) -> DataMessage:
    m = proc.scratch
    if type(m) is DataMessage:
        return m
    if m is None:
        raise lookup_trap(f"{_NS}::{fn}")
    kind = "LinkDied" if m.kind == 1 else "ProcessDied"
    raise HostTrap(f"Unexpected `Message::{kind}` in scratch area")


@namespace.function("create_data (i64, i64)")
def create_data(proc: HostProcess, tag: int, capacity: int) -> None:
    """Start a new data message, discarding the scratch's previous content.

    ``capacity`` is only a hint and is never used to allocate (section 6.9).
    """
    proc.scratch = DataMessage(tag)


@namespace.function("write_data (i32, i32) -> i32")
def write_data(proc: HostProcess, ptr: int, length: int) -> int:
    m = _data(proc, "write_data")
    m.buffer += proc.memory.read(ptr, length)
    return length


@namespace.function("read_data (i32, i32) -> i32")
def read_data(proc: HostProcess, ptr: int, length: int) -> int:
    """Copy up to ``length`` unread bytes to ``ptr``; 0 at the end.

    The whole destination range is bounds-checked, even when fewer bytes are
    copied. This is the hottest host call of all (JSON decoding in lunatic-rs
    reads one byte per call), hence the inlined fast path.
    """
    m = proc.scratch
    if type(m) is not DataMessage:
        m = _data(proc, "read_data")
    buf = m.buffer
    pos = m.pos
    left = len(buf) - pos
    if left < 0:
        raise HostTrap(
            f"Trap raised during host call: read position {pos} is past the end of "
            f"the {len(buf)}-byte message ({_NS}::read_data)."
        )
    n = length if length < left else left
    proc.memory.copy_out(ptr, length, buf, pos, n)
    m.pos = pos + n
    return n


@namespace.function("seek_data (i64)")
def seek_data(proc: HostProcess, position: int) -> None:
    _data(proc, "seek_data").pos = position & MASK64


@namespace.function("get_tag () -> i64")
def get_tag(proc: HostProcess) -> int:
    return _scratch(proc, "get_tag").tag


@namespace.function("get_process_id () -> i64")
def get_process_id(proc: HostProcess) -> int:
    m = _scratch(proc, "get_process_id")
    return m.pid if m.kind == 2 else 0  # type: ignore[union-attr]


@namespace.function("data_size () -> i64")
def data_size(proc: HostProcess) -> int:
    return len(_data(proc, "data_size").buffer)


# -- resources inside messages (section 4.7) ---------------------------------


def _push(m: DataMessage, kind: str, resource: Any) -> int:
    if m.resources is None:
        m.resources = []
    m.resources.append((kind, resource))
    return len(m.resources) - 1


def _take(proc: HostProcess, index: int, kind: str, fn: str) -> Any:
    m = _data(proc, fn)
    slots = m.resources or []
    i = index & MASK64
    slot = slots[i] if i < len(slots) else None
    if slot is None or slot[0] != kind:
        raise lookup_trap(f"{_NS}::{fn}")
    slots[i] = None
    return slot[1]


@namespace.function("push_module (i64) -> i64")
def push_module(proc: HostProcess, module_id: int) -> int:
    """Add a reference to a module; the sender keeps it (a copy)."""
    module = proc.modules.get(module_id)
    if module is None:
        raise lookup_trap(f"{_NS}::push_module")
    return _push(_data(proc, "push_module"), "module", module)


@namespace.function("take_module (i64) -> i64")
def take_module(proc: HostProcess, index: int) -> int:
    return proc.modules.add(_take(proc, index, "module", "take_module"))


def _push_moved(proc: HostProcess, kind: str, rid: int, fn: str) -> int:
    # The resource leaves the sender's table before the scratch is checked,
    # exactly as in lunatic: the id is invalid afterwards even if this traps.
    resource = proc.resources(kind).remove(rid)
    if resource is None:
        raise lookup_trap(f"{_NS}::{fn}")
    return _push(_data(proc, fn), kind, resource)


def _take_moved(proc: HostProcess, kind: str, index: int, fn: str) -> int:
    return proc.resources(kind).add(_take(proc, index, kind, fn))


@namespace.function("push_tcp_stream (i64) -> i64")
def push_tcp_stream(proc: HostProcess, stream_id: int) -> int:
    return _push_moved(proc, "tcp_stream", stream_id, "push_tcp_stream")


@namespace.function("take_tcp_stream (i64) -> i64")
def take_tcp_stream(proc: HostProcess, index: int) -> int:
    return _take_moved(proc, "tcp_stream", index, "take_tcp_stream")


@namespace.function("push_tls_stream (i64) -> i64")
def push_tls_stream(proc: HostProcess, stream_id: int) -> int:
    return _push_moved(proc, "tls_stream", stream_id, "push_tls_stream")


@namespace.function("take_tls_stream (i64) -> i64")
def take_tls_stream(proc: HostProcess, index: int) -> int:
    return _take_moved(proc, "tls_stream", index, "take_tls_stream")


@namespace.function("push_udp_socket (i64) -> i64")
def push_udp_socket(proc: HostProcess, socket_id: int) -> int:
    return _push_moved(proc, "udp_socket", socket_id, "push_udp_socket")


@namespace.function("take_udp_socket (i64) -> i64")
def take_udp_socket(proc: HostProcess, index: int) -> int:
    return _take_moved(proc, "udp_socket", index, "take_udp_socket")


# -- sending and receiving -----------------------------------------------------


def take_scratch(proc: HostProcess, context: str) -> Message:
    """Take the scratch message to send it; none traps, naming ``context``."""
    m = proc.scratch
    if m is None:
        raise lookup_trap(context)
    proc.scratch = None
    return m


def _take_scratch(proc: HostProcess, fn: str) -> Message:
    return take_scratch(proc, f"{_NS}::{fn}")


@namespace.function("send (i64) -> i32")
def send(proc: HostProcess, pid: int) -> int:
    """Send the scratch message (of any kind); unknown targets drop it."""
    proc.send(pid & MASK64, _take_scratch(proc, "send"))
    return 0


def _finish_receive(proc: HostProcess, result: outcome.Outcome[Message | None]) -> int:
    m = result.unwrap()
    if m is None:
        return TIMEOUT
    proc.scratch = m
    return m.kind


@namespace.function("receive (i32, i32, i64) -> i32", blocking=True)
def receive(proc: HostProcess, tags_ptr: int, tags_len: int, timeout_ms: int) -> int | Suspend:
    """Take the first matching message into the scratch area (section 4.5).

    Returns 0, 1 or 2 for Data, LinkDied and ProcessDied; 9027 on timeout,
    leaving the scratch unchanged. Timeout 0 means "look once".
    """
    tags = proc.memory.read_i64s(tags_ptr, tags_len) if tags_len else ()
    m = proc.take_message(tags)
    if m is not None:
        proc.scratch = m
        return m.kind
    timeout = timeout_from_guest(timeout_ms)
    if timeout == 0:
        return TIMEOUT
    seconds = None if timeout is None else timeout / 1000
    return Suspend(proc.wait_message, (tags, seconds), _finish_receive, (proc,))


def _finish_reply(proc: HostProcess, result: outcome.Outcome[Message | None]) -> int:
    m = result.unwrap()
    if m is None:
        return TIMEOUT
    proc.scratch = m
    return 0


@namespace.function("send_receive_skip_search (i64, i64, i64) -> i32", blocking=True)
def send_receive_skip_search(
    proc: HostProcess, pid: int, wait_tag: int, timeout_ms: int
) -> int | Suspend:
    """Send, then wait for a reply tagged ``wait_tag`` that arrives afterwards.

    Messages already queued are not examined (correction 5); tag 0 never
    matches. Returns 0 with the reply in the scratch area, or 9027.
    """
    message = _take_scratch(proc, "send_receive_skip_search")
    proc.send(pid & MASK64, message)
    timeout = timeout_from_guest(timeout_ms)
    seconds = None if timeout is None else timeout / 1000
    return Suspend(proc.wait_message, ((wait_tag,), seconds), _finish_reply, (proc,))
