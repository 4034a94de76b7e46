"""A WebSocket connection's authority ends at its token's `exp`, through the Chalice handlers,
DynamoDB and the management API under moto (moto's DeleteConnection forgets the connection), and
through the local gateway, whose DeleteConnection closes the socket and runs `$disconnect` as
API Gateway's does."""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from websockets.sync.client import connect

from chalicelib import auth
from chalicelib.adapters.sockets import ManagementApiSockets
from devstack.gateway import WebSocketGateway
from tests.devstack_helpers import client, wait_until
from tests.moto_stack import OWNER, MotoStack, create, join, record_deleted

LIFETIME_S = 120


def _exp(token: str) -> int:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["exp"])


@pytest.fixture
def deleted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    return record_deleted(monkeypatch)


def test_the_first_frame_after_exp_is_refused_and_the_connection_deleted(
    stack: MotoStack, deleted: dict[str, list[dict[str, Any]]]
) -> None:
    token = stack.token(OWNER, lifetime_s=LIFETIME_S)
    assert stack.connect("ws-1", token)["statusCode"] == 200
    record = stack.services.store.get_connection("ws-1")
    assert record is not None and record.expires_at == _exp(token) + auth.LEEWAY_S

    conversation_id = create(stack)
    stack.send("ws-1", {"type": "ping", "requestId": "before"})
    assert stack.frames("ws-1", "pong") == [{"type": "pong", "requestId": "before"}]

    stack.clock.advance(LIFETIME_S + auth.LEEWAY_S)
    stack.send(
        "ws-1",
        {
            "type": "subscribe",
            "surfaceId": "cache-warming",
            "conversationId": conversation_id,
            "requestId": "after",
        },
    )
    assert "ws-1" in deleted
    last = deleted["ws-1"][-1]
    assert (last["type"], last["code"], last["requestId"]) == ("error", "unauthorized", "after")
    assert last["conversationId"] == conversation_id
    # Nothing was subscribed by the refused frame.
    assert (
        stack.services.store.subscribers(
            conversation_id, "surface", stack.clock.now_ms() // 1000 - 1
        )
        == []
    )


def test_a_connection_with_a_live_token_is_not_closed(
    stack: MotoStack, deleted: dict[str, list[dict[str, Any]]]
) -> None:
    conversation_id = create(stack)
    join(stack, "ws-1", conversation_id)  # a 7-day dev token: capped at 2 hours
    stack.clock.advance(3600)
    stack.send("ws-1", {"type": "ping"})
    assert stack.frames("ws-1", "pong") == [{"type": "pong"}]
    assert deleted == {}


def test_the_local_gateways_delete_closes_the_socket_from_inside_a_message_handler() -> None:
    """The app closes from its `$default` handler, after posting its reply: the client reads the
    reply, then a normal close, and `$disconnect` runs, as on API Gateway."""
    events: list[str] = []
    disconnected = threading.Event()
    holder: dict[str, Any] = {}

    def on_connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200}

    def on_message(event: dict[str, Any], context: Any) -> dict[str, Any]:
        connection_id = event["requestContext"]["connectionId"]
        sockets = ManagementApiSockets(lambda: holder["management"])
        sockets.post(connection_id, {"type": "error", "code": "unauthorized", "message": "x"})
        sockets.close(connection_id)
        sockets.close(connection_id)  # a second close finds it gone: silent
        return {"statusCode": 200}

    def on_disconnect(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event["requestContext"]["routeKey"])
        disconnected.set()
        return {"statusCode": 200}

    handlers = {"connect": on_connect, "message": on_message, "disconnect": on_disconnect}
    gateway = WebSocketGateway(handlers).start()
    holder["management"] = client("apigatewaymanagementapi", gateway.management_url)
    try:
        with connect(f"{gateway.ws_url}/?token=t", open_timeout=5) as ws:
            assert wait_until(lambda: len(gateway.connection_ids()) == 1)
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=5))["code"] == "unauthorized"
            with pytest.raises(Exception) as closed:
                ws.recv(timeout=5)
            assert getattr(closed.value, "rcvd", None) is not None
            assert closed.value.rcvd.code == 1000  # type: ignore[attr-defined]
        assert disconnected.wait(5) and events == ["$disconnect"]
    finally:
        gateway.stop()


@pytest.mark.parametrize(
    ("failure", "logged"),
    [
        (ClientError({"Error": {"Code": "ForbiddenException"}}, "DeleteConnection"), True),
        (ClientError({"Error": {"Code": "LimitExceededException"}}, "DeleteConnection"), True),
        (EndpointConnectionError(endpoint_url="https://x.execute-api"), True),
        (ClientError({"Error": {"Code": "GoneException"}}, "DeleteConnection"), False),
    ],
    ids=["forbidden", "throttled", "unreachable", "gone"],
)
def test_a_failed_close_is_logged_and_never_raised(
    failure: Exception, logged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The frame's reply was already posted, and the expiry refuses the connection's next frames
    anyway: a close that fails must not turn the frame into a Lambda error."""

    class Failing:
        def delete_connection(self, ConnectionId: str) -> None:
            raise failure

    sockets = ManagementApiSockets(lambda: Failing())  # type: ignore[arg-type, return-value]
    with caplog.at_level(logging.WARNING, logger="cache_warming"):
        sockets.close("ws-1")
    assert ("closing ws-1 failed" in caplog.text) is logged
