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

import errno
import math
import os
import socket as stdlib_socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

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

T = TypeVar("T")

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


class _Gate:
    """Mutual exclusion without a scheduling point when uncontended.

    ``trio.Lock`` yields to the scheduler on every acquire; a socket
    operation that finds its gate free should not pay a task switch for it.
    """

    __slots__ = ("_busy", "_waiters")

    def __init__(self) -> None:
        self._busy = False
        self._waiters = trio.lowlevel.ParkingLot()

    def locked(self) -> bool:
        return self._busy

    async def __aenter__(self) -> None:
        while self._busy:
            await self._waiters.park()
        self._busy = True

    async def __aexit__(self, *exc: object) -> None:
        self._busy = False
        if self._waiters:
            self._waiters.unpark()


def _close(sock: stdlib_socket.socket) -> None:
    """Close a socket, waking any task still waiting on it."""
    if sock.fileno() != -1:
        trio.lowlevel.notify_closing(sock)
        sock.close()


async def _retry(
    wait: Callable[[stdlib_socket.socket], Awaitable[None]],
    sock: stdlib_socket.socket,
    op: Callable[..., T],
    *args: Any,
) -> T:
    """``op(*args)`` on the non-blocking ``sock``, awaiting ``wait(sock)``
    (Trio's ``wait_readable`` or ``wait_writable``) whenever it would block."""
    while True:
        try:
            return op(*args)
        except BlockingIOError:
            await wait(sock)


_READABLE: Final = trio.lowlevel.wait_readable
_WRITABLE: Final = trio.lowlevel.wait_writable


def new_socket(family: int, kind: int) -> stdlib_socket.socket:
    sock = stdlib_socket.socket(family, kind)
    sock.setblocking(False)
    return sock


class _Stream(_Shared):
    """What TCP and TLS connections share: the socket, locks and timeouts.

    The socket is a non-blocking stdlib socket waited on with Trio's
    ``wait_readable`` / ``wait_writable``, so an operation that can complete
    at once (``try_read``, ``try_write``) needs no task switch at all.
    """

    __slots__ = ("peek_timeout", "read_lock", "read_timeout", "sock", "write_lock", "write_timeout")

    def __init__(self, sock: stdlib_socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.read_lock = _Gate()
        self.write_lock = _Gate()
        self.read_timeout = NO_TIMEOUT
        self.write_timeout = NO_TIMEOUT
        self.peek_timeout = NO_TIMEOUT

    def peer_address(self) -> SocketAddress:
        return socket_address(self.sock.family, self.sock.getpeername())

    def try_read(self, n: int) -> bytes | None:
        """A read that completes at once, or ``None`` (it would wait)."""
        return None

    def try_write(self, buffers: Sequence[bytes]) -> int | None:
        """A write that completes at once, or ``None`` (it would wait)."""
        return None

    def close(self) -> None:
        _close(self.sock)


class TcpConnection(_Stream):
    """A TCP connection."""

    __slots__ = ()

    def try_read(self, n: int) -> bytes | None:
        if self.read_lock.locked():
            return None
        try:
            return self.sock.recv(n)
        except BlockingIOError:
            return None

    def try_write(self, buffers: Sequence[bytes]) -> int | None:
        if self.write_lock.locked():
            return None
        try:
            return self.sock.sendmsg(buffers)
        except BlockingIOError:
            return None

    async def _recv_now(self, n: int, flags: int, tried: bool) -> bytes:
        if tried:
            # An attempt inside the host call found nothing. Let every other
            # runnable task go once before asking epoll: under load the data
            # has usually arrived by then, and registering a socket with epoll
            # and being woken by it costs more (Trio's own sockets behave the
            # same way, through the checkpoint after each send).
            await trio.lowlevel.checkpoint()
        return await _retry(_READABLE, self.sock, self.sock.recv, n, flags)

    async def _recv(self, n: int, flags: int, timeout_ms: int, tried: bool) -> bytes | _TimedOut:
        async with self.read_lock:
            if timeout_ms == NO_TIMEOUT:
                return await self._recv_now(n, flags, tried)
            with trio.move_on_at(deadline(timeout_ms)):
                return await self._recv_now(n, flags, tried)
        return TIMED_OUT

    async def read(self, n: int) -> bytes | _TimedOut:
        """One read of at most ``n`` bytes (``b""``: end of stream), after
        a :meth:`try_read` that found nothing (so it waits first)."""
        return await self._recv(n, 0, self.read_timeout, True)

    async def peek(self, n: int) -> bytes | _TimedOut:
        """As :meth:`read`, but the data stays (lunatic's section 6.3 fixed:
        it never consumes, whether or not a peek timeout is set)."""
        return await self._recv(n, stdlib_socket.MSG_PEEK, self.peek_timeout, False)

    async def _send_now(self, buffers: Sequence[bytes]) -> int:
        return await _retry(_WRITABLE, self.sock, self.sock.sendmsg, buffers)

    async def write(self, buffers: Sequence[bytes]) -> int | _TimedOut:
        """One vectored write; it may be partial."""
        async with self.write_lock:
            if self.write_timeout == NO_TIMEOUT:
                return await self._send_now(buffers)
            with trio.move_on_at(deadline(self.write_timeout)):
                return await self._send_now(buffers)
        return TIMED_OUT


class TlsConnection(_Stream):
    """A TLS session over a TCP connection (Python's ssl through ``trio.SSLStream``)."""

    __slots__ = ("stream",)

    def __init__(self, sock: stdlib_socket.socket, stream: trio.SSLStream[trio.SocketStream]):
        super().__init__(sock)
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
    """A UDP socket (non-blocking; datagram operations rarely wait)."""

    __slots__ = ("sock",)

    def __init__(self, sock: stdlib_socket.socket) -> None:
        super().__init__()
        self.sock = sock

    async def receive(self, n: int) -> tuple[bytes, Any]:
        return await _retry(_READABLE, self.sock, self.sock.recvfrom, n)

    async def send(self, data: bytes, sockaddr: Any) -> int:
        if sockaddr is None:
            return await _retry(_WRITABLE, self.sock, self.sock.send, data)
        return await _retry(_WRITABLE, self.sock, self.sock.sendto, data, sockaddr)

    def close(self) -> None:
        _close(self.sock)


class Listener:
    """A bound, listening TCP socket; for TLS, with its server context."""

    __slots__ = ("context", "lock", "sock")

    def __init__(self, sock: stdlib_socket.socket, context: ssl.SSLContext | None = None):
        self.sock = sock
        self.context = context
        self.lock = trio.Lock()

    def local_address(self) -> SocketAddress:
        return socket_address(self.sock.family, self.sock.getsockname())

    async def accept(self) -> tuple[stdlib_socket.socket, SocketAddress]:
        async with self.lock:
            sock, addr = await _retry(_READABLE, self.sock, self.sock.accept)
        sock.setblocking(False)
        return sock, socket_address(sock.family, addr)

    def close(self) -> None:
        _close(self.sock)

    def __del__(self) -> None:
        _close(self.sock)


def bind_listener(family: int, sockaddr: Any) -> stdlib_socket.socket:
    """A listening TCP socket, as Rust's ``TcpListener::bind`` makes one."""
    sock = new_socket(family, stdlib_socket.SOCK_STREAM)
    try:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_udp(family: int, sockaddr: Any) -> stdlib_socket.socket:
    sock = new_socket(family, stdlib_socket.SOCK_DGRAM)
    try:
        sock.bind(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


async def connect(family: int, sockaddr: Any, timeout_ms: int) -> stdlib_socket.socket | _TimedOut:
    """A connected TCP socket, or ``TIMED_OUT``."""
    sock = new_socket(family, stdlib_socket.SOCK_STREAM)
    try:
        with trio.move_on_at(deadline(timeout_ms)):
            code = sock.connect_ex(sockaddr)
            if code == errno.EINPROGRESS:
                await trio.lowlevel.wait_writable(sock)
                code = sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            return sock
    except BaseException:
        _close(sock)
        raise
    _close(sock)
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
    sock: stdlib_socket.socket, context: ssl.SSLContext, *, server_hostname: str | None
) -> TlsConnection:
    """Run a TLS handshake on a connected socket (raising what it raised)."""
    # https_compatible: a peer that closes without close_notify reads as the
    # end of the stream (lunatic-rs streams are dropped without sending one)
    stream = trio.SSLStream(
        trio.SocketStream(trio.socket.from_stdlib_socket(sock)),
        context,
        server_side=server_hostname is None,
        server_hostname=server_hostname,
        https_compatible=True,
    )
    await stream.do_handshake()
    return TlsConnection(sock, stream)
