"""What the panel tells a person: the cause of every update, when the cache expires, the warms left
before the idle pause, and what an hour of warming costs at the chosen interval."""

from __future__ import annotations

from typing import Any

import pytest

from tests import parsed
from tests.fakes.ports import PRICES, World, field_value, world
from tests.helpers import OWNER, conversation_with_turn, invoke, subscribe


def _warm_once(w: World, conversation_id: str) -> None:
    tick = w.timer.pop_due(conversation_id)
    assert w.services.handle_tick(conversation_id, tick.seq, tick.target).action == "warmed"


def _causes(w: World, connection_id: str) -> list[str]:
    return [frame["cause"] for frame in w.sockets.of(connection_id, "update")]


def test_every_update_says_what_caused_it() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    subscribe(w, "ws2", conversation.id)
    assert invoke(w, "ws1", conversation.id, "toggle", True)["cause"] == "toggle"
    assert invoke(w, "ws1", conversation.id, "set-interval", 200)["cause"] == "interval"
    _warm_once(w, conversation.id)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "again"}))
    assert w.services.generate(conversation.id, 1) == "sealed"
    w.services.close(OWNER, conversation.id)
    # The other subscriber hears each change without a requestId, with the same cause.
    assert _causes(w, "ws2") == ["toggle", "interval", "warm", "turn-sealed", "close"]
    assert all("requestId" not in frame for frame in w.sockets.of("ws2", "update"))


def test_a_tick_that_stops_warming_says_stop() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    tick = w.timer.pop_due(conversation.id)
    w.clock.advance(400)  # the tick comes after the cache expired: no warm is sent
    report = w.services.handle_tick(conversation.id, tick.seq, tick.target)
    assert report.action == "cache-expired" and w.model.warms == []
    last = w.sockets.of("ws1", "update")[-1]
    assert (last["cause"], field_value(last, "status")) == ("stop", "cache-expired")


def _timer(frame: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = field_value(frame, "timer")
    return value


def test_the_timer_shows_the_cache_expiry_and_the_warms_left_before_the_idle_pause() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    surface = subscribe(w, "ws1", conversation.id)
    turn = w.store.get_turns(conversation.id)[0]
    assert _timer(surface)["cacheExpiresAt"] == turn.started_at + 300_000
    state = w.store.get_conversation(conversation.id).warming  # type: ignore[union-attr]
    budget = state.idle_budget
    assert budget is not None and budget > 2
    assert _timer(surface)["warmsLeft"] == budget
    invoke(w, "ws1", conversation.id, "toggle", True)
    _warm_once(w, conversation.id)
    _warm_once(w, conversation.id)
    after = w.sockets.of("ws1", "update")[-1]
    assert _timer(after)["warmsLeft"] == budget - 2
    last_warm = _timer(after)["lastWarmAt"]
    assert _timer(after)["cacheExpiresAt"] == last_warm + 300_000


def test_cost_per_hour_follows_the_interval_from_the_measured_prefix_and_read_price() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    assert field_value(subscribe(w, "ws0", conversation.id), "interval") == 290
    state = w.store.get_conversation(conversation.id).warming  # type: ignore[union-attr]
    rates = PRICES.cache_rates(conversation.model, w.clock.now_ms(), state.prefix_tokens or 0)
    assert state.prefix_tokens and state.cache_read_rate == pytest.approx(rates.cache_read)
    per_warm = state.prefix_tokens * state.cache_read_rate / 1_000_000
    fields = {f["id"]: f for f in invoke(w, "ws0", conversation.id, "set-interval", 20)["fields"]}
    short = fields["interval"]["costPerHourUsd"]
    assert short == round(per_warm * 3600 / 20, 6)
    fields = {f["id"]: f for f in invoke(w, "ws0", conversation.id, "set-interval", 290)["fields"]}
    assert fields["interval"]["costPerHourUsd"] == round(per_warm * 3600 / 290, 6)
    assert (
        14 < short / fields["interval"]["costPerHourUsd"] < 15
    )  # 20 s costs 14.5x what 290 s does


def test_before_any_sealed_turn_nothing_is_estimated() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    surface = subscribe(w, "ws1", conversation.id)
    assert _timer(surface)["cacheExpiresAt"] is None and _timer(surface)["warmsLeft"] is None
    interval = next(f for f in surface["spec"]["fields"] if f["id"] == "interval")
    assert interval["costPerHourUsd"] is None
