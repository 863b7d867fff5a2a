"""``lunatic::metrics``: counters, gauges and histograms (section 2.10).

Guests record into their runtime's metrics registry
(:class:`supervisor.Metrics`), which Python code reads and can expose through
prometheus-client. Names must be valid UTF-8; anything else traps.
"""

from __future__ import annotations

from .abi import Namespace
from .protocols import HostProcess

__all__ = ["namespace"]

namespace = Namespace("lunatic::metrics")


def _name(proc: HostProcess, ptr: int, length: int, fn: str) -> str:
    return proc.memory.read_str(ptr, length, f"lunatic::metrics::{fn}")


@namespace.function("counter (i32, i32, i64)")
def counter(proc: HostProcess, name_ptr: int, name_len: int, value: int) -> None:
    """Add ``value`` (unsigned) to a counter."""
    proc.metrics.counter(_name(proc, name_ptr, name_len, "counter"), value & ((1 << 64) - 1))


@namespace.function("increment_counter (i32, i32)")
def increment_counter(proc: HostProcess, name_ptr: int, name_len: int) -> None:
    proc.metrics.counter(_name(proc, name_ptr, name_len, "increment_counter"), 1)


@namespace.function("gauge (i32, i32, f64)")
def gauge(proc: HostProcess, name_ptr: int, name_len: int, value: float) -> None:
    proc.metrics.gauge(_name(proc, name_ptr, name_len, "gauge"), value)


@namespace.function("increment_gauge (i32, i32, f64)")
def increment_gauge(proc: HostProcess, name_ptr: int, name_len: int, value: float) -> None:
    proc.metrics.add_to_gauge(_name(proc, name_ptr, name_len, "increment_gauge"), value)


@namespace.function("decrement_gauge (i32, i32, f64)")
def decrement_gauge(proc: HostProcess, name_ptr: int, name_len: int, value: float) -> None:
    proc.metrics.add_to_gauge(_name(proc, name_ptr, name_len, "decrement_gauge"), -value)


@namespace.function("histogram (i32, i32, f64)")
def histogram(proc: HostProcess, name_ptr: int, name_len: int, value: float) -> None:
    proc.metrics.histogram(_name(proc, name_ptr, name_len, "histogram"), value)
