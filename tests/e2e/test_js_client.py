"""clients/js's node tests (``node --test``) against the e2e tests' shared local stack.

The TypeScript client is tested in its own language, by node's built-in runner; this test only
hands it the running stack (``DEVSTACK_ENDPOINTS``) so one stack serves every e2e test, and fails
with the runner's output when any node test fails. ``make test`` builds the client first (``make
client``: ``npm ci`` and ``npm run build``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("devstack")]

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
TIMEOUT_S = 300


def test_js_client_against_the_stack(devstack: dict[str, Any], tmp_path: Path) -> None:
    if not (CLIENT / "dist" / "index.js").is_file():
        pytest.fail("clients/js is not built: `make test` builds it (`make client`)")
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps(devstack))
    env = {**os.environ, "DEVSTACK_ENDPOINTS": str(endpoints)}
    result = subprocess.run(
        ["node", "scripts/test-with-stack.mjs"],
        cwd=CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    counts = {key: int(value) for key, value in re.findall(r"^# (pass|fail) (\d+)$", output, re.M)}
    failures = "\n".join(re.findall(r"^not ok .*$", output, re.M))
    assert result.returncode == 0 and counts.get("fail") == 0, (
        f"node tests failed:\n{failures}\n\n{output[-6000:]}"
    )
    assert counts.get("pass", 0) >= 40, f"fewer node tests ran than expected:\n{output[-3000:]}"
