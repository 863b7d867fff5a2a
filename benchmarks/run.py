"""lunatrio's benchmarks, each beside its floor measured in the same run.

Usage: ``python benchmarks/run.py [NAME...] [--quick]`` prints a table. The
figure that counts is the ratio to the floor:

* ``spawn``: spawn+exit of N Wasm processes (an entry that returns at once),
  against N bare Trio tasks started and finished the same way;
* ``memory``: RSS per idle Wasm process (N processes blocked in ``receive``),
  against the RSS of N Trio tasks blocked on a memory channel;
* ``idle``: how many Wasm processes can be alive at once (20 000 targeted),
  with the mappings they use;
* ``pingpong``: round trips between two Wasm processes, against two Trio
  tasks exchanging messages over memory channels;
* ``kill``: latency from ``kill`` to the death of a guest spinning in pure
  Wasm (p50, p99);
* ``cpu``: a CPU-bound export run as a process, against the same export
  called synchronously through wasmtime-py on an engine with default settings
  (an arithmetic loop and a memory-heavy loop);
* ``restart``: restarts per second and restart latency (crash to new child
  running) of a crashing child under a one_for_one supervisor, Python and Wasm,
  against a hand-rolled plain-Trio restart loop;
* ``latency``: what lunatic-rs's tests budget 5-10 ms for (HOSTAPI.md
  correction 7), timed by the guests themselves, alone and 50 at once:
  spawn to the child's first message, a linked child's trap to the parent's
  LinkDied, a 1 ms ``send_after`` to its delivery, each against the same
  exchange between plain Trio tasks; and ``read_data`` of one byte (what
  JSON decoding does per byte, correction 6) against the cheapest host call;
* ``echo``: requests per second of a Wasm TCP echo server (one process per
  connection) with 1, 10 and 100 concurrent loopback clients (64-byte
  requests, run from a separate interpreter), against a plain Trio echo
  server measured the same way (best of three rounds, taking turns).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import trio
import trio.testing
import wasmtime

import supervisor
from supervisor import Context

Row = tuple[str, str, str, str]

IDLE_WAT = """(module
  (import "lunatic::message" "receive" (func $receive (param i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "main") (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1))))
  (func (export "nothing")))"""

PING_WAT = """(module
  (import "lunatic::message" "create_data" (func $create (param i64 i64)))
  (import "lunatic::message" "write_data" (func $write (param i32 i32) (result i32)))
  (import "lunatic::message" "read_data" (func $read (param i32 i32) (result i32)))
  (import "lunatic::message" "send" (func $send (param i64) (result i32)))
  (import "lunatic::message" "receive" (func $receive (param i32 i32 i64) (result i32)))
  (import "lunatic::process" "process_id" (func $me (result i64)))
  (memory (export "memory") 1)
  ;; receive a message holding the peer's id; then bounce n messages back
  (func (export "pong") (param $n i32)
    (local $peer i64) (local $i i32)
    (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1)))
    (drop (call $read (i32.const 0) (i32.const 8)))
    (local.set $peer (i64.load (i32.const 0)))
    (loop $l
      (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1)))
      (call $create (i64.const 0) (i64.const 0))
      (drop (call $write (i32.const 8) (i32.const 8)))
      (drop (call $send (local.get $peer)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  (func (export "ping") (param $peer i64) (param $n i32)
    (local $i i32)
    (call $create (i64.const 0) (i64.const 0))
    (i64.store (i32.const 0) (call $me))
    (drop (call $write (i32.const 0) (i32.const 8)))
    (drop (call $send (local.get $peer)))
    (loop $l
      (call $create (i64.const 0) (i64.const 0))
      (drop (call $write (i32.const 8) (i32.const 8)))
      (drop (call $send (local.get $peer)))
      (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))))"""

CPU_WAT = """(module
  (memory (export "memory") 16)
  (func (export "arith") (param $n i64) (result i64)
    (local $i i64) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 6364136223846793005))
                               (i64.const 1442695040888963407)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func (export "memory_loop") (param $n i64) (result i64)
    (local $i i64) (local $addr i32) (local $acc i64)
    (loop $l
      (local.set $addr (i32.and (i32.mul (i32.wrap_i64 (local.get $i)) (i32.const 2654435761))
                                (i32.const 0xFFFF0)))
      (i64.store (local.get $addr) (i64.add (i64.load (local.get $addr)) (local.get $i)))
      (local.set $acc (i64.add (local.get $acc) (i64.load offset=8 (local.get $addr))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func (export "arith_proc") (param $n i64) (drop (call 0 (local.get $n))))
  (func (export "memory_proc") (param $n i64) (drop (call 1 (local.get $n)))))"""

SPIN_WAT = '(module (memory (export "memory") 1) (func (export "spin") (loop $l (br $l))))'


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maps_count() -> int:
    with open("/proc/self/maps", "rb") as f:
        return sum(1 for _ in f)


def _best(runs: int, fn: Callable[[], float]) -> float:
    return max(fn() for _ in range(runs))


# -- spawn + exit --------------------------------------------------------------


def bench_spawn(n: int) -> list[Row]:
    async def trio_tasks() -> float:
        async def task() -> None:
            pass

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(task)
        return n / (time.perf_counter() - start)

    async def wasm_processes() -> float:
        async with supervisor.open_runtime() as rt:
            module = rt.compile_module(IDLE_WAT)
            await (await rt.spawn(module, "nothing")).wait()  # warm up
            start = time.perf_counter()
            handles = [await rt.spawn(module, "nothing") for _ in range(n)]
            for h in handles:
                await h.wait()
            return n / (time.perf_counter() - start)

    async def python_processes() -> float:
        async def fn(ctx: Context) -> None:
            pass

        async with supervisor.open_runtime() as rt:
            start = time.perf_counter()
            handles = [await rt.spawn_python(fn) for _ in range(n)]
            for h in handles:
                await h.wait()
            return n / (time.perf_counter() - start)

    floor = _best(3, lambda: trio.run(trio_tasks))
    wasm = _best(3, lambda: trio.run(wasm_processes))
    py = _best(3, lambda: trio.run(python_processes))
    return [
        (f"spawn+exit, N={n}", "bare Trio tasks", f"{floor:,.0f}/s", "floor"),
        ("", "Wasm processes", f"{wasm:,.0f}/s", f"{wasm / floor:.0%} (target >= 50%)"),
        ("", "Python processes", f"{py:,.0f}/s", f"{py / floor:.0%}"),
    ]


# -- idle memory ------------------------------------------------------------------


def bench_memory(n: int) -> list[Row]:
    async def trio_tasks() -> float:
        send, recv = trio.open_memory_channel[bytes](0)
        gc.collect()
        before = rss_bytes()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(_receive_one, recv)
            await trio.testing.wait_all_tasks_blocked()
            per = (rss_bytes() - before) / n
            nursery.cancel_scope.cancel()
        del send
        return per

    async def wasm_processes() -> float:
        async with supervisor.open_runtime() as rt:
            module = rt.compile_module(IDLE_WAT)
            await rt.spawn(module, "main")  # warm up
            gc.collect()
            before = rss_bytes()
            for _ in range(n):
                await rt.spawn(module, "main")
            await trio.testing.wait_all_tasks_blocked()
            return (rss_bytes() - before) / n

    floor = trio.run(trio_tasks)
    wasm = trio.run(wasm_processes)
    return [
        (
            f"idle memory, N={n}",
            "Trio tasks in a channel receive",
            f"{floor / 1024:.1f} KiB",
            "floor",
        ),
        ("", "Wasm processes in receive", f"{wasm / 1024:.1f} KiB", "target <= 24 KiB"),
    ]


async def _receive_one(recv: trio.MemoryReceiveChannel[bytes]) -> None:
    await recv.receive()


def bench_idle(n: int) -> list[Row]:
    async def run() -> tuple[int, int, float, int]:
        async with supervisor.open_runtime() as rt:
            module = rt.compile_module(IDLE_WAT)
            maps0 = maps_count()
            start = time.perf_counter()
            for _ in range(n):
                await rt.spawn(module, "main")
            await trio.testing.wait_all_tasks_blocked()
            elapsed = time.perf_counter() - start
            alive = len(rt.processes())
            return alive, maps_count() - maps0, elapsed, rt.budget.capacity

    alive, maps, elapsed, capacity = trio.run(run)
    return [
        (f"idle processes, N={n}", "alive at once", f"{alive:,}", f"capacity {capacity:,}"),
        ("", "mappings used", f"{maps:,} ({maps / alive:.1f}/process)", "vm.max_map_count 65530"),
        ("", "spawned in", f"{elapsed:.2f} s", f"{alive / elapsed:,.0f}/s"),
    ]


# -- ping-pong -----------------------------------------------------------------


def bench_pingpong(n: int) -> list[Row]:
    async def trio_tasks() -> float:
        a_send, a_recv = trio.open_memory_channel[bytes](1)
        b_send, b_recv = trio.open_memory_channel[bytes](1)

        async def pong() -> None:
            for _ in range(n):
                await b_send.send(await a_recv.receive())

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pong)
            for _ in range(n):
                await a_send.send(b"12345678")
                await b_recv.receive()
        return n / (time.perf_counter() - start)

    floor = _best(3, lambda: trio.run(trio_tasks))
    rate = _best(3, lambda: trio.run(_wasm_pingpong, n))
    return [
        (f"ping-pong, N={n}", "Trio memory channels", f"{floor:,.0f} round trips/s", "floor"),
        (
            "",
            "two Wasm processes",
            f"{rate:,.0f} round trips/s",
            f"{rate / floor:.0%} (target >= 50%)",
        ),
    ]


async def _wasm_pingpong(n: int) -> float:
    async with supervisor.open_runtime() as rt:
        module = rt.compile_module(PING_WAT)
        pong = await rt.spawn(module, "pong", [n])
        start = time.perf_counter()
        ping = await rt.spawn(module, "ping", [pong.id, n])  # it tells pong its id
        exit = await ping.wait()
        assert exit.normal, exit
        return n / (time.perf_counter() - start)


# -- kill latency ------------------------------------------------------------------


def bench_kill(n: int) -> list[Row]:
    async def run() -> list[float]:
        latencies = []
        async with supervisor.open_runtime() as rt:
            module = rt.compile_module(SPIN_WAT)
            for _ in range(n):
                h = await rt.spawn(module, "spin")
                await trio.sleep(0.002)
                start = time.perf_counter()
                h.kill()
                await h.wait()
                latencies.append(time.perf_counter() - start)
        return latencies

    return [
        (
            f"kill a busy guest, N={n}",
            "kill to death",
            _percentiles(trio.run(run), "ms"),
            "target p99 <= 2 ms",
        ),
    ]


# -- CPU-bound slowdown ---------------------------------------------------------------


def bench_cpu(iterations: int) -> list[Row]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, CPU_WAT), [])
    rows: list[Row] = []
    for name in ("arith", "memory_loop"):
        fn: Any = instance.exports(store)[name]
        fn(store, 1000)

        def plain(fn: Any = fn) -> float:
            start = time.perf_counter()
            fn(store, iterations)
            return time.perf_counter() - start

        base = min(plain() for _ in range(3))

        async def as_process(name: str = name) -> float:
            async with supervisor.open_runtime() as rt:
                module = rt.compile_module(CPU_WAT)
                start = time.perf_counter()
                h = await rt.spawn(module, f"{name.split('_')[0]}_proc", [iterations])
                exit = await h.wait()
                assert exit.normal, exit
                return time.perf_counter() - start

        proc = min(trio.run(as_process) for _ in range(3))
        target = "target <= 1.3x" if name == "arith" else "reported"
        rows.append(
            (
                f"CPU-bound {name}, {iterations:,} iterations",
                f"wasmtime-py sync {base:.3f} s / process {proc:.3f} s",
                f"{proc / base:.2f}x",
                target,
            )
        )
    return rows


# -- supervision: restarts ------------------------------------------------------------------

CRASH_WAT = '(module (memory (export "memory") 1) (func (export "crash") unreachable))'


def _percentiles(lat: list[float], unit: str = "us") -> str:
    """p50 and p99 of latencies in seconds, in microseconds or milliseconds."""
    lat = sorted(lat)
    scale, digits = (1e6, 0) if unit == "us" else (1e3, 3)
    p50 = statistics.median(lat) * scale
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * scale
    return f"p50 {p50:.{digits}f} {unit} / p99 {p99:.{digits}f} {unit}"


def bench_restart(n: int) -> list[Row]:
    async def plain_trio() -> tuple[float, list[float]]:
        # a hand-rolled restart loop: run the child in a nursery, restart on error
        lat: list[float] = []
        crashed = [0.0]

        async def child() -> None:
            if crashed[0]:
                lat.append(time.perf_counter() - crashed[0])
            crashed[0] = time.perf_counter()
            raise RuntimeError("crash")

        start = time.perf_counter()
        for _ in range(n):
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(child)
            except* RuntimeError:
                pass
        return n / (time.perf_counter() - start), lat

    async def python_children() -> tuple[float, list[float]]:
        lat: list[float] = []
        crashed = [0.0]
        count = [0]
        done = trio.Event()

        async def child(ctx: Context) -> None:
            if crashed[0]:
                lat.append(time.perf_counter() - crashed[0])
            count[0] += 1
            if count[0] > n:
                done.set()
                await trio.sleep_forever()
            crashed[0] = time.perf_counter()
            raise RuntimeError("crash")

        flags = supervisor.SupervisorFlags(intensity=10**9, period=1)
        spec = supervisor.ChildSpec("c", supervisor.PythonChild(child))
        async with supervisor.open_runtime() as rt:
            start = time.perf_counter()
            sup = await supervisor.start_supervisor(rt, flags, [spec])
            await done.wait()
            rate = n / (time.perf_counter() - start)
            await sup.stop()
        return rate, lat

    async def wasm_children() -> tuple[float, list[float]]:
        # crash to restart, measured between the supervisor's events
        lat: list[float] = []
        exited = [0.0]
        done = trio.Event()
        started = [0]

        def listen(e: supervisor.SupervisorEvent) -> None:
            if e.event == "child_exited":
                exited[0] = time.perf_counter()
            elif e.event == "child_started":
                started[0] += 1
                if exited[0]:
                    lat.append(time.perf_counter() - exited[0])
                if started[0] > n:
                    done.set()

        flags = supervisor.SupervisorFlags(intensity=10**9, period=1)
        async with supervisor.open_runtime() as rt:
            spec = supervisor.ChildSpec(
                "c", supervisor.WasmChild(rt.compile_module(CRASH_WAT), "crash")
            )
            start = time.perf_counter()
            sup = await supervisor.start_supervisor(rt, flags, [spec], events=listen)
            await done.wait()
            rate = n / (time.perf_counter() - start)
            await sup.stop()
        return rate, lat

    floor, floor_lat = max((trio.run(plain_trio) for _ in range(3)), key=lambda r: r[0])
    py, py_lat = max((trio.run(python_children) for _ in range(3)), key=lambda r: r[0])
    wasm, wasm_lat = max((trio.run(wasm_children) for _ in range(3)), key=lambda r: r[0])
    return [
        (
            f"restarts, one_for_one, N={n}",
            "plain-Trio restart loop",
            f"{floor:,.0f}/s",
            f"floor; {_percentiles(floor_lat)}",
        ),
        (
            "",
            "Python children",
            f"{py:,.0f}/s",
            f"{py / floor:.0%} (target >= 50%); {_percentiles(py_lat)}",
        ),
        (
            "",
            "Wasm children",
            f"{wasm:,.0f}/s",
            f"{wasm / floor:.0%}; exit to restart {_percentiles(wasm_lat)}",
        ),
    ]


# -- latencies lunatic-rs relies on -----------------------------------------------------

LATENCY_WAT = """(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock (param i32 i64 i32) (result i32)))
  (import "lunatic::process" "spawn"
    (func $spawn (param i64 i64 i64 i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::process" "die_when_link_dies" (func $trap_links (param i32)))
  (import "lunatic::process" "process_id" (func $me (result i64)))
  (import "lunatic::message" "create_data" (func $create (param i64 i64)))
  (import "lunatic::message" "write_data" (func $write (param i32 i32) (result i32)))
  (import "lunatic::message" "read_data" (func $read (param i32 i32) (result i32)))
  (import "lunatic::message" "seek_data" (func $seek (param i64)))
  (import "lunatic::message" "send" (func $send (param i64) (result i32)))
  (import "lunatic::message" "receive" (func $receive (param i32 i32 i64) (result i32)))
  (import "lunatic::timer" "send_after" (func $send_after (param i64 i64) (result i64)))
  (import "lunatic::version" "major" (func $major (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "reply")
  (data (i32.const 8) "crash")
  (func $now (result i64)
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 16)))
    (i64.load (i32.const 16)))
  ;; children
  (func (export "reply") (param $to i64)
    (call $create (i64.const 0) (i64.const 0))
    (drop (call $send (local.get $to))))
  (func (export "crash") unreachable)
  (func $spawn_child (param $link i64) (param $name i32) (param $with_me i32)
    (i32.store8 (i32.const 32) (i32.const 0x7e))
    (i64.store (i32.const 33) (call $me))
    (i64.store (i32.const 41) (i64.const 0))
    (drop (call $spawn (local.get $link) (i64.const -1) (i64.const -1)
                       (local.get $name) (i32.const 5)
                       (i32.const 32) (i32.mul (local.get $with_me) (i32.const 17))
                       (i32.const 24))))
  ;; drivers: n samples of nanoseconds at 4096 + 8 i, sent to $to at the end
  (func $report (param $to i64) (param $n i32)
    (call $create (i64.const 0) (i64.const 0))
    (drop (call $write (i32.const 4096) (i32.shl (local.get $n) (i32.const 3))))
    (drop (call $send (local.get $to))))
  (func (export "spawn") (param $to i64) (param $n i32)
    (local $i i32) (local $t i64)
    (loop $l
      (local.set $t (call $now))
      (call $spawn_child (i64.const 0) (i32.const 0) (i32.const 1))
      (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1)))
      (i64.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 3)))
                 (i64.sub (call $now) (local.get $t)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $report (local.get $to) (local.get $n)))
  (func (export "link") (param $to i64) (param $n i32)
    (local $i i32) (local $t i64)
    (call $trap_links (i32.const 0))
    (loop $l
      (local.set $t (call $now))
      (call $spawn_child (i64.const 7) (i32.const 8) (i32.const 0))
      (if (i32.ne (call $receive (i32.const 0) (i32.const 0) (i64.const -1)) (i32.const 1))
        (then unreachable))
      (i64.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 3)))
                 (i64.sub (call $now) (local.get $t)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $report (local.get $to) (local.get $n)))
  (func (export "timer") (param $to i64) (param $n i32)
    (local $i i32) (local $t i64)
    (loop $l
      (local.set $t (call $now))
      (call $create (i64.const 0) (i64.const 0))
      (drop (call $send_after (call $me) (i64.const 1)))
      (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1)))
      (i64.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 3)))
                 (i64.sub (call $now) (local.get $t)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $report (local.get $to) (local.get $n)))
  ;; n one-byte read_data calls over a 1000-byte message, or n version::major calls
  (func (export "read_bytes") (param $n i32)
    (local $i i32)
    (call $create (i64.const 0) (i64.const 0))
    (drop (call $write (i32.const 4096) (i32.const 1000)))
    (loop $l
      (if (i32.eqz (call $read (i32.const 64) (i32.const 1)))
        (then (call $seek (i64.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  (func (export "null_calls") (param $n i32)
    (local $i i32)
    (loop $l
      (drop (call $major))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))))"""


async def _trio_latencies(kind: str, n: int, drivers: int) -> list[float]:
    """The floor: the same exchange between plain Trio tasks."""
    samples: list[float] = []

    async def reply(chan: trio.MemorySendChannel[bytes]) -> None:
        await chan.send(b"")

    async def crash() -> None:
        raise RuntimeError("crash")

    async def driver() -> None:
        send, recv = trio.open_memory_channel[bytes](1)
        for _ in range(n):
            t = time.perf_counter()
            if kind == "spawn":
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(reply, send)
                    await recv.receive()
            elif kind == "link":
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(crash)
                except* RuntimeError:
                    pass
            else:
                await trio.sleep(0.001)
            samples.append(time.perf_counter() - t)

    async with trio.open_nursery() as nursery:
        for _ in range(drivers):
            nursery.start_soon(driver)
    return samples


async def _wasm_latencies(kind: str, n: int, drivers: int) -> list[float]:
    samples: list[float] = []
    async with supervisor.open_runtime() as rt:
        module = rt.compile_module(LATENCY_WAT)

        async def collect(ctx: Context) -> None:
            for _ in range(drivers):
                await ctx.spawn(module, kind, [ctx.id, n])
            for _ in range(drivers):
                m = await ctx.receive()
                assert isinstance(m, supervisor.DataMessage)
                data = m.buffer
                samples.extend(
                    int.from_bytes(data[i : i + 8], "little") / 1e9 for i in range(0, len(data), 8)
                )

        await (await rt.spawn_python(collect)).wait()
    assert len(samples) == drivers * n, len(samples)
    return samples


async def _host_calls(entry: str, n: int) -> float:
    async with supervisor.open_runtime() as rt:
        module = rt.compile_module(LATENCY_WAT)
        start = time.perf_counter()
        exit = await (await rt.spawn(module, entry, [n])).wait()
        assert exit.normal, exit
        return n / (time.perf_counter() - start)


def bench_latency(n: int) -> list[Row]:
    rows: list[Row] = []
    titles = {
        "spawn": "spawn to first message",
        "link": "child trap to LinkDied",
        "timer": "send_after 1 ms, delivered",
    }
    for kind, title in titles.items():
        for drivers in (1, 50):
            floor = trio.run(_trio_latencies, kind, n, drivers)
            wasm = trio.run(_wasm_latencies, kind, n, drivers)
            load = "alone" if drivers == 1 else f"{drivers} at once"
            budget = "lunatic-rs budgets 5-10 ms"
            rows.append(
                (f"{title}, {load}", "plain Trio tasks", _percentiles(floor, "ms"), "floor")
            )
            rows.append(("", "Wasm processes", _percentiles(wasm, "ms"), budget))
    calls = n * 2_000
    null = _best(3, lambda: trio.run(_host_calls, "null_calls", calls))
    read = _best(3, lambda: trio.run(_host_calls, "read_bytes", calls))
    rows.append((f"host calls, N={calls}", "version::major (no-op)", f"{null:,.0f}/s", "floor"))
    rows.append(("", "read_data, 1 byte", f"{read:,.0f}/s", f"{read / null:.0%}"))
    return rows


# -- TCP echo ------------------------------------------------------------------------------

ECHO_WAT = """(module
  (import "lunatic::networking" "tcp_bind"
    (func $tcp_bind (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::networking" "tcp_local_addr" (func $local_addr (param i64 i32) (result i32)))
  (import "lunatic::networking" "resolve_next"
    (func $resolve_next (param i64 i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::networking" "tcp_accept" (func $accept (param i64 i32 i32) (result i32)))
  (import "lunatic::networking" "tcp_read" (func $read (param i64 i32 i32 i32) (result i32)))
  (import "lunatic::networking" "tcp_write_vectored"
    (func $write (param i64 i32 i32 i32) (result i32)))
  (import "lunatic::networking" "drop_dns_iterator" (func $drop_dns (param i64)))
  (import "lunatic::process" "spawn"
    (func $spawn (param i64 i64 i64 i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::message" "create_data" (func $create (param i64 i64)))
  (import "lunatic::message" "write_data" (func $write_data (param i32 i32) (result i32)))
  (import "lunatic::message" "send" (func $send (param i64) (result i32)))
  (import "lunatic::message" "receive" (func $receive (param i32 i32 i64) (result i32)))
  (import "lunatic::message" "push_tcp_stream" (func $push (param i64) (result i64)))
  (import "lunatic::message" "take_tcp_stream" (func $take (param i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "echo")
  (data (i32.const 16) "\\7f\\00\\00\\01")
  ;; listen on 127.0.0.1 (any port), tell $to the port, then give every
  ;; connection a process of its own, its stream passed in a message
  (func (export "serve") (param $to i64)
    (local $l i64)
    (if (call $tcp_bind (i32.const 4) (i32.const 16) (i32.const 0) (i32.const 0) (i32.const 0)
                        (i32.const 32))
      (then unreachable))
    (local.set $l (i64.load (i32.const 32)))
    (drop (call $local_addr (local.get $l) (i32.const 32)))
    (drop (call $resolve_next (i64.load (i32.const 32)) (i32.const 40) (i32.const 44)
                              (i32.const 60) (i32.const 64) (i32.const 68)))
    (call $drop_dns (i64.load (i32.const 32)))
    (call $create (i64.const 0) (i64.const 0))
    (drop (call $write_data (i32.const 60) (i32.const 2)))
    (drop (call $send (local.get $to)))
    (loop $more
      (if (call $accept (local.get $l) (i32.const 32) (i32.const 72)) (then unreachable))
      (if (call $spawn (i64.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 4)
                       (i32.const 0) (i32.const 0) (i32.const 80))
        (then unreachable))
      (call $create (i64.const 0) (i64.const 0))
      (drop (call $push (i64.load (i32.const 32))))
      (drop (call $send (i64.load (i32.const 80))))
      (br $more)))
  (func (export "echo")
    (local $s i64) (local $n i32)
    (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1)))
    (local.set $s (call $take (i64.const 0)))
    (i32.store (i32.const 128) (i32.const 1024))
    (loop $more
      (if (call $read (local.get $s) (i32.const 1024) (i32.const 4096) (i32.const 96))
        (then return))
      (local.set $n (i32.load (i32.const 96)))
      (if (local.get $n) (then
        (i32.store (i32.const 132) (local.get $n))
        (if (call $write (local.get $s) (i32.const 128) (i32.const 1) (i32.const 104))
          (then return))
        (br $more))))))"""

ECHO_SIZE = 64
ECHO_ROUNDS = 3


async def _echo_clients(port: int, clients: int, requests: int) -> float:
    """``clients`` connections each making ``requests`` round trips; requests/s."""
    payload = b"x" * ECHO_SIZE

    async def client() -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            for _ in range(requests):
                await stream.send_all(payload)
                got = 0
                while got < ECHO_SIZE:
                    got += len(await stream.receive_some(ECHO_SIZE - got))

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(client)
    return clients * requests / (time.perf_counter() - start)


async def _drive_clients(port: int, clients: int, requests: int) -> float:
    """Run the clients in a separate interpreter, so the server has a core."""
    args = [sys.executable, __file__, "echo", "--echo-client", f"{port},{clients},{requests}"]
    result = await trio.run_process(args, capture_stdout=True)
    return float(result.stdout)


async def _trio_echo_server(clients: int, requests: int) -> float:
    async def handler(stream: trio.SocketStream) -> None:
        try:
            while data := await stream.receive_some(4096):
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        rate = await _drive_clients(port, clients, requests)
        nursery.cancel_scope.cancel()
    return rate


async def _wasm_echo_server(clients: int, requests: int) -> float:
    async with supervisor.open_runtime() as rt:
        module = rt.compile_module(ECHO_WAT)
        rate = [0.0]

        async def driver(ctx: Context) -> None:
            await ctx.spawn(module, "serve", [ctx.id])
            m = await ctx.receive()
            assert isinstance(m, supervisor.DataMessage)
            rate[0] = await _drive_clients(int.from_bytes(m.data, "little"), clients, requests)

        await (await rt.spawn_python(driver)).wait()
        return rate[0]


def bench_echo(n: int) -> list[Row]:
    rows: list[Row] = []
    for clients in (1, 10, 100):
        requests = max(n // clients, 20)
        # Best of three rounds, the two servers taking turns: the clients
        # share the machine's two cores with the server, and a single round
        # swings by a third either way.
        floor = wasm = 0.0
        for _ in range(ECHO_ROUNDS):
            floor = max(floor, trio.run(_trio_echo_server, clients, requests))
            wasm = max(wasm, trio.run(_wasm_echo_server, clients, requests))
        target = " (target >= 50%)" if clients == 100 else ""
        rows.append(
            (f"TCP echo, {clients} clients", "plain Trio server", f"{floor:,.0f} req/s", "floor")
        )
        rows.append(("", "Wasm server", f"{wasm:,.0f} req/s", f"{wasm / floor:.0%}{target}"))
    return rows


BENCHMARKS: dict[str, tuple[Callable[[int], list[Row]], int, int]] = {
    # name: (function, N, quick N)
    "spawn": (bench_spawn, 10_000, 2_000),
    "memory": (bench_memory, 10_000, 2_000),
    "idle": (bench_idle, 20_000, 2_000),
    "pingpong": (bench_pingpong, 50_000, 5_000),
    "kill": (bench_kill, 200, 50),
    "cpu": (bench_cpu, 300_000_000, 30_000_000),
    "restart": (bench_restart, 10_000, 1_000),
    "latency": (bench_latency, 100, 20),
    "echo": (bench_echo, 20_000, 2_000),
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], default=[], metavar="NAME")
    parser.add_argument("--quick", action="store_true", help="small N, for a smoke run")
    parser.add_argument("--one", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--echo-client", metavar="PORT,CLIENTS,REQUESTS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_client:
        port, clients, requests = (int(x) for x in args.echo_client.split(","))
        print(trio.run(_echo_clients, port, clients, requests))
        return 0
    if args.one is not None:
        # one benchmark in this (fresh) interpreter; rows as JSON on stdout
        fn = BENCHMARKS[args.names[0]][0]
        print(json.dumps(fn(args.one)))
        return 0
    names = args.names or list(BENCHMARKS)
    rows: list[Row] = [("benchmark", "measured", "figure", "ratio / target")]
    for name in names:
        _, n, quick = BENCHMARKS[name]
        print(f"running {name}...", file=sys.stderr, flush=True)
        # each benchmark in a fresh interpreter, so memory figures start clean
        out = subprocess.run(
            [sys.executable, __file__, name, "--one", str(quick if args.quick else n)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        rows += [(r[0], r[1], r[2], r[3]) for r in json.loads(out)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
