"""The local stack as a subprocess (``python -m bench.stackproc``, i.e. ``python -m devstack``
plus extra users' tokens), on free ports, and the readings a benchmark takes of it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Report
from devstack.launcher import StackError, StackProcess

READY_TIMEOUT_S = 120.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TICK_START = '{"event":"tick"'
FIRED = re.compile(r"fired \S+ \(at \+(-?[0-9.]+) s\) -> \S+ (\{.*\})")


@dataclass
class ProcSample:
    at: float
    cpu_s: float
    rss_kib: int
    threads: int


def _descendants(pid: int) -> list[int]:
    """The process and its children, recursively (the stack and its moto server process)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending += [int(child) for child in task.read_text().split()]
    return found


def _one_sample(pid: int) -> tuple[float, int, int]:
    with open(f"/proc/{pid}/stat") as handle:
        raw = handle.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    rss = threads = 0
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return cpu, rss, threads


def proc_sample(pid: int) -> ProcSample:
    """CPU seconds (user + system), resident memory and threads of a process and its children
    (the stack runs moto in a child with `--moto-process`), from /proc."""
    cpu, rss, threads = 0.0, 0, 0
    for member in _descendants(pid):
        with contextlib.suppress(OSError, ValueError):
            c, r, t = _one_sample(member)
            cpu, rss, threads = cpu + c, rss + r, threads + t
    return ProcSample(time.monotonic(), cpu, rss, threads)


def peak_rss_kib(pid: int) -> int:
    total = 0
    for member in _descendants(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


@dataclass
class LocalStack:
    """The stack through the launcher the e2e tests share (`devstack.launcher.StackProcess`: its
    directory, log paths, start, ready and stop), wrapped by `bench.stackproc` (extra users'
    tokens, the Lambda log)."""

    users: int = 1
    lambda_workers: int = 128
    extra: list[str] = field(default_factory=list)
    endpoints: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-stack-")))
    launcher: StackProcess = field(init=False)

    def __post_init__(self) -> None:
        self.launcher = StackProcess(
            self.directory,
            module="bench.stackproc",
            args=[
                "--tokens-file",
                str(self.tokens_file),
                "--users",
                str(self.users),
                "--lambda-log",
                str(self.lambda_log),
                "--lambda-workers",
                str(self.lambda_workers),
                # moto on the machine's other core (devstack/moto_server.py).
                "--moto-process",
                *self.extra,
            ],
            ready_timeout_s=READY_TIMEOUT_S,
            ready=self.tokens_file.exists,
        )

    @property
    def stdout_path(self) -> Path:
        return self.launcher.stdout_path

    @property
    def stderr_path(self) -> Path:
        return self.launcher.stderr_path

    @property
    def lambda_log(self) -> Path:
        return self.directory / "lambdas.jsonl"

    @property
    def tokens_file(self) -> Path:
        return self.directory / "tokens.json"

    @property
    def pid(self) -> int:
        return self.launcher.pid

    def start(self) -> LocalStack:
        self.endpoints = self.launcher.start()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"  (local stack pid {self.pid}; logs kept in {self.directory})", flush=True)
        self.tokens = json.loads(self.tokens_file.read_text())
        return self

    def stop(self) -> None:
        """Stop the stack if it runs (the launcher forgets a stopped process)."""
        with contextlib.suppress(StackError):  # a heavy run may take long to wind down
            self.launcher.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- the emulator's admin API -------------------------------------------------------

    def emulator(self, path: str, body: Any = None) -> Any:
        url = self.endpoints["anthropicUrl"] + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def configure_emulator(self, **changes: Any) -> None:
        self.emulator("/_emulator/config", changes)

    # --- logs ---------------------------------------------------------------------------

    def ticks(self) -> list[dict[str, Any]]:
        """The app's warm tick log lines (JSON, on the stack's stdout)."""
        # Threads share stdout: a tick line may be glued to a Powertools metrics line.
        decoder = json.JSONDecoder()
        ticks = []
        text = self.stdout_path.read_text(errors="replace")
        position = text.find(TICK_START)
        while position >= 0:
            try:
                tick, end = decoder.raw_decode(text, position)
            except ValueError:
                end = position + len(TICK_START)
            else:
                ticks.append(tick)
            position = text.find(TICK_START, end)
        return ticks

    def fired(self) -> list[tuple[float, dict[str, Any]]]:
        """Every schedule the scheduler runner fired: (seconds after its at(), its payload)."""
        fired = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            match = FIRED.search(line)
            if match:
                try:
                    payload = json.loads(match.group(2))
                except ValueError:
                    payload = {}
                fired.append((float(match.group(1)), payload))
        return fired

    def lambda_runs(self) -> list[dict[str, Any]]:
        if not self.lambda_log.exists():
            return []
        return [json.loads(line) for line in self.lambda_log.read_text().splitlines() if line]


def run_on_stack(
    name: str,
    users: int,
    body: Callable[[LocalStack, Report, int], None],
    stack: LocalStack | None,
    user_offset: int,
) -> Report:
    """Run `body` on the given (shared) stack, or on a stack of its own started for it."""
    report = Report(name)
    if stack is None:
        with LocalStack(users=users) as own:
            body(own, report, 0)
    else:
        body(stack, report, user_offset)
    return report
