"""The metrics guests record (``lunatic::metrics``), readable from Python.

Counters add up unsigned integers, gauges hold a float, histograms count
samples in Prometheus' default buckets (plus sum, min and max). Read them with
:meth:`Metrics.snapshot`, or expose them with prometheus-client::

    from prometheus_client import REGISTRY
    REGISTRY.register(runtime.metrics.prometheus_collector())
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["Histogram", "Metrics"]

#: Prometheus' default histogram buckets (upper bounds, seconds).
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Histogram:
    """Samples of one histogram."""

    __slots__ = ("buckets", "count", "max", "min", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.buckets[bisect.bisect_left(BUCKETS, value)] += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(upper bound, samples <= it)`` pairs, Prometheus style."""
        out, total = [], 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), self.buckets, strict=True):
            total += n
            out.append((bound, total))
        return out


class Metrics:
    """A runtime's metrics registry."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.gauges: dict[str, float] = {}
        self.histograms: dict[str, Histogram] = {}

    def counter(self, name: str, value: int) -> None:
        self.counters[name] = self.counters.get(name, 0) + value

    def gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def add_to_gauge(self, name: str, delta: float) -> None:
        self.gauges[name] = self.gauges.get(name, 0.0) + delta

    def histogram(self, name: str, value: float) -> None:
        h = self.histograms.get(name)
        if h is None:
            h = self.histograms[name] = Histogram()
        h.observe(value)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Everything recorded so far, as plain data."""
        return {
            "counters": dict(self.counters),
            "gauges": dict(self.gauges),
            "histograms": {
                name: {"count": h.count, "sum": h.sum, "min": h.min, "max": h.max}
                for name, h in self.histograms.items()
            },
        }

    def prometheus_collector(self) -> Any:
        """A prometheus-client collector of these metrics (needs ``prometheus_client``).

        Names are made valid for Prometheus: ``lunatic.process.count`` becomes
        ``lunatic_process_count``.
        """
        try:
            from prometheus_client.core import (
                CounterMetricFamily,
                GaugeMetricFamily,
                HistogramMetricFamily,
            )
        except ImportError:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "exposing metrics needs prometheus-client: pip install prometheus-client"
            ) from None
        metrics = self

        class Collector:
            def collect(self) -> Iterator[Any]:
                for name, value in sorted(metrics.counters.items()):
                    yield CounterMetricFamily(_prom(name), f"lunatic counter {name}", value=value)
                for name, g in sorted(metrics.gauges.items()):
                    yield GaugeMetricFamily(_prom(name), f"lunatic gauge {name}", value=g)
                for name, h in sorted(metrics.histograms.items()):
                    yield HistogramMetricFamily(
                        _prom(name),
                        f"lunatic histogram {name}",
                        buckets=h.cumulative(),
                        sum_value=h.sum,
                    )

        return Collector()


_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def _prom(name: str) -> str:
    cleaned = _INVALID.sub("_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] in "_:" else f"_{cleaned}"
