"""Use cases over in-memory fakes: the warming lifecycle as the user sees it on the socket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.conversation import Conversation
from chalicelib.domain.errors import Refused
from chalicelib.domain.warming import Toggle
from chalicelib.ports import ModelError, VersionConflict
from tests import parsed
from tests.fakes.ports import field_value, world
from tests.helpers import OWNER, conversation_with_turn, fire, invoke, send, subscribe


def test_cr4a_a_new_conversation_is_off_with_no_schedule() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    frame = subscribe(w, "ws1", conversation.id)
    assert frame["type"] == "surface"
    assert field_value(frame, "enabled") is False
    assert field_value(frame, "status") == "off"
    assert field_value(frame, "timer")["nextWarmAt"] is None
    assert w.timer.live_for(conversation.id) == [] and w.timer.armed == []


def test_cr4b_every_warm_pushes_its_time_and_a_future_next_warm_with_one_live_tick() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    subscribe(w, "ws2", conversation.id)
    invoke(w, "ws1", conversation.id, "set-interval", 60)
    invoke(w, "ws1", conversation.id, "toggle", True)
    for number in range(1, 4):
        before = len(w.sockets.of("ws2", "update"))
        announced = w.store.get_conversation(conversation.id).warming.next_warm_at  # type: ignore[union-attr]
        report = fire(w, conversation.id)
        assert report.action == "warmed"
        assert report.lateness_ms == 0  # the handler waited exactly until the announced time
        updates = w.sockets.of("ws2", "update")
        assert len(updates) == before + 1
        timer = field_value(updates[-1], "timer")
        assert timer["lastWarmAt"] == announced
        assert timer["nextWarmAt"] > timer["lastWarmAt"]
        assert timer["nextWarmAt"] > w.clock.now
        assert len(w.timer.live_for(conversation.id)) == 1
        assert field_value(updates[-1], "warm-cost")["warms"] == number
    assert len(w.model.warms) == 3


def test_cr4d_frames_echo_conversation_id_and_request_id() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.connect("ws1", OWNER)
    surface = send(
        w,
        "ws1",
        type="subscribe",
        surfaceId="cache-warming",
        conversationId=conversation.id,
        requestId="r-1",
    )
    assert (surface["conversationId"], surface["requestId"]) == (conversation.id, "r-1")
    update = invoke(w, "ws1", conversation.id, "toggle", True, requestId="r-2")
    assert (update["type"], update["conversationId"], update["requestId"]) == (
        "update",
        conversation.id,
        "r-2",
    )
    error = invoke(w, "ws1", conversation.id, "set-interval", 5, requestId="r-3")
    assert error == {
        "type": "error",
        "code": "invalid_interval",
        "message": error["message"],
        "requestId": "r-3",
        "conversationId": conversation.id,
    }
    pong = send(w, "ws1", type="ping", requestId="r-4")
    assert pong == {"type": "pong", "requestId": "r-4"}


def test_the_requester_gets_one_update_and_other_subscribers_get_the_broadcast() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    subscribe(w, "ws1", conversation.id)
    subscribe(w, "ws2", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True, requestId="q")
    assert [f.get("requestId") for f in w.sockets.of("ws1", "update")] == ["q"]
    assert [f.get("requestId") for f in w.sockets.of("ws2", "update")] == [None]


def test_toggle_true_twice_books_one_tick_and_false_deletes_it() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    invoke(w, "ws1", conversation.id, "toggle", True)
    assert len(w.timer.armed) == 1 and len(w.timer.live_for(conversation.id)) == 1
    off = invoke(w, "ws1", conversation.id, "toggle", False)
    assert field_value(off, "enabled") is False and field_value(off, "status") == "off"
    assert w.timer.live_for(conversation.id) == []
    again = invoke(w, "ws1", conversation.id, "toggle", False)
    assert field_value(again, "enabled") is False and len(w.timer.cancelled) == 1


def test_toggle_without_payload_flips_twice() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    assert field_value(invoke(w, "ws1", conversation.id, "toggle"), "enabled") is True
    assert field_value(invoke(w, "ws1", conversation.id, "toggle"), "enabled") is False


def test_set_interval_reschedules_from_the_last_refresh() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    refreshed = w.store.get_conversation(conversation.id).warming.last_refresh_at  # type: ignore[union-attr]
    assert refreshed is not None
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    update = invoke(w, "ws1", conversation.id, "set-interval", 90)
    assert field_value(update, "interval") == 90
    (tick,) = w.timer.live_for(conversation.id)
    assert tick.target == refreshed + 90_000
    assert field_value(update, "timer")["nextWarmAt"] == tick.target


def test_duplicate_and_stale_ticks_write_nothing() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    tick = w.timer.pop_due(conversation.id)
    assert w.services.handle_tick(conversation.id, tick.seq, tick.target).action == "warmed"
    version = w.store.get_conversation(conversation.id).version  # type: ignore[union-attr]
    frames = len(w.sockets.of("ws1"))
    for seq, target in [(tick.seq, tick.target), (tick.seq - 1, tick.target), (tick.seq + 5, 1)]:
        assert w.services.handle_tick(conversation.id, seq, target).action == "noop"
    assert w.store.get_conversation(conversation.id).version == version  # type: ignore[union-attr]
    assert len(w.sockets.of("ws1")) == frames and len(w.model.warms) == 1


@pytest.mark.parametrize(
    ("model", "retention", "budget"),
    [
        # Cache reads at 0.1x of input: (1.25 - 0.1) / 0.1 -> 11 warms; (2 - 0.1) / 0.1 -> 19.
        ("claude-sonnet-4-6", "5m", 11),
        ("claude-sonnet-4-6", "1h", 19),
        # Sonnet 5.5 reads at 0.05x: (1.25 - 0.05) / 0.05 -> 24.
        ("claude-sonnet-5-5", "5m", 24),
    ],
)
def test_the_idle_budget_is_the_models_break_even(model: str, retention: str, budget: int) -> None:
    w = world()
    conversation = conversation_with_turn(w, model=model, cacheRetention=retention)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "set-interval", 20)
    invoke(w, "ws1", conversation.id, "toggle", True)
    for _ in range(budget):
        fire(w, conversation.id)
    last = w.sockets.of("ws1", "update")[-1]
    assert field_value(last, "status") == "paused-idle"
    assert field_value(last, "timer")["nextWarmAt"] is None
    assert w.timer.live_for(conversation.id) == [] and len(w.model.warms) == budget


def test_a_late_tick_after_expiry_sends_no_warm_and_shows_cache_expired() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    tick = w.timer.pop_due(conversation.id)
    w.clock.advance(400)  # the tick arrives long after its target (and the cache's expiry)
    report = w.services.handle_tick(conversation.id, tick.seq, tick.target)
    assert report.action == "cache-expired" and w.model.warms == []
    assert field_value(w.sockets.of("ws1", "update")[-1], "status") == "cache-expired"
    assert w.timer.live_for(conversation.id) == []


def test_enabling_after_expiry_rebuilds_at_once_and_then_warms_normally() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    w.clock.advance(3600)
    update = invoke(w, "ws1", conversation.id, "toggle", True)
    assert field_value(update, "timer")["nextWarmAt"] == w.clock.now
    w.model.warm_usage = w.model.warm_usage.__class__(cache_creation_input_tokens=5000)
    fire(w, conversation.id)
    rebuilt = w.sockets.of("ws1", "update")[-1]
    # The default model, Sonnet 5.5, writes the 5-minute cache at $2.50 per million tokens.
    assert field_value(rebuilt, "warm-cost")["lastUsd"] == pytest.approx(5000 * 2.5 / 1e6)
    assert field_value(rebuilt, "status") == "scheduled"
    assert fire(w, conversation.id).action == "warmed"


def test_a_gone_connection_is_forgotten_and_the_others_still_get_the_push() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    for connection_id in ("ws1", "ws2", "ws3"):
        subscribe(w, connection_id, conversation.id)
    w.sockets.gone.add("ws2")
    invoke(w, "ws1", conversation.id, "toggle", True)
    assert len(w.sockets.of("ws3", "update")) == 1
    assert w.store.get_connection("ws2") is None
    assert w.store.subscribers(conversation.id, "surface", w.clock.now // 1000) == ["ws1", "ws3"]


def test_disconnect_forgets_the_socket_and_warming_goes_on() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.services.disconnect("ws1")
    assert w.store.get_connection("ws1") is None
    assert fire(w, conversation.id).action == "warmed"
    assert len(w.timer.live_for(conversation.id)) == 1


def test_unsubscribe_stops_pushes_but_not_warming() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    ack = send(
        w, "ws1", type="unsubscribe", surfaceId="cache-warming", conversationId=conversation.id
    )
    assert ack["type"] == "ack"
    frames = len(w.sockets.of("ws1"))
    assert fire(w, conversation.id).action == "warmed"
    assert len(w.sockets.of("ws1")) == frames


def test_another_owners_conversation_is_not_found_everywhere() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.connect("mallory-ws", "mallory")
    for frame in (
        {"type": "subscribe", "surfaceId": "cache-warming"},
        {"type": "invoke", "surfaceId": "cache-warming", "action": "cache-warming/toggle"},
        {"type": "chat.subscribe"},
        {"type": "close"},
    ):
        reply = send(w, "mallory-ws", conversationId=conversation.id, **frame)
        assert reply["code"] == "not_found"
    with pytest.raises(Refused) as caught:
        w.services.get_conversation("mallory", conversation.id)
    assert caught.value.code == "not_found"
    assert w.store.get_conversation(conversation.id).version == 0  # type: ignore[union-attr]


def test_a_frame_from_an_unknown_connection_is_unauthorized() -> None:
    w = world()
    w.services.handle_frame("stranger", json.dumps({"type": "ping", "requestId": "a"}))
    assert w.sockets.last("stranger")["code"] == "unauthorized"


def test_a_failed_arm_writes_no_state_that_claims_a_tick() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    version = w.store.get_conversation(conversation.id).version  # type: ignore[union-attr]
    w.timer.fail_next_arm = RuntimeError("scheduler down")
    with pytest.raises(RuntimeError):
        w.services.uow.transition(conversation.id, Toggle(True))
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None and stored.version == version and not stored.warming.enabled


def test_a_version_conflict_cancels_the_orphan_timer_and_decides_again() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    real_save = w.store.save_conversation
    calls = {"n": 0}

    def conflict_once(c: Conversation, *rest: Any) -> Conversation:
        calls["n"] += 1
        if calls["n"] == 1:
            raise VersionConflict(c.id)
        return real_save(c, *rest)

    w.store.save_conversation = conflict_once  # type: ignore[method-assign,assignment]
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    assert len(w.timer.armed) == 2 and len(w.timer.cancelled) == 1
    (live,) = w.timer.live_for(conversation.id)
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None and stored.warming.timer_ref == live.ref


def test_warm_errors_stop_in_error_after_three_and_a_turn_recovers() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "set-interval", 20)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.model.warm_errors = [ModelError("overloaded", "529")] * 3
    for _ in range(3):
        assert fire(w, conversation.id).action == "warm-failed"
    assert field_value(w.sockets.of("ws1", "update")[-1], "status") == "error"
    assert w.timer.live_for(conversation.id) == []
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "again"}))
    w.services.generate(conversation.id, 1)
    assert field_value(w.sockets.of("ws1", "update")[-1], "status") == "scheduled"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"model": "claude-unknown-9"}, "'model' must be one of the catalog's models"),
        ({"model": "claude-haiku-4-5", "maxTokens": 64_001}, "from 1 to 64000"),
        ({"maxTokens": 0}, "'maxTokens' must be an integer"),
        ({"system": " \n\t"}, "'system' must contain non-whitespace text"),
    ],
)
def test_creation_refuses_what_the_model_would_refuse(body: dict[str, Any], problem: str) -> None:
    w = world()
    with pytest.raises(Refused) as caught:
        w.services.create_conversation(OWNER, parsed.conversation(body))
    assert caught.value.code == "invalid_field" and problem in caught.value.message
    assert w.store.list_conversations(OWNER) == []


def test_a_model_alias_is_accepted_and_max_tokens_defaults_within_its_limit() -> None:
    w = world()
    conversation = w.services.create_conversation(
        OWNER, parsed.conversation({"model": "claude-haiku-4-5-20251001"})
    )
    assert conversation.model == "claude-haiku-4-5-20251001"
    assert conversation.max_tokens == 8192
