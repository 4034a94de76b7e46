"""Per-user limits (issue 12, item 10): the conversation cap, the daily spend budget, the list."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain.budget import spend_day
from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage
from chalicelib.ports import ModelError
from chalicelib.services.ports import Limits
from chalicelib.services.unit_of_work import WarmUnfinished
from chalicelib.wire import commands
from tests import parsed
from tests.fakes.ports import World, world
from tests.helpers import OWNER, conversation_with_turn, fire, invoke, subscribe


def test_creating_past_the_conversation_cap_is_limit_reached() -> None:
    w = world()
    w.services.ports.limits = replace(Limits(), conversations=2)
    w.services.create_conversation(OWNER, parsed.conversation())
    w.services.create_conversation(OWNER, parsed.conversation())
    with pytest.raises(Refused) as refused:
        w.services.create_conversation(OWNER, parsed.conversation())
    assert refused.value.code == "limit_reached"
    assert "2 open conversations" in refused.value.message
    w.services.create_conversation("bob", parsed.conversation())  # another user's own cap


def test_closing_a_conversation_frees_its_place_under_the_cap() -> None:
    # The cap is on open conversations: a user who closes what they are done with can go on
    # creating for ever (there is no delete route).
    w = world()
    w.services.ports.limits = replace(Limits(), conversations=2)
    first = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.create_conversation(OWNER, parsed.conversation())
    w.services.close(OWNER, first.id)
    w.services.close(OWNER, first.id)  # closing twice frees one place, not two
    w.services.create_conversation(OWNER, parsed.conversation())
    with pytest.raises(Refused) as refused:
        w.services.create_conversation(OWNER, parsed.conversation())
    assert refused.value.code == "limit_reached"


def test_reopening_past_the_cap_is_refused_and_changes_nothing() -> None:
    w = world()
    w.services.ports.limits = replace(Limits(), conversations=1)
    closed = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.close(OWNER, closed.id)
    w.services.create_conversation(OWNER, parsed.conversation())
    with pytest.raises(Refused) as refused:
        w.services.start_turn(OWNER, closed.id, parsed.turn({"text": "back again"}))
    assert refused.value.code == "limit_reached" and "close one" in refused.value.message
    subscribe(w, "ws1", closed.id)
    reply = invoke(w, "ws1", closed.id, "toggle", True)
    assert reply["type"] == "error" and reply["code"] == "limit_reached"
    stored = w.store.get_conversation(closed.id)
    assert stored is not None and stored.warming.closed and stored.turn_count == 0
    assert w.store.get_turns(closed.id) == [] and w.invoker.calls == []


def test_reopening_under_the_cap_takes_a_place_back() -> None:
    w = world()
    w.services.ports.limits = replace(Limits(), conversations=2)
    closed = w.services.create_conversation(OWNER, parsed.conversation())
    w.services.close(OWNER, closed.id)
    w.services.create_conversation(OWNER, parsed.conversation())
    w.services.start_turn(OWNER, closed.id, parsed.turn({"text": "back again"}))
    with pytest.raises(Refused) as refused:
        w.services.create_conversation(OWNER, parsed.conversation())
    assert refused.value.code == "limit_reached"


def test_sealed_turns_and_warms_are_counted_against_the_owners_day() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    day = spend_day(w.clock.now_ms())
    after_turn = w.store.spent(OWNER, day)
    assert after_turn > 0
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    report = fire(w, conversation.id)
    assert report.action == "warmed" and report.cost_usd
    assert w.store.spent(OWNER, day) == after_turn + round(report.cost_usd * 1_000_000)


def test_a_turn_over_the_budget_is_refused_before_anything_is_sent() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    w.services.ports.limits = replace(Limits(), daily_budget_usd=0.0001)
    w.model.turn_usage = Usage(input_tokens=100_000, output_tokens=1000)
    streams, invokes = len(w.model.streams), len(w.invoker.calls)
    w.store.add_spend(OWNER, spend_day(w.clock.now_ms()), 100, 0)  # $0.0001 spent
    with pytest.raises(Refused) as refused:
        w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "more"}))
    assert refused.value.code == "budget_exhausted"
    assert "00:00 UTC" in refused.value.message
    assert (len(w.model.streams), len(w.invoker.calls)) == (streams, invokes)
    # Another user is not affected; the next UTC day starts afresh.
    other = w.services.create_conversation("bob", parsed.conversation())
    w.services.start_turn("bob", other.id, parsed.turn({"text": "hi"}))
    w.clock.advance(86_400)
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "a new day"}))


def test_a_warm_over_the_budget_is_not_sent_and_warming_says_why() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    w.services.ports.limits = replace(Limits(), daily_budget_usd=0.0)
    report = fire(w, conversation.id)
    assert report.action == "budget-exhausted"
    assert w.model.warms == []
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None and stored.warming.status == "budget-exhausted"
    assert w.timer.live_for(conversation.id) == []
    updates = w.sockets.of("ws1", "update")
    assert updates and updates[-1]["fields"][3]["value"] == "budget-exhausted"
    # A toggle the next day resumes it.
    w.services.ports.limits = Limits()
    invoke(w, "ws1", conversation.id, "toggle", True)
    assert fire(w, conversation.id).action == "warmed"


def test_the_list_pages_with_an_opaque_cursor() -> None:
    w = world()
    for _ in range(5):
        w.services.create_conversation(OWNER, parsed.conversation())
        w.clock.advance(1)
    first = w.services.list_conversations(OWNER, 2)
    assert first.next_after is not None
    cursor = commands.encode_cursor(first.next_after)
    again = commands.list_conversations({"limit": "2", "cursor": cursor})
    second = w.services.list_conversations(OWNER, again.limit, again.after)
    third = w.services.list_conversations(OWNER, 2, second.next_after)
    ids = [s.id for page in (first, second, third) for s in page.summaries]
    assert ids == ["c0005", "c0004", "c0003", "c0002", "c0001"]
    assert third.next_after is None


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"cursor": "not base64!"},
        {"cursor": "MTIz"},  # base64 of "123": not a position
        {"cursor": "x" * 300},
    ],
)
def test_bad_paging_parameters_are_invalid_field(query: dict[str, str]) -> None:
    with pytest.raises(Refused) as refused:
        commands.list_conversations(query)
    assert refused.value.code == "invalid_field"


def test_budget_setting_parsing() -> None:
    from chalicelib.config import settings_from

    assert settings_from({}).daily_budget_usd == 5.0
    assert settings_from({"DAILY_BUDGET_USD": "none"}).daily_budget_usd is None
    assert settings_from({"DAILY_BUDGET_USD": "0"}).daily_budget_usd == 0.0
    assert settings_from({"MAX_CONVERSATIONS_PER_USER": "7"}).max_conversations_per_user == 7
    with pytest.raises(ValueError):
        settings_from({"DAILY_BUDGET_USD": "-1"})


def _throttled(*_args: object, **_kwargs: object) -> int:
    from botocore.exceptions import ClientError

    raise ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "UpdateItem",
    )


def test_a_spend_counter_that_cannot_be_written_never_fails_the_turn_or_the_warm(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = world()
    monkeypatch.setattr(w.store, "add_spend", _throttled)
    monkeypatch.setattr(w.store, "settle_spend", _throttled)
    conversation = conversation_with_turn(w)  # sealed although its cost could not be counted
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    assert fire(w, conversation.id).action == "warmed"
    assert "could not settle" in caplog.text


def test_an_unreadable_spend_counter_refuses_the_turn_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    from chalicelib.wire.errors import refusal_of

    w = world()
    conversation = conversation_with_turn(w)
    before = w.store.get_conversation(conversation.id)
    monkeypatch.setattr(w.store, "committed", _throttled)
    with pytest.raises(ClientError) as failed:
        w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "more"}))
    assert refusal_of(failed.value).code == "upstream_error"  # what the HTTP edge answers
    assert w.store.get_conversation(conversation.id) == before
    assert len(w.invoker.calls) == 1


def _a_due_tick() -> tuple[World, Any]:
    w = world()
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    return w, w.timer.pop_due(conversation.id)


def test_an_unreadable_spend_counter_is_read_again_in_the_same_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At the default interval the queue's retry (5 s) would come inside the late guard: a read
    # throttled past botocore's retries is tried again by the invocation itself.
    w, tick = _a_due_tick()
    real_committed, calls = w.store.committed, []

    def throttled_once(owner: str, day: str) -> int:
        calls.append(owner)
        return _throttled(owner, day) if len(calls) == 1 else real_committed(owner, day)

    monkeypatch.setattr(w.store, "committed", throttled_once)
    assert w.services.handle_tick(tick.conversation_id, tick.seq, tick.target).action == "warmed"
    assert len(calls) == 2 and len(w.model.warms) == 1


def test_a_spend_counter_unreadable_for_the_whole_retry_room_leaves_the_tick_unclaimed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    w, tick = _a_due_tick()
    monkeypatch.setattr(w.store, "committed", _throttled)
    with pytest.raises(ClientError):
        w.services.handle_tick(tick.conversation_id, tick.seq, tick.target)
    # It kept trying for the 8 s the default interval leaves before the guard, then gave up.
    assert tick.target + 7_800 <= w.clock.now_ms() <= tick.target + 8_000
    stored = w.store.get_conversation(tick.conversation_id)
    assert stored is not None and stored.warming.status == "scheduled" and w.model.warms == []


def test_a_warm_whose_next_booking_failed_once_is_booked_by_the_same_invocation() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    day = spend_day(w.clock.now_ms())
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    before = w.store.spent(OWNER, day)
    w.timer.fail_next_arm = RuntimeError("queue down")
    fire(w, conversation.id)
    assert len(w.model.warms) == 1  # sent once; its record written on the second attempt
    stored = w.store.get_conversation(conversation.id)
    assert stored is not None and stored.warming.status == "scheduled"
    assert len(w.timer.live_for(conversation.id)) == 1
    spent = w.store.spent(OWNER, day) - before
    assert spent > 0
    assert spent == round(w.store.savings(OWNER).spent_usd * 1_000_000)


def test_a_warm_whose_next_booking_kept_failing_still_counts_once_against_the_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    conversation = conversation_with_turn(w)
    day = spend_day(w.clock.now_ms())
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    before = w.store.spent(OWNER, day)

    def queue_down(*_: object) -> None:
        raise RuntimeError("queue down")

    monkeypatch.setattr(w.timer, "arm", queue_down)
    with pytest.raises(WarmUnfinished) as failed:
        fire(w, conversation.id)
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert len(w.model.warms) == 1  # sent and billed, then every booking attempt failed
    spent = w.store.spent(OWNER, day) - before
    assert spent > 0
    assert spent == round(w.store.savings(OWNER).spent_usd * 1_000_000)


def _spent_on_second_turn(w: World, conversation_id: str) -> tuple[int, str]:
    day = spend_day(w.clock.now_ms())
    before = w.store.spent(OWNER, day)
    turn = w.services.start_turn(OWNER, conversation_id, parsed.turn({"text": "and then?"}))
    status = w.services.generate(conversation_id, turn.index)
    return w.store.spent(OWNER, day) - before, status


def test_a_cancelled_turn_counts_what_it_was_billed_against_the_day() -> None:
    # Cancelling every reply just before its end must not make turns free: the prompt was billed
    # once it reached the model, and so was every token generated before the stop.
    w = world()
    conversation = conversation_with_turn(w)
    w.model.on_chunk = lambda n: n == 3 and w.services.cancel(OWNER, conversation.id)
    spent, status = _spent_on_second_turn(w, conversation.id)
    assert status == "aborted"
    stored = w.store.get_turns(conversation.id)[1]
    assert stored.usage is not None and stored.usage.output_tokens > 0
    assert stored.usage.cache_read_input_tokens == w.model.turn_usage.cache_read_input_tokens
    expected = w.services.ports.prices().cost_usd(conversation.model, stored.usage, 0)
    assert spent == round(round(expected, 8) * 1_000_000) > 0


def test_a_reply_stopped_at_the_deadline_counts_against_the_day() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    turn = w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "a long one"}))
    day = spend_day(w.clock.now_ms())
    before = w.store.spent(OWNER, day)
    # The invocation's deadline is close: the stream stops 30 s before it and seals what it has.
    deadline = w.clock.now_ms() + 30_100
    assert w.services.generate(conversation.id, turn.index, deadline_ms=deadline) == "sealed"
    stored = w.store.get_turns(conversation.id)[1]
    assert stored.truncated and stored.usage is not None
    assert w.store.spent(OWNER, day) > before


def test_a_turn_that_failed_mid_stream_counts_what_it_was_billed() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    w.model.stream_error = ModelError("overloaded", "overloaded mid-stream")
    spent, status = _spent_on_second_turn(w, conversation.id)
    assert status == "failed"
    stored = w.store.get_turns(conversation.id)[1]
    assert stored.error_code == "overloaded" and stored.usage is not None
    assert spent > 0


def test_a_turn_refused_before_the_model_answered_costs_nothing() -> None:
    w = world()
    conversation = conversation_with_turn(w)
    w.model.stream_error = ModelError("rate_limited", "429")
    w.model.fail_before_start = True
    spent, status = _spent_on_second_turn(w, conversation.id)
    assert status == "failed" and spent == 0
    assert w.store.get_turns(conversation.id)[1].usage is None


def test_turns_in_flight_cannot_overshoot_the_budget_by_more_than_one_worst_case() -> None:
    # The review's scenario: the $5 default, 10 turns a minute, 30 turns started over 3 minutes
    # before any ended. Each turn is checked against what is spent *and reserved*, and reserves
    # its worst case when its reply starts; it settles what it was billed when it ends.
    w = world()
    day = spend_day(w.clock.now_ms())
    system = "s" * 160_000  # a long system prompt: 160,000 bytes, ~40,000 tokens
    w.model.turn_usage = Usage(input_tokens=40_000, output_tokens=8_000)  # $0.24 at $3/$15
    started = []
    for _minute in range(3):
        for _ in range(10):
            conversation = w.services.create_conversation(
                OWNER, parsed.conversation({"system": system})
            )
            started.append(
                w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "go"}))
            )
        w.clock.advance(60)
    assert len(started) == 30  # nothing was spent yet: every start passed the HTTP check
    statuses: dict[int, str] = {}

    def run(k: int) -> None:
        """Generate turn k; the next one starts while k streams (or at once if k never does)."""
        if k == len(started) or k in statuses:
            return
        statuses[k] = "running"
        w.model.on_chunk = lambda number: run(k + 1) if number == 0 else None
        statuses[k] = w.services.generate(started[k].conversation_id, started[k].index)
        run(k + 1)

    run(0)
    assert len(statuses) == 30 and "running" not in statuses.values()
    statuses_list = list(statuses.values())
    sealed = statuses_list.count("sealed")
    refused = [
        t
        for t in (w.store.get_turns(s.conversation_id)[0] for s in started)
        if t.error_code == "budget_exhausted"
    ]
    assert sealed + len(refused) == 30 and refused and sealed
    stored = w.store.get_conversation(started[0].conversation_id)
    assert stored is not None
    worst = Usage(
        cache_creation_input_tokens=160_300,
        cache_creation_1h_input_tokens=160_300,
        output_tokens=stored.max_tokens,
    )
    one_worst_case = w.services.ports.prices().cost_usd(stored.model, worst, 0)
    spent = w.store.spent(OWNER, day) / 1_000_000
    assert spent <= 5.0 + one_worst_case
    # Every reservation was settled: nothing is held once no turn is streaming.
    assert w.store.committed(OWNER, day) == w.store.spent(OWNER, day)


def test_warms_overshoot_the_budget_by_at_most_one_warm_per_warming_conversation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Warms reserve nothing (issue 24 keeps it so): a tick reads the day's committed total before
    # it claims, and counts its cost after the warm. The worst case is every warming
    # conversation's tick reading the total from before any of them counted: each sends one warm,
    # and the next tick of each sees the budget spent.
    w = world()
    ids = []
    for n in range(3):
        conversation = conversation_with_turn(w)
        subscribe(w, f"ws{n}", conversation.id)
        invoke(w, f"ws{n}", conversation.id, "toggle", True)
        ids.append(conversation.id)
    day = spend_day(w.clock.now_ms())
    budget_micro = w.store.spent(OWNER, day) + 1  # one micro-dollar left
    w.services.ports.limits = replace(Limits(), daily_budget_usd=budget_micro / 1_000_000)
    stale = w.store.committed(OWNER, day)
    with monkeypatch.context() as patched:
        patched.setattr(w.store, "committed", lambda owner, day: stale)
        assert [fire(w, conversation_id).action for conversation_id in ids] == ["warmed"] * 3
    overshoot = w.store.spent(OWNER, day) - budget_micro
    costs = []
    for conversation_id in ids:
        stored = w.store.get_conversation(conversation_id)
        assert stored is not None and stored.warming.stats.last_warm_cost_usd is not None
        costs.append(round(stored.warming.stats.last_warm_cost_usd * 1_000_000))
    assert 0 < overshoot <= sum(costs) and len(costs) == 3
    spent = w.store.spent(OWNER, day)
    assert [fire(w, conversation_id).action for conversation_id in ids] == ["budget-exhausted"] * 3
    assert w.store.spent(OWNER, day) == spent and len(w.model.warms) == 3
