"""What a front end relies on (issue 15): errors name the conversation the frame named, the
frame limit is counted by arrival, chat subscriptions take effect at their ack, and a socket
that subscribes while a reply streams can rebuild it."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from chalicelib.services import Limits
from tests import parsed
from tests.fakes.ports import world
from tests.helpers import OWNER, chat_subscribe

C_FIELDS = {"surfaceId": "cache-warming", "requestId": "r1"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "subscribe", "surfaceId": "nope"}, "unknown_surface"),
        ({"type": "subscribe"}, "missing_field"),
        ({"type": "invoke", "surfaceId": "cache-warming"}, "missing_field"),
        ({"type": "invoke", **C_FIELDS, "action": "cache-warming/explode"}, "unknown_action"),
        ({"type": "invoke", **C_FIELDS, "action": "cache-warming/toggle", "payload": 1},
         "invalid_payload"),
        ({"type": "invoke", **C_FIELDS, "action": "cache-warming/toggle", "payload": "on"},
         "invalid_payload"),
        ({"type": "invoke", **C_FIELDS, "action": "cache-warming/set-interval", "payload": "60"},
         "invalid_interval"),
        ({"type": "invoke", **C_FIELDS, "action": "cache-warming/set-interval", "payload": 60.5},
         "invalid_interval"),
        ({"type": "invoke", **C_FIELDS, "action": "cache-warming/set-interval", "payload": 5},
         "invalid_interval"),
    ],
)  # fmt: skip
def test_an_error_names_the_conversation_the_frame_named(frame: dict[str, Any], code: str) -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.connect("ws1", OWNER)
    w.services.handle_frame("ws1", json.dumps({**frame, "conversationId": conversation.id}))
    error = w.sockets.last("ws1")
    assert (error["type"], error["code"]) == ("error", code)
    assert error["conversationId"] == conversation.id


def test_the_frame_limit_counts_frames_by_the_second_they_arrived() -> None:
    w = world()
    w.services.ports.limits = Limits(frames_per_second=20)
    w.services.connect("ws1", OWNER)
    arrived = w.clock.now
    # 60 frames sent at once: however long they take to process, 20 pass.
    for _ in range(60):
        w.services.handle_frame("ws1", json.dumps({"type": "ping"}), arrived_ms=arrived)
        w.clock.advance(0.05)  # processing spreads them over three seconds
    types = [frame["type"] for frame in w.sockets.of("ws1")]
    assert types.count("pong") == 20 and types.count("error") == 40
    # 30 frames over two seconds of arrival, processed within one: none refused.
    w.sockets.frames.clear()
    start = w.clock.now + 1000
    for number in range(30):
        w.services.handle_frame("ws1", json.dumps({"type": "ping"}), arrived_ms=start + number * 70)
    assert [frame["type"] for frame in w.sockets.of("ws1")] == ["pong"] * 30


def test_no_delta_reaches_a_socket_after_its_chat_unsubscribe_is_acknowledged() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    w.model.chunks, w.model.chunk_seconds = 20, 0.2

    def unsubscribe_at(number: int) -> None:
        if number == 5:
            frame = {"type": "chat.unsubscribe", "conversationId": conversation.id}
            w.services.handle_frame("ws1", json.dumps(frame))

    w.model.on_chunk = unsubscribe_at
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hi"}))
    w.services.generate(conversation.id, turn.index)
    frames = w.sockets.of("ws1")
    acked = next(i for i, f in enumerate(frames) if f.get("of") == "chat.unsubscribe")
    assert [f for f in frames[acked + 1 :] if f["type"] == "chat"] == []


def test_a_late_chat_subscriber_rebuilds_the_streaming_reply_from_get_and_offsets() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    w.model.reply = "".join(f"word{number} " for number in range(200))
    w.model.chunks, w.model.chunk_seconds = 40, 0.2
    snapshot: dict[str, Any] = {}

    def join_late(number: int) -> None:
        if number == 20:  # halfway: another tab opens the conversation
            chat_subscribe(w, "ws2", conversation.id)
            _, turns = w.services.get_conversation(OWNER, conversation.id)
            snapshot["text"] = turns[-1].assistant_text

    w.model.on_chunk = join_late
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "a long one"}))
    assert w.services.generate(conversation.id, turn.index) == "sealed"
    # The late socket: what GET showed, then every delta at or past its length, by offset.
    rebuilt = snapshot["text"]
    assert rebuilt and w.model.reply.startswith(rebuilt)
    for frame in w.sockets.of("ws2", "chat"):
        if frame["event"] != "delta":
            continue
        offset, text = frame["offset"], frame["text"]
        assert offset <= len(rebuilt), "a gap: nothing may be lost between GET and the deltas"
        rebuilt = rebuilt[:offset] + text
    assert rebuilt == w.model.reply
    # Offsets count UTF-16 code units, as JavaScript strings do; they agree with the first socket.
    first = [f for f in w.sockets.of("ws1", "chat") if f["event"] == "delta"]
    assert first[0]["offset"] == 0
    assert all(b["offset"] == a["offset"] + len(a["text"]) for a, b in itertools.pairwise(first))


def test_delta_offsets_count_utf16_code_units_as_javascript_strings_do() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    w.model.reply, w.model.chunks, w.model.chunk_seconds = "😀ab😀cd", 3, 0.2
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "emoji"}))
    w.services.generate(conversation.id, turn.index)
    deltas = [f for f in w.sockets.of("ws1", "chat") if f["event"] == "delta"]
    units = [len(f["text"].encode("utf-16-le")) // 2 for f in deltas]
    assert [f["offset"] for f in deltas] == [sum(units[:i]) for i in range(len(deltas))]
