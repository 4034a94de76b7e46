"""Per-user caps: frames per second per connection, turns per minute, conversations warming at once."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib.services import Limits
from tests import parsed
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


def test_a_flood_refused_in_this_container_costs_no_write_per_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A frame past the limit in this container is past it everywhere (every frame counted here
    # was counted in the store too): it is refused without the conditional write, which
    # DynamoDB bills even when its condition fails.
    w = world()
    w.services.ports.limits = Limits(frames_per_second=5)
    w.services.connect("ws1", OWNER)
    writes: list[str] = []
    consume = w.store.consume

    def counted(bucket: str, window: int, limit: int, expires_at: int) -> bool:
        writes.append(bucket)
        return consume(bucket, window, limit, expires_at)

    monkeypatch.setattr(w.store, "consume", counted)
    for _ in range(50):
        w.services.handle_frame("ws1", json.dumps({"type": "ping"}))
    assert [r["type"] for r in w.sockets.of("ws1")] == ["pong"] * 5 + ["error"] * 45
    assert len(writes) == 5
    w.clock.advance(1)
    w.services.handle_frame("ws1", json.dumps({"type": "ping"}))
    assert w.sockets.last("ws1") == {"type": "pong"} and len(writes) == 6


def test_other_containers_frames_still_count_through_the_store() -> None:
    # Frames of one connection land on several containers: the store's count decides.
    w = world()
    w.services.ports.limits = Limits(frames_per_second=5)
    w.services.connect("ws1", OWNER)
    second = w.clock.now_ms() // 1000
    for _ in range(5):
        assert w.store.consume("frames#ws1", second, 5, second + 60)  # another container's
    w.services.handle_frame("ws1", json.dumps({"type": "ping"}))
    assert w.sockets.last("ws1")["code"] == "rate_limited"


def test_turns_beyond_the_per_minute_cap_are_refused_and_store_nothing() -> None:
    w = world()
    w.services.ports.limits = Limits(turns_per_minute=2)
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    codes = []
    for number in range(3):
        try:
            turn = w.services.start_turn(
                OWNER, conversation.id, parsed.turn({"text": f"q{number}"})
            )
            w.services.generate(conversation.id, turn.index)
            codes.append("ok")
        except Exception as error:  # noqa: BLE001
            codes.append(getattr(error, "code", "?"))
    assert codes == ["ok", "ok", "rate_limited"]
    assert len(w.store.get_turns(conversation.id)) == 2
    w.clock.advance(60)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "next minute"}))


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


def test_seen_frames_keep_recent_windows_and_forget_old_ones() -> None:
    from chalicelib.domain import frame_window
    from chalicelib.domain.frame_window import SeenFrames

    seen = SeenFrames()
    assert not seen.over_limit("a", 100, 1) and seen.over_limit("a", 100, 1)
    assert not seen.over_limit("a", 101, 1)  # a new second, a new window
    for number in range(frame_window.PRUNE_AT):
        seen.over_limit(f"c{number}", 200, 1)
    # Pruned: second 100 is long gone, so its window starts again; 200's are kept.
    assert not seen.over_limit("a", 100, 1)
    assert seen.over_limit("c0", 200, 1)


def test_an_oversized_body_and_frame_each_have_their_own_code_and_say_what_they_are() -> None:
    from chalicelib.domain.errors import Refused
    from chalicelib.wire import commands, frames
    from chalicelib.wire.errors import STATUS

    with pytest.raises(Refused) as body:
        commands.decode_body(b"{}" + b" " * commands.MAX_BODY_BYTES)
    assert body.value.code == "body_too_large" and STATUS["body_too_large"] == 413
    assert str(body.value.message) == f"a body is limited to {commands.MAX_BODY_BYTES} bytes"
    with pytest.raises(Refused) as frame:
        frames.parse_frame("{}" + " " * frames.MAX_FRAME_BYTES)
    assert frame.value.code == "frame_too_large"
    assert str(frame.value.message) == f"a frame is limited to {frames.MAX_FRAME_BYTES} bytes"
