"""The behaviours a front end had to guess at (issue 21's gaps list), each decided and pinned here
as docs/contract.md writes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.pricing import Usage
from chalicelib.wire import frames
from tests import parsed
from tests.fakes.ports import field_value, world
from tests.helpers import OWNER, conversation_with_turn, invoke, subscribe

C = "5f0c0d1e2f3a4b5c6d7e8f9a0b1c2d3e"
SURFACE = {"surfaceId": "cache-warming", "conversationId": C}
SET_INTERVAL = {"type": "invoke", **SURFACE, "action": "cache-warming/set-interval"}


def code_of(frame: dict[str, Any]) -> str:
    with pytest.raises(frames.FrameRefused) as refused:
        frames.parse_frame(json.dumps(frame))
    return refused.value.code


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"conversationId": C}, "missing_field"),
        ({"type": None, "conversationId": C}, "missing_field"),
        ({"type": "", "conversationId": C}, "missing_field"),
        ({"type": 5, "conversationId": C}, "invalid_field"),
        ({"type": ["close"], "conversationId": C}, "invalid_field"),
        ({"type": "CLOSE", "conversationId": C}, "unknown_type"),
    ],
)
def test_a_frame_type_absent_null_or_empty_is_missing_not_a_string_invalid_else_unknown(
    frame: dict[str, Any], code: str
) -> None:
    # One rule for every field: absent, null or "" is missing_field (docs/contract.md).
    assert code_of(frame) == code


@pytest.mark.parametrize("payload", [None, "absent"])
def test_a_missing_interval_is_an_invalid_interval(payload: Any) -> None:
    # The one exception to missing_field: the payload is the interval itself.
    frame = dict(SET_INTERVAL) if payload == "absent" else {**SET_INTERVAL, "payload": None}
    assert code_of(frame) == "invalid_interval"


def test_a_whole_number_written_with_a_zero_fraction_is_that_many_seconds() -> None:
    frame = frames.parse_frame(json.dumps({**SET_INTERVAL, "payload": 60.0}))
    assert isinstance(frame, frames.InvokeSetInterval) and frame.seconds == 60
    assert code_of({**SET_INTERVAL, "payload": 60.5}) == "invalid_interval"


def test_toggle_true_on_a_not_cacheable_conversation_sends_and_bills_no_warm() -> None:
    w = world()
    w.model.turn_usage = Usage(input_tokens=300, output_tokens=40)  # below every minimum
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    reply = invoke(w, "ws1", conversation.id, "toggle", True)
    assert field_value(reply, "enabled") is True
    assert field_value(reply, "status") == "not-cacheable"
    assert field_value(reply, "timer")["nextWarmAt"] is None
    assert field_value(reply, "warm-cost")["totalUsd"] == 0
    w.clock.advance(3600)
    assert w.timer.live_for(conversation.id) == []
    assert w.model.warms == []
    entries = w.services.history(OWNER, conversation.id, 50).entries
    assert [entry.kind for entry in entries] == ["turn"]


def test_a_streaming_reply_is_readable_over_get_from_its_first_batch() -> None:
    # GET checkpoints the reply so far at its first batch and then at most every second: one
    # second into a reply it shows what had streamed up to ~1.1 s before, never nothing.
    w = world()
    w.model.reply = "".join(f"w{number:02d} " for number in range(40))
    w.model.chunks, w.model.chunk_seconds = 40, 0.1
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    seen: list[tuple[int, str]] = []

    def read_get(number: int) -> None:
        turns = w.services.get_conversation(OWNER, conversation.id)[1]
        seen.append((number, turns[-1].assistant_text))

    w.model.on_chunk = read_get
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "count"}))
    assert w.services.generate(conversation.id, 0) == "sealed"
    for number, text in seen[1:]:
        # Chunk n is added at n * 0.1 s; what GET shows lags the stream by at most 1.1 s.
        assert len(text) >= 4 * max(1, number - 11), (number, text)


def test_the_measuring_reason_stays_true_after_two_sealed_turns() -> None:
    # It used to say "until two sealed turns", still shown after two sealed turns.
    w = world()
    conversation = conversation_with_turn(w)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "again"}))
    assert w.services.generate(conversation.id, 1) == "sealed"
    reply = subscribe(w, "ws1", conversation.id)
    reason = next(f for f in reply["spec"]["fields"] if f["id"] == "cache-retention")["reason"]
    assert "third" in reason and "until two sealed turns" not in reason
