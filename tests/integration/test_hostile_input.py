"""A corpus of hostile frames and requests: each gets its documented error code and the table
(conversations, turns, connections, subscriptions; rate counters aside) is byte-for-byte unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.services import Limits
from tests.conftest import SESSION, TABLE_NAME
from tests.helpers import BAD_FRAMES
from tests.moto_stack import OWNER, MotoStack, create, join, record_deleted, sealed_turn

OTHER = "mallory"
INVOKE = {"type": "invoke", "surfaceId": "cache-warming", "action": "cache-warming/set-interval"}


@pytest.fixture(autouse=True)
def generous_limits(stack: MotoStack) -> None:
    # The corpus is sent at machine speed; rate limits have their own tests.
    stack.services.ports.limits = Limits(frames_per_second=10_000, turns_per_minute=10_000)


def snapshot() -> list[dict[str, Any]]:
    items = SESSION.client("dynamodb").scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return sorted(
        (item for item in items if not item["pk"]["S"].startswith("RATE#")),
        key=lambda item: (item["pk"]["S"], item["sk"]["S"]),
    )


def conversation_frames(cid: str, foreign: str) -> list[tuple[Any, str]]:
    big = 10**30
    return [
        ({**INVOKE, "conversationId": cid, "payload": 19}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": 291}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": -1}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": 0}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": big}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": 1e308}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": {"seconds": 60}}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": None}, "invalid_interval"),
        ({**INVOKE, "conversationId": cid, "payload": False}, "invalid_interval"),
        ({**INVOKE, "conversationId": "doesnotexist0000", "payload": 60}, "not_found"),
        ({**INVOKE, "conversationId": foreign, "payload": 60}, "not_found"),
        (
            {"type": "subscribe", "surfaceId": "cache-warming", "conversationId": foreign},
            "not_found",
        ),
        ({"type": "chat.subscribe", "conversationId": foreign}, "not_found"),
        ({"type": "chat.unsubscribe", "conversationId": foreign}, "not_found"),
        ({"type": "close", "conversationId": foreign}, "not_found"),
        (
            {"type": "unsubscribe", "surfaceId": "cache-warming", "conversationId": foreign},
            "not_found",
        ),
        (
            {
                "type": "invoke",
                "surfaceId": "cache-warming",
                "conversationId": foreign,
                "action": "cache-warming/toggle",
                "payload": True,
            },
            "not_found",
        ),
        ({"type": "close", "conversationId": "CONV#x"}, "invalid_field"),
        ({"type": "close", "conversationId": "x\u0000y"}, "invalid_field"),
        ({"type": "close", "conversationId": "é"}, "invalid_field"),
        ({"type": "close", "conversationId": ["a"]}, "invalid_field"),
        ({"type": "close", "conversationId": {"S": "a"}}, "invalid_field"),
        ({"type": "CLOSE", "conversationId": cid}, "unknown_type"),
        ({"type": "", "conversationId": cid}, "missing_field"),
        (
            {"type": "subscribe", "surfaceId": "CACHE-WARMING", "conversationId": cid},
            "unknown_surface",
        ),
        (
            {"type": "invoke", "surfaceId": "cache-warming", "conversationId": cid, "action": 5},
            "unknown_action",
        ),
        (
            {
                "type": "invoke",
                "surfaceId": "cache-warming",
                "conversationId": cid,
                "action": "cache-warming/toggle",
                "payload": "true",
            },
            "invalid_payload",
        ),
        (
            {
                "type": "invoke",
                "surfaceId": "cache-warming",
                "conversationId": cid,
                "action": "cache-warming/toggle",
                "payload": [True],
            },
            "invalid_payload",
        ),
        ('{"type": "ping", "requestId": "\\ud800"}', "bad_json"),
        ({"type": "ping", "nested": json.loads("[" * 900 + "]" * 900)}, "pong"),
    ]


def test_hostile_frames_get_documented_codes_and_change_nothing(stack: MotoStack) -> None:
    cid = create(stack)
    sealed_turn(stack, cid)
    foreign = create(stack, owner=OTHER)
    join(stack, "ws-1", cid)
    corpus: list[tuple[Any, str]] = [(raw, code) for raw, code, _ in BAD_FRAMES]
    corpus += conversation_frames(cid, foreign)
    corpus.append(("\udcff{}", "bad_json"))  # lone surrogate: not encodable UTF-8
    before = snapshot()
    for number, (frame, code) in enumerate(corpus):
        stack.send("ws-1", frame)
        reply = stack.frames("ws-1")[-1]
        expected_type = "pong" if code == "pong" else "error"
        assert reply["type"] == expected_type, (number, frame, reply)
        if expected_type == "error":
            assert reply["code"] == code, (number, str(frame)[:80], reply)
            assert reply["message"]
    assert snapshot() == before
    assert len(corpus) >= 60, len(corpus)


def test_a_frame_from_a_socket_that_never_connected_is_unauthorized(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot()
    deleted = record_deleted(monkeypatch)
    stack.send("ghost", {"type": "ping", "requestId": "g"})
    # Its last frame: the socket is closed after it.
    assert deleted["ghost"][-1]["code"] == "unauthorized"
    assert snapshot() == before


def test_replayed_request_ids_are_answered_each_time_without_side_effects(
    stack: MotoStack, conversation_id: str
) -> None:
    frame = {
        "type": "invoke",
        "surfaceId": "cache-warming",
        "conversationId": conversation_id,
        "action": "cache-warming/toggle",
        "payload": True,
        "requestId": "same",
    }
    stack.send("ws-1", frame)
    after_first = snapshot()
    stack.send("ws-1", frame)
    replies = [f for f in stack.frames("ws-1") if f.get("requestId") == "same"]
    assert [r["type"] for r in replies] == ["update", "update"]
    assert snapshot() == after_first and len(stack.live_schedules(conversation_id)) == 1


def http_corpus(cid: str, foreign: str) -> list[tuple[str, str, Any, int, str]]:
    # Limits are in bytes as stored (JSON-encoded UTF-8): 100 KiB of turn text, 200 KiB of system.
    huge = "x" * (100 * 1024)
    controls = "\u0001" * 20_000  # 20,000 characters, 120,000 bytes once JSON-escaped
    cjk = "漢" * 70_000  # 70,000 characters, 210,000 bytes of UTF-8
    deep = "[" * 5000 + "]" * 5000
    return [
        ("post", "/conversations", "not json", 400, "bad_json"),
        ("post", "/conversations", "[]", 400, "bad_json"),
        ("post", "/conversations", '"text"', 400, "bad_json"),
        ("post", "/conversations", '{"maxTokens": 0}', 400, "invalid_field"),
        ("post", "/conversations", '{"maxTokens": true}', 400, "invalid_field"),
        ("post", "/conversations", '{"maxTokens": 1e9}', 400, "invalid_field"),
        ("post", "/conversations", '{"system": 7}', 400, "invalid_field"),
        ("post", "/conversations", json.dumps({"title": "t" * 201}), 400, "invalid_field"),
        ("post", "/conversations", json.dumps({"system": "s" * 200 * 1024}), 400, "invalid_field"),
        (
            "post",
            "/conversations",
            json.dumps({"system": cjk}, ensure_ascii=False),
            400,
            "invalid_field",
        ),
        ("post", "/conversations", '{"title": "t", "maxTokens": NaN}', 400, "bad_json"),
        ("post", "/conversations", '{"maxTokens": Infinity}', 400, "bad_json"),
        ("post", "/conversations", '{"title": "\\ud800"}', 400, "bad_json"),
        ("post", "/conversations", '{"a": ' + deep + "}", 400, "bad_json"),
        ("post", "/conversations", json.dumps({"x": "y" * (1024 * 1024)}), 413, "body_too_large"),
        ("post", "/conversations", '{"cacheRetention": "10m"}', 400, "invalid_field"),
        ("post", f"/conversations/{cid}/turns", "{}", 400, "invalid_text"),
        ("post", f"/conversations/{cid}/turns", '{"text": ""}', 400, "invalid_text"),
        ("post", f"/conversations/{cid}/turns", '{"text": ["a"]}', 400, "invalid_text"),
        ("post", f"/conversations/{cid}/turns", json.dumps({"text": huge}), 400, "invalid_text"),
        (
            "post",
            f"/conversations/{cid}/turns",
            json.dumps({"text": controls}),
            400,
            "invalid_text",
        ),
        ("post", f"/conversations/{cid}/turns", "nope", 400, "bad_json"),
        ("post", f"/conversations/{foreign}/turns", '{"text": "hi"}', 404, "not_found"),
        ("get", f"/conversations/{foreign}", None, 404, "not_found"),
        ("post", f"/conversations/{foreign}/close", None, 404, "not_found"),
        ("post", f"/conversations/{foreign}/cancel", None, 404, "not_found"),
        ("get", "/conversations/nope%23META", None, 400, "invalid_field"),
        ("get", "/conversations/" + "a" * 65, None, 400, "invalid_field"),
        ("post", "/conversations/a%2F..%2Fb/close", None, 400, "invalid_field"),
    ]


def test_hostile_http_requests_get_documented_codes_and_change_nothing(stack: MotoStack) -> None:
    cid = create(stack)
    sealed_turn(stack, cid)
    foreign = create(stack, owner=OTHER)
    before = snapshot()
    for method, path, body, status, code in http_corpus(cid, foreign):
        kwargs = {"headers": stack.headers(OWNER)}
        if body is not None:
            kwargs["body"] = body
        response = getattr(stack.http.http, method)(path, **kwargs)
        assert response.status_code == status, (path, body and body[:60], response.body[:200])
        assert response.json_body["error"]["code"] == code
    assert snapshot() == before
