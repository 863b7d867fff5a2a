"""Registers every host function on the linker: the one place that does.

Every import of HOSTAPI.md Appendix A is implemented, with exactly its type,
so any lunatic guest instantiates; a declaration that disagrees with the
appendix, or one missing from it, is a bug caught when the linker is built.
"""

from __future__ import annotations

from . import (
    distributed,
    error,
    message,
    metrics,
    networking,
    process,
    registry,
    sqlite,
    timer,
    trap,
    version,
    wasi,
)
from .abi import HostFunctionSpec, Namespace
from .ffi import Linker
from .signatures import APPENDIX_A

__all__ = ["IMPLEMENTED", "define_all"]

#: The namespace modules, in the order HOSTAPI.md lists them.
_NAMESPACES: tuple[Namespace, ...] = (
    error.namespace,
    message.namespace,
    process.namespace,
    registry.namespace,
    timer.namespace,
    version.namespace,
    trap.namespace,
    wasi.namespace,
    distributed.namespace,
    metrics.namespace,
    networking.namespace,
    sqlite.namespace,
)


def _implemented() -> dict[tuple[str, str], HostFunctionSpec]:
    out: dict[tuple[str, str], HostFunctionSpec] = {}
    for ns in _NAMESPACES:
        for spec in ns.functions:
            key = (spec.namespace, spec.name)
            if key in out:
                raise RuntimeError(f"{spec.qualname} is declared twice")
            out[key] = spec
    return out


#: Every implemented host function, by ``(namespace, name)``.
IMPLEMENTED: dict[tuple[str, str], HostFunctionSpec] = _implemented()


def define_all(linker: Linker) -> None:
    """Define WASI preview 1 and all 140 ``lunatic::*`` functions on ``linker``."""
    linker.define_wasi()
    missing = set(APPENDIX_A) - set(IMPLEMENTED)
    if missing:
        raise RuntimeError(f"host functions not implemented: {sorted(missing)}")
    extra = set(IMPLEMENTED) - set(APPENDIX_A)
    if extra:
        raise RuntimeError(f"host functions missing from Appendix A: {sorted(extra)}")
    for (namespace, name), sig in APPENDIX_A.items():
        spec = IMPLEMENTED[(namespace, name)]
        if spec.sig != sig:
            raise RuntimeError(f"{spec.qualname} is declared as {spec.sig}, Appendix A says {sig}")
        linker.define(namespace, name, sig, spec.handler, blocking=spec.blocking)
