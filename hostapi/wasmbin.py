"""Reads a module's imports and exported function types from its binary.

wasmtime's ``wasm.h`` type API aborts the whole process on a ``v128`` value
type, and lunatic's spawn passes ``v128`` parameters, so export signatures are
read from the binary instead. Only the type, import, function and export
sections are decoded; the module has already been validated by wasmtime.
"""

from __future__ import annotations

from typing import NamedTuple

from .signatures import FuncSig, ValType

__all__ = ["ModuleInfo", "read_module_info"]

_VALTYPES = {
    0x7F: ValType.I32,
    0x7E: ValType.I64,
    0x7D: ValType.F32,
    0x7C: ValType.F64,
    0x7B: ValType.V128,
}


class ModuleInfo(NamedTuple):
    """What the runtime needs to know about a module before spawning from it.

    ``functions`` maps each exported function to its signature, or to
    ``None`` when its type uses reference types (a spawn cannot call it).
    """

    imports: tuple[tuple[str, str], ...]
    functions: dict[str, FuncSig | None]
    exports: dict[str, str]


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self, signed: bool = False) -> int:
        """A LEB128 integer, unsigned unless ``signed``."""
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if signed and b & 0x40:
                    result -= 1 << shift
                return result

    def name(self) -> str:
        n = self.uleb()
        s = self.data[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def valtype(self) -> ValType | None:
        b = self.byte()
        if b in _VALTYPES:
            return _VALTYPES[b]
        if b in (0x63, 0x64):  # (ref null? heaptype)
            self.uleb(signed=True)
        return None  # a reference type

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 1:
            self.uleb()
        if flags & 8:
            self.uleb()


def read_module_info(wasm: bytes) -> ModuleInfo:
    """Decode imports and exported function signatures of a valid module."""
    r = _Reader(wasm, 8)
    types: list[FuncSig | None] = []
    func_types: list[int] = []
    imports: list[tuple[str, str]] = []
    exports: dict[str, str] = {}
    functions: dict[str, FuncSig | None] = {}
    while r.pos < len(wasm):
        section = r.byte()
        size = r.uleb()
        end = r.pos + size
        if section == 1:
            for _ in range(r.uleb()):
                types.append(_functype(r))
        elif section == 2:
            for _ in range(r.uleb()):
                module, field = r.name(), r.name()
                imports.append((module, field))
                kind = r.byte()
                if kind == 0x00:
                    func_types.append(r.uleb())
                elif kind == 0x01:
                    r.valtype()
                    r.limits()
                elif kind == 0x02:
                    r.limits()
                elif kind == 0x03:
                    r.valtype()
                    r.byte()
                elif kind == 0x04:
                    r.byte()
                    r.uleb()
        elif section == 3:
            for _ in range(r.uleb()):
                func_types.append(r.uleb())
        elif section == 7:
            for _ in range(r.uleb()):
                name = r.name()
                kind = r.byte()
                index = r.uleb()
                exports[name] = ("func", "table", "memory", "global", "tag")[kind]
                if kind == 0x00:
                    t = func_types[index] if index < len(func_types) else None
                    functions[name] = types[t] if t is not None and t < len(types) else None
        r.pos = end
    return ModuleInfo(tuple(imports), functions, exports)


def _functype(r: _Reader) -> FuncSig | None:
    form = r.byte()
    if form != 0x60:
        raise ValueError(f"unsupported type form 0x{form:02x}")
    params = [r.valtype() for _ in range(r.uleb())]
    results = [r.valtype() for _ in range(r.uleb())]
    if None in params or None in results:
        return None
    return FuncSig(tuple(params), tuple(results))  # type: ignore[arg-type]
