"""Restart strategies as pure decision logic (filled in by the supervision work).

This package imports neither the runtime nor the host API, does no I/O and
awaits nothing, so every rule can be tested with plain data.
"""
