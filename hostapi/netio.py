"""The sockets behind ``lunatic::networking``: shared connections on Trio.

A guest holds *handles* (:class:`Handle`) in its resource tables; a handle
refers to a shared object (a TCP or TLS connection, a UDP socket) that counts
its handles and closes its socket when the last one goes, whichever process
held it (HOSTAPI.md sections 3.1 and 3.8). Handles move between processes
inside messages, and a handle dropped with an undelivered message closes too.

Every operation is a coroutine awaited by the calling process's driver, so a
guest waiting on a socket is a suspended fiber, and killing the process
cancels the wait. A connection has one lock for reading (``read``, ``peek``)
and one for writing, as lunatic's do, and per-connection timeouts in
milliseconds that travel with it (``NO_TIMEOUT`` is ``u64::MAX``). An
operation that times out returns :data:`TIMED_OUT`; errors are raised as
exceptions and turned into error ids by :mod:`hostapi.networking`.
"""

from __future__ import annotations

import math
import os
import socket as stdlib_socket
import ssl
import tempfile
from collections.abc import Sequence
from typing import Any, Final

import trio

__all__ = [
    "NO_TIMEOUT",
    "TIMED_OUT",
    "DnsIterator",
    "Handle",
    "Listener",
    "SocketAddress",
    "TcpConnection",
    "TlsConnection",
    "UdpSocket",
    "client_context",
    "deadline",
    "io_error_text",
    "resolve",
    "server_context",
]

#: ``u64::MAX``: no timeout (HOSTAPI.md section 0.4).
NO_TIMEOUT: Final = 0xFFFF_FFFF_FFFF_FFFF


class _TimedOut:
    """The result of an operation whose deadline passed (return code 9027)."""

    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Final = _TimedOut()

#: ``(family, host, port, flow info, scope id)``: what the guest reads back.
SocketAddress = tuple[int, str, int, int, int]


def deadline(timeout_ms: int) -> float:
    """The Trio deadline of a guest timeout in milliseconds.

    ``u64::MAX`` is no deadline. Timeout 0 means "try once" (section 0.4):
    an operation that can complete at once must succeed, so it gets one
    millisecond rather than an already-passed deadline, which Trio would
    report before even trying.
    """
    if timeout_ms == NO_TIMEOUT:
        return math.inf
    return trio.current_time() + max(timeout_ms, 1) / 1000


def io_error_text(error: BaseException) -> str:
    """An error's text as lunatic shows it (Rust's ``io::Error`` display)."""
    if isinstance(error, OSError) and error.errno:
        return f"{os.strerror(error.errno)} (os error {error.errno})"
    if isinstance(error, trio.BrokenResourceError | trio.ClosedResourceError):
        cause = error.__cause__
        if cause is not None:
            return io_error_text(cause)
        return "Broken pipe (os error 32)"
    return str(error) or type(error).__name__


def socket_address(family: int, sockaddr: Any) -> SocketAddress:
    """A Python socket address as the guest reads it."""
    if family == stdlib_socket.AF_INET6:
        host, port, flow, scope = sockaddr
        return (6, host, port, flow, scope)
    host, port = sockaddr[:2]
    return (4, host, port, 0, 0)


class DnsIterator:
    """Socket addresses handed out one at a time (``resolve_next``)."""

    __slots__ = ("_addresses", "_next")

    def __init__(self, addresses: Sequence[SocketAddress]) -> None:
        self._addresses = list(addresses)
        self._next = 0

    def next(self) -> SocketAddress | None:
        if self._next >= len(self._addresses):
            return None
        address = self._addresses[self._next]
        self._next += 1
        return address


async def resolve(name: str, timeout_ms: int) -> DnsIterator | _TimedOut:
    """Resolve ``host:port`` (``[v6]:port`` for IPv6 literals), as Rust's
    ``ToSocketAddrs`` does: the port is required."""
    host, sep, port_text = name.rpartition(":")
    if not sep:
        raise ValueError("invalid socket address")
    try:
        port = int(port_text)
        if not 0 <= port <= 0xFFFF:
            raise ValueError
    except ValueError:
        raise ValueError("invalid port value") from None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    with trio.move_on_at(deadline(timeout_ms)):
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=stdlib_socket.SOCK_STREAM)
        except stdlib_socket.gaierror as e:
            raise ValueError(f"failed to lookup address information: {e.strerror}") from None
        return DnsIterator([socket_address(family, addr) for family, *_, addr in infos])
    return TIMED_OUT


# -- shared, counted objects ----------------------------------------------------------


class _Shared:
    """An object held by any number of handles; closed when the last goes."""

    __slots__ = ("refs",)

    def __init__(self) -> None:
        self.refs = 0

    def release(self) -> None:
        self.refs -= 1
        if self.refs == 0:
            self.close()

    def close(self) -> None:
        raise NotImplementedError


class Handle:
    """One resource-table entry referring to a shared connection or socket.

    :meth:`close` is idempotent; a handle that is garbage-collected (for
    example with a message that was never received) closes itself.
    """

    __slots__ = ("_open", "target")

    def __init__(self, target: Any) -> None:
        self.target = target
        target.refs += 1
        self._open = True

    def clone(self) -> Handle:
        return Handle(self.target)

    def close(self) -> None:
        if self._open:
            self._open = False
            self.target.release()

    def __del__(self) -> None:
        self.close()


class _Stream(_Shared):
    """What TCP and TLS connections share: locks and timeouts."""

    __slots__ = ("peek_timeout", "read_lock", "read_timeout", "sock", "write_lock", "write_timeout")

    def __init__(self, sock: trio.socket.SocketType) -> None:
        super().__init__()
        self.sock = sock
        self.read_lock = trio.Lock()
        self.write_lock = trio.Lock()
        self.read_timeout = NO_TIMEOUT
        self.write_timeout = NO_TIMEOUT
        self.peek_timeout = NO_TIMEOUT

    def peer_address(self) -> SocketAddress:
        return socket_address(self.sock.family, self.sock.getpeername())

    def close(self) -> None:
        self.sock.close()


class TcpConnection(_Stream):
    """A TCP connection."""

    __slots__ = ()

    async def read(self, n: int) -> bytes | _TimedOut:
        """One read of at most ``n`` bytes (``b""``: end of stream)."""
        async with self.read_lock:
            with trio.move_on_at(deadline(self.read_timeout)):
                return await self.sock.recv(n)
        return TIMED_OUT

    async def peek(self, n: int) -> bytes | _TimedOut:
        """As :meth:`read`, but the data stays (lunatic's section 6.3 fixed:
        it never consumes, whether or not a peek timeout is set)."""
        async with self.read_lock:
            with trio.move_on_at(deadline(self.peek_timeout)):
                return await self.sock.recv(n, stdlib_socket.MSG_PEEK)
        return TIMED_OUT

    async def write(self, buffers: Sequence[bytes]) -> int | _TimedOut:
        """One vectored write; it may be partial."""
        async with self.write_lock:
            with trio.move_on_at(deadline(self.write_timeout)):
                return await self.sock.sendmsg(buffers)
        return TIMED_OUT


class TlsConnection(_Stream):
    """A TLS session over a TCP connection (Python's ssl through ``trio.SSLStream``)."""

    __slots__ = ("stream",)

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        super().__init__(stream.transport_stream.socket)
        self.stream = stream

    async def read(self, n: int) -> bytes | _TimedOut:
        async with self.read_lock:
            with trio.move_on_at(deadline(self.read_timeout)):
                return bytes(await self.stream.receive_some(n)) if n else b""
        return TIMED_OUT

    async def write(self, buffers: Sequence[bytes]) -> int | _TimedOut:
        data = b"".join(buffers)
        async with self.write_lock:
            with trio.move_on_at(deadline(self.write_timeout)):
                await self.stream.send_all(data)
                return len(data)
        return TIMED_OUT


class UdpSocket(_Shared):
    """A UDP socket."""

    __slots__ = ("sock",)

    def __init__(self, sock: trio.socket.SocketType) -> None:
        super().__init__()
        self.sock = sock

    def close(self) -> None:
        self.sock.close()


class Listener:
    """A bound, listening TCP socket; for TLS, with its server context."""

    __slots__ = ("context", "lock", "sock")

    def __init__(self, sock: trio.socket.SocketType, context: ssl.SSLContext | None = None):
        self.sock = sock
        self.context = context
        self.lock = trio.Lock()

    def local_address(self) -> SocketAddress:
        return socket_address(self.sock.family, self.sock.getsockname())

    async def accept(self) -> tuple[trio.socket.SocketType, SocketAddress]:
        async with self.lock:
            sock, addr = await self.sock.accept()
        return sock, socket_address(sock.family, addr)

    def close(self) -> None:
        self.sock.close()

    def __del__(self) -> None:
        self.sock.close()


async def bind_listener(family: int, sockaddr: Any) -> trio.socket.SocketType:
    """A listening TCP socket, as Rust's ``TcpListener::bind`` makes one."""
    sock = trio.socket.socket(family, stdlib_socket.SOCK_STREAM)
    try:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
        await sock.bind(sockaddr)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


async def connect(
    family: int, sockaddr: Any, timeout_ms: int
) -> trio.socket.SocketType | _TimedOut:
    """A connected TCP socket, or ``TIMED_OUT``."""
    sock = trio.socket.socket(family, stdlib_socket.SOCK_STREAM)
    try:
        with trio.move_on_at(deadline(timeout_ms)):
            await sock.connect(sockaddr)
            return sock
    except BaseException:
        sock.close()
        raise
    sock.close()
    return TIMED_OUT


# -- TLS ------------------------------------------------------------------------------


def _pem_blocks(pem: str, label: str) -> list[str]:
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    blocks, pos = [], 0
    while (start := pem.find(begin, pos)) != -1:
        stop = pem.find(end, start)
        if stop == -1:
            break
        pos = stop + len(end)
        blocks.append(pem[start:pos])
    return blocks


def server_context(cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A server context from exactly one PEM certificate and one PKCS#8 key.

    Raises ``ValueError`` naming what is wrong (lunatic traps on it).
    """
    certs = _pem_blocks(cert_pem, "CERTIFICATE")
    if len(certs) != 1:
        raise ValueError(f"expected a single certificate, found {len(certs)}")
    keys = _pem_blocks(key_pem, "PRIVATE KEY")
    if len(keys) != 1:
        raise ValueError(f"expected a single PKCS#8 private key, found {len(keys)}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl loads certificates and keys from files only
    fd, path = tempfile.mkstemp(prefix="lunatrio-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(certs[0] + "\n" + keys[0] + "\n")
        context.load_cert_chain(path)
    except ssl.SSLError as e:
        raise ValueError(f"invalid certificate or key: {e.reason or e}") from None
    finally:
        os.unlink(path)
    return context


def client_context(trust_anchors: Sequence[str] | None) -> ssl.SSLContext:
    """A client context trusting ``trust_anchors`` (PEM certificates; those
    that do not parse are skipped), or the system's roots when ``None``."""
    if trust_anchors is None:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for pem in trust_anchors:
        try:
            context.load_verify_locations(cadata=pem)
        except (ssl.SSLError, ValueError):
            continue
    return context


async def tls_handshake(
    sock: trio.socket.SocketType, context: ssl.SSLContext, *, server_hostname: str | None
) -> TlsConnection:
    """Run a TLS handshake on a connected socket (raising what it raised)."""
    # https_compatible: a peer that closes without close_notify reads as the
    # end of the stream (lunatic-rs streams are dropped without sending one)
    stream = trio.SSLStream(
        trio.SocketStream(sock),
        context,
        server_side=server_hostname is None,
        server_hostname=server_hostname,
        https_compatible=True,
    )
    await stream.do_handshake()
    return TlsConnection(stream)
