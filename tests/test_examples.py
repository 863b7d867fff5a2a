"""The C examples build with zig and run (the README's demo among them)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def demo_wasm() -> pathlib.Path:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "build.py"), "demo"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return EXAMPLES / "build" / "demo.wasm"


def test_demo_prints_one_link_died_and_a_process_died_per_worker(demo_wasm: pathlib.Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "supervisor", "run", str(demo_wasm)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "root: LinkDied, tag 102: worker 2 failed" in lines
    died = sorted(
        int(m.group(1))
        for line in lines
        if (m := re.match(r"root: ProcessDied, process (\d+)", line))
    )
    assert died == [2, 3, 4, 5]
    # the crash is reported before its ProcessDied, the root finishes last
    assert lines.index("root: LinkDied, tag 102: worker 2 failed") < lines.index(
        "root: ProcessDied, process 4"
    )
    assert lines[-1] == "root: all 4 workers are gone"
    assert "Process 4 failed, notifying: 1 links" in r.stderr
