"""The C examples build with zig and run (the README's demo among them)."""

from __future__ import annotations

import pathlib
import re
import socket
import sqlite3
import subprocess
import sys

import pytest

from .guests import lunatrio

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _build(name: str) -> pathlib.Path:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "build.py"), name],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return EXAMPLES / "build" / f"{name}.wasm"


@pytest.fixture(scope="module")
def demo_wasm() -> pathlib.Path:
    return _build("demo")


@pytest.fixture(scope="module")
def kv_wasm() -> pathlib.Path:
    return _build("kv")


def test_demo_prints_one_link_died_and_a_process_died_per_worker(demo_wasm: pathlib.Path) -> None:
    r = lunatrio("run", str(demo_wasm), timeout=60)
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


def _run_kv(
    wasm: pathlib.Path, directory: pathlib.Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/kv.c`` to its end with ``directory`` preopened."""
    return lunatrio("run", "--dir", str(directory), str(wasm), *args, timeout=60)


class _KvServer:
    """``examples/kv.c`` run by ``lunatrio run`` with ``directory`` preopened."""

    def __init__(self, wasm: pathlib.Path, directory: pathlib.Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "--dir", str(directory), str(wasm), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.fullmatch(r"kv: listening on 127\.0\.0\.1:(\d+)\n", first)
        assert match, first + self.process.communicate(timeout=30)[1]
        self.port = int(match[1])

    def connect(self) -> _KvClient:
        return _KvClient(socket.create_connection(("127.0.0.1", self.port), timeout=30))

    def wait(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


class _KvClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def __call__(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self.file.readline().decode().rstrip("\n")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_kv_example_serves_concurrent_clients_from_one_sqlite_database(
    kv_wasm: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    db = tmp_path / "kv.sqlite3"
    server = _KvServer(kv_wasm, tmp_path, "0", str(db))
    try:
        a, b, c = server.connect(), server.connect(), server.connect()
        assert a("SET colour blue") == "OK"
        assert b("SET shape round and smooth") == "OK"
        assert c("GET colour") == "VALUE blue"  # every session talks to one database
        assert a("GET shape") == "VALUE round and smooth"
        assert b("SET colour red") == "OK"
        assert c("GET colour") == "VALUE red"
        assert a("COUNT") == "COUNT 2"
        assert b("DEL shape") == "DELETED 1"
        assert b("DEL shape") == "DELETED 0"
        assert c("GET shape") == "NOT_FOUND"
        assert a("PING") == "ERR unknown command (SET, GET, DEL, COUNT, SHUTDOWN)"
        assert a("SET lonely") == "ERR usage: SET key value"
        b.close()  # a session ending alone leaves the others serving
        assert c("GET colour") == "VALUE red"
        assert a("SHUTDOWN") == "BYE"
        a.close()
        c.close()
    finally:
        status, out, err = server.wait()
    assert status == 0, err
    assert out.splitlines()[-1] == f"kv: {db} closed"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT key, value FROM kv").fetchall() == [("colour", "red")]
    # the data outlives the server
    again = _KvServer(kv_wasm, tmp_path, "0", str(db))
    client = again.connect()
    assert client("GET colour") == "VALUE red"
    assert client("SHUTDOWN") == "BYE"
    client.close()
    assert again.wait()[0] == 0


def test_kv_example_stops_with_the_reason_when_its_port_is_taken(
    kv_wasm: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _run_kv(kv_wasm, tmp_path, str(port))
    assert r.returncode == 1
    assert f"kv: cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
    # the acceptor's trap reached the database process through their link
    assert "Process 1 failed" in r.stderr and "linked process 2 exited" in r.stderr


def test_kv_example_may_open_databases_only_in_preopened_directories(
    kv_wasm: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    outside = tmp_path.parent / "elsewhere.sqlite3"
    r = _run_kv(kv_wasm, tmp_path, "0", str(outside))
    assert r.returncode == 1
    assert f"kv: cannot open the database: Failed to access '{outside}'" in r.stderr
    assert f"Permission to '{outside}' denied" in r.stderr
    assert not outside.exists()
