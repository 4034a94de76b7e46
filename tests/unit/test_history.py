"""The conversation's history over the in-memory fakes: every warm (sent, failed, skipped) and
every ended turn, written with the change it records, newest first, paged."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Refused
from chalicelib.domain.history import HistoryEntry
from chalicelib.ports import ModelError
from chalicelib.wire import commands, views
from tests import parsed
from tests.fakes.ports import World, field_value, world
from tests.helpers import OWNER, conversation_with_turn, invoke, subscribe


def _entries(w: World, conversation_id: str, limit: int = 100) -> list[HistoryEntry]:
    return w.services.history(OWNER, conversation_id, limit).entries


def _fire(w: World, conversation_id: str) -> str:
    tick = w.timer.pop_due(conversation_id)
    return w.services.handle_tick(conversation_id, tick.seq, tick.target).action


def test_warms_and_turns_are_recorded_newest_first_with_a_rescue_and_running_totals() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    booked = w.timer.live_for(conversation.id)[0].target
    assert _fire(w, conversation.id) == "warmed"
    assert _fire(w, conversation.id) == "warmed"
    w.clock.advance(100)  # past the first turn's own cache: the next turn is a rescue
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "still there?"}))
    assert w.services.generate(conversation.id, 1) == "sealed"
    entries = _entries(w, conversation.id)
    assert [(e.seq, e.kind, e.outcome) for e in entries] == [
        (4, "turn", "sealed"),
        (3, "warm", "warmed"),
        (2, "warm", "warmed"),
        (1, "turn", "sealed"),
    ]
    rescue, second, first, opening = entries
    assert first.target == booked and first.at >= booked and first.usage == w.model.warm_usage
    turns = w.store.get_turns(conversation.id)
    assert (opening.turn_id, opening.cost_usd, opening.rescue) == (
        "t000000",
        turns[0].cost_usd,
        False,
    )
    assert rescue.rescue and rescue.saved_usd > 0 and rescue.cost_usd == turns[1].cost_usd
    panel = field_value(w.sockets.of("ws1", "update")[-1], "savings")
    assert (rescue.spent_total_usd, rescue.saved_total_usd) == (
        panel["spentUsd"],
        panel["savedUsd"],
    )
    assert second.spent_total_usd == pytest.approx(first.cost_usd + second.cost_usd)
    assert opening.spent_total_usd == 0.0


def test_a_failed_warm_and_a_skipped_one_are_recorded_with_their_reason() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    invoke(w, "ws1", conversation.id, "set-interval", 200)  # room for a retry in the cache's life
    w.model.warm_errors = [ModelError("overloaded", "busy")]
    assert _fire(w, conversation.id) == "warm-failed"
    tick = w.timer.pop_due(conversation.id)  # the retry, 20 s later
    w.clock.advance(400)  # ... arrives after the cache expired: not sent
    assert w.services.handle_tick(conversation.id, tick.seq, tick.target).action == "cache-expired"
    skipped, failed, _ = _entries(w, conversation.id)
    assert (failed.outcome, failed.reason, failed.cost_usd, failed.usage) == (
        "failed",
        "overloaded",
        0.0,
        None,
    )
    assert (skipped.outcome, skipped.reason, skipped.target) == (
        "skipped",
        "cache-expired",
        tick.target,
    )
    assert skipped.at == w.clock.now_ms()
    view = views.history_entry_view(skipped)
    assert view["delayMs"] == skipped.at - tick.target and view["costUsd"] == 0.0


def test_an_aborted_turn_is_recorded_with_its_reason_and_cost() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    w.model.chunks = 10
    w.model.on_chunk = lambda n: n == 3 and w.services.cancel(OWNER, conversation.id)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "one"}))
    assert w.services.generate(conversation.id, 0) == "aborted"
    (entry,) = _entries(w, conversation.id)
    assert (entry.kind, entry.outcome, entry.reason) == ("turn", "aborted", "cancelled")
    assert entry.cost_usd > 0 and entry.usage is not None


def test_pages_follow_the_cursor_to_the_oldest_entry() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    for number in range(4):
        w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": f"q{number}"}))
        w.services.generate(conversation.id, number + 1)
    seen: list[int] = []
    query: dict[str, str] = {"limit": "2"}
    while True:
        command = commands.list_history(query)
        page = views.history_view(
            w.services.history(OWNER, conversation.id, command.limit, command.before)
        )
        seen += [entry["seq"] for entry in page["entries"]]
        if page["nextCursor"] is None:
            break
        query = {"limit": "2", "cursor": page["nextCursor"]}
    assert seen == [5, 4, 3, 2, 1]


def test_another_users_history_is_not_found_and_a_forged_cursor_is_refused() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    with pytest.raises(Refused) as caught:
        w.services.history("mallory", conversation.id, 10)
    assert caught.value.code == "not_found"
    for cursor in ["bogus", "aDA", "h5", "x" * 50]:
        with pytest.raises(Refused) as caught:
            commands.list_history({"cursor": cursor})
        assert caught.value.code == "invalid_field"
    for limit in ["0", "101", "-1", "a"]:
        with pytest.raises(Refused):
            commands.list_history({"limit": limit})
