"""The data a process owns: messages, configurations and resource tables.

These are plain Python objects shared by the host functions and the runtime.
Their semantics are HOSTAPI.md's: sections 3 (resources and configs) and 4
(messages).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Final, Generic, TypeVar

from .abi import MASK32
from .signatures import ValType

__all__ = [
    "DATA",
    "LINK_DIED",
    "PROCESS_DIED",
    "DataMessage",
    "LinkDied",
    "Message",
    "ObjectMessage",
    "ProcessConfig",
    "ProcessDied",
    "ResourceTable",
    "SpawnRequest",
]

#: ``receive``'s return code for each kind of message (section 4.6).
DATA: Final = 0
LINK_DIED: Final = 1
PROCESS_DIED: Final = 2
#: Python-only messages (:class:`ObjectMessage`); never returned to a guest.
OBJECT: Final = 3


class DataMessage:
    """A data message: a tag (0 = none), bytes, a read cursor and resource slots.

    ``resources`` holds ``(kind, resource)`` pairs; a taken slot becomes
    ``None``. Resources are pushed by index (``push_*``) and moved or copied
    as section 4.7 says.
    """

    __slots__ = ("buffer", "pos", "resources", "tag")
    kind: Final = DATA

    def __init__(self, tag: int = 0, data: bytes | bytearray = b"") -> None:
        self.tag = tag
        self.buffer = bytearray(data)
        self.pos = 0
        self.resources: list[tuple[str, Any] | None] | None = None

    @property
    def data(self) -> bytes:
        """The message's bytes."""
        return bytes(self.buffer)

    def __repr__(self) -> str:
        return f"DataMessage(tag={self.tag}, data={bytes(self.buffer)!r})"


class LinkDied:
    """A linked process ended abnormally while links are caught (section 4.6).

    Guests see only ``tag``. ``pid`` and ``exit`` (the runtime's exit record)
    are for Python code, such as supervisors, that needs the real reason.
    """

    __slots__ = ("exit", "pid", "tag")
    kind: Final = LINK_DIED

    def __init__(self, tag: int, pid: int = 0, exit: object = None) -> None:
        self.tag = tag
        self.pid = pid
        self.exit = exit

    def __repr__(self) -> str:
        return f"LinkDied(tag={self.tag}, pid={self.pid}, exit={self.exit!r})"


class ProcessDied:
    """A monitored process ended, for any reason; never tagged."""

    __slots__ = ("exit", "pid")
    kind: Final = PROCESS_DIED
    tag: Final = 0

    def __init__(self, pid: int, exit: object = None) -> None:
        self.pid = pid
        self.exit = exit

    def __repr__(self) -> str:
        return f"ProcessDied(pid={self.pid}, exit={self.exit!r})"


class ObjectMessage:
    """A Python object sent from Python code to a Python process.

    It never reaches a Wasm process: guests only ever see the three kinds of
    message above (``receive`` must only return 0, 1 or 2).
    """

    __slots__ = ("tag", "value")
    kind: Final = OBJECT

    def __init__(self, value: object, tag: int = 0) -> None:
        self.value = value
        self.tag = tag

    def __repr__(self) -> str:
        return f"ObjectMessage({self.value!r}, tag={self.tag})"


Message = DataMessage | LinkDied | ProcessDied | ObjectMessage


class ProcessConfig:
    """A process configuration (HOSTAPI.md section 3.4).

    The defaults are those of ``create_config()``: 4 GiB - 1 of memory,
    unlimited fuel, no permissions and an empty WASI context. ``max_fuel``
    counts units of 100 000 instructions, 0 meaning unlimited. ``preopens``
    holds ``(guest name, host path)`` pairs.

    A config is copied when a process is spawned with it; the copy a process
    runs with is never changed afterwards.
    """

    __slots__ = (
        "_wasi",
        "args",
        "can_compile_modules",
        "can_create_configs",
        "can_spawn_processes",
        "env",
        "max_fuel",
        "max_memory",
        "preopens",
    )

    def __init__(
        self,
        *,
        max_memory: int = MASK32,
        max_fuel: int = 0,
        can_compile_modules: bool = False,
        can_create_configs: bool = False,
        can_spawn_processes: bool = False,
        args: Sequence[str] = (),
        env: Sequence[tuple[str, str]] = (),
        preopens: Sequence[tuple[str, str]] = (),
    ) -> None:
        if max_memory < 0 or max_fuel < 0:
            raise ValueError("max_memory and max_fuel must not be negative")
        self.max_memory = max_memory
        self.max_fuel = max_fuel
        self.can_compile_modules = can_compile_modules
        self.can_create_configs = can_create_configs
        self.can_spawn_processes = can_spawn_processes
        self.args = list(args)
        self.env = list(env)
        self.preopens = list(preopens)
        self._wasi: Any = None

    @classmethod
    def privileged(cls, **overrides: Any) -> ProcessConfig:
        """Every permission granted, as for lunatic's root process."""
        base: dict[str, Any] = dict(
            can_compile_modules=True, can_create_configs=True, can_spawn_processes=True
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def for_run(cls, program: str, args: Sequence[str], dirs: Sequence[str] = ()) -> ProcessConfig:
        """The root config of ``lunatic run`` (HOSTAPI.md section 1.13): WASI
        arguments ``[basename of program, *args]``."""
        return cls._root([os.path.basename(program), *args], dirs)

    @classmethod
    def for_test(cls, args: Sequence[str], dirs: Sequence[str] = ()) -> ProcessConfig:
        """The config of every test of the test mode (section 1.13): as for
        ``run``, but the WASI arguments are only ``args``."""
        return cls._root(list(args), dirs)

    @classmethod
    def _root(cls, args: list[str], dirs: Sequence[str]) -> ProcessConfig:
        # every permission, the host's environment, "." and each HOST[:GUEST] preopened
        preopens = [(".", ".")]
        for d in dirs:
            host, _, guest = d.partition(":")
            preopens.append((guest or host, host))
        return cls.privileged(args=args, env=sorted(os.environ.items()), preopens=preopens)

    def copy(self) -> ProcessConfig:
        """An independent copy (what a spawn hands to the child)."""
        return ProcessConfig(
            max_memory=self.max_memory,
            max_fuel=self.max_fuel,
            can_compile_modules=self.can_compile_modules,
            can_create_configs=self.can_create_configs,
            can_spawn_processes=self.can_spawn_processes,
            args=self.args,
            env=self.env,
            preopens=self.preopens,
        )

    def add_env(self, key: str, value: str) -> None:
        self.env.append((key, value))
        self._wasi = None

    def add_arg(self, arg: str) -> None:
        self.args.append(arg)
        self._wasi = None

    def add_preopen(self, guest: str, host: str) -> None:
        self.preopens.append((guest, host))
        self._wasi = None

    @property
    def fuel(self) -> int | None:
        """The wasmtime fuel budget, or ``None`` for unlimited."""
        return self.max_fuel * 100_000 if self.max_fuel else None

    def __repr__(self) -> str:
        perms = "".join(
            c
            for c, on in (
                ("C", self.can_compile_modules),
                ("K", self.can_create_configs),
                ("S", self.can_spawn_processes),
            )
            if on
        )
        return (
            f"ProcessConfig(max_memory={self.max_memory}, max_fuel={self.max_fuel}, "
            f"perms={perms or '-'}, args={self.args!r}, preopens={self.preopens!r})"
        )


T = TypeVar("T")


class ResourceTable(Generic[T]):
    """Per-process, per-kind table: ids count from 0 and are never reused."""

    __slots__ = ("_items", "_next")

    def __init__(self) -> None:
        self._items: dict[int, T] = {}
        self._next = 0

    def add(self, item: T) -> int:
        rid = self._next
        self._next = rid + 1
        self._items[rid] = item
        return rid

    def get(self, rid: int) -> T | None:
        return self._items.get(rid)

    def remove(self, rid: int) -> T | None:
        return self._items.pop(rid, None)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items.values()))

    def clear(self) -> list[T]:
        """Empty the table, returning what it held."""
        items = list(self._items.values())
        self._items.clear()
        return items


class SpawnRequest:
    """A validated spawn (HOSTAPI.md section 1.3, steps 1-10).

    ``params`` are ``(type, value)`` pairs decoded from the 17-byte records;
    ``link`` is the tag of a link to the parent (0: no link).
    """

    __slots__ = ("config", "entry", "link", "module", "params", "pid")

    def __init__(
        self,
        *,
        pid: int,
        config: ProcessConfig,
        module: Any,
        entry: str,
        params: Sequence[tuple[ValType, int]],
        link: int,
    ) -> None:
        self.pid = pid
        self.config = config
        self.module = module
        self.entry = entry
        self.params = tuple(params)
        self.link = link
