"""lunatic's host ABI: one module per ``lunatic::*`` namespace.

* :mod:`hostapi.signatures` lists every import with its Wasm type;
* :mod:`hostapi.abi` says what a host function may return or raise;
* :mod:`hostapi.data` holds messages, configs and resource tables;
* :mod:`hostapi.protocols` says what host functions need from a process;
* :mod:`hostapi.ffi` is the only module that touches ctypes and wasmtime;
* :mod:`hostapi.linking` registers everything on the linker.
"""
