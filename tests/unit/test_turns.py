"""Turns, streaming chat frames, cancel and close over in-memory fakes."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.errors import Refused
from chalicelib.ports import ModelError
from chalicelib.wire.errors import STATUS
from tests import parsed
from tests.fakes.ports import field_value, world
from tests.helpers import OWNER, chat_subscribe, conversation_with_turn, events, invoke, subscribe


def test_a_turn_streams_batched_deltas_and_seals() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    w.model.chunks, w.model.chunk_seconds = 40, 0.02  # 40 tokens, one every 20 ms
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hi"}))
    assert w.invoker.calls == [(conversation.id, turn.index)]
    assert w.services.generate(conversation.id, turn.index) == "sealed"
    names = events(w, "ws1")
    assert names[0] == "turn-started" and names[-1] == "turn-sealed"
    deltas = [f for f in w.sockets.of("ws1", "chat") if f["event"] == "delta"]
    assert 1 < len(deltas) <= 40 * 0.02 / 0.1 + 2  # at most one push per ~100 ms
    assert "".join(d["text"] for d in deltas) == w.model.reply
    sealed = w.sockets.of("ws1", "chat")[-1]
    assert sealed["text"] == w.model.reply and sealed["usage"]["output_tokens"] == 40
    stored = w.store.get_turns(conversation.id)[0]
    assert stored.status == "sealed" and stored.assistant_text == w.model.reply


def test_a_second_turn_while_generating_is_refused() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "one"}))
    with pytest.raises(Refused) as caught:
        w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "two"}))
    assert caught.value.code == "turn_in_progress" and STATUS[caught.value.code] == 409
    assert len(w.store.get_turns(conversation.id)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "   "},
        {"text": 5},
        {"text": "x" * (100 * 1024)},
        {"text": "\u0000" * 20_000},
    ],
)
def test_bad_turn_text_is_refused_and_changes_nothing(body: dict[str, object]) -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    with pytest.raises(Refused) as caught:
        w.services.start_turn(OWNER, conversation.id, parsed.turn(body))
    assert caught.value.code == "invalid_text"
    assert w.store.get_turns(conversation.id) == [] and w.invoker.calls == []


def test_close_during_a_stream_aborts_it_and_stops_warming() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    chat_subscribe(w, "ws1", conversation.id)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "tell me more"}))
    w.model.chunks = 10
    w.model.on_chunk = lambda n: n == 4 and w.services.close(OWNER, conversation.id)
    assert w.services.generate(conversation.id, turn.index) == "aborted"
    names = events(w, "ws1")
    assert "turn-aborted" in names and "turn-sealed" not in names
    assert names[-1] == "turn-aborted"
    aborted = w.sockets.of("ws1", "chat")[-1]
    assert aborted["reason"] == "closed" and aborted["text"]
    stored = w.store.get_turns(conversation.id)[1]
    assert stored.status == "aborted" and stored.assistant_text == aborted["text"]
    assert w.timer.live_for(conversation.id) == []
    last = w.sockets.of("ws1", "update")[-1]
    assert field_value(last, "status") == "closed" and field_value(last, "enabled") is False
    assert w.store.get_conversation(conversation.id).active_turn_id is None  # type: ignore[union-attr]


def test_cancel_aborts_the_turn_only() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    chat_subscribe(w, "ws1", conversation.id)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "more"}))
    w.model.on_chunk = lambda n: n == 2 and w.services.cancel(OWNER, conversation.id)
    assert w.services.generate(conversation.id, turn.index) == "aborted"
    assert w.sockets.of("ws1", "chat")[-1]["reason"] == "cancelled"
    state = w.store.get_conversation(conversation.id).warming  # type: ignore[union-attr]
    assert state.enabled and state.status == "scheduled"
    assert len(w.timer.live_for(conversation.id)) == 1


def test_cancel_with_nothing_in_flight_is_harmless() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    assert w.services.cancel(OWNER, conversation.id) is False
    assert w.store.get_conversation(conversation.id).version == 0  # type: ignore[union-attr]


def test_close_is_idempotent_and_a_new_turn_reopens_with_warming_off() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.services.close(OWNER, conversation.id)
    version = w.store.get_conversation(conversation.id).version  # type: ignore[union-attr]
    w.services.close(OWNER, conversation.id)
    assert w.store.get_conversation(conversation.id).version == version  # type: ignore[union-attr]
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "back again"}))
    w.services.generate(conversation.id, turn.index)
    state = w.store.get_conversation(conversation.id).warming  # type: ignore[union-attr]
    assert (state.closed, state.enabled, state.status) == (False, False, "off")
    assert w.timer.live_for(conversation.id) == []


def test_the_ws_close_frame_does_what_http_close_does() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.services.handle_frame(
        "ws1", json.dumps({"type": "close", "conversationId": conversation.id, "requestId": "z"})
    )
    assert w.sockets.last("ws1") == {
        "type": "ack",
        "of": "close",
        "conversationId": conversation.id,
        "requestId": "z",
    }
    assert field_value(w.sockets.of("ws1", "update")[-1], "status") == "closed"
    assert w.timer.live_for(conversation.id) == []


def test_disconnect_and_unsubscribes_during_a_stream_stop_nothing() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    chat_subscribe(w, "ws1", conversation.id)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "keep going"}))

    def leave(n: int) -> None:
        if n == 1:
            w.services.handle_frame(
                "ws1", json.dumps({"type": "chat.unsubscribe", "conversationId": conversation.id})
            )
            w.services.disconnect("ws1")

    w.model.on_chunk = leave
    assert w.services.generate(conversation.id, turn.index) == "sealed"
    assert w.store.get_turns(conversation.id)[1].status == "sealed"
    assert len(w.timer.live_for(conversation.id)) == 1


def test_two_chat_subscribers_get_the_same_frames_and_a_gone_one_is_forgotten() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    for connection_id in ("a", "b", "c"):
        chat_subscribe(w, connection_id, conversation.id)
    w.sockets.gone.add("c")
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hi"}))
    w.services.generate(conversation.id, turn.index)
    assert w.sockets.of("a", "chat") == w.sockets.of("b", "chat")
    assert events(w, "a")[-1] == "turn-sealed"
    assert w.store.get_connection("c") is None


@pytest.mark.parametrize("code", ["rate_limited", "overloaded", "upstream_error", "timeout"])
def test_an_upstream_failure_ends_the_turn_and_keeps_the_conversation_usable(code: str) -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    w.model.stream_error = ModelError(code, "boom")
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hi"}))
    assert w.services.generate(conversation.id, turn.index) == "failed"
    failed = w.sockets.of("ws1", "chat")[-1]
    assert (failed["event"], failed["code"]) == ("turn-failed", code)
    stored = w.store.get_turns(conversation.id)[0]
    assert (stored.status, stored.user_text, stored.error_code) == ("failed", "hi", code)
    w.model.stream_error = None
    again = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "retry"}))
    assert w.services.generate(conversation.id, again.index) == "sealed"
    # The failed turn stays in the history but not in the prompt.
    assert [m["role"] for m in w.model.streams[-1].messages] == ["user"]


@pytest.mark.parametrize("reply", ["", "  \n\t "])
def test_a_blank_reply_fails_the_turn_and_never_enters_a_prompt(reply: str) -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    w.model.reply = reply
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "think hard"}))
    assert w.services.generate(conversation.id, turn.index) == "failed"
    failed = w.sockets.of("ws1", "chat")[-1]
    assert (failed["event"], failed["code"], failed["text"]) == (
        "turn-failed",
        "empty_reply",
        reply,
    )
    stored = w.store.get_turns(conversation.id)[0]
    assert (stored.status, stored.error_code, stored.usage) == (
        "failed",
        "empty_reply",
        w.model.turn_usage,
    )
    # The conversation stays usable, and the blank reply is not sent back to the model.
    w.model.reply = "A real answer."
    again = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "again"}))
    assert w.services.generate(conversation.id, again.index) == "sealed"
    assert [m["role"] for m in w.model.streams[-1].messages] == ["user"]


def test_a_failed_generate_invoke_fails_the_turn() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    w.invoker.fail = RuntimeError("lambda throttled")
    with pytest.raises(Refused) as caught:
        w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hi"}))
    assert caught.value.code == "upstream_error"
    assert w.store.get_turns(conversation.id)[0].status == "failed"
    assert w.store.get_conversation(conversation.id).active_turn_id is None  # type: ignore[union-attr]


def test_a_duplicate_generate_invoke_does_nothing() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    assert w.services.generate(conversation.id, 0) == "stale"
    assert len(w.model.streams) == 1


def test_history_lists_every_turn_in_order_with_its_status() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    statuses = []
    for number, error in enumerate([None, ModelError("overloaded", "x"), None]):
        w.model.stream_error = error
        turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": f"q{number}"}))
        statuses.append(w.services.generate(conversation.id, turn.index))
    _, turns = w.services.get_conversation(OWNER, conversation.id)
    assert [t.user_text for t in turns] == ["q0", "q1", "q2"]
    assert [t.status for t in turns] == statuses == ["sealed", "failed", "sealed"]


def test_a_tick_while_a_turn_generates_sends_no_warm_and_rearms() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "long question"}))
    tick = w.timer.pop_due(conversation.id)
    report = w.services.handle_tick(conversation.id, tick.seq, tick.target)
    assert report.action == "scheduled" and w.model.warms == []
    assert len(w.timer.live_for(conversation.id)) == 1


def test_a_duplicate_generate_invoke_during_the_stream_backs_off() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hi"}))
    duplicates: list[str] = []

    def duplicate_invoke(number: int) -> None:
        if number == 1:
            duplicates.append(w.services.generate(conversation.id, turn.index))

    w.model.on_chunk = duplicate_invoke
    assert w.services.generate(conversation.id, turn.index) == "sealed"
    assert duplicates == ["stale"] and len(w.model.streams) == 1
    assert events(w, "ws1").count("turn-started") == 1


def test_a_turn_abandoned_by_a_dead_lambda_is_failed_by_the_next_turn() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.start_turn(
        OWNER, conversation.id, parsed.turn({"text": "lost"})
    )  # generate never runs
    with pytest.raises(Refused):
        w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "too early"}))
    w.clock.advance(17 * 60)
    again = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "again"}))
    assert w.services.generate(conversation.id, again.index) == "sealed"
    turns = w.store.get_turns(conversation.id)
    assert [(t.user_text, t.status, t.error_code) for t in turns] == [
        ("lost", "failed", "timeout"),
        ("again", "sealed", None),
    ]


def test_every_billed_turn_keeps_its_cost_and_get_returns_it() -> None:
    """Sealed, aborted and failed-mid-stream turns were billed: each stores what it cost (the same
    figure its chat frame carried), so a reload shows it; a turn that never reached the model has
    none."""
    from chalicelib.wire.views import turn_view

    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    chat_subscribe(w, "ws1", conversation.id)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "one"}))
    assert w.services.generate(conversation.id, turn.index) == "sealed"
    sealed_frame = w.sockets.of("ws1", "chat")[-1]
    w.model.chunks = 10
    w.model.on_chunk = lambda n: n == 3 and w.services.cancel(OWNER, conversation.id)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "two"}))
    assert w.services.generate(conversation.id, turn.index) == "aborted"
    w.model.on_chunk = None
    w.model.stream_error = ModelError("overloaded", "x")  # after the first chunk: billed
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "three"}))
    assert w.services.generate(conversation.id, turn.index) == "failed"
    w.model.fail_before_start = True  # refused before answering (a 529): nothing billed
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "four"}))
    assert w.services.generate(conversation.id, turn.index) == "failed"
    _, turns = w.services.get_conversation(OWNER, conversation.id)
    views = [turn_view(t) for t in turns]
    assert views[0]["costUsd"] == sealed_frame["costUsd"] > 0
    assert [t.status for t in turns] == ["sealed", "aborted", "failed", "failed"]
    assert turns[1].usage is not None and views[1]["costUsd"] > 0
    assert turns[2].usage is not None and views[2]["costUsd"] > 0
    assert turns[3].usage is None and views[3]["costUsd"] is None
