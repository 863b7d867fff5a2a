"""lunatrio: lunatic's WebAssembly processes on Trio, with Erlang-style supervision.

The public API::

    async with supervisor.open_runtime() as rt:
        module = rt.load_module("guest.wat")          # or rt.compile_module(wat_or_wasm)
        worker = await rt.spawn(module, "main", [1])  # a Wasm process
        helper = await rt.spawn_python(my_fn, "arg")  # a Python process: my_fn(ctx, "arg")
        rt.send(worker.id, b"hello", tag=7)
        exit = await worker.wait()                    # Exit(reason, detail)

See the README for the process model and the CLI.
"""

from __future__ import annotations

import logging as _logging

from hostapi.data import DataMessage, LinkDied, Message, ProcessConfig, ProcessDied
from hostapi.ffi import Module
from hostapi.protocols import SpawnError

from ._capture import CaptureGroup, CaptureStream
from ._engine import CompileError
from ._environment import Environment
from ._exit import Exit, ExitReason
from ._handle import ProcessHandle
from ._python import Context
from ._runtime import Runtime, open_runtime

__all__ = [
    "CaptureGroup",
    "CaptureStream",
    "CompileError",
    "Context",
    "DataMessage",
    "Environment",
    "Exit",
    "ExitReason",
    "LinkDied",
    "Message",
    "Module",
    "ProcessConfig",
    "ProcessDied",
    "ProcessHandle",
    "Runtime",
    "SpawnError",
    "open_runtime",
]

_logging.getLogger(__name__).addHandler(_logging.NullHandler())
