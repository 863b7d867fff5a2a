"""Build the C examples to wasm32-wasi with the ``ziglang`` package.

Usage: ``python examples/build.py [NAME...]`` builds ``examples/NAME.c`` (all
of them by default) into ``examples/build/NAME.wasm`` and prints the paths.
The first build compiles wasi-libc and takes about half a minute; later
builds are cached by zig.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "build"


class BuildError(Exception):
    """zig could not compile a C file (the message holds its diagnostics)."""


def compile_c(src: pathlib.Path, dst: pathlib.Path) -> None:
    """Compile ``src`` warning-free to the wasm32-wasi module ``dst``.

    The module is written under a temporary name first, so a concurrent
    build never sees half a file.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f"{dst.stem}.{os.getpid()}.partial")
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
    partial.replace(dst)


def build(name: str) -> pathlib.Path:
    """Compile ``examples/<name>.c``; return the path of the ``.wasm`` file."""
    src = HERE / f"{name}.c"
    if not src.is_file():
        raise SystemExit(f"build.py: no example named {name!r} ({src} does not exist)")
    dst = OUT / f"{name}.wasm"
    try:
        compile_c(src, dst)
    except BuildError as e:
        raise SystemExit(f"build.py: {e}") from None
    return dst


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("*.c"))
    cwd = pathlib.Path.cwd()
    for name in names:
        path = build(name)
        print(path.relative_to(cwd) if cwd in path.parents else path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
