"""The local gateway enforces API Gateway's WebSocket limits (sources: devstack/gateway.py).

Each limit is shortened (the gateway takes them as ``GatewayLimits``) so a test runs in about a
second, and is driven through the clients that meet it in the stack: a WebSocket client for the
socket side, botocore and the app's own ``ManagementApiSockets`` for the management API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.sync.client import ClientConnection, connect

from chalicelib.adapters.sockets import ManagementApiSockets
from devstack.gateway import GatewayLimits, WebSocketGateway
from tests.devstack_helpers import FakeWsApp, client, wait_until

SHORT = GatewayLimits(idle_timeout_s=0.8, max_connection_s=30.0, max_message_bytes=1024)


def start(limits: GatewayLimits) -> tuple[WebSocketGateway, FakeWsApp]:
    fake = FakeWsApp()
    handlers = {"connect": fake.connect, "message": fake.message, "disconnect": fake.disconnect}
    return WebSocketGateway(handlers, limits=limits).start(), fake


@pytest.fixture
def short() -> Iterator[tuple[WebSocketGateway, FakeWsApp]]:
    gateway, fake = start(SHORT)
    yield gateway, fake
    gateway.stop()


def open_socket(gateway: WebSocketGateway, agent: str = "limits-test") -> ClientConnection:
    return connect(
        f"{gateway.ws_url}/?token=good", open_timeout=5, additional_headers={"User-Agent": agent}
    )


def closed_code(ws: ClientConnection, timeout_s: float) -> tuple[int, float]:
    """Block until the server closes the socket: (close code, seconds waited)."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=timeout_s)
    assert closed.value.rcvd is not None, "the server did not send a close frame"
    return closed.value.rcvd.code, time.monotonic() - started


def disconnect_status(fake: FakeWsApp) -> int:
    assert fake.disconnected.wait(5)
    context = fake.events[-1]["requestContext"]
    assert context["routeKey"] == "$disconnect"
    return int(context["disconnectStatusCode"])


def test_the_defaults_are_api_gateways() -> None:
    limits = GatewayLimits()
    assert limits.idle_timeout_s == 10 * 60
    assert limits.max_connection_s == 2 * 60 * 60
    assert limits.max_message_bytes == 128 * 1024
    with pytest.raises(ValueError):
        GatewayLimits(idle_timeout_s=0)


def test_an_idle_socket_is_closed_with_going_away(
    short: tuple[WebSocketGateway, FakeWsApp],
) -> None:
    gateway, fake = short
    with open_socket(gateway) as ws:
        code, waited = closed_code(ws, 5)
    assert code == CloseCode.GOING_AWAY
    assert 0.6 <= waited <= 2.5
    assert disconnect_status(fake) == CloseCode.GOING_AWAY
    assert gateway.connection_ids() == []


def test_client_messages_keep_a_socket_alive(
    short: tuple[WebSocketGateway, FakeWsApp],
) -> None:
    gateway, _fake = short
    with open_socket(gateway) as ws:
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # 2.5 idle timeouts
            ws.send('{"type":"ping"}')
            time.sleep(0.25)
        assert len(gateway.connection_ids()) == 1
        code, waited = closed_code(ws, 5)
    assert code == CloseCode.GOING_AWAY
    assert waited >= 0.5


def test_server_pushes_do_not_count_as_activity(
    short: tuple[WebSocketGateway, FakeWsApp],
) -> None:
    """The conservative choice (AWS does not document it): only the client keeps a socket alive."""
    gateway, _fake = short
    management = client("apigatewaymanagementapi", gateway.management_url)
    with open_socket(gateway) as ws:
        assert wait_until(lambda: len(gateway.connection_ids()) == 1)
        connection_id = gateway.connection_ids()[0]
        started = time.monotonic()
        received = 0
        while time.monotonic() - started < 5:
            try:
                management.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"x"}')
                ws.recv(timeout=1)
            except (ClientError, ConnectionClosed):
                break
            received += 1
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        code, _ = closed_code(ws, 5)
    assert received >= 3
    assert code == CloseCode.GOING_AWAY
    assert elapsed < 2.5


def test_every_socket_is_closed_at_the_end_of_its_lifetime() -> None:
    gateway, fake = start(GatewayLimits(idle_timeout_s=30, max_connection_s=1.0))
    try:
        with open_socket(gateway) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                while time.monotonic() - started < 5:  # busy: the idle timer never fires
                    ws.send('{"type":"ping"}')
                    time.sleep(0.1)
            elapsed = time.monotonic() - started
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.GOING_AWAY
        assert 0.8 <= elapsed <= 3.0
        assert disconnect_status(fake) == CloseCode.GOING_AWAY
    finally:
        gateway.stop()


def test_an_oversized_client_message_closes_with_1009(
    short: tuple[WebSocketGateway, FakeWsApp],
) -> None:
    gateway, fake = short
    with open_socket(gateway) as ws:
        ws.send("x" * 1024)  # exactly the limit: delivered
        assert wait_until(lambda: "$default" in fake.routes())
        ws.send("y" * 1025)
        code, _ = closed_code(ws, 5)
    assert code == CloseCode.MESSAGE_TOO_BIG
    assert disconnect_status(fake) == CloseCode.MESSAGE_TOO_BIG
    bodies = [e.get("body") for e in fake.events if e["requestContext"]["routeKey"] == "$default"]
    assert bodies == ["x" * 1024]


def test_a_binary_frame_closes_with_1003(short: tuple[WebSocketGateway, FakeWsApp]) -> None:
    gateway, fake = short
    with open_socket(gateway) as ws:
        ws.send(b"\x00\x01")
        code, _ = closed_code(ws, 5)
    assert code == CloseCode.UNSUPPORTED_DATA
    assert "$default" not in fake.routes()


def test_an_oversized_push_is_refused_with_413_and_the_socket_stays(
    short: tuple[WebSocketGateway, FakeWsApp], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, _fake = short
    management = client("apigatewaymanagementapi", gateway.management_url)
    with open_socket(gateway) as ws:
        assert wait_until(lambda: len(gateway.connection_ids()) == 1)
        connection_id = gateway.connection_ids()[0]
        with pytest.raises(ClientError) as refused:
            management.post_to_connection(ConnectionId=connection_id, Data=b"z" * 1025)
        error = refused.value
        assert type(error).__name__ == "PayloadTooLargeException"
        assert error.response["Error"]["Code"] == "PayloadTooLargeException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 413

        # The app's adapter: the frame is lost, the connection is kept (not forgotten as gone).
        sockets = ManagementApiSockets(lambda: management)
        big = {"type": "chat", "text": "w" * 2000}
        with caplog.at_level(logging.WARNING, logger="cache_warming"):
            assert sockets.post(connection_id, big) == "failed"  # this frame only
        assert "PayloadTooLargeException" in caplog.text

        # Nothing of the refused pushes reached the socket; the next one that fits does.
        management.post_to_connection(ConnectionId=connection_id, Data=b"k" * 1024)
        assert ws.recv(timeout=5) == "k" * 1024


def test_the_default_push_limit_is_128_kib() -> None:
    gateway, _fake = start(GatewayLimits())
    management = client("apigatewaymanagementapi", gateway.management_url)
    try:
        with open_socket(gateway) as ws:
            assert wait_until(lambda: len(gateway.connection_ids()) == 1)
            connection_id = gateway.connection_ids()[0]
            with pytest.raises(ClientError) as refused:
                management.post_to_connection(ConnectionId=connection_id, Data=b"a" * 131073)
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
            management.post_to_connection(ConnectionId=connection_id, Data=b"b" * 131072)
            assert len(ws.recv(timeout=5)) == 131072
    finally:
        gateway.stop()


def test_get_connection_reports_the_clients_last_message(
    short: tuple[WebSocketGateway, FakeWsApp],
) -> None:
    gateway, _fake = short
    management = client("apigatewaymanagementapi", gateway.management_url)
    with open_socket(gateway) as ws:
        assert wait_until(lambda: len(gateway.connection_ids()) == 1)
        connection_id = gateway.connection_ids()[0]
        first = management.get_connection(ConnectionId=connection_id)["LastActiveAt"]
        time.sleep(0.3)
        ws.send('{"type":"ping"}')
        assert wait_until(
            lambda: management.get_connection(ConnectionId=connection_id)["LastActiveAt"] > first
        )


def test_the_devstack_listing_finds_a_socket_by_user_agent(
    short: tuple[WebSocketGateway, FakeWsApp],
) -> None:
    gateway, _fake = short
    url = f"http://127.0.0.1:{gateway.management_port}/{gateway.stage}/@connections"

    def listed() -> list[dict[str, Any]]:
        with urllib.request.urlopen(url, timeout=5) as response:
            connections: list[dict[str, Any]] = json.loads(response.read())["connections"]
            return connections

    with open_socket(gateway, "agent-a"), open_socket(gateway, "agent-b"):
        assert wait_until(lambda: len(listed()) == 2)
        agents = {c["identity"]["userAgent"]: c["connectionId"] for c in listed()}
        assert set(agents) == {"agent-a", "agent-b"}
        assert set(agents.values()) == set(gateway.connection_ids())
        assert all(c["connectedAt"].endswith("Z") for c in listed())
    assert wait_until(lambda: listed() == [])


class _SlowToServe(WebSocketGateway):
    """A gateway whose per-socket task starts late, as it does on a loaded loop."""

    released = threading.Event()

    async def _connection(self, websocket: Any) -> None:
        await asyncio.to_thread(self.released.wait, 5)
        await super()._connection(websocket)


def test_a_socket_is_known_to_the_management_api_once_the_client_sees_it_open() -> None:
    # API Gateway answers the upgrade after $connect succeeded; from then on GetConnection and
    # PostToConnection find the connection. A client that lists it right after `open` must too.
    fake = FakeWsApp()
    handlers = {"connect": fake.connect, "message": fake.message, "disconnect": fake.disconnect}
    gateway = _SlowToServe(handlers, limits=SHORT).start()
    management = client("apigatewaymanagementapi", gateway.management_url)
    try:
        with open_socket(gateway) as ws:
            assert len(gateway.connection_ids()) == 1
            connection_id = gateway.connection_ids()[0]
            management.get_connection(ConnectionId=connection_id)
            management.post_to_connection(ConnectionId=connection_id, Data=b"early")
            assert ws.recv(timeout=5) == "early"
            _SlowToServe.released.set()
            ws.send('{"type":"ping"}')
            assert wait_until(lambda: len(fake.events) >= 2)
    finally:
        _SlowToServe.released.set()
        gateway.stop()
