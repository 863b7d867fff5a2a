"""``lunatrio supervise TREE.toml [--events FILE.jsonl]``."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from .guests import lunatrio

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "tree"

WORKERS = (EXAMPLES / "workers.wat").read_text()


def supervise(tmp_path: pathlib.Path, toml: str, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "workers.wat").write_text(WORKERS)
    tree = tmp_path / "tree.toml"
    tree.write_text(toml)
    return lunatrio("supervise", str(tree), *extra)


def events(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_example_tree_runs_until_its_significant_job_ends(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "events.jsonl"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor",
            "supervise",
            str(EXAMPLES / "tree.toml"),
            "--events",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    es = events(log)
    assert all(
        set(e) == {"t", "event", "supervisor", "child", "pid", "reason", "detail"} for e in es
    )
    kinds = [e["event"] for e in es]
    assert kinds[-1] == "supervisor_stopped"
    assert es[-1]["detail"] == "auto_shutdown"
    assert {"child_started", "child_exited", "restart", "supervisor_started"} <= set(kinds)
    assert any(e["supervisor"] == "root/cache" for e in es)
    crashes = [e for e in es if e["event"] == "child_exited" and e["child"] == "flaky"]
    assert crashes and crashes[0]["reason"] == "failure"
    assert "unreachable" in str(crashes[0]["detail"])
    assert all(isinstance(e["t"], float) for e in es)


TWO_CRASHERS = """
[supervisor]
strategy = "one_for_one"
intensity = 1
period = 10

[[supervisor.children]]
id = "a"
module = "workers.wat"
entry = "flaky"
params = [10]

[[supervisor.children]]
id = "b"
module = "workers.wat"
entry = "server"
"""


def test_exceeding_the_root_intensity_exits_1(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "e.jsonl"
    r = supervise(tmp_path, TWO_CRASHERS, "--events", str(log))
    assert r.returncode == 1
    assert "restart intensity exceeded" in r.stderr
    es = events(log)
    assert [e["event"] for e in es][-3:] == [
        "intensity_exceeded",
        "child_exited",
        "supervisor_stopped",
    ]
    assert es[-1]["reason"] == "shutdown"


def test_ctrl_c_stops_the_tree_in_order_and_exits_0(tmp_path: pathlib.Path) -> None:
    (tmp_path / "workers.wat").write_text(WORKERS)
    tree = tmp_path / "tree.toml"
    tree.write_text(
        "[supervisor]\n"
        + "".join(
            f'[[supervisor.children]]\nid = "{n}"\nmodule = "workers.wat"\nentry = "server"\n'
            for n in ("one", "two", "three")
        )
    )
    log = tmp_path / "e.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "supervise", str(tree), "--events", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and "supervisor_started" in log.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    exits = [e["child"] for e in events(log) if e["event"] == "child_exited"]
    assert exits == ["three", "two", "one"]
    assert events(log)[-1]["detail"] == "interrupted"


def test_simple_one_for_one_starts_its_instances(tmp_path: pathlib.Path) -> None:
    toml = """
[supervisor]
strategy = "simple_one_for_one"
[[supervisor.children]]
id = "job"
module = "workers.wat"
entry = "job"
params = [5]
restart = "temporary"
instances = 3
"""
    (tmp_path / "workers.wat").write_text(WORKERS)
    (tmp_path / "tree.toml").write_text(toml)
    log = tmp_path / "e.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supervisor",
            "supervise",
            str(tmp_path / "tree.toml"),
            "--events",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count('"child_exited"') >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    es = events(log)
    assert sum(1 for e in es if e["event"] == "child_started") == 3
    assert sum(1 for e in es if e["event"] == "child_exited" and e["reason"] == "normal") == 3


SUP = "[supervisor]\n"
CHILD = '[[supervisor.children]]\nid = "a"\nmodule = "workers.wat"\n'
SERVER = CHILD + 'entry = "server"\n'
NESTED = '[[supervisor.children.children]]\nid = "w"\nmodule = "workers.wat"\nentry = "server"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[supervisor\nid = 1",
            "invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 12)",
        ),
        ("[other]\n", "supervisor: missing [supervisor] table"),
        (
            SUP + 'strategy = "all_for_one"\n',
            "supervisor.strategy: must be one of one_for_one, one_for_all, rest_for_one, "
            "simple_one_for_one (got 'all_for_one')",
        ),
        (SUP + "intensity = -1\n", "supervisor.intensity: must be an integer >= 0"),
        (SUP + "period = 0\n", "supervisor.period: must be an integer > 0"),
        (
            SUP + SERVER + 'restart = "often"\n',
            "supervisor.children[0].restart: must be one of permanent, transient, temporary "
            "(got 'often')",
        ),
        (
            SUP + '[[supervisor.children]]\nid = "a"\nmodule = "nothere.wat"\n',
            "supervisor.children[0].module: 'nothere.wat' not found",
        ),
        (
            SUP + CHILD + 'entry = "nope"\n',
            "supervisor.children[0].entry: workers.wat has no usable export 'nope'",
        ),
        (
            SUP + CHILD + 'entry = "flaky"\n',
            "supervisor.children[0].params: flaky takes 1 parameters (i32), got 0",
        ),
        (SUP + SERVER + 'retsart = "x"\n', "supervisor.children[0].retsart: unknown key"),
        (
            SUP
            + '[[supervisor.children]]\nid = "s"\ntype = "supervisor"\n'
            + NESTED
            + "shutdown = -10\n",
            "supervisor.children[0].children[0].shutdown: must be seconds >= 0, "
            '"brutal_kill" or "infinity" (got -10)',
        ),
        (SUP + SERVER + SERVER, "supervisor.children[1].id: duplicate child id 'a'"),
        (
            SUP
            + CHILD
            + 'entry = "job"\nparams = [1]\nrestart = "transient"\nsignificant = true\n',
            "supervisor.children[0].significant: needs auto_shutdown any_significant "
            "or all_significant",
        ),
        (
            SUP
            + 'strategy = "simple_one_for_one"\n'
            + CHILD
            + 'entry = "job"\nparams = [1]\nrestart = "transient"\nsignificant = true\n',
            "supervisor.children[0].significant: needs auto_shutdown any_significant "
            "or all_significant",
        ),
        (
            SUP + 'strategy = "simple_one_for_one"\n',
            "supervisor.children: a simple_one_for_one supervisor has exactly one child spec "
            "(got 0)",
        ),
    ],
)
def test_a_bad_tree_prints_one_clear_line_naming_the_key_and_exits_2(
    tmp_path: pathlib.Path, toml: str, message: str
) -> None:
    r = supervise(tmp_path, toml)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_tree_file_exits_2(tmp_path: pathlib.Path) -> None:
    r = lunatrio("supervise", str(tmp_path / "none.toml"), timeout=60)
    assert r.returncode == 2
    assert "not found" in r.stderr


def test_an_unwritable_events_file_exits_2(tmp_path: pathlib.Path) -> None:
    r = supervise(
        tmp_path, TWO_CRASHERS, "--events", os.path.join(str(tmp_path), "no", "dir.jsonl")
    )
    assert r.returncode == 2
    assert "--events" in r.stderr
