"""Helpers the local stack's tests share: botocore clients without retries for its stand-ins, a
polling wait, and fake WebSocket handlers for the gateway."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
# No retries: a wrong answer must fail the test, not be retried into a pass.
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=10)


def client(service: str, endpoint_url: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="devstack", aws_secret_access_key="devstack", region_name=REGION
    )
    return session.client(service, endpoint_url=endpoint_url, config=NO_RETRIES)  # type: ignore[call-overload]


def wait_until(condition: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


class FakeWsApp:
    """Stand-ins for the Chalice WS handlers: token `good` connects, everything is recorded."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.disconnected = threading.Event()

    def connect(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        token = (event.get("queryStringParameters") or {}).get("token")
        return {"statusCode": 200 if token == "good" else 401}

    def message(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200}

    def disconnect(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.disconnected.set()
        return {"statusCode": 200}

    def routes(self) -> list[str]:
        return [e["requestContext"]["routeKey"] for e in self.events]
