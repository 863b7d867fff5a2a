"""Running a lunatic test build, and reporting as libtest does.

Every selected test runs as the root process of its own environment (id 0,
with its own registry), with every permission, the trailing arguments as its
WASI arguments, the host's environment variables and the preopened
directories (HOSTAPI.md section 1.13). Tests run concurrently, as in lunatic;
``threads`` limits how many run at once. A test's stdout and stderr go to one
capture stream, and the processes it spawns write to new streams of the same
group (section 3.7 and correction 2). When a test's root process ends, the
processes it leaves behind are killed silently, and a test that runs longer
than ``timeout`` seconds fails.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Final, TextIO

import trio

from hostapi import ffi
from hostapi.data import ProcessConfig

from ._capture import CaptureGroup
from ._exit import Exit, ExitReason
from ._runtime import Runtime
from ._test_cases import Status, TestCase, Verdict, judge

__all__ = ["LibtestReport", "Summary", "TestOptions", "TestResult", "run_tests"]

DEFAULT_TIMEOUT = 120.0
_COLORS: Final = {Status.OK: "\x1b[32m", Status.FAILED: "\x1b[31m", Status.IGNORED: "\x1b[33m"}


@dataclass(frozen=True)
class TestOptions:
    """How to run the tests.

    ``threads`` is how many tests may run at once (0: all of them);
    ``timeout`` is each test's limit in seconds (0: none); ``echo`` receives
    the tests' output as it is written when ``nocapture`` is set.
    """

    args: Sequence[str] = ()
    dirs: Sequence[str] = ()
    nocapture: bool = False
    show_output: bool = False
    threads: int = 0
    timeout: float = DEFAULT_TIMEOUT
    echo: BinaryIO | None = None


@dataclass(frozen=True)
class TestResult:
    """A finished (or ignored) test: its verdict and everything it printed."""

    case: TestCase
    verdict: Verdict
    output: str = ""
    exit: Exit | None = None


@dataclass
class Summary:
    """The counts of libtest's last line."""

    passed: int = 0
    failed: int = 0
    ignored: int = 0
    filtered_out: int = 0
    elapsed: float = 0.0
    results: list[TestResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0


class LibtestReport:
    """Writes libtest's output: the test count, a line per test as it
    finishes, the failures with their captured output, the summary line."""

    def __init__(self, out: TextIO, *, color: bool | None = None, show_output: bool = False):
        self.out = out
        self.color = out.isatty() if color is None else color
        self.show_output = show_output

    def _line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _status(self, status: Status) -> str:
        if not self.color:
            return status.value
        return f"{_COLORS[status]}{status.value}\x1b[0m"

    def running(self, n: int) -> None:
        self._line()
        self._line(f"running {n} test{'' if n == 1 else 's'}")

    def result(self, r: TestResult) -> None:
        panics = " - should panic" if r.case.should_panic is not None else ""
        self._line(f"test {r.case.name}{panics} ... {self._status(r.verdict.status)}")

    def _outputs(self, title: str, results: Sequence[TestResult]) -> None:
        self._line()
        self._line(f"{title}:")
        for r in results:
            text = r.output
            if text and not text.endswith("\n"):
                text += "\n"
            if r.verdict.note:
                text += r.verdict.note + "\n"
            if text:
                self._line()
                self._line(f"---- {r.case.name} stdout ----")
                self.out.write(text)
        self._line()
        self._line(f"{title}:")
        for r in results:
            self._line(f"    {r.case.name}")

    def finish(self, summary: Summary) -> None:
        if self.show_output:
            self._outputs(
                "successes", [r for r in summary.results if r.verdict.status is Status.OK]
            )
        failures = [r for r in summary.results if r.verdict.status is Status.FAILED]
        if failures:
            self._outputs("failures", failures)
        verdict = self._status(Status.OK if summary.ok else Status.FAILED)
        self._line()
        self._line(
            f"test result: {verdict}. {summary.passed} passed; {summary.failed} failed; "
            f"{summary.ignored} ignored; 0 measured; {summary.filtered_out} filtered out; "
            f"finished in {summary.elapsed:.2f}s"
        )
        self._line()


async def run_tests(
    runtime: Runtime,
    module: ffi.Module,
    cases: Sequence[TestCase],
    options: TestOptions,
    report: LibtestReport,
    *,
    filtered_out: int = 0,
) -> Summary:
    """Run ``cases`` (reporting ignored ones at once) and report every result."""
    began = time.perf_counter()
    summary = Summary(filtered_out=filtered_out)

    def record(r: TestResult) -> None:
        summary.results.append(r)
        status = r.verdict.status
        if status is Status.IGNORED:
            summary.ignored += 1
        elif status is Status.OK:
            summary.passed += 1
        else:
            summary.failed += 1
        report.result(r)

    report.running(len(cases))
    for case in cases:
        if case.ignored:
            record(TestResult(case, Verdict(Status.IGNORED)))
    limiter = trio.CapacityLimiter(options.threads or math.inf)
    config = ProcessConfig.for_test(options.args, options.dirs)

    async def one(case: TestCase) -> None:
        async with limiter:
            record(await run_test(runtime, module, case, config, options))

    async with trio.open_nursery() as nursery:
        for case in cases:
            if not case.ignored:
                nursery.start_soon(one, case)
    summary.elapsed = time.perf_counter() - began
    report.finish(summary)
    return summary


async def run_test(
    runtime: Runtime,
    module: ffi.Module,
    case: TestCase,
    config: ProcessConfig,
    options: TestOptions,
) -> TestResult:
    """Run one test as the root of a new environment and judge it."""
    environment = runtime.new_environment(0)
    group = CaptureGroup(echo=options.echo if options.nocapture else None)
    own = group.new_stream()
    exit: Exit | None = None
    try:
        root = await runtime.spawn(
            module, case.export, config=config, environment=environment, stdout=own, stderr=own
        )
    except Exception as e:  # instantiation failed or the export is not an entry
        exit = Exit(ExitReason.FAILURE, f"cannot start the test: {e}")
        verdict = Verdict(Status.FAILED, f"note: {exit.detail}")
    else:
        with trio.move_on_after(options.timeout or math.inf):
            exit = await root.wait()
        if exit is None:
            exit = Exit(ExitReason.KILLED, f"timed out after {options.timeout:g} s")
            verdict = Verdict(
                Status.FAILED,
                f"note: the test did not finish within {options.timeout:g} s and was killed "
                "(lunatrio's per-test limit, see --timeout)",
            )
        else:
            verdict = judge(case, exit, own.text())
    await runtime.abandon(environment)
    output = "" if options.nocapture else group.text()
    return TestResult(case, verdict, output, exit)


def stdout_echo() -> BinaryIO:
    """Where ``--nocapture`` echoes the tests' output."""
    return sys.stdout.buffer
