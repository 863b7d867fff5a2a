"""Build the C guests of this directory to wasm32-wasi with the ``ziglang`` package.

Usage: ``python tests/lunatic_rs/build.py [NAME...]`` builds ``NAME.c`` (by
default ``suite.c`` and ``payloads.c``) into ``tests/lunatic_rs/build/NAME.wasm``
and prints the paths. The first zig build compiles wasi-libc and takes about
half a minute; later builds are cached by zig. Function pointers need no
extra linker flag: each guest calls its own table with ``call_indirect``.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "build"
GUESTS = ("suite", "payloads")


def _examples_build() -> object:
    # the examples' build script holds the one zig invocation of the project
    path = HERE.parent.parent / "examples" / "build.py"
    spec = importlib.util.spec_from_file_location("lunatrio_examples_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_zig = _examples_build()
BuildError: type[Exception] = _zig.BuildError  # type: ignore[attr-defined]


def build(name: str, out_dir: pathlib.Path = OUT) -> pathlib.Path:
    """Compile ``<name>.c`` warning-free; return the path of the ``.wasm`` file."""
    src = HERE / f"{name}.c"
    if not src.is_file():
        raise BuildError(f"no guest named {name!r} ({src} does not exist)")
    dst = out_dir / f"{name}.wasm"
    _zig.compile_c(src, dst)  # type: ignore[attr-defined]
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
