"""The local stack as a subprocess on free ports: the one launcher the end-to-end tests and the
benchmarks share.

It runs ``python -m devstack`` (or a module wrapping it, such as ``bench.stackproc``) exactly as
``make up`` does, so start-up, signal handling and the exit code are exercised too; waits for the
line ``ready`` on its stdout; and stops it with SIGTERM (then SIGKILL after a bounded wait). The
real Anthropic API is never used: ``ANTHROPIC_API_KEY``/``ANTHROPIC_BASE_URL`` are dropped from
the child's environment, so a developer's key is never spent by a test or a benchmark.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.ports import PORT_FLAGS, free_ports

PROJECT_DIR = Path(__file__).resolve().parents[1]


class StackError(RuntimeError):
    pass


class StackProcess:
    def __init__(
        self,
        directory: Path,
        *,
        module: str = "devstack",
        args: list[str] | None = None,
        ready_timeout_s: float = 90.0,
        stop_timeout_s: float = 30.0,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.directory = directory
        self.module = module
        self.args = list(args or [])
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.extra_ready = ready
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoints: dict[str, Any] = {}

    @property
    def endpoints_file(self) -> Path:
        return self.directory / "endpoints.json"

    @property
    def stdout_path(self) -> Path:
        return self.directory / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.directory / "stderr.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def tail(self, lines: int = 40) -> str:
        def last(path: Path) -> str:
            try:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            except OSError:
                return ""

        return f"{last(self.stdout_path)}\n{last(self.stderr_path)}"

    def start(self) -> dict[str, Any]:
        """Start the stack and wait until it is ready; returns its endpoints."""
        command = [sys.executable, "-m", self.module, *self.args]
        command += ["--endpoints-file", str(self.endpoints_file)]
        for flag, port in zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True):
            command += [flag, str(port)]
        env = dict(os.environ)
        env.pop("ANTHROPIC_API_KEY", None)
        env.pop("ANTHROPIC_BASE_URL", None)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_DIR, stdout=out, stderr=err, env=env
            )
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                raise StackError(f"the stack did not become ready (exit {code}):\n{self.tail()}")
            time.sleep(0.1)
        self.endpoints = json.loads(self.endpoints_file.read_text())
        return self.endpoints

    def _ready(self) -> bool:
        lines = self.stdout_path.read_text(errors="replace").splitlines()
        return "ready" in lines and (self.extra_ready is None or self.extra_ready())

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after the stop timeout; returns the exit code (None if it was
        not running). Raises StackError when SIGTERM did not stop it."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                raise StackError(
                    f"the stack did not stop within {self.stop_timeout_s:.0f} s of SIGTERM"
                ) from None
        return process.returncode
