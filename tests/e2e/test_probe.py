"""The probe against the whole local stack: every product promise it checks must hold.

It runs the probe as ``make smoke STAGE=local`` does (``python -m devstack.smoke local``: the cost
announced first, then the probe on the cheapest catalog model; about two minutes: three 20-second
warm intervals, one interval with no socket, three streamed turns), then checks what the stack
itself printed: one JSON line per warm tick on stdout. One run serves both: the smoke driver runs
the probe's own checks, so ``make test`` pays for the probe once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROBE_TIMEOUT_S = 240

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("devstack")]

EXPECTED_CHECKS = {
    "health",
    "default-off",
    "echo",
    "first-turn",
    "enable",
    "warm-1",
    "warm-2",
    "warm-3",
    "warms-read-cache",
    "warm-without-socket",
    "disconnect-keeps-turn",
    "turn-rearms",
    "close-aborts-turn",
    "close-stops-warming",
}


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def _get_json(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_the_page_its_assets_and_its_config_are_served(devstack: dict[str, Any]) -> None:
    base = devstack["httpUrl"]
    status, content_type, body = get(base + "/")
    assert status == 200 and content_type.startswith("text/html") and b"<html" in body.lower()
    status, content_type, body = get(base + "/devstack/config.json")
    assert status == 200 and content_type.startswith("application/json")
    assert json.loads(body) == {
        "httpUrl": devstack["httpUrl"],
        "wsUrl": devstack["wsUrl"],
        "token": devstack["token"],
        # The suite never runs the real API: replies are the emulator's, and the page says so.
        "anthropic": "emulator",
        "wsLimits": devstack["wsLimits"],
    }
    assert devstack["anthropic"] == "emulator"
    assert get(base + "/web/no-such-file.js")[0] == 404
    assert get(base + "/web/%2e%2e/app.py")[0] == 404
    # The page imports the client package's build as ES modules.
    status, content_type, body = get(base + "/client/index.js")
    assert status == 200 and "javascript" in content_type and b"CacheWarmingClient" in body
    assert get(base + "/client/markdown.js")[0] == 200
    assert get(base + "/client/%2e%2e/package.json")[0] == 404
    # Everything else is Chalice's: the app's routes, with its JSON errors.
    status, _, body = get(base + "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_the_probe_passes(devstack: dict[str, Any], tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps(devstack))
    result = subprocess.run(
        [sys.executable, "-m", "devstack.smoke", "local", "--endpoints", str(endpoints)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    announced = [line for line in result.stdout.splitlines() if line.startswith("smoke: ")]
    # The smoke driver's lines come first: the model and the expected cost before anything is sent.
    assert result.stdout.startswith("smoke: stage local; model "), result.stdout
    assert "expected cost $" in announced[1], announced
    model = announced[0].split("model ", 1)[1].split()[0]
    lines = [line for line in result.stdout.splitlines() if not line.startswith("smoke: ")]
    report = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report
    assert lines and all(line.startswith("PASS ") for line in lines), report
    checks = {line.split()[1].rstrip(":") for line in lines}
    assert checks == EXPECTED_CHECKS, report
    # The probe's conversation ran on the model the driver announced.
    status, listed = _get_json(devstack["httpUrl"] + "/conversations", devstack["token"])
    probed = [c for c in listed["conversations"] if c["title"].startswith("probe ")]
    assert status == 200 and probed and {c["model"] for c in probed} == {model}, listed

    ticks = [
        json.loads(line)
        for line in Path(devstack["stdoutLog"]).read_text().splitlines()
        if line.startswith("{")
    ]
    warmed = [tick for tick in ticks if tick.get("event") == "tick" and tick["action"] == "warmed"]
    # Three warms with a socket plus one without: the stack logged each as one JSON line.
    assert len(warmed) >= 4, ticks
    assert all(abs(tick["latenessMs"]) <= 2_000 for tick in warmed), warmed
