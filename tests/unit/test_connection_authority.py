"""A WebSocket connection's authority ends at its token's expiry: the next frame gets an
`unauthorized` error frame, the socket is closed, and its subscriptions stop receiving pushes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.services.frames import CONNECTION_LIFETIME_S
from tests import parsed
from tests.fakes.ports import START_MS, World, world
from tests.helpers import OWNER, invoke, send, subscribe

NOW_S = START_MS // 1000


@pytest.fixture
def w() -> World:
    return world()


def test_a_connection_keeps_its_tokens_expiry(w: World) -> None:
    w.services.connect("ws-1", OWNER, authorized_until=NOW_S + 300)
    connection = w.store.get_connection("ws-1")
    assert connection is not None and connection.expires_at == NOW_S + 300


def test_a_long_lived_token_is_capped_at_api_gateways_two_hours(w: World) -> None:
    w.services.connect("ws-1", OWNER, authorized_until=NOW_S + 7 * 24 * 3600)
    connection = w.store.get_connection("ws-1")
    assert connection is not None and connection.expires_at == NOW_S + CONNECTION_LIFETIME_S


def test_frames_are_served_until_the_expiry_then_refused_and_the_socket_closed(w: World) -> None:
    w.services.connect("ws-1", OWNER, authorized_until=NOW_S + 60)
    w.clock.advance(59)
    assert send(w, "ws-1", type="ping", requestId="r1") == {"type": "pong", "requestId": "r1"}
    assert w.sockets.closed == []

    w.clock.advance(1)  # the expiry second itself is past the authority
    reply = send(w, "ws-1", type="ping", requestId="r2")
    assert reply["type"] == "error"
    assert reply["code"] == "unauthorized"
    assert reply["requestId"] == "r2"
    assert "expired" in reply["message"]
    assert w.sockets.closed == ["ws-1"]


def test_the_frames_arrival_time_decides(w: World) -> None:
    """A frame API Gateway received before the expiry is served even if processed after it."""
    w.services.connect("ws-1", OWNER, authorized_until=NOW_S + 60)
    w.clock.advance(61)
    arrived_ms = (NOW_S + 59) * 1000
    w.services.handle_frame("ws-1", json.dumps({"type": "ping"}), arrived_ms)
    assert w.sockets.last("ws-1") == {"type": "pong"}
    assert w.sockets.closed == []


def test_a_malformed_frame_after_the_expiry_is_unauthorized_not_bad_json(w: World) -> None:
    w.services.connect("ws-1", OWNER, authorized_until=NOW_S + 60)
    w.clock.advance(120)
    w.services.handle_frame("ws-1", "{not json")
    reply = w.sockets.last("ws-1")
    assert (reply["type"], reply["code"]) == ("error", "unauthorized")
    assert w.sockets.closed == ["ws-1"]


def test_a_frame_refused_by_the_parser_is_still_answered_on_a_live_connection(w: World) -> None:
    w.services.connect("ws-1", OWNER, authorized_until=NOW_S + 60)
    w.services.handle_frame("ws-1", json.dumps({"type": "CLOSE", "requestId": "r1"}))
    reply = w.sockets.last("ws-1")
    assert (reply["code"], reply["requestId"]) == ("unknown_type", "r1")
    assert w.sockets.closed == []


def test_an_unknown_connection_is_refused_and_closed(w: World) -> None:
    reply = send(w, "ws-nobody", type="ping", requestId="r1")
    assert (reply["code"], reply["requestId"]) == ("unauthorized", "r1")
    assert w.sockets.closed == ["ws-nobody"]


def test_other_refusals_do_not_close_the_socket(w: World) -> None:
    w.services.connect("ws-1", OWNER, authorized_until=NOW_S + 600)
    reply = send(w, "ws-1", type="subscribe", surfaceId="cache-warming", conversationId="nope")
    assert reply["code"] == "not_found"
    assert w.sockets.closed == []


def _updates(w: World, connection_id: str) -> list[dict[str, Any]]:
    return w.sockets.of(connection_id, "update")


def test_pushes_stop_at_the_expiry(w: World) -> None:
    conversation = w.services.create_conversation(OWNER, parsed.conversation({}))
    w.services.connect("ws-short", OWNER, authorized_until=NOW_S + 60)
    w.services.connect("ws-long", OWNER, authorized_until=NOW_S + 3600)
    subscribe(w, "ws-short", conversation.id)
    subscribe(w, "ws-long", conversation.id)

    invoke(w, "ws-long", conversation.id, "set-interval", 60)
    assert len(_updates(w, "ws-short")) == 1  # the broadcast reached both while authorised

    w.clock.advance(61)
    invoke(w, "ws-long", conversation.id, "set-interval", 90)
    assert len(_updates(w, "ws-short")) == 1  # nothing after its authority ended
    assert len(_updates(w, "ws-long")) == 2
