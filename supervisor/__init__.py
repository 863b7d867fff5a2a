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

from hostapi.data import (
    DataMessage,
    LinkDied,
    Message,
    ObjectMessage,
    ProcessConfig,
    ProcessDied,
)
from hostapi.ffi import Module
from hostapi.protocols import SpawnError

from ._capture import CaptureGroup, CaptureStream
from ._engine import CompileError
from ._environment import Environment
from ._events import SupervisorEvent
from ._exit import Exit, ExitReason
from ._handle import ProcessHandle
from ._python import Context, ProcessExit
from ._runtime import Runtime, open_runtime
from ._specs import (
    BRUTAL_KILL,
    INFINITY,
    ChildSpec,
    ChildSpecError,
    PythonChild,
    SupervisorChild,
    SupervisorFlags,
    SupervisorFlagsError,
    WasmChild,
)
from ._supervisor import (
    AlreadyPresent,
    AlreadyStarted,
    ChildCounts,
    ChildInfo,
    NoProc,
    NotFound,
    Restarting,
    Running,
    SimpleOneForOne,
    StartFailed,
    Supervisor,
    SupervisorError,
    open_supervisor,
    run_supervisor,
    start_supervisor,
)

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "AlreadyPresent",
    "AlreadyStarted",
    "CaptureGroup",
    "CaptureStream",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildSpecError",
    "CompileError",
    "Context",
    "DataMessage",
    "Environment",
    "Exit",
    "ExitReason",
    "LinkDied",
    "Message",
    "Module",
    "NoProc",
    "NotFound",
    "ObjectMessage",
    "ProcessConfig",
    "ProcessDied",
    "ProcessExit",
    "ProcessHandle",
    "PythonChild",
    "Restarting",
    "Running",
    "Runtime",
    "SimpleOneForOne",
    "SpawnError",
    "StartFailed",
    "Supervisor",
    "SupervisorChild",
    "SupervisorError",
    "SupervisorEvent",
    "SupervisorFlags",
    "SupervisorFlagsError",
    "WasmChild",
    "open_runtime",
    "open_supervisor",
    "run_supervisor",
    "start_supervisor",
]

_logging.getLogger(__name__).addHandler(_logging.NullHandler())
