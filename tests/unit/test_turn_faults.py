"""Turns under the faults Lambda and DynamoDB really produce: a generate claim is a lease tied to
the invocation's deadline, everything after the claim ends the turn, and nothing a late or
duplicate invocation does can touch a turn that is no longer the active one."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain import turns
from chalicelib.domain.conversation import Conversation, turn_id
from chalicelib.domain.turns import Change
from chalicelib.ports import Delivery
from tests import parsed
from tests.fakes.ports import World, world
from tests.helpers import OWNER, chat_subscribe, events

LAMBDA_TIMEOUT_MS = 900_000


def started(w: World, text: str = "hello") -> tuple[str, int]:
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": text}))
    return conversation.id, turn.index


def stored(w: World, conversation_id: str) -> Conversation:
    conversation = w.store.get_conversation(conversation_id)
    assert conversation is not None
    return conversation


def test_a_crash_after_the_claim_ends_the_turn_with_its_partial_text() -> None:
    w = world()
    cid, index = started(w)

    def crash(number: int) -> None:
        if number == 2:
            raise RuntimeError("the SDK blew up mid-stream")

    w.model.on_chunk = crash
    assert w.services.generate(cid, index) == "failed"
    turn = w.store.get_turns(cid)[index]
    assert (turn.status, turn.error_code) == ("failed", "internal_error")
    assert turn.assistant_text == w.model.reply[: len(turn.assistant_text)]
    assert turn.assistant_text  # what was streamed before the crash is kept
    assert events(w, "ws1")[-1] == "turn-failed"
    # The conversation is usable at once: no turn_in_progress for 16 minutes.
    w.model.on_chunk = None
    again = w.services.start_turn(OWNER, cid, parsed.turn({"text": "again"}))
    assert w.services.generate(cid, again.index) == "sealed"


def test_a_failing_turn_started_push_still_ends_the_turn() -> None:
    w = world()
    cid, index = started(w)
    original = w.sockets.post

    def refuse_turn_started(connection_id: str, frame: dict[str, Any]) -> Delivery:
        if frame.get("event") == "turn-started":
            raise ConnectionError("the management API timed out")
        return original(connection_id, frame)

    w.sockets.post = refuse_turn_started  # type: ignore[method-assign]
    status = w.services.generate(cid, index)
    assert status in ("sealed", "failed")
    assert not stored(w, cid).generating


def hold_claim(w: World, conversation_id: str, index: int, until: int) -> None:
    """An invocation that claimed the turn and died without ending it (killed, out of memory)."""

    def claim(conversation: Conversation, now: int) -> Change | None:
        return turns.claim_stream(conversation, turn_id(index), "dead-invocation", until, now)

    assert w.services.uow.transition(conversation_id, claim).changed


def test_a_retry_before_the_dead_invocations_deadline_backs_off_and_one_after_it_finishes() -> None:
    w = world()
    cid, index = started(w)
    deadline = w.clock.now + LAMBDA_TIMEOUT_MS
    hold_claim(w, cid, index, deadline)
    # Lambda's async retries come about 1 and 2 minutes later: the claim is still held.
    for minutes in (1, 2):
        w.clock.advance(60 * minutes)
        assert w.services.generate(cid, index, deadline_ms=w.clock.now + LAMBDA_TIMEOUT_MS) == (
            "stale"
        )
    assert w.model.streams == []
    # Past the dead invocation's deadline the lease is free: a late retry finishes the turn.
    w.clock.now = deadline + 1
    assert w.services.generate(cid, index, deadline_ms=w.clock.now + LAMBDA_TIMEOUT_MS) == (
        "sealed"
    )


def test_a_turn_whose_claim_expired_is_failed_by_the_next_turn() -> None:
    w = world()
    cid, index = started(w)
    hold_claim(w, cid, index, w.clock.now + LAMBDA_TIMEOUT_MS)
    w.clock.advance(LAMBDA_TIMEOUT_MS / 1000 + 1)
    again = w.services.start_turn(OWNER, cid, parsed.turn({"text": "anyone there?"}))
    previous = w.store.get_turns(cid)[index]
    assert (previous.status, previous.error_code) == ("failed", "timeout")
    assert w.services.generate(cid, again.index) == "sealed"


def test_the_stream_stops_before_the_deadline_and_seals_what_it_has() -> None:
    w = world()
    cid, index = started(w)
    w.model.chunks, w.model.chunk_seconds = 10, 20.0  # 200 s of streaming
    status = w.services.generate(cid, index, deadline_ms=w.clock.now + 90_000)
    assert status == "sealed"
    turn = w.store.get_turns(cid)[index]
    assert turn.truncated and 0 < len(turn.assistant_text) < len(w.model.reply)
    assert w.clock.now < turn.started_at + 90_000  # it ended before the Lambda would be killed
    sealed = w.sockets.of("ws1", "chat")[-1]
    assert sealed["event"] == "turn-sealed" and sealed["truncated"] is True


def test_a_turn_cancelled_before_generation_starts_never_calls_the_model() -> None:
    w = world()
    cid, index = started(w)
    assert w.services.cancel(OWNER, cid)
    assert w.services.generate(cid, index) == "aborted"
    assert w.model.streams == []
    assert events(w, "ws1") == ["turn-aborted"]


def test_a_late_generate_cannot_rewrite_a_turn_that_is_no_longer_active() -> None:
    w = world()
    cid, first = started(w)
    assert w.services.generate(cid, first) == "sealed"
    second = w.services.start_turn(OWNER, cid, parsed.turn({"text": "next"}))
    before = stored(w, cid)
    turns_before = w.store.get_turns(cid)
    # A duplicate delivery of the first turn's invoke, long after it sealed.
    assert w.services.generate(cid, first) == "stale"
    assert stored(w, cid) == before and w.store.get_turns(cid) == turns_before
    assert before.active_turn_id == turn_id(second.index)


@pytest.mark.parametrize("reply_kib", [390, 2048])
def test_a_reply_too_large_for_one_item_is_capped_and_the_turn_still_seals(reply_kib: int) -> None:
    w = world()
    cid, index = started(w, text="x" * 90_000)
    w.model.reply = "ü" * (reply_kib * 1024 // 2)
    assert w.services.generate(cid, index) == "sealed"
    turn = w.store.get_turns(cid)[index]
    assert turn.truncated and turn.assistant_text == w.model.reply[: len(turn.assistant_text)]
    assert not stored(w, cid).generating
