"""``lunatic::networking``: DNS, TCP, TLS and UDP on Trio (HOSTAPI.md section 2.11)."""

from __future__ import annotations

from .abi import Namespace

__all__ = ["namespace"]

namespace = Namespace("lunatic::networking")
