"""lunatic::networking on real loopback sockets (HOSTAPI.md section 2.11)."""

from __future__ import annotations

import pathlib
import socket
from typing import Any

import pytest
import trio
import trio.testing

import supervisor
from supervisor import Context, DataMessage, ExitReason

from .guests import (
    data_string,
    guest,
    namespace_imports,
    open_fds,
    reports,
    run_python,
    value_of,
)

NET_IMPORTS = namespace_imports("lunatic::networking")

# Memory: 2048 holds 127.0.0.1, 2064 ::1, 3000-3099 the helpers' out-slots,
# 4096-8191 a buffer; below 1024 is the tests'.
NET_HELPERS = """
  (func $bind (param $port i32) (result i64)
    (if (call $tcp_bind (i32.const 4) (i32.const 2048) (local.get $port)
                        (i32.const 0) (i32.const 0) (i32.const 3000))
      (then unreachable))
    (i64.load (i32.const 3000)))
  (func $next_port (param $iter i64) (result i32)
    (if (call $resolve_next (local.get $iter) (i32.const 3008) (i32.const 3012)
                            (i32.const 3028) (i32.const 3032) (i32.const 3036))
      (then unreachable))
    (i32.load16_u (i32.const 3028)))
  (func $local_port (param $listener i64) (result i32)
    (if (call $tcp_local_addr (local.get $listener) (i32.const 3000)) (then unreachable))
    (call $next_port (i64.load (i32.const 3000))))
  (func $connect (param $port i32) (result i64)
    (if (call $tcp_connect (i32.const 4) (i32.const 2048) (local.get $port)
                           (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 3000))
      (then unreachable))
    (i64.load (i32.const 3000)))
  (func $accept (param $listener i64) (result i64)
    (if (call $tcp_accept (local.get $listener) (i32.const 3000) (i32.const 3016))
      (then unreachable))
    (i64.load (i32.const 3000)))
  ;; write all of [ptr, ptr+len)
  (func $write (param $s i64) (param $ptr i32) (param $len i32)
    (block $done (loop $more
      (br_if $done (i32.eqz (local.get $len)))
      (i32.store (i32.const 3040) (local.get $ptr))
      (i32.store (i32.const 3044) (local.get $len))
      (if (call $tcp_write_vectored (local.get $s) (i32.const 3040) (i32.const 1) (i32.const 3048))
        (then unreachable))
      (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 3048))))
      (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 3048))))
      (br $more))))
  (func $read (param $s i64) (param $ptr i32) (param $len i32) (result i32)
    (if (call $tcp_read (local.get $s) (local.get $ptr) (local.get $len) (i32.const 3056))
      (then unreachable))
    (i32.load (i32.const 3056)))
  ;; send [ptr, ptr+len) to $to with tag 1
  (func $send_bytes (param $to i64) (param $ptr i32) (param $len i32)
    (call $create_data (i64.const 1) (i64.const 0))
    (drop (call $write_data (local.get $ptr) (local.get $len)))
    (drop (call $send (local.get $to))))
  ;; the text of error id $e, sent to $to with tag 1
  (func $send_error (param $to i64) (param $e i64)
    (call $error_to_string (local.get $e) (i32.const 5000))
    (call $send_bytes (local.get $to) (i32.const 5000)
                      (call $error_string_size (local.get $e))))
"""

STRINGS = data_string(2048, bytes([127, 0, 0, 1])) + data_string(2064, bytes(15) + b"\x01")


def net_guest(body: str, data: str = "") -> str:
    return guest(
        NET_HELPERS + body + STRINGS + data,
        memory='(memory (export "memory") 1)',
        extra_imports=NET_IMPORTS,
    )


ECHO = net_guest(
    """
  ;; accept $n connections; each one is served by a process of its own, which
  ;; receives its stream in a message
  (func (export "serve") (param $to i64) (param $n i32)
    (local $l i64) (local $child i64)
    (local.set $l (call $bind (i32.const 0)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $local_port (local.get $l))))
    (block $done (loop $more
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $child (call $spawn_self (i64.const 0) (i32.const 0) (i32.const 4)
                                          (i32.const 0) (i32.const 0)))
      (call $create_data (i64.const 0) (i64.const 0))
      (drop (call $push_tcp_stream (call $accept (local.get $l))))
      (drop (call $send (local.get $child)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $more))))
  (func (export "echo")
    (local $s i64) (local $n i32)
    (drop (call $recv))
    (local.set $s (call $take_tcp_stream (i64.const 0)))
    (loop $more
      (local.set $n (call $read (local.get $s) (i32.const 4096) (i32.const 4096)))
      (if (local.get $n) (then
        (call $write (local.get $s) (i32.const 4096) (local.get $n))
        (br $more)))))
  ;; connect, send the greeting, read the echo back and report it
  (func (export "client") (param $to i64) (param $port i32)
    (local $s i64) (local $got i32)
    (local.set $s (call $connect (local.get $port)))
    (call $write (local.get $s) (i32.const 100) (i32.const 15))
    (loop $more
      (local.set $got (i32.add (local.get $got)
        (call $read (local.get $s) (i32.add (i32.const 4096) (local.get $got))
                    (i32.sub (i32.const 15) (local.get $got)))))
      (br_if $more (i32.lt_u (local.get $got) (i32.const 15))))
    (call $send_bytes (local.get $to) (i32.const 4096) (i32.const 15)))
""",
    data_string(0, b"echo") + data_string(100, b"hello from wasm"),
)


async def test_a_wasm_echo_server_serves_concurrent_wasm_and_python_clients(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(ECHO)

    async def test(ctx: Context) -> None:
        server = await ctx.spawn(module, "serve", [ctx.id, 4])
        port = value_of(await ctx.receive(1))

        async def python_client(i: int) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                payload = f"python client {i} ".encode() * 100
                await stream.send_all(payload)
                got = b""
                while len(got) < len(payload):
                    got += await stream.receive_some()
                assert got == payload

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(python_client, i)
            await ctx.spawn(module, "client", [ctx.id, port])
            m = await ctx.receive(1)
            assert isinstance(m, DataMessage)
            assert m.data == b"hello from wasm"
        assert (await server.wait()).normal

    await run_python(runtime, test)


ERRORS = net_guest(
    """
  ;; bind the port given twice; connect to it after closing the listener
  (func (export "main") (param $to i64) (param $port i32)
    (local $l i64)
    (local.set $l (call $bind (local.get $port)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $tcp_bind (i32.const 4) (i32.const 2048) (local.get $port)
                                        (i32.const 0) (i32.const 0) (i32.const 3000))))
    (call $send_error (local.get $to) (i64.load (i32.const 3000)))
    (call $drop_tcp_listener (local.get $l))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $tcp_connect (i32.const 4) (i32.const 2048) (local.get $port)
                                           (i32.const 0) (i32.const 0) (i64.const -1)
                                           (i32.const 3000))))
    (call $send_error (local.get $to) (i64.load (i32.const 3000))))
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_address_in_use_and_connection_refused_are_error_ids_with_rusts_text(
    runtime: supervisor.Runtime,
) -> None:
    got, exit = await reports(runtime, ERRORS, free_port(), n=4)
    assert got == [
        1,
        b"Address already in use (os error 98)",
        1,
        b"Connection refused (os error 111)",
    ]
    assert exit.normal


STREAMS = net_guest(
    """
  ;; the peer (Python) sends "hello" then waits for our "bye" and closes
  (func (export "peek_then_read") (param $to i64) (param $port i32)
    (local $s i64)
    (local.set $s (call $connect (local.get $port)))
    (drop (call $tcp_peek (local.get $s) (i32.const 4096) (i32.const 5) (i32.const 3056)))
    (call $send_bytes (local.get $to) (i32.const 4096) (i32.load (i32.const 3056)))
    (drop (call $tcp_peek (local.get $s) (i32.const 4200) (i32.const 5) (i32.const 3056)))
    (call $send_bytes (local.get $to) (i32.const 4200) (i32.load (i32.const 3056)))
    (call $send_bytes (local.get $to) (i32.const 4300)
                      (call $read (local.get $s) (i32.const 4300) (i32.const 5)))
    (call $write (local.get $s) (i32.const 0) (i32.const 3))
    ;; the peer closed: a read of 0 bytes
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $read (local.get $s) (i32.const 4300) (i32.const 5)))))
  ;; nothing arrives: the read times out after 50 ms, writing nothing
  (func (export "read_timeout") (param $to i64) (param $port i32)
    (local $s i64)
    (local.set $s (call $connect (local.get $port)))
    (call $report (local.get $to) (i64.const 1) (call $get_read_timeout (local.get $s)))
    (call $set_read_timeout (local.get $s) (i64.const 50))
    (call $report (local.get $to) (i64.const 1) (call $get_read_timeout (local.get $s)))
    (i64.store (i32.const 3056) (i64.const 77))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $tcp_read (local.get $s) (i32.const 4096) (i32.const 5)
                                        (i32.const 3056))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 3056)))
    ;; a clone shares the connection and its timeouts
    (call $report (local.get $to) (i64.const 1)
      (call $get_read_timeout (call $clone_tcp_stream (local.get $s)))))
  ;; the peer address is the listener's; flush writes 0
  (func (export "addresses") (param $to i64) (param $port i32)
    (local $s i64)
    (local.set $s (call $connect (local.get $port)))
    (drop (call $tcp_peer_addr (local.get $s) (i32.const 3000)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $next_port (i64.load (i32.const 3000)))))
    (call $send_bytes (local.get $to) (i32.const 3008) (i32.const 8))
    (i64.store (i32.const 3060) (i64.const 77))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $tcp_flush (local.get $s) (i32.const 3060))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 3060))))
""",
    data_string(0, b"bye"),
)


async def test_peek_leaves_the_data_and_a_closed_peer_reads_as_0_bytes(
    runtime: supervisor.Runtime,
) -> None:
    async with trio.open_nursery() as nursery:

        async def handler(stream: trio.SocketStream) -> None:
            await stream.send_all(b"hello")
            assert await stream.receive_some(3) == b"bye"
            await stream.aclose()

        listeners = await nursery.start(trio.serve_tcp, handler, 0)
        port = listeners[0].socket.getsockname()[1]
        got, exit = await reports(runtime, STREAMS, port, n=4, entry="peek_then_read")
        nursery.cancel_scope.cancel()
    assert got == [b"hello", b"hello", b"hello", 0]
    assert exit.normal


async def test_a_read_past_its_timeout_returns_9027_and_writes_nothing(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        got, exit = await reports(runtime, STREAMS, port, n=5, entry="read_timeout")
    no_timeout = -1  # u64::MAX as the report's i64
    assert got == [no_timeout, 50, 9027, 77, 50]
    assert exit.normal


async def test_peer_addresses_come_back_as_dns_iterators(runtime: supervisor.Runtime) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        got, exit = await reports(runtime, STREAMS, port, n=4, entry="addresses")
    # type 4 (u32), then the 4 address bytes (8 bytes: reported as an integer)
    address = int.from_bytes(b"\x04\x00\x00\x00\x7f\x00\x00\x01", "little")
    assert got == [port, address, 0, 0]
    assert exit.normal


CONNECT_TIMEOUT = net_guest(
    """
  (func (export "main") (param $to i64) (param $port i32)
    (i64.store (i32.const 3000) (i64.const 77))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $tcp_connect (i32.const 4) (i32.const 2048) (local.get $port)
                                           (i32.const 0) (i32.const 0) (i64.const 200)
                                           (i32.const 3000))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 3000))))
"""
)


async def test_a_connect_past_its_timeout_returns_9027_and_writes_nothing(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # A listener that never accepts, its backlog full: further SYNs go unanswered.
    server = socket.socket()
    fillers = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        got, exit = await reports(runtime, CONNECT_TIMEOUT, port, n=2, entry="main")
    finally:
        for c in fillers:
            c.close()
        server.close()
    assert got == [9027, 77]
    assert exit.normal


DNS = net_guest(
    """
  ;; resolve the name at [ptr, ptr+len): the result code, then every address
  ;; as (type u32, 16 address bytes, port u16, flow u32, scope u32)
  (func (export "main") (param $to i64) (param $ptr i32) (param $len i32)
    (local $it i64) (local $r i32)
    (local.set $r (call $resolve (local.get $ptr) (local.get $len) (i64.const -1) (i32.const 3000)))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (local.get $r)))
    (if (local.get $r) (then
      (call $send_error (local.get $to) (i64.load (i32.const 3000)))
      (return)))
    (local.set $it (i64.load (i32.const 3000)))
    (loop $more
      (memory.fill (i32.const 3100) (i32.const 0) (i32.const 30))
      (if (i32.eqz (call $resolve_next (local.get $it) (i32.const 3100) (i32.const 3104)
                                       (i32.const 3120) (i32.const 3122) (i32.const 3126)))
        (then
          (call $send_bytes (local.get $to) (i32.const 3100) (i32.const 30))
          (br $more))))
    (call $drop_dns_iterator (local.get $it))
    (call $report (local.get $to) (i64.const 1) (i64.const -2)))
"""
)


async def resolve_in_guest(runtime: supervisor.Runtime, name: bytes) -> list[Any]:
    module = runtime.compile_module(DNS.replace("(module", "(module " + data_string(0, name), 1))

    async def test(ctx: Context) -> list[Any]:
        h = await ctx.spawn(module, "main", [ctx.id, 0, len(name)])
        got: list[Any] = []
        while True:
            m = await ctx.receive(1)
            assert isinstance(m, DataMessage)
            value = value_of(m) if len(m.buffer) == 8 else m.data
            got.append(value)
            if value == -2 or (len(got) == 2 and got[0] == 1):
                break
        assert (await h.wait()).normal
        return got

    return await run_python(runtime, test)


async def test_resolve_reads_host_port_and_ipv6_literals(runtime: supervisor.Runtime) -> None:
    got = await resolve_in_guest(runtime, b"127.0.0.1:8080")
    v4 = b"\x04\x00\x00\x00" + bytes([127, 0, 0, 1]) + bytes(12) + (8080).to_bytes(2, "little")
    assert got == [0, v4 + bytes(8), -2]
    got = await resolve_in_guest(runtime, b"[::1]:80")
    v6 = b"\x06\x00\x00\x00" + bytes(15) + b"\x01" + (80).to_bytes(2, "little")
    assert got == [0, v6 + bytes(8), -2]


@pytest.mark.parametrize(
    ("name", "error"),
    [(b"127.0.0.1", b"invalid socket address"), (b"localhost:http", b"invalid port value")],
)
async def test_resolve_without_a_port_is_an_error(
    runtime: supervisor.Runtime, name: bytes, error: bytes
) -> None:
    assert await resolve_in_guest(runtime, name) == [1, error]


@pytest.mark.parametrize(
    "call",
    [
        "(drop (call $tcp_bind (i32.const 5) (i32.const 2048) (i32.const 0) (i32.const 0)"
        " (i32.const 0) (i32.const 3000)))",
        "(call $drop_tcp_stream (i64.const 3))",
        "(drop (call $tcp_read (i64.const 0) (i32.const 0) (i32.const 1) (i32.const 3000)))",
        "(drop (call $resolve_next (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0)"
        " (i32.const 0) (i32.const 0)))",
        "(drop (call $clone_udp_socket (i64.const 0)))",
    ],
)
async def test_unknown_ids_and_address_types_trap(runtime: supervisor.Runtime, call: str) -> None:
    module = runtime.compile_module(net_guest(f'(func (export "main") {call})'))
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::networking::" in exit.detail


UDP = net_guest(
    """
  (func $new_udp (result i64)
    (if (call $udp_bind (i32.const 4) (i32.const 2048) (i32.const 0) (i32.const 0)
                        (i32.const 0) (i32.const 3000))
      (then unreachable))
    (i64.load (i32.const 3000)))
  (func $udp_port (param $u i64) (result i32)
    (if (call $udp_local_addr (local.get $u) (i32.const 3000)) (then unreachable))
    (call $next_port (i64.load (i32.const 3000))))
  ;; echo one datagram back to its sender, reporting the sender's port first
  (func (export "echo") (param $to i64)
    (local $u i64)
    (local.set $u (call $new_udp))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $udp_port (local.get $u))))
    (if (call $udp_receive_from (local.get $u) (i32.const 4096) (i32.const 100) (i32.const 3056)
                                (i32.const 3064))
      (then unreachable))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $next_port (i64.load (i32.const 3064)))))
    (if (call $udp_send_to (local.get $u) (i32.const 4096) (i32.load (i32.const 3056))
                           (i32.const 4) (i32.const 2048) (i32.load16_u (i32.const 3028))
                           (i32.const 0) (i32.const 0) (i32.const 3056))
      (then unreachable)))
  ;; connect to the echo (timeout 0, as lunatic-rs does), send, receive
  (func (export "ask") (param $to i64) (param $port i32)
    (local $u i64)
    (local.set $u (call $new_udp))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $udp_peer_addr (local.get $u) (i32.const 3000))))
    (call $send_error (local.get $to) (i64.load (i32.const 3000)))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $udp_port (local.get $u))))
    (i64.store (i32.const 3000) (i64.const 77))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $udp_connect (local.get $u) (i32.const 4) (i32.const 2048)
                                           (local.get $port) (i32.const 0) (i32.const 0)
                                           (i64.const 0) (i32.const 3000))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 3000)))
    (if (call $udp_send (local.get $u) (i32.const 0) (i32.const 4) (i32.const 3056))
      (then unreachable))
    (if (call $udp_receive (local.get $u) (i32.const 4096) (i32.const 2) (i32.const 3056))
      (then unreachable))
    ;; truncated to the 2-byte buffer
    (call $send_bytes (local.get $to) (i32.const 4096) (i32.load (i32.const 3056)))
    (call $set_udp_socket_broadcast (local.get $u) (i32.const 1))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $get_udp_socket_broadcast (local.get $u))))
    (call $set_udp_socket_ttl (local.get $u) (i32.const 7))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $get_udp_socket_ttl (local.get $u)))))
  ;; a TTL of u32::MAX is -1 to the OS (the default); 256 is refused
  (func (export "ttl_bits") (param $to i64)
    (local $u i64)
    (local.set $u (call $new_udp))
    (call $set_udp_socket_ttl (local.get $u) (i32.const 7))
    (call $set_udp_socket_ttl (local.get $u) (i32.const -1))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $get_udp_socket_ttl (local.get $u))))
    (call $set_udp_socket_ttl (local.get $u) (i32.const 256)))
  ;; an IPv6 destination for an IPv4 socket: EAFNOSUPPORT, as the kernel says
  (func (export "family_mismatch") (param $to i64)
    (local $u i64)
    (local.set $u (call $new_udp))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $udp_send_to (local.get $u) (i32.const 0) (i32.const 4)
                                           (i32.const 6) (i32.const 2064) (i32.const 9)
                                           (i32.const 0) (i32.const 0) (i32.const 3056))))
    (call $send_error (local.get $to) (i64.load (i32.const 3056)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $udp_connect (local.get $u) (i32.const 6) (i32.const 2064)
                                           (i32.const 9) (i32.const 0) (i32.const 0)
                                           (i64.const 0) (i32.const 3000))))
    (call $send_error (local.get $to) (i64.load (i32.const 3000))))
  ;; flow info beyond the 20-bit flow label: ignored, as Linux does
  (func (export "flow_bits") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $udp_bind (i32.const 6) (i32.const 2064) (i32.const 0)
                                        (i32.const -1) (i32.const 0) (i32.const 3000)))))
""",
    data_string(0, b"ping"),
)


DEFAULT_TTL = int(pathlib.Path("/proc/sys/net/ipv4/ip_default_ttl").read_text())


async def test_udp_ttl_bits_reach_the_os_as_a_c_int(runtime: supervisor.Runtime) -> None:
    got, exit = await reports(runtime, UDP, n=1, entry="ttl_bits")
    assert got == [DEFAULT_TTL]
    assert not exit.normal
    assert exit.detail == (
        "Trap raised during host call: Invalid argument (os error 22) "
        "(lunatic::networking::set_udp_socket_ttl)."
    )


async def test_an_ipv6_destination_for_an_ipv4_udp_socket_is_an_os_error(
    runtime: supervisor.Runtime,
) -> None:
    got, exit = await reports(runtime, UDP, n=4, entry="family_mismatch")
    refused = b"Address family not supported by protocol (os error 97)"
    assert got == [1, refused, 1, refused]
    assert exit.normal


async def test_ipv6_flow_info_beyond_the_flow_label_is_ignored(
    runtime: supervisor.Runtime,
) -> None:
    got, exit = await reports(runtime, UDP, n=1, entry="flow_bits")
    assert got == [0]
    assert exit.normal


async def test_udp_datagrams_between_two_guests(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(UDP)

    async def test(ctx: Context) -> None:
        echo = await ctx.spawn(module, "echo", [ctx.id])
        echo_port = value_of(await ctx.receive(1))
        asker = await ctx.spawn(module, "ask", [ctx.id, echo_port])
        got: list[Any] = []
        for _ in range(9):
            m = await ctx.receive(1)
            assert isinstance(m, DataMessage)
            got.append(value_of(m) if len(m.buffer) == 8 else m.data)
        not_connected, error, asker_port, connected, zero, sender_port, *rest = got
        assert (not_connected, error) == (1, b"Transport endpoint is not connected (os error 107)")
        assert (connected, zero) == (0, 0)
        assert sender_port == asker_port
        assert rest == [b"pi", 1, 7]
        assert (await echo.wait()).normal
        assert (await asker.wait()).normal

    await run_python(runtime, test)


HOLDER = net_guest(
    """
  ;; hold a listener, a connected stream pair (and a clone), a UDP socket and
  ;; a stream inside an undelivered message, then wait forever
  (func (export "main") (param $to i64)
    (local $l i64) (local $s i64)
    (local.set $l (call $bind (i32.const 0)))
    (local.set $s (call $connect (call $local_port (local.get $l))))
    (drop (call $clone_tcp_stream (local.get $s)))
    (drop (call $accept (local.get $l)))
    (drop (call $udp_bind (i32.const 4) (i32.const 2048) (i32.const 0) (i32.const 0)
                          (i32.const 0) (i32.const 3000)))
    ;; a message to itself, left in the mailbox
    (call $create_data (i64.const 5) (i64.const 0))
    (drop (call $push_tcp_stream (call $connect (call $local_port (local.get $l)))))
    (drop (call $send (call $process_id)))
    (call $report (local.get $to) (i64.const 1) (i64.const 0))
    (i64.store (i32.const 500) (i64.const 99))
    (drop (call $receive (i32.const 500) (i32.const 1) (i64.const -1))))
"""
)


async def test_sockets_close_when_their_process_is_killed(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(HOLDER)
    baseline = open_fds()

    async def test(ctx: Context) -> None:
        h = await ctx.spawn(module, "main", [ctx.id])
        await ctx.receive(1)
        assert open_fds() == baseline + 5
        h.kill()
        await h.wait()

    await run_python(runtime, test)
    assert open_fds() == baseline


async def test_a_stream_moved_into_a_message_leaves_the_senders_table(
    runtime: supervisor.Runtime,
) -> None:
    body = """
  (func (export "main")
    (local $l i64) (local $s i64)
    (local.set $l (call $bind (i32.const 0)))
    (local.set $s (call $connect (call $local_port (local.get $l))))
    (call $create_data (i64.const 0) (i64.const 0))
    (drop (call $push_tcp_stream (local.get $s)))
    (drop (call $tcp_peer_addr (local.get $s) (i32.const 3000))))
"""
    module = runtime.compile_module(net_guest(body))
    exit = await (await runtime.spawn(module, "main")).wait()
    assert "lunatic::networking::tcp_peer_addr" in exit.detail


# -- TLS ----------------------------------------------------------------------------------

TLS = """
  ;; serve one TLS connection: echo what arrives until the client closes
  (func (export "tls_server") (param $to i64)
    (local $l i64) (local $s i64) (local $n i32)
    (if (call $tls_bind (i32.const 4) (i32.const 2048) (i32.const 0) (i32.const 0) (i32.const 0)
                        (i32.const 3000) (i32.const 10000) (i32.const {cert_len})
                        (i32.const 12000) (i32.const {key_len}))
      (then unreachable))
    (local.set $l (i64.load (i32.const 3000)))
    (if (call $tls_local_addr (local.get $l) (i32.const 3000)) (then unreachable))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $next_port (i64.load (i32.const 3000)))))
    (if (call $tls_accept (local.get $l) (i32.const 3000) (i32.const 3016)) (then unreachable))
    (local.set $s (i64.load (i32.const 3000)))
    (loop $more
      (if (call $tls_read (local.get $s) (i32.const 4096) (i32.const 4096) (i32.const 3056))
        (then unreachable))
      (local.set $n (i32.load (i32.const 3056)))
      (if (local.get $n) (then
        (i32.store (i32.const 3040) (i32.const 4096))
        (i32.store (i32.const 3044) (local.get $n))
        (if (call $tls_write_vectored (local.get $s) (i32.const 3040) (i32.const 1)
                                      (i32.const 3048))
          (then unreachable))
        (br $more)))))
  ;; connect to "localhost" trusting the CA at 14000 (or the system's roots
  ;; with $certs = 0), send "hello over tls", report the echo
  (func (export "tls_client") (param $to i64) (param $port i32) (param $certs i32)
    (local $s i64) (local $got i32)
    (i32.store (i32.const 3080) (i32.const 14000))
    (i32.store (i32.const 3084) (i32.const {ca_len}))
    (if (call $tls_connect (i32.const 100) (i32.const 9) (local.get $port) (i64.const -1)
                           (i32.const 3000) (i32.const 3080) (local.get $certs))
      (then unreachable))
    (local.set $s (i64.load (i32.const 3000)))
    (i32.store (i32.const 3040) (i32.const 200))
    (i32.store (i32.const 3044) (i32.const 14))
    (if (call $tls_write_vectored (local.get $s) (i32.const 3040) (i32.const 1) (i32.const 3048))
      (then unreachable))
    (if (i32.ne (i32.load (i32.const 3048)) (i32.const 14)) (then unreachable))
    (loop $more
      (if (call $tls_read (local.get $s) (i32.add (i32.const 4096) (local.get $got))
                          (i32.sub (i32.const 14) (local.get $got)) (i32.const 3056))
        (then unreachable))
      (local.set $got (i32.add (local.get $got) (i32.load (i32.const 3056))))
      (br_if $more (i32.lt_u (local.get $got) (i32.const 14))))
    (call $send_bytes (local.get $to) (i32.const 4096) (i32.const 14))
    (i64.store (i32.const 3060) (i64.const 77))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $tls_flush (local.get $s) (i32.const 3060))))
    (call $drop_tls_stream (local.get $s)))
"""


@pytest.fixture(scope="module")
def tls_guest() -> str:
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert = leaf.cert_chain_pems[0].bytes()
    # lunatic takes PKCS#8 keys only; trustme writes SEC1 ("EC PRIVATE KEY")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ca_pem = ca.cert_pem.bytes()
    body = TLS.format(cert_len=len(cert), key_len=len(key), ca_len=len(ca_pem))
    data = (
        data_string(100, b"localhost")
        + data_string(200, b"hello over tls")
        + data_string(10000, cert)
        + data_string(12000, key)
        + data_string(14000, ca_pem)
    )
    return net_guest(body, data)


async def test_tls_between_a_wasm_server_and_a_wasm_client(
    runtime: supervisor.Runtime, tls_guest: str
) -> None:
    module = runtime.compile_module(tls_guest)

    async def test(ctx: Context) -> None:
        server = await ctx.spawn(module, "tls_server", [ctx.id])
        port = value_of(await ctx.receive(1))
        client = await ctx.spawn(module, "tls_client", [ctx.id, port, 1])
        echo = await ctx.receive(1)
        assert isinstance(echo, DataMessage)
        assert echo.data == b"hello over tls"
        assert value_of(await ctx.receive(1)) == 0  # flush
        assert (await client.wait()).normal
        # the client dropped its stream: the server reads the end and returns
        assert (await server.wait()).normal

    await run_python(runtime, test)


async def test_a_failed_tls_handshake_traps_on_both_sides(
    runtime: supervisor.Runtime, tls_guest: str
) -> None:
    module = runtime.compile_module(tls_guest)

    async def test(ctx: Context) -> None:
        server = await ctx.spawn(module, "tls_server", [ctx.id])
        port = value_of(await ctx.receive(1))
        # the system's roots do not know trustme's CA
        client = await ctx.spawn(module, "tls_client", [ctx.id, port, 0])
        exit = await client.wait()
        assert exit.reason is ExitReason.FAILURE
        assert "TLS handshake failed" in exit.detail
        assert "lunatic::networking::tls_connect" in exit.detail
        exit = await server.wait()
        assert exit.reason is ExitReason.FAILURE
        assert "lunatic::networking::tls_accept" in exit.detail

    await run_python(runtime, test)


async def test_a_certificate_that_is_not_pem_traps_at_tls_bind(
    runtime: supervisor.Runtime,
) -> None:
    body = """(func (export "main")
    (drop (call $tls_bind (i32.const 4) (i32.const 2048) (i32.const 0) (i32.const 0)
                          (i32.const 0) (i32.const 3000) (i32.const 0) (i32.const 4)
                          (i32.const 0) (i32.const 4))))"""
    module = runtime.compile_module(net_guest(body, data_string(0, b"junk")))
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "expected a single certificate" in exit.detail


MORE = net_guest(
    """
  ;; bind [::1]:0, connect to it, accept, and report the peer's address type
  ;; and the listener's port
  (func (export "ipv6") (param $to i64)
    (local $l i64) (local $s i64)
    (if (call $tcp_bind (i32.const 6) (i32.const 2064) (i32.const 0) (i32.const 0) (i32.const 0)
                        (i32.const 3000))
      (then unreachable))
    (local.set $l (i64.load (i32.const 3000)))
    (if (call $tcp_connect (i32.const 6) (i32.const 2064) (call $local_port (local.get $l))
                           (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 3000))
      (then unreachable))
    (local.set $s (call $accept (local.get $l)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $next_port (i64.load (i32.const 3016)))))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (i32.load (i32.const 3008))))
    (call $send_bytes (local.get $to) (i32.const 3012) (i32.const 16)))
  ;; resolve a literal with timeout 0: it completes at once, so it succeeds
  (func (export "try_once") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $resolve (i32.const 0) (i32.const 14) (i64.const 0)
                                       (i32.const 3000)))))
  ;; block in a read that never completes
  (func (export "stuck") (param $to i64) (param $port i32)
    (local $s i64)
    (local.set $s (call $connect (local.get $port)))
    (call $report (local.get $to) (i64.const 1) (i64.const 0))
    (drop (call $read (local.get $s) (i32.const 4096) (i32.const 10))))
""",
    data_string(0, b"127.0.0.1:8080"),
)


async def test_ipv6_listeners_streams_and_addresses(runtime: supervisor.Runtime) -> None:
    got, exit = await reports(runtime, MORE, n=3, entry="ipv6")
    assert got[0] > 0  # the client's ephemeral port
    assert got[1] == 6
    assert got[2] == bytes(15) + b"\x01"
    assert exit.normal


async def test_a_timeout_of_0_tries_once(runtime: supervisor.Runtime) -> None:
    got, exit = await reports(runtime, MORE, n=1, entry="try_once")
    assert got == [0]
    assert exit.normal


async def test_a_guest_blocked_on_a_socket_is_killed_at_once(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(MORE)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        baseline = open_fds()

        async def test(ctx: Context) -> None:
            h = await ctx.spawn(module, "stuck", [ctx.id, server.getsockname()[1]])
            await ctx.receive(1)
            h.kill()
            assert (await h.wait()).reason is ExitReason.KILLED

        await run_python(runtime, test)
        assert open_fds() == baseline
