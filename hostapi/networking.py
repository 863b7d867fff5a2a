"""``lunatic::networking``: DNS, TCP, TLS and UDP on Trio (HOSTAPI.md section 2.11).

The sockets are real and non-blocking for the rest of the runtime: a call
that waits (accept, connect, read, write, receive, resolve) suspends the
guest's fiber while its process's task awaits the socket (see
:mod:`hostapi.netio`). Results follow lunatic's conventions:

* 0 for success, with the result written at the output pointer (an id, a
  byte count as u64);
* 1 with an error id at the output pointer, whose text is Rust's display of
  the I/O error (``Connection refused (os error 111)``);
* 9027 when the timeout passed, writing nothing (``resolve`` writes 0).

Addresses come in as ``(type, address pointer, port, flow info, scope id)``
with type 4 or 6 (anything else traps) and go out as DNS iterators. Unknown
resource ids trap. Deliberate differences from lunatic: ``tcp_peek`` never
consumes data (section 6.3), and ``tls_connect`` with custom trust anchors
reads them as lunatic does, ``(pointer, length)`` pairs. TLS handshake
failures trap, as in lunatic.
"""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
import ssl
from collections.abc import Callable
from typing import Any, Final

import outcome
import trio

from .abi import MASK64, TIMEOUT, HostTrap, Namespace, Suspend, lookup_trap, op_trap
from .netio import (
    TIMED_OUT,
    DnsIterator,
    Handle,
    Listener,
    SocketAddress,
    TcpConnection,
    TlsConnection,
    UdpSocket,
    bind_listener,
    bind_udp,
    client_context,
    connect,
    io_error_text,
    server_context,
    socket_address,
    tls_handshake,
)
from .netio import (
    resolve as resolve_name,
)
from .protocols import HostProcess

__all__ = ["namespace"]

namespace = Namespace("lunatic::networking")

_NS: Final = "lunatic::networking"
_DNS: Final = "dns_iterator"
_TCP_LISTENER: Final = "tcp_listener"
_TLS_LISTENER: Final = "tls_listener"
# the kinds lunatic::message moves between processes (section 4.7)
_TCP: Final = "tcp_stream"
_TLS: Final = "tls_stream"
_UDP: Final = "udp_socket"

#: Exceptions that become error ids (return code 1); anything else traps.
_ERRORS: Final = (OSError, ValueError, trio.BrokenResourceError, trio.ClosedResourceError)


# -- arguments and results ----------------------------------------------------------


def _get(proc: HostProcess, kind: str, rid: int, fn: str) -> Any:
    item = proc.resources(kind).get(rid)
    if item is None:
        raise lookup_trap(f"{_NS}::{fn}")
    return item


def _drop(proc: HostProcess, kind: str, rid: int, fn: str) -> None:
    item = proc.resources(kind).remove(rid)
    if item is None:
        raise lookup_trap(f"{_NS}::{fn}")
    item.close()


_FLOW_LABEL: Final = 0xF_FFFF


def _address(
    proc: HostProcess, addr_type: int, addr_ptr: int, port: int, flow: int, scope: int, fn: str
) -> tuple[int, Any]:
    """The socket family and Python address of an address argument."""
    if addr_type == 4:
        host = stdlib_socket.inet_ntop(stdlib_socket.AF_INET, proc.memory.read(addr_ptr, 4))
        return stdlib_socket.AF_INET, (host, port & 0xFFFF)
    if addr_type == 6:
        host = stdlib_socket.inet_ntop(stdlib_socket.AF_INET6, proc.memory.read(addr_ptr, 16))
        # Python takes only the 20-bit flow label; Linux ignores the flow info
        # of bind, connect and sendto anyway unless IPV6_FLOWINFO_SEND is on.
        return stdlib_socket.AF_INET6, (host, port & 0xFFFF, flow & _FLOW_LABEL, scope)
    raise op_trap("Unsupported address type", f"{_NS}::{fn}")


def _for_socket(sock: stdlib_socket.socket, family: int, sockaddr: Any) -> Any:
    """``sockaddr`` as the existing socket ``sock`` takes it, as the kernel
    would: IPv4-mapped on an IPv6 socket; an IPv6 address on an IPv4 socket
    fails with EAFNOSUPPORT (raised as :class:`OSError`)."""
    if family == sock.family:
        return sockaddr
    if sock.family == stdlib_socket.AF_INET6:
        host, port = sockaddr
        return (f"::ffff:{host}", port, 0, 0)
    raise OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))


def _dns(proc: HostProcess, *addresses: SocketAddress) -> int:
    return proc.resources(_DNS).add(DnsIterator(addresses))


def _fail(proc: HostProcess, ptr: int, error: BaseException) -> int:
    proc.memory.write_u64(ptr, proc.errors.add(io_error_text(error)))
    return 1


def _settle(
    proc: HostProcess,
    out_ptr: int,
    on_value: Callable[[Any], int],
    result: outcome.Outcome[Any],
) -> int:
    """Turn an operation's outcome into lunatic's return code."""
    if isinstance(result, outcome.Error):
        error = result.error
        if isinstance(error, _ERRORS):
            return _fail(proc, out_ptr, error)
        raise error
    value = result.unwrap()
    if value is TIMED_OUT:
        return TIMEOUT
    return on_value(value)


def _io(
    proc: HostProcess, out_ptr: int, operation: Any, args: tuple[Any, ...], on_value: Any
) -> Suspend:
    """Await ``operation(*args)``; ``on_value(result)`` gives the return code."""
    proc.memory.check(out_ptr, 8)
    return Suspend(operation, args, _settle, (proc, out_ptr, on_value))


def _bytes_out(proc: HostProcess, buf_ptr: int, opaque_ptr: int) -> Callable[[Any], int]:
    def done(data: bytes) -> int:
        proc.memory.write(buf_ptr, data)
        proc.memory.write_u64(opaque_ptr, len(data))
        return 0

    return done


def _count_out(proc: HostProcess, opaque_ptr: int) -> Callable[[Any], int]:
    def done(n: int) -> int:
        proc.memory.write_u64(opaque_ptr, n)
        return 0

    return done


def _iovecs(proc: HostProcess, iovs_ptr: int, count: int) -> list[bytes]:
    """Copy the buffers of ``count`` WASI ciovecs (u32 pointer, u32 length)."""
    raw = proc.memory.read(iovs_ptr, 8 * count)
    out = []
    for i in range(count):
        ptr = int.from_bytes(raw[8 * i : 8 * i + 4], "little")
        length = int.from_bytes(raw[8 * i + 4 : 8 * i + 8], "little")
        out.append(proc.memory.read(ptr, length))
    return out


def _timeout_ms(value: int) -> int:
    return value & MASK64


# -- DNS ------------------------------------------------------------------------------------


def _resolved(proc: HostProcess, id_ptr: int, result: outcome.Outcome[Any]) -> int:
    if isinstance(result, outcome.Value) and result.value is TIMED_OUT:
        proc.memory.write_u64(id_ptr, 0)  # lunatic writes 0 on a timeout
        return TIMEOUT
    return _settle(proc, id_ptr, lambda it: _write_id(proc, id_ptr, _DNS, it), result)


def _write_id(proc: HostProcess, ptr: int, kind: str, item: Any) -> int:
    proc.memory.write_u64(ptr, proc.resources(kind).add(item))
    return 0


@namespace.function("resolve (i32, i32, i64, i32) -> i32", blocking=True)
def resolve(proc: HostProcess, name_ptr: int, name_len: int, timeout_ms: int, id_ptr: int) -> Any:
    """Resolve ``host:port`` into a DNS iterator."""
    name = proc.memory.read_str(name_ptr, name_len, f"{_NS}::resolve")
    proc.memory.check(id_ptr, 8)
    return Suspend(resolve_name, (name, _timeout_ms(timeout_ms)), _resolved, (proc, id_ptr))


@namespace.function("drop_dns_iterator (i64)")
def drop_dns_iterator(proc: HostProcess, iter_id: int) -> None:
    if proc.resources(_DNS).remove(iter_id) is None:
        raise lookup_trap(f"{_NS}::drop_dns_iterator")


@namespace.function("resolve_next (i64, i32, i32, i32, i32, i32) -> i32")
def resolve_next(
    proc: HostProcess,
    iter_id: int,
    type_ptr: int,
    addr_ptr: int,
    port_ptr: int,
    flow_ptr: int,
    scope_ptr: int,
) -> int:
    """Write the next address; 1 when the iterator is exhausted."""
    address = _get(proc, _DNS, iter_id, "resolve_next").next()
    if address is None:
        return 1
    version, host, port, flow, scope = address
    mem = proc.memory
    family = stdlib_socket.AF_INET if version == 4 else stdlib_socket.AF_INET6
    mem.write_u32(type_ptr, version)
    mem.write(addr_ptr, stdlib_socket.inet_pton(family, host.partition("%")[0]))
    mem.write(port_ptr, port.to_bytes(2, "little"))
    if version == 6:
        mem.write_u32(flow_ptr, flow)
        mem.write_u32(scope_ptr, scope)
    return 0


# -- TCP ------------------------------------------------------------------------------------


def _bind(proc: HostProcess, id_ptr: int, kind: str, make: Callable[[], Any]) -> int:
    """Bind a socket at once (addresses are numeric: nothing waits)."""
    proc.memory.check(id_ptr, 8)
    try:
        item = make()
    except OSError as e:
        return _fail(proc, id_ptr, e)
    return _write_id(proc, id_ptr, kind, item)


@namespace.function("tcp_bind (i32, i32, i32, i32, i32, i32) -> i32")
def tcp_bind(
    proc: HostProcess, addr_type: int, addr_ptr: int, port: int, flow: int, scope: int, id_ptr: int
) -> int:
    """0 with a listener id, or 1 with an error id."""
    family, sockaddr = _address(proc, addr_type, addr_ptr, port, flow, scope, "tcp_bind")
    return _bind(proc, id_ptr, _TCP_LISTENER, lambda: Listener(bind_listener(family, sockaddr)))


@namespace.function("drop_tcp_listener (i64)")
def drop_tcp_listener(proc: HostProcess, listener_id: int) -> None:
    _drop(proc, _TCP_LISTENER, listener_id, "drop_tcp_listener")


def _address_out(proc: HostProcess, id_ptr: int, get: Callable[[], SocketAddress]) -> int:
    """0 with a DNS iterator over the address ``get()`` gives written at
    ``id_ptr``, or 1 with the id of its error there."""
    try:
        address = get()
    except OSError as e:
        return _fail(proc, id_ptr, e)
    proc.memory.write_u64(id_ptr, _dns(proc, address))
    return 0


def _local_addr(proc: HostProcess, kind: str, rid: int, id_ptr: int, fn: str) -> int:
    listener: Listener = _get(proc, kind, rid, fn)
    return _address_out(proc, id_ptr, listener.local_address)


@namespace.function("tcp_local_addr (i64, i32) -> i32")
def tcp_local_addr(proc: HostProcess, listener_id: int, id_ptr: int) -> int:
    return _local_addr(proc, _TCP_LISTENER, listener_id, id_ptr, "tcp_local_addr")


def _accepted(
    proc: HostProcess, kind: str, id_ptr: int, peer_ptr: int, result: outcome.Outcome[Any]
) -> int:
    if isinstance(result, outcome.Error) and isinstance(result.error, _ERRORS):
        proc.memory.write_u64(peer_ptr, 0)
        return _fail(proc, id_ptr, result.error)
    conn, peer = result.unwrap()
    proc.memory.write_u64(id_ptr, proc.resources(kind).add(Handle(conn)))
    proc.memory.write_u64(peer_ptr, _dns(proc, peer))
    return 0


async def _accept_tcp(listener: Listener) -> tuple[TcpConnection, SocketAddress]:
    sock, peer = await listener.accept()
    return TcpConnection(sock), peer


@namespace.function("tcp_accept (i64, i32, i32) -> i32", blocking=True)
def tcp_accept(proc: HostProcess, listener_id: int, id_ptr: int, peer_ptr: int) -> Any:
    """Wait for a connection: its stream id and a DNS iterator of the peer."""
    listener = _get(proc, _TCP_LISTENER, listener_id, "tcp_accept")
    proc.memory.check(id_ptr, 8)
    proc.memory.check(peer_ptr, 8)
    return Suspend(_accept_tcp, (listener,), _accepted, (proc, _TCP, id_ptr, peer_ptr))


async def _connect_tcp(family: int, sockaddr: Any, timeout_ms: int) -> Any:
    sock = await connect(family, sockaddr, timeout_ms)
    return TcpConnection(sock) if isinstance(sock, stdlib_socket.socket) else sock


@namespace.function("tcp_connect (i32, i32, i32, i32, i32, i64, i32) -> i32", blocking=True)
def tcp_connect(
    proc: HostProcess,
    addr_type: int,
    addr_ptr: int,
    port: int,
    flow: int,
    scope: int,
    timeout_ms: int,
    id_ptr: int,
) -> Any:
    family, sockaddr = _address(proc, addr_type, addr_ptr, port, flow, scope, "tcp_connect")
    return _io(
        proc,
        id_ptr,
        _connect_tcp,
        (family, sockaddr, _timeout_ms(timeout_ms)),
        lambda conn: _write_id(proc, id_ptr, _TCP, Handle(conn)),
    )


def _peer_addr(proc: HostProcess, kind: str, stream_id: int, id_ptr: int, fn: str) -> int:
    handle: Handle = _get(proc, kind, stream_id, fn)
    return _address_out(proc, id_ptr, handle.target.peer_address)


@namespace.function("tcp_peer_addr (i64, i32) -> i32")
def tcp_peer_addr(proc: HostProcess, stream_id: int, id_ptr: int) -> int:
    return _peer_addr(proc, _TCP, stream_id, id_ptr, "tcp_peer_addr")


@namespace.function("drop_tcp_stream (i64)")
def drop_tcp_stream(proc: HostProcess, stream_id: int) -> None:
    _drop(proc, _TCP, stream_id, "drop_tcp_stream")


@namespace.function("clone_tcp_stream (i64) -> i64")
def clone_tcp_stream(proc: HostProcess, stream_id: int) -> int:
    handle: Handle = _get(proc, _TCP, stream_id, "clone_tcp_stream")
    return proc.resources(_TCP).add(handle.clone())


def _write_vectored(
    proc: HostProcess, kind: str, stream_id: int, iovs_ptr: int, count: int, opaque: int, fn: str
) -> Any:
    handle: Handle = _get(proc, kind, stream_id, fn)
    buffers = _iovecs(proc, iovs_ptr, count)
    proc.memory.check(opaque, 8)
    done = _count_out(proc, opaque)
    try:
        n = handle.target.try_write(buffers)
    except _ERRORS as e:
        return _fail(proc, opaque, e)
    if n is not None:  # written at once: no need to suspend
        return done(n)
    return _io(proc, opaque, handle.target.write, (buffers,), done)


def _read(
    proc: HostProcess, kind: str, stream_id: int, buf_ptr: int, buf_len: int, opaque: int, fn: str
) -> Any:
    handle: Handle = _get(proc, kind, stream_id, fn)
    proc.memory.check(buf_ptr, buf_len)
    proc.memory.check(opaque, 8)
    done = _bytes_out(proc, buf_ptr, opaque)
    try:
        data = handle.target.try_read(buf_len)
    except _ERRORS as e:
        return _fail(proc, opaque, e)
    if data is not None:  # data was waiting: no need to suspend
        return done(data)
    return _io(proc, opaque, handle.target.read, (buf_len,), done)


@namespace.function("tcp_write_vectored (i64, i32, i32, i32) -> i32", blocking=True)
def tcp_write_vectored(
    proc: HostProcess, stream_id: int, iovs_ptr: int, iovs_count: int, opaque_ptr: int
) -> Any:
    """One vectored write, possibly partial: 0 with the bytes written."""
    return _write_vectored(
        proc, _TCP, stream_id, iovs_ptr, iovs_count, opaque_ptr, "tcp_write_vectored"
    )


@namespace.function("tcp_read (i64, i32, i32, i32) -> i32", blocking=True)
def tcp_read(proc: HostProcess, stream_id: int, buf_ptr: int, buf_len: int, opaque_ptr: int) -> Any:
    """One read: 0 with the bytes read (0 at the end of the stream)."""
    return _read(proc, _TCP, stream_id, buf_ptr, buf_len, opaque_ptr, "tcp_read")


@namespace.function("tcp_peek (i64, i32, i32, i32) -> i32", blocking=True)
def tcp_peek(proc: HostProcess, stream_id: int, buf_ptr: int, buf_len: int, opaque_ptr: int) -> Any:
    """As ``tcp_read``, but the data stays to be read again."""
    handle: Handle = _get(proc, _TCP, stream_id, "tcp_peek")
    proc.memory.check(buf_ptr, buf_len)
    done = _bytes_out(proc, buf_ptr, opaque_ptr)
    return _io(proc, opaque_ptr, handle.target.peek, (buf_len,), done)


def _flush(proc: HostProcess, kind: str, stream_id: int, error_ptr: int, fn: str) -> int:
    # writes go straight to the socket (TLS records included): nothing is buffered
    _get(proc, kind, stream_id, fn)
    proc.memory.write_u64(error_ptr, 0)
    return 0


@namespace.function("tcp_flush (i64, i32) -> i32")
def tcp_flush(proc: HostProcess, stream_id: int, error_ptr: int) -> int:
    return _flush(proc, _TCP, stream_id, error_ptr, "tcp_flush")


def _timeout_accessors(kind: str, attribute: str, set_name: str, get_name: str) -> None:
    """Declare ``set_name (i64, i64)`` and ``get_name (i64) -> i64`` for a stream timeout."""

    def setter(proc: HostProcess, stream_id: int, ms: int) -> None:
        handle: Handle = _get(proc, kind, stream_id, set_name)
        setattr(handle.target, attribute, ms & MASK64)

    def getter(proc: HostProcess, stream_id: int) -> int:
        handle: Handle = _get(proc, kind, stream_id, get_name)
        value: int = getattr(handle.target, attribute)
        return value

    setter.__doc__ = f"Set the stream's {attribute} in ms (u64::MAX: none)."
    getter.__doc__ = f"The stream's {attribute} in ms (u64::MAX: none)."
    namespace.function(f"{set_name} (i64, i64)")(setter)
    namespace.function(f"{get_name} (i64) -> i64")(getter)


for _kind, _attribute, _set, _get_name in (
    (_TCP, "read_timeout", "set_read_timeout", "get_read_timeout"),
    (_TCP, "write_timeout", "set_write_timeout", "get_write_timeout"),
    (_TCP, "peek_timeout", "set_peek_timeout", "get_peek_timeout"),
    (_TLS, "read_timeout", "set_tls_read_timeout", "get_tls_read_timeout"),
    (_TLS, "write_timeout", "set_tls_write_timeout", "get_tls_write_timeout"),
):
    _timeout_accessors(_kind, _attribute, _set, _get_name)


# -- TLS ------------------------------------------------------------------------------------


def _text(proc: HostProcess, ptr: int, length: int, fn: str) -> str:
    return proc.memory.read_str(ptr, length, f"{_NS}::{fn}")


@namespace.function("tls_bind (i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32")
def tls_bind(
    proc: HostProcess,
    addr_type: int,
    addr_ptr: int,
    port: int,
    flow: int,
    scope: int,
    id_ptr: int,
    cert_ptr: int,
    cert_len: int,
    key_ptr: int,
    key_len: int,
) -> int:
    """Bind a TLS listener with one PEM certificate and one PKCS#8 key
    (anything else traps)."""
    family, sockaddr = _address(proc, addr_type, addr_ptr, port, flow, scope, "tls_bind")
    cert = _text(proc, cert_ptr, cert_len, "tls_bind")
    key = _text(proc, key_ptr, key_len, "tls_bind")
    try:
        context = server_context(cert, key)
    except ValueError as e:
        raise op_trap(e, f"{_NS}::tls_bind") from None
    return _bind(
        proc, id_ptr, _TLS_LISTENER, lambda: Listener(bind_listener(family, sockaddr), context)
    )


@namespace.function("drop_tls_listener (i64)")
def drop_tls_listener(proc: HostProcess, listener_id: int) -> None:
    _drop(proc, _TLS_LISTENER, listener_id, "drop_tls_listener")


@namespace.function("tls_local_addr (i64, i32) -> i32")
def tls_local_addr(proc: HostProcess, listener_id: int, id_ptr: int) -> int:
    return _local_addr(proc, _TLS_LISTENER, listener_id, id_ptr, "tls_local_addr")


async def _handshake(
    sock: stdlib_socket.socket, context: ssl.SSLContext, server_hostname: str | None, fn: str
) -> TlsConnection:
    """A TLS session on ``sock``; a failed handshake traps, as in lunatic."""
    try:
        return await tls_handshake(sock, context, server_hostname=server_hostname)
    except (OSError, trio.BrokenResourceError) as e:
        sock.close()
        raise op_trap(f"TLS handshake failed: {io_error_text(e)}", f"{_NS}::{fn}") from None
    except BaseException:
        sock.close()
        raise


async def _accept_tls(listener: Listener) -> tuple[TlsConnection, SocketAddress]:
    sock, peer = await listener.accept()
    assert listener.context is not None
    return await _handshake(sock, listener.context, None, "tls_accept"), peer


@namespace.function("tls_accept (i64, i32, i32) -> i32", blocking=True)
def tls_accept(proc: HostProcess, listener_id: int, id_ptr: int, peer_ptr: int) -> Any:
    """Accept a connection and run the server side of the handshake."""
    listener = _get(proc, _TLS_LISTENER, listener_id, "tls_accept")
    proc.memory.check(id_ptr, 8)
    proc.memory.check(peer_ptr, 8)
    return Suspend(_accept_tls, (listener,), _accepted, (proc, _TLS, id_ptr, peer_ptr))


def _trust_anchors(proc: HostProcess, certs_ptr: int, count: int) -> list[str] | None:
    """The PEM certificates of ``count`` (pointer u32, length u32) entries, or
    ``None`` (the system's roots) when there are none or one is out of bounds,
    as lunatic falls back to its built-in roots."""
    if count == 0:
        return None
    try:
        return [pem.decode("utf-8", "replace") for pem in _iovecs(proc, certs_ptr, count)]
    except HostTrap:
        return None


async def _connect_tls(
    host: str, port: int, timeout_ms: int, context: ssl.SSLContext
) -> TlsConnection | object:
    infos = await trio.socket.getaddrinfo(host, port, type=stdlib_socket.SOCK_STREAM)
    error: OSError | None = None
    for family, *_, sockaddr in infos:
        try:
            sock = await connect(family, sockaddr, timeout_ms)
        except OSError as e:
            error = e
            continue
        if sock is TIMED_OUT:
            return TIMED_OUT
        assert isinstance(sock, stdlib_socket.socket)
        return await _handshake(sock, context, host, "tls_connect")
    raise error or OSError(f"no address for {host}")


@namespace.function("tls_connect (i32, i32, i32, i64, i32, i32, i32) -> i32", blocking=True)
def tls_connect(
    proc: HostProcess,
    host_ptr: int,
    host_len: int,
    port: int,
    timeout_ms: int,
    id_ptr: int,
    certs_ptr: int,
    certs_count: int,
) -> Any:
    """Connect to ``host:port`` and run the client handshake with ``host``
    as the server name; the timeout covers the TCP connect only."""
    host = _text(proc, host_ptr, host_len, "tls_connect")
    if not host or "\0" in host:
        raise op_trap("invalid DNS name", f"{_NS}::tls_connect")
    context = client_context(_trust_anchors(proc, certs_ptr, certs_count))
    return _io(
        proc,
        id_ptr,
        _connect_tls,
        (host, port & 0xFFFF, _timeout_ms(timeout_ms), context),
        lambda conn: _write_id(proc, id_ptr, _TLS, Handle(conn)),
    )


@namespace.function("drop_tls_stream (i64)")
def drop_tls_stream(proc: HostProcess, stream_id: int) -> None:
    _drop(proc, _TLS, stream_id, "drop_tls_stream")


@namespace.function("clone_tls_stream (i64) -> i64")
def clone_tls_stream(proc: HostProcess, stream_id: int) -> int:
    handle: Handle = _get(proc, _TLS, stream_id, "clone_tls_stream")
    return proc.resources(_TLS).add(handle.clone())


@namespace.function("tls_write_vectored (i64, i32, i32, i32) -> i32", blocking=True)
def tls_write_vectored(
    proc: HostProcess, stream_id: int, iovs_ptr: int, iovs_count: int, opaque_ptr: int
) -> Any:
    return _write_vectored(
        proc, _TLS, stream_id, iovs_ptr, iovs_count, opaque_ptr, "tls_write_vectored"
    )


@namespace.function("tls_read (i64, i32, i32, i32) -> i32", blocking=True)
def tls_read(proc: HostProcess, stream_id: int, buf_ptr: int, buf_len: int, opaque_ptr: int) -> Any:
    return _read(proc, _TLS, stream_id, buf_ptr, buf_len, opaque_ptr, "tls_read")


@namespace.function("tls_flush (i64, i32) -> i32")
def tls_flush(proc: HostProcess, stream_id: int, error_ptr: int) -> int:
    return _flush(proc, _TLS, stream_id, error_ptr, "tls_flush")


# -- UDP ------------------------------------------------------------------------------------


@namespace.function("udp_bind (i32, i32, i32, i32, i32, i32) -> i32")
def udp_bind(
    proc: HostProcess, addr_type: int, addr_ptr: int, port: int, flow: int, scope: int, id_ptr: int
) -> int:
    """0 with a socket id, or 1 with an error id."""
    family, sockaddr = _address(proc, addr_type, addr_ptr, port, flow, scope, "udp_bind")
    return _bind(proc, id_ptr, _UDP, lambda: Handle(UdpSocket(bind_udp(family, sockaddr))))


def _udp(proc: HostProcess, socket_id: int, fn: str) -> UdpSocket:
    handle: Handle = _get(proc, _UDP, socket_id, fn)
    udp: UdpSocket = handle.target
    return udp


@namespace.function("udp_local_addr (i64, i32) -> i32")
def udp_local_addr(proc: HostProcess, socket_id: int, id_ptr: int) -> int:
    sock = _udp(proc, socket_id, "udp_local_addr").sock
    return _address_out(proc, id_ptr, lambda: socket_address(sock.family, sock.getsockname()))


@namespace.function("udp_peer_addr (i64, i32) -> i32")
def udp_peer_addr(proc: HostProcess, socket_id: int, id_ptr: int) -> int:
    """0 with the peer's address; 1 when not connected; 2 for other errors."""
    sock = _udp(proc, socket_id, "udp_peer_addr").sock
    try:
        address = sock.getpeername()
    except OSError as e:
        code = _fail(proc, id_ptr, e)
        return code if e.errno == errno.ENOTCONN else 2
    proc.memory.write_u64(id_ptr, _dns(proc, socket_address(sock.family, address)))
    return 0


@namespace.function("drop_udp_socket (i64)")
def drop_udp_socket(proc: HostProcess, socket_id: int) -> None:
    _drop(proc, _UDP, socket_id, "drop_udp_socket")


@namespace.function("clone_udp_socket (i64) -> i64")
def clone_udp_socket(proc: HostProcess, socket_id: int) -> int:
    handle: Handle = _get(proc, _UDP, socket_id, "clone_udp_socket")
    return proc.resources(_UDP).add(handle.clone())


def _receive(
    proc: HostProcess,
    socket_id: int,
    buf_ptr: int,
    buf_len: int,
    opaque_ptr: int,
    peer_ptr: int | None,
    fn: str,
) -> Any:
    udp = _udp(proc, socket_id, fn)
    proc.memory.check(buf_ptr, buf_len)
    proc.memory.check(opaque_ptr, 8)
    if peer_ptr is not None:
        proc.memory.check(peer_ptr, 8)

    def done(received: tuple[bytes, Any]) -> int:
        data, address = received
        proc.memory.write(buf_ptr, data)
        proc.memory.write_u64(opaque_ptr, len(data))
        if peer_ptr is not None:
            proc.memory.write_u64(peer_ptr, _dns(proc, socket_address(udp.sock.family, address)))
        return 0

    try:
        return done(udp.sock.recvfrom(buf_len))
    except BlockingIOError:
        return _io(proc, opaque_ptr, udp.receive, (buf_len,), done)
    except OSError as e:
        return _fail(proc, opaque_ptr, e)


@namespace.function("udp_receive (i64, i32, i32, i32) -> i32", blocking=True)
def udp_receive(
    proc: HostProcess, socket_id: int, buf_ptr: int, buf_len: int, opaque_ptr: int
) -> Any:
    """Wait for a datagram (truncated to the buffer); no timeout."""
    return _receive(proc, socket_id, buf_ptr, buf_len, opaque_ptr, None, "udp_receive")


@namespace.function("udp_receive_from (i64, i32, i32, i32, i32) -> i32", blocking=True)
def udp_receive_from(
    proc: HostProcess, socket_id: int, buf_ptr: int, buf_len: int, opaque_ptr: int, peer_ptr: int
) -> Any:
    """As ``udp_receive``, with a DNS iterator of the sender at ``peer_ptr``."""
    return _receive(proc, socket_id, buf_ptr, buf_len, opaque_ptr, peer_ptr, "udp_receive_from")


@namespace.function("udp_connect (i64, i32, i32, i32, i32, i32, i64, i32) -> i32")
def udp_connect(
    proc: HostProcess,
    socket_id: int,
    addr_type: int,
    addr_ptr: int,
    port: int,
    flow: int,
    scope: int,
    timeout_ms: int,
    id_ptr: int,
) -> int:
    """Connect the socket to one peer: 0 (writing 0 at ``id_ptr``). A UDP
    connect completes at once, so the timeout never expires."""
    udp = _udp(proc, socket_id, "udp_connect")
    family, sockaddr = _address(proc, addr_type, addr_ptr, port, flow, scope, "udp_connect")
    try:
        udp.sock.connect(_for_socket(udp.sock, family, sockaddr))
    except OSError as e:
        return _fail(proc, id_ptr, e)
    proc.memory.write_u64(id_ptr, 0)
    return 0


def _send(proc: HostProcess, udp: UdpSocket, data: bytes, sockaddr: Any, opaque_ptr: int) -> Any:
    proc.memory.check(opaque_ptr, 8)
    done = _count_out(proc, opaque_ptr)
    try:
        return done(udp.sock.send(data) if sockaddr is None else udp.sock.sendto(data, sockaddr))
    except BlockingIOError:
        return _io(proc, opaque_ptr, udp.send, (data, sockaddr), done)
    except OSError as e:
        return _fail(proc, opaque_ptr, e)


@namespace.function("udp_send (i64, i32, i32, i32) -> i32", blocking=True)
def udp_send(proc: HostProcess, socket_id: int, buf_ptr: int, buf_len: int, opaque_ptr: int) -> Any:
    """Send a datagram to the connected peer: 0 with the bytes sent."""
    udp = _udp(proc, socket_id, "udp_send")
    return _send(proc, udp, proc.memory.read(buf_ptr, buf_len), None, opaque_ptr)


@namespace.function(
    "udp_send_to (i64, i32, i32, i32, i32, i32, i32, i32, i32) -> i32", blocking=True
)
def udp_send_to(
    proc: HostProcess,
    socket_id: int,
    buf_ptr: int,
    buf_len: int,
    addr_type: int,
    addr_ptr: int,
    port: int,
    flow: int,
    scope: int,
    opaque_ptr: int,
) -> Any:
    """Send a datagram to an address: 0 with the bytes sent."""
    udp = _udp(proc, socket_id, "udp_send_to")
    data = proc.memory.read(buf_ptr, buf_len)
    family, sockaddr = _address(proc, addr_type, addr_ptr, port, flow, scope, "udp_send_to")
    try:
        sockaddr = _for_socket(udp.sock, family, sockaddr)
    except OSError as e:
        return _fail(proc, opaque_ptr, e)
    return _send(proc, udp, data, sockaddr, opaque_ptr)


def _sockopt(proc: HostProcess, socket_id: int, fn: str) -> tuple[stdlib_socket.socket, int, int]:
    """The socket and the (level, option) of its TTL."""
    sock = _udp(proc, socket_id, fn).sock
    if sock.family == stdlib_socket.AF_INET6:
        return sock, stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_UNICAST_HOPS
    return sock, stdlib_socket.IPPROTO_IP, stdlib_socket.IP_TTL


@namespace.function("set_udp_socket_broadcast (i64, i32)")
def set_udp_socket_broadcast(proc: HostProcess, socket_id: int, on: int) -> None:
    sock = _udp(proc, socket_id, "set_udp_socket_broadcast").sock
    try:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_BROADCAST, 1 if on else 0)
    except OSError as e:
        raise op_trap(io_error_text(e), f"{_NS}::set_udp_socket_broadcast") from None


@namespace.function("get_udp_socket_broadcast (i64) -> i32")
def get_udp_socket_broadcast(proc: HostProcess, socket_id: int) -> int:
    sock = _udp(proc, socket_id, "get_udp_socket_broadcast").sock
    try:
        return 1 if sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_BROADCAST) else 0
    except OSError as e:
        raise op_trap(io_error_text(e), f"{_NS}::get_udp_socket_broadcast") from None


@namespace.function("set_udp_socket_ttl (i64, i32)")
def set_udp_socket_ttl(proc: HostProcess, socket_id: int, ttl: int) -> None:
    sock, level, option = _sockopt(proc, socket_id, "set_udp_socket_ttl")
    try:
        # The bits go to setsockopt as a C int, as Rust's ``set_ttl`` passes
        # them: u32::MAX is -1 (the default TTL), 256 and up fail (EINVAL).
        sock.setsockopt(level, option, ttl - (1 << 32) if ttl & 0x8000_0000 else ttl)
    except OSError as e:
        raise op_trap(io_error_text(e), f"{_NS}::set_udp_socket_ttl") from None


@namespace.function("get_udp_socket_ttl (i64) -> i32")
def get_udp_socket_ttl(proc: HostProcess, socket_id: int) -> int:
    sock, level, option = _sockopt(proc, socket_id, "get_udp_socket_ttl")
    try:
        ttl: int = sock.getsockopt(level, option)
    except OSError as e:
        raise op_trap(io_error_text(e), f"{_NS}::get_udp_socket_ttl") from None
    return ttl


del _kind, _attribute, _set, _get_name
