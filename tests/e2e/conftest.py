"""The whole local stack as a subprocess, shared by the end-to-end tests of one session.

It runs ``python -m devstack`` exactly as ``make up`` does, through the launcher the benchmarks
use too (``devstack/launcher.py``: free ports, start-up, signal handling and the exit code), with
the scheduler's AWS jitter on (intervals under 150 s go by direct invoke anyway).

Two cores are plenty for one stack but not for several timing-sensitive ones: every e2e test is
marked ``xdist_group("devstack")``, and ``make test`` must pass ``--dist loadgroup`` so pytest-xdist
runs the whole group in one worker, against one stack. Without it each worker that gets an e2e test
starts its own stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devstack.launcher import StackProcess

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the whole local stack (python -m devstack)")


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The endpoints of a running stack (``.devstack/endpoints.json``'s content), plus
    ``stdoutLog``/``stderrLog``: paths of the stack's output (stdout has the warm tick lines)."""
    stack = StackProcess(
        tmp_path_factory.mktemp("devstack"),
        args=["--expired-token"],
        ready_timeout_s=READY_TIMEOUT_S,
        stop_timeout_s=STOP_TIMEOUT_S,
    )
    endpoints = stack.start()
    try:
        yield {
            **endpoints,
            "stdoutLog": str(stack.stdout_path),
            "stderrLog": str(stack.stderr_path),
        }
    finally:
        code = stack.stop()
    if code != 0:
        raise RuntimeError(f"the stack exited with {code} after SIGTERM:\n{stack.tail()}")
