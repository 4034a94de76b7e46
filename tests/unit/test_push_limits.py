"""Pushes within API Gateway's limits: no frame over 128 KB is ever posted, a refused post is
never counted as delivered, and one socket's failure never affects another's push."""

from __future__ import annotations

from typing import Any

import msgspec

from tests import parsed
from tests.fakes.ports import MAX_PUSH_BYTES, World, world
from tests.helpers import OWNER, chat_subscribe, invoke, subscribe


def sizes(w: World, connection_id: str) -> list[int]:
    return [len(msgspec.json.encode(frame)) for frame in w.sockets.of(connection_id)]


def test_a_long_reply_ends_with_a_turn_sealed_that_fits_and_says_the_text_is_cut() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    w.model.reply = "é" * 150_000  # 300 KB of UTF-8 in one reply
    w.model.chunks = 3
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "write a lot"}))
    assert w.services.generate(conversation.id, turn.index) == "sealed"
    assert max(sizes(w, "ws1")) <= MAX_PUSH_BYTES
    sealed = w.sockets.of("ws1", "chat")[-1]
    assert sealed["event"] == "turn-sealed" and sealed["textTruncated"] is True
    assert w.model.reply.startswith(sealed["text"]) and sealed["text"]
    # Every delta arrived: the client can rebuild the whole reply from them.
    deltas = "".join(f["text"] for f in w.sockets.of("ws1", "chat") if f["event"] == "delta")
    assert deltas == w.model.reply
    assert w.store.get_turns(conversation.id)[0].assistant_text == w.model.reply


def test_a_refused_push_is_not_delivered_and_the_other_sockets_still_get_theirs() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    for connection_id in ("ws1", "ws2", "ws3"):
        subscribe(w, connection_id, conversation.id)
    original = w.sockets.post

    def transport_error_on_ws2(connection_id: str, frame: dict[str, Any]) -> Any:
        if connection_id == "ws2":
            raise ConnectionResetError("socket reset by the management API")
        return original(connection_id, frame)

    w.sockets.post = transport_error_on_ws2  # type: ignore[method-assign]
    reply = invoke(w, "ws1", conversation.id, "toggle", True)
    # The requester hears one reply for a change that was saved: its update, not an error too.
    assert [f["type"] for f in w.sockets.of("ws1")[1:]] == ["update"]
    assert reply["type"] == "update"
    assert w.sockets.of("ws3", "update")
    assert w.store.get_connection("ws2") is not None  # not gone: only this push failed
