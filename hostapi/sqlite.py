"""``lunatic::sqlite``: SQLite databases on Python's sqlite3 (HOSTAPI.md section 2.12)."""

from __future__ import annotations

from .abi import Namespace

__all__ = ["namespace"]

namespace = Namespace("lunatic::sqlite")
