"""The whole local stack as a subprocess, shared by the end-to-end tests of one session.

It runs ``python -m devstack`` exactly as ``make up`` does (so start-up, signal handling and the
exit code are tested too), on free ports so it never collides with a developer's own stack, with
the scheduler's AWS jitter on (intervals under 150 s go by direct invoke anyway).

Two cores are plenty for one stack but not for several timing-sensitive ones: every e2e test is
marked ``xdist_group("devstack")``, and ``make test`` must pass ``--dist loadgroup`` so pytest-xdist
runs the whole group in one worker, against one stack. Without it each worker that gets an e2e test
starts its own stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.ports import PORT_FLAGS, free_ports

PROJECT_DIR = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the whole local stack (python -m devstack)")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The endpoints of a running stack (``.devstack/endpoints.json``'s content), plus
    ``stdoutLog``/``stderrLog``: paths of the stack's output (stdout has the warm tick lines)."""
    directory = tmp_path_factory.mktemp("devstack")
    endpoints_file = directory / "endpoints.json"
    stdout_path, stderr_path = directory / "stdout.log", directory / "stderr.log"
    command = [sys.executable, "-m", "devstack", "--endpoints-file", str(endpoints_file)]
    for flag, port in zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True):
        command += [flag, str(port)]
    env = dict(os.environ)
    # Always the emulator: a developer's real key must not be spent by the test suite.
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("ANTHROPIC_BASE_URL", None)
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=stdout, stderr=stderr, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "ready" not in stdout_path.read_text(errors="replace").splitlines():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the stack did not become ready (exit code {process.poll()}):\n"
                    f"{_tail(stdout_path)}\n{_tail(stderr_path)}"
                )
            time.sleep(0.1)
        endpoints: dict[str, Any] = json.loads(endpoints_file.read_text())
        endpoints["stdoutLog"] = str(stdout_path)
        endpoints["stderrLog"] = str(stderr_path)
        yield endpoints
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                raise RuntimeError("the stack did not stop within 30 s of SIGTERM") from None
    if process.returncode != 0:
        raise RuntimeError(
            f"the stack exited with {process.returncode} after SIGTERM:\n{_tail(stderr_path)}"
        )
