"""A conversation that no longer fits its model's context window (issue 12, item 11)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain import catalog
from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage
from chalicelib.domain.turns import begin_turn
from chalicelib.ports import ModelError
from tests import parsed
from tests.fakes.ports import world
from tests.helpers import OWNER, conversation_with_turn, invoke, subscribe

# claude-haiku-4-5: a 200,000-token window (catalog) and a 64,000-token output limit.
MODEL = "claude-haiku-4-5"


def _window() -> int:
    facts = catalog.lookup(MODEL)
    assert facts is not None
    return facts.context_window


def test_a_turn_that_would_not_fit_is_refused_before_the_model_is_called() -> None:
    w = world()
    conversation = conversation_with_turn(w, model=MODEL, maxTokens=8192)
    # The last turn's prompt and reply left this much of the window in use.
    w.model.turn_usage = Usage(input_tokens=_window() - 8192 - 2000, output_tokens=1000)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "one more"}))
    assert w.services.generate(conversation.id, 1) == "sealed"
    before = w.store.get_conversation(conversation.id)
    streams = len(w.model.streams)

    with pytest.raises(Refused) as refused:
        w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "x" * 4000}))
    assert refused.value.code == "context_full"
    assert "context window" in refused.value.message
    assert len(w.model.streams) == streams and len(w.invoker.calls) == 2
    assert w.store.get_conversation(conversation.id) == before  # nothing written
    # Still readable and closable.
    _, turns = w.services.get_conversation(OWNER, conversation.id)
    assert [turn.status for turn in turns] == ["sealed", "sealed"]
    assert w.services.close(OWNER, conversation.id).warming.closed


def test_a_short_message_that_fits_is_still_sent() -> None:
    w = world()
    conversation = conversation_with_turn(w, model=MODEL, maxTokens=8192)
    w.model.turn_usage = Usage(input_tokens=_window() - 8192 - 2000, output_tokens=1000)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "one more"}))
    w.services.generate(conversation.id, 1)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "short"}))
    assert turn.index == 2


def test_the_estimate_counts_the_new_text_conservatively() -> None:
    w = world()
    conversation = conversation_with_turn(w, model=MODEL, maxTokens=1000)
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None
    limit = _window() - 1000
    near = replace(stored, warming=replace(stored.warming, prefix_tokens=limit - 100))
    # 300 bytes of text may be 150 tokens (at 2 bytes per token): over the 100 left.
    with pytest.raises(Refused) as refused:
        begin_turn(near, "é" * 150, 0, context_limit=limit)
    assert refused.value.code == "context_full"
    assert begin_turn(near, "a" * 150, 0, context_limit=limit).turn is not None
    # Without a known limit (or a known prefix) nothing is refused here.
    assert begin_turn(near, "é" * 150, 0, context_limit=None).turn is not None


def test_a_sealed_turn_that_leaves_no_room_stops_warming_as_context_full() -> None:
    w = world()
    conversation = conversation_with_turn(w, model=MODEL, maxTokens=8192)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.model.turn_usage = Usage(input_tokens=_window() - 8192, output_tokens=500)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "long"}))
    w.services.generate(conversation.id, 1)
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None
    assert stored.warming.status == "context-full"
    assert w.timer.live_for(conversation.id) == []
    # The user asking again does not restart it: the next turn cannot fit anyway.
    update = invoke(w, "ws1", conversation.id, "toggle", True)
    assert update["type"] == "update"
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None and stored.warming.status == "context-full"
    assert w.timer.live_for(conversation.id) == []


def test_the_apis_own_refusal_fails_the_turn_and_stops_warming() -> None:
    w = world()
    conversation = conversation_with_turn(w, model=MODEL)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.model.stream_error = ModelError(
        "context_window_exceeded", "prompt is too long: 208656 tokens > 200000 maximum"
    )
    w.model.reply = "ab"  # the fake raises it at its second chunk
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "again"}))
    assert w.services.generate(conversation.id, 1) == "failed"
    _, turns = w.services.get_conversation(OWNER, conversation.id)
    assert turns[-1].error_code == "context_window_exceeded"
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None and stored.warming.status == "context-full"
    assert w.timer.live_for(conversation.id) == []
