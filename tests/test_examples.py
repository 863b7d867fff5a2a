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


async def test_the_python_supervision_example_restarts_and_stops_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("supervise_example", EXAMPLES / "supervise.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    await example.main(0.7)
    lines = capsys.readouterr().out.splitlines()
    assert any("restart" in line and "flaky (failure)" in line for line in lines)
    stops = [line.split()[-2] for line in lines if "child_exited" in line and "(shutdown)" in line]
    assert stops[-3:] == ["cache", "flaky", "api"]
    assert lines[-1].split()[1:] == ["root", "supervisor_stopped", "-", "(shutdown)"]
