"""Build the C guests of this directory to wasm32-wasi with the ``ziglang`` package.

Usage: ``python tests/lunatic_rs/build.py [NAME...]`` builds ``NAME.c`` (by
default ``suite.c`` and ``payloads.c``) into ``tests/lunatic_rs/build/NAME.wasm``
and prints the paths. The first zig build compiles wasi-libc and takes about
half a minute; later builds are cached by zig. Function pointers need no
extra linker flag: each guest calls its own table with ``call_indirect``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "build"
GUESTS = ("suite", "payloads")


class BuildError(Exception):
    """zig failed to compile a guest (the message holds its diagnostics)."""


def build(name: str, out_dir: pathlib.Path = OUT) -> pathlib.Path:
    """Compile ``<name>.c`` warning-free; return the path of the ``.wasm`` file."""
    src = HERE / f"{name}.c"
    if not src.is_file():
        raise BuildError(f"no guest named {name!r} ({src} does not exist)")
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{name}.wasm"
    partial = out_dir / f"{name}.{os.getpid()}.wasm"
    cmd = [
        sys.executable,
        "-m",
        "ziglang",
        "cc",
        "-target",
        "wasm32-wasi",
        "-O2",
        "-s",
        "-Wall",
        "-Werror",
        "-o",
        str(partial),
        str(src),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BuildError(f"compiling {src.name} failed:\n{result.stderr}")
    partial.replace(dst)  # atomically: a concurrent build never sees half a file
    return dst


def main(argv: list[str]) -> int:
    cwd = pathlib.Path.cwd()
    try:
        for name in argv or GUESTS:
            path = build(name)
            print(path.relative_to(cwd) if cwd in path.parents else path)
    except BuildError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
