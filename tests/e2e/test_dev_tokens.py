"""`make up`'s tokens: a second user's and an expired one, so tenancy and expiry can be tried
from outside the stack (issue 21)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("devstack")]


def call(base: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_second_user_sees_nothing_of_the_first(devstack: dict[str, Any]) -> None:
    base, first, second = devstack["httpUrl"], devstack["token"], devstack["secondToken"]
    assert devstack["secondUser"] == "dev-user-2" and first != second
    status, created = call(base, "POST", "/conversations", first, {"title": "mine"})
    assert status == 201
    cid = created["conversationId"]
    for path in (f"/conversations/{cid}", f"/conversations/{cid}/history"):
        status, body = call(base, "GET", path, second)
        assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = call(base, "POST", f"/conversations/{cid}/turns", second, {"text": "hi"})
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, listed = call(base, "GET", "/conversations", second)
    assert status == 200 and cid not in {c["conversationId"] for c in listed["conversations"]}
    status, own = call(base, "POST", "/conversations", second, {"title": "theirs"})
    assert status == 201 and call(base, "GET", f"/conversations/{cid}", first)[0] == 200
    assert call(base, "GET", f"/conversations/{own['conversationId']}", first)[0] == 404


def test_the_expired_token_is_refused_over_http_and_websocket(devstack: dict[str, Any]) -> None:
    expired = devstack["expiredToken"]
    status, body = call(devstack["httpUrl"], "GET", "/conversations", expired)
    assert (status, body["error"]["code"]) == (401, "unauthorized")

    async def connect() -> int:
        try:
            async with ws_connect(f"{devstack['wsUrl']}?token={expired}"):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    assert asyncio.run(connect()) == 401
