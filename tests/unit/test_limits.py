"""Per-user caps: frames per second per connection, turns per minute, conversations warming at once."""

from __future__ import annotations

import json
from dataclasses import replace

from chalicelib.services import Limits
from tests.fakes.ports import world
from tests.helpers import OWNER, conversation_with_turn, invoke, subscribe


def test_frames_beyond_the_per_second_cap_are_refused_then_allowed_next_second() -> None:
    w = world()
    w.services.ports.limits = Limits(frames_per_second=5)
    w.services.connect("ws1", OWNER)
    for number in range(7):
        w.services.handle_frame("ws1", json.dumps({"type": "ping", "requestId": f"p{number}"}))
    replies = w.sockets.of("ws1")
    assert [r["type"] for r in replies] == ["pong"] * 5 + ["error"] * 2
    assert replies[-1] == {
        "type": "error",
        "code": "rate_limited",
        "message": replies[-1]["message"],
        "requestId": "p6",
    }
    w.clock.advance(1)
    w.services.handle_frame("ws1", json.dumps({"type": "ping"}))
    assert w.sockets.last("ws1") == {"type": "pong"}


def test_turns_beyond_the_per_minute_cap_are_refused_and_store_nothing() -> None:
    w = world()
    w.services.ports.limits = Limits(turns_per_minute=2)
    conversation = w.services.create_conversation(OWNER, {})
    codes = []
    for number in range(3):
        try:
            turn = w.services.start_turn(OWNER, conversation.id, {"text": f"q{number}"})
            w.services.generate(conversation.id, turn.index)
            codes.append("ok")
        except Exception as error:  # noqa: BLE001
            codes.append(getattr(error, "code", "?"))
    assert codes == ["ok", "ok", "rate_limited"]
    assert len(w.store.get_turns(conversation.id)) == 2
    w.clock.advance(60)
    w.services.start_turn(OWNER, conversation.id, {"text": "next minute"})


def test_a_user_cannot_warm_more_conversations_than_the_cap() -> None:
    w = world()
    w.services.ports.limits = replace(Limits(), warming_conversations=2)
    conversations = [conversation_with_turn(w) for _ in range(3)]
    for conversation in conversations:
        subscribe(w, "ws1", conversation.id)
    replies = [invoke(w, "ws1", c.id, "toggle", True) for c in conversations]
    assert [r["type"] for r in replies] == ["update", "update", "error"]
    assert replies[2]["code"] == "limit_reached"
    assert not w.store.get_conversation(conversations[2].id).warming.enabled  # type: ignore[union-attr]
    # Re-enabling one already on is not a new one; another user is not affected.
    assert invoke(w, "ws1", conversations[0].id, "toggle", True)["type"] == "update"
    invoke(w, "ws1", conversations[0].id, "toggle", False)
    assert invoke(w, "ws1", conversations[2].id, "toggle", True)["type"] == "update"
