"""The pure warming policy: decide(state, event, now) -> (state, effects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from chalicelib.domain.pricing import CacheRates, Usage, idle_warm_budget
from chalicelib.domain.warming import (
    ArmTimer,
    CancelTimer,
    Close,
    ConversationCreated,
    InvalidInterval,
    ModelTerms,
    PushUpdate,
    Revive,
    SetInterval,
    TickDue,
    Toggle,
    TurnEnded,
    TurnSealed,
    TurnStarted,
    Warm,
    WarmAbandoned,
    WarmFinished,
    WarmingState,
    decide,
)

T0 = 1_800_000_000_000
S = 1000
READ = Usage(cache_read_input_tokens=5000)
# The warm function's deadline, far enough that claims in these tests are never taken over.
LEASE = T0 + 10_000 * S
# A model whose every prefix caches, with the classic 0.1x reads' 11-warm budget.
TERMS = ModelTerms(idle_budget=11, min_cacheable_tokens=0)


def sealed_state(at: int = T0, **changes: object) -> WarmingState:
    """A conversation with one sealed turn that refreshed the cache at `at`."""
    state, _ = decide(
        WarmingState(), TurnSealed(at, at + 2 * S, Usage(input_tokens=5000), TERMS), at + 2 * S
    )
    return replace(state, **changes)  # type: ignore[arg-type]


def enabled_state(at: int = T0) -> WarmingState:
    state, _ = decide(sealed_state(at), Toggle(True), at + 2 * S)
    return replace(state, timer_ref="ref-1")


def arms(effects: Sequence[object]) -> list[ArmTimer]:
    return [e for e in effects if isinstance(e, ArmTimer)]


def test_a_new_conversation_is_off_with_nothing_booked() -> None:
    state, effects = decide(WarmingState(enabled=True), ConversationCreated(), T0)
    assert (state.enabled, state.status, state.next_warm_at) == (False, "off", None)
    # "auto" by default, on the 5-minute cache until turns have been measured.
    assert (state.setting, state.retention, state.interval_seconds) == ("auto", "5m", 290)
    assert effects == []


def test_enabling_before_any_turn_waits_for_the_first_turn() -> None:
    state, effects = decide(WarmingState(), Toggle(True), T0)
    assert state.enabled and state.status == "waiting-for-first-turn"
    assert arms(effects) == [] and PushUpdate() in effects


def test_the_first_sealed_turn_books_the_first_warm_one_interval_after_its_refresh() -> None:
    waiting, _ = decide(WarmingState(), Toggle(True), T0)
    state, effects = decide(
        waiting, TurnSealed(T0, T0 + 3 * S, Usage(input_tokens=9), TERMS), T0 + 3 * S
    )
    assert state.status == "scheduled"
    # The turn's request refreshed the cache at its start: TTL - 10 s after that.
    assert arms(effects) == [ArmTimer(state.seq, T0 + 290 * S)]
    # A shorter interval the user set counts from the seal.
    short = replace(waiting, interval_choice=60)
    state, effects = decide(
        short, TurnSealed(T0, T0 + 3 * S, Usage(input_tokens=9), TERMS), T0 + 3 * S
    )
    assert arms(effects) == [ArmTimer(state.seq, T0 + 63 * S)]


def test_a_long_turn_never_books_the_warm_past_the_cache_expiry() -> None:
    waiting, _ = decide(WarmingState(), Toggle(True), T0)
    state, _ = decide(waiting, TurnSealed(T0, T0 + 90 * S, Usage(), TERMS), T0 + 90 * S)
    assert state.next_warm_at == T0 + 290 * S  # started_at + TTL - margin, not sealed + 290 s


def test_enabling_with_a_live_cache_books_from_the_last_refresh() -> None:
    state, effects = decide(sealed_state(), Toggle(True), T0 + 10 * S)
    assert arms(effects) == [ArmTimer(state.seq, T0 + 290 * S)]
    assert not state.rebuild


def test_enabling_after_the_cache_expired_rebuilds_it_at_once() -> None:
    state, effects = decide(sealed_state(), Toggle(True), T0 + 400 * S)
    assert arms(effects) == [ArmTimer(state.seq, T0 + 400 * S)]
    assert state.rebuild
    claimed, effects = decide(state, TickDue(state.seq, T0 + 400 * S, TERMS, LEASE), T0 + 400 * S)
    assert effects == [Warm(state.seq)] and claimed.status == "warming"


@pytest.mark.parametrize("payload", [True, False])
def test_explicit_toggle_is_idempotent(payload: bool) -> None:
    once, _ = decide(sealed_state(), Toggle(payload), T0 + S)
    twice, effects = decide(once, Toggle(payload), T0 + 2 * S)
    assert twice == once and effects == []


def test_toggle_without_payload_flips() -> None:
    on, _ = decide(sealed_state(), Toggle(None), T0 + S)
    off, effects = decide(replace(on, timer_ref="ref-9"), Toggle(None), T0 + 2 * S)
    assert on.enabled and not off.enabled
    assert off.status == "off" and off.next_warm_at is None
    assert CancelTimer("ref-9") in effects and off.seq == on.seq + 1


def test_set_interval_reschedules_from_the_last_refresh() -> None:
    state = enabled_state()
    updated, effects = decide(state, SetInterval(60), T0 + 10 * S)
    assert arms(effects) == [ArmTimer(state.seq + 1, T0 + 60 * S)]
    assert CancelTimer("ref-1") in effects
    assert updated.interval_seconds == 60


def test_set_interval_shorter_than_time_already_idle_warms_now() -> None:
    updated, effects = decide(enabled_state(), SetInterval(20), T0 + 100 * S)
    assert arms(effects) == [ArmTimer(updated.seq, T0 + 100 * S)]


@pytest.mark.parametrize("seconds", [19, 291, 0, -5, 10**12])
def test_set_interval_outside_bounds_is_refused(seconds: int) -> None:
    with pytest.raises(InvalidInterval):
        decide(enabled_state(), SetInterval(seconds), T0)


def test_interval_bounds_follow_the_retention() -> None:
    state = replace(enabled_state(), retention="1h")
    updated, _ = decide(state, SetInterval(3590), T0 + S)
    assert updated.interval_seconds == 3590
    with pytest.raises(InvalidInterval):
        decide(state, SetInterval(3591), T0 + S)


def test_a_due_tick_claims_the_warm_and_a_duplicate_does_nothing() -> None:
    state = enabled_state()
    tick = TickDue(state.seq, state.next_warm_at or 0, TERMS, LEASE)
    claimed, effects = decide(state, tick, tick.target)
    assert effects == [Warm(state.seq)] and claimed.status == "warming"
    again, effects = decide(claimed, tick, tick.target + 500)
    assert again == claimed and effects == []


def test_a_claim_is_held_until_its_invocations_deadline_and_no_longer() -> None:
    state, _ = decide(enabled_state(), SetInterval(20), T0 + 10 * S)
    target = state.next_warm_at or 0
    deadline = target + 30 * S  # the warm function's timeout
    tick = TickDue(state.seq, target, TERMS, deadline)
    claimed, _ = decide(state, tick, target)
    assert claimed.warm_lease_until == deadline
    # Lambda's retries of a killed invocation come after its deadline: they take over.
    assert decide(claimed, tick, deadline - S) == (claimed, [])
    _, effects = decide(claimed, tick, deadline + 60 * S)
    assert effects == [Warm(state.seq)]


def test_a_failed_invocation_frees_its_claim_for_lambdas_first_retry() -> None:
    state, _ = decide(enabled_state(), SetInterval(20), T0 + 10 * S)
    target = state.next_warm_at or 0
    tick = TickDue(state.seq, target, TERMS, target + 300 * S)
    claimed, _ = decide(state, tick, target)
    released, effects = decide(claimed, WarmAbandoned(state.seq), target + S)
    assert effects == [] and released.status == "warming"
    # The first retry, about a minute later, warms.
    _, effects = decide(released, tick, target + 61 * S)
    assert effects == [Warm(state.seq)]
    # A stale release (an older seq) changes nothing.
    assert decide(claimed, WarmAbandoned(state.seq - 1), target + S) == (claimed, [])


@pytest.mark.parametrize("event", [Toggle(True), SetInterval(100), Revive()])
def test_a_lost_tick_or_a_dead_claim_is_re_armed(event: object) -> None:
    state = enabled_state()
    target = state.next_warm_at or 0
    overdue = target + 61 * S  # nothing fired: dead-lettered or dropped
    revived, effects = decide(state, event, overdue)  # type: ignore[arg-type]
    assert revived.status == "scheduled" and (revived.next_warm_at or 0) >= overdue
    assert arms(effects) and revived.seq > state.seq
    # A tick merely on its way is left alone.
    if not isinstance(event, SetInterval):
        assert decide(state, event, target + 10 * S) == (state, [])  # type: ignore[arg-type]
    # So is a claim still held: a keep-alive warm's claim ends in time for a takeover before
    # the late guard (the cache expires 10 s after the target).
    claimed, _ = decide(state, TickDue(state.seq, target, TERMS, target + 300 * S), target)
    assert claimed.warm_lease_until == target + 6_500
    assert decide(claimed, Revive(), target + 6 * S) == (claimed, [])


@pytest.mark.parametrize("delta_seq,delta_target", [(-1, 0), (1, 0), (0, 1000)])
def test_stale_ticks_do_nothing(delta_seq: int, delta_target: int) -> None:
    state = enabled_state()
    tick = TickDue(state.seq + delta_seq, (state.next_warm_at or 0) + delta_target, TERMS, LEASE)
    assert decide(state, tick, T0 + 300 * S) == (state, [])


def test_a_tick_after_toggle_off_or_close_does_nothing() -> None:
    state = enabled_state()
    tick = TickDue(state.seq, state.next_warm_at or 0, TERMS, LEASE)
    for stop in (Toggle(False), Close()):
        stopped, _ = decide(state, stop, T0 + 10 * S)
        assert decide(stopped, tick, tick.target) == (stopped, [])


def test_after_a_warm_the_next_is_booked_one_interval_after_its_start() -> None:
    state = enabled_state()
    target = state.next_warm_at or 0
    claimed, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    done, effects = decide(claimed, WarmFinished(state.seq, target, TERMS, READ), target + 800)
    assert done.last_warm_at == target and done.last_refresh_at == target
    assert arms(effects) == [ArmTimer(state.seq + 1, target + 290 * S)]
    assert done.next_warm_at is not None and done.next_warm_at > done.last_warm_at
    assert PushUpdate() in effects
    assert done.stats.warms == 1 and done.stats.last_cache_pct == 100.0


def run_warms(state: WarmingState, count: int) -> WarmingState:
    for _ in range(count):
        target = state.next_warm_at
        assert target is not None
        state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
        state, _ = decide(state, WarmFinished(state.seq, target, TERMS, READ), target + 500)
    return state


def test_idle_budget_pauses_after_the_budget_of_warms_without_a_turn() -> None:
    state = run_warms(enabled_state(), 10)
    assert state.status == "scheduled"
    target = state.next_warm_at or 0
    state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    state, effects = decide(state, WarmFinished(state.seq, target, TERMS, READ), target + 500)
    assert state.status == "paused-idle" and state.next_warm_at is None
    assert arms(effects) == [] and state.stats.warms == 11


def test_a_new_turn_resumes_a_paused_conversation() -> None:
    paused = run_warms(enabled_state(), 11)
    at = (paused.last_warm_at or 0) + 60 * S
    state, _ = decide(paused, TurnStarted(at), at)
    state, effects = decide(state, TurnSealed(at, at + 2 * S, Usage(), TERMS), at + 2 * S)
    assert state.status == "scheduled" and state.idle_warms == 0
    assert arms(effects) == [ArmTimer(state.seq, at + 290 * S)]


def test_a_tick_that_would_start_after_expiry_shows_cache_expired_and_sends_no_warm() -> None:
    state = enabled_state()
    target = state.next_warm_at or 0
    late = T0 + 301 * S  # last refresh + TTL has passed
    expired, effects = decide(state, TickDue(state.seq, target, TERMS, LEASE), late)
    assert expired.status == "cache-expired" and expired.next_warm_at is None
    assert not any(isinstance(e, Warm) for e in effects) and arms(effects) == []


def test_a_tick_during_a_generating_turn_sends_no_warm_and_rearms() -> None:
    state = enabled_state()
    target = state.next_warm_at or 0
    busy, _ = decide(state, TurnStarted(target - 5 * S), target - 5 * S)
    _, effects = decide(busy, TickDue(busy.seq, target, TERMS, LEASE), target)
    assert not any(isinstance(e, Warm) for e in effects)
    assert arms(effects) == [ArmTimer(busy.seq + 1, target + 290 * S)]


def test_warm_errors_retry_then_stop_in_error_and_a_turn_recovers() -> None:
    state = enabled_state(T0)
    state = replace(state, interval_choice=20, next_warm_at=T0 + 20 * S)
    for attempt in range(1, 4):
        target = state.next_warm_at or 0
        state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
        state, effects = decide(
            state, WarmFinished(state.seq, target, TERMS, None, error="overloaded"), target + S
        )
        if attempt < 3:
            assert state.status == "scheduled"
            assert arms(effects)[0].target == target + S + S * (1 << (attempt - 1))
    assert state.status == "error" and state.last_error == "overloaded"
    state, _ = decide(state, TurnStarted(T0 + 200 * S), T0 + 200 * S)
    state, _ = decide(state, TurnSealed(T0 + 200 * S, T0 + 201 * S, Usage(), TERMS), T0 + 201 * S)
    assert state.status == "scheduled" and state.consecutive_errors == 0


def test_a_warm_finishing_after_toggle_off_records_stats_and_books_nothing() -> None:
    state = enabled_state()
    target = state.next_warm_at or 0
    claimed, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    off, _ = decide(claimed, Toggle(False), target + 100)
    done, effects = decide(off, WarmFinished(state.seq, target, TERMS, READ), target + 900)
    assert done.status == "off" and arms(effects) == []
    assert done.stats.warms == 1 and done.last_refresh_at == target


def test_close_stops_everything_and_is_idempotent() -> None:
    closed, effects = decide(enabled_state(), Close(), T0 + 5 * S)
    assert (closed.enabled, closed.closed, closed.status) == (False, True, "closed")
    assert CancelTimer("ref-1") in effects and closed.next_warm_at is None
    assert decide(closed, Close(), T0 + 6 * S) == (closed, [])


def test_a_new_turn_reopens_a_closed_conversation_with_warming_off() -> None:
    closed, _ = decide(enabled_state(), Close(), T0 + 5 * S)
    reopened, _ = decide(closed, TurnStarted(T0 + 9 * S), T0 + 9 * S)
    assert not reopened.closed and not reopened.enabled and reopened.status == "off"
    sealed, effects = decide(
        reopened, TurnSealed(T0 + 9 * S, T0 + 10 * S, Usage(), TERMS), T0 + 10 * S
    )
    assert arms(effects) == [] and sealed.status == "off"


def test_an_aborted_turn_refreshes_and_resumes_an_expired_enabled_conversation() -> None:
    state = replace(enabled_state(), status="cache-expired", next_warm_at=None, timer_ref=None)
    state, _ = decide(state, TurnStarted(T0 + 900 * S), T0 + 900 * S)
    ended, effects = decide(state, TurnEnded(T0 + 900 * S), T0 + 905 * S)
    assert ended.status == "scheduled" and ended.last_refresh_at == T0 + 900 * S
    assert arms(effects) == [ArmTimer(ended.seq, T0 + 1190 * S)]


def test_a_warm_that_caches_nothing_stops_as_not_cacheable_until_the_next_turn() -> None:
    state = enabled_state()
    target = state.next_warm_at or 0
    state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    uncached = Usage(input_tokens=300)  # below the model's minimum cacheable length
    state, effects = decide(state, WarmFinished(state.seq, target, TERMS, uncached), target + 400)
    assert state.status == "not-cacheable" and arms(effects) == []
    assert state.stats.warms == 1
    state, effects = decide(
        state, TurnSealed(target + S, target + 3 * S, Usage(), TERMS), target + 3 * S
    )
    assert state.status == "scheduled" and len(arms(effects)) == 1


@pytest.mark.parametrize(
    ("read", "retention", "budget"),
    [(0.30, "5m", 11), (0.30, "1h", 19), (0.15, "5m", 24), (0.075, "5m", 49), (0.075, "1h", 79)],
)
def test_the_idle_budget_is_the_break_even_of_reads_against_one_rescue(
    read: float, retention: str, budget: int
) -> None:
    # A $3 input model: writes 3.75 (5m) / 6.00 (1h); reads at 0.1x, 0.05x, 0.025x.
    rates = CacheRates(input=3.0, cache_write_5m=3.75, cache_write_1h=6.0, cache_read=read)
    assert idle_warm_budget(rates, retention) == budget
    # n warms cost no more than one rescue saves; n + 1 would.
    saving = rates.write(retention) - read
    assert budget * read <= saving + 1e-12 < (budget + 1) * read


def test_a_turn_whose_prefix_is_below_the_minimum_cacheable_length_books_no_warm() -> None:
    waiting, _ = decide(WarmingState(), Toggle(True), T0)
    short = Usage(input_tokens=700, output_tokens=200)
    terms = ModelTerms(idle_budget=11, min_cacheable_tokens=1024)
    state, effects = decide(waiting, TurnSealed(T0, T0 + 3 * S, short, terms), T0 + 3 * S)
    assert state.status == "not-cacheable" and state.prefix_tokens == 900
    assert arms(effects) == [] and PushUpdate() in effects
    longer = Usage(input_tokens=900, output_tokens=200)
    state, effects = decide(state, TurnSealed(T0, T0 + 9 * S, longer, terms), T0 + 9 * S)
    assert state.status == "scheduled" and arms(effects)  # a long enough prefix warms again


def test_enabling_after_a_turn_too_short_to_cache_shows_not_cacheable_and_books_nothing() -> None:
    # The client README's path: a first turn too short to be cached, warming still off, then the
    # toggle. The sealed turn's usage already says a warm would read nothing.
    off = WarmingState()
    short = Usage(input_tokens=700, output_tokens=200)
    terms = ModelTerms(idle_budget=11, min_cacheable_tokens=1024)
    sealed, _ = decide(off, TurnSealed(T0, T0 + 3 * S, short, terms), T0 + 3 * S)
    assert sealed.status == "off" and sealed.below_min_cacheable
    enabled, effects = decide(sealed, Toggle(True), T0 + 10 * S)
    assert (enabled.enabled, enabled.status) == (True, "not-cacheable")
    assert arms(effects) == [] and PushUpdate() in effects
    # A turn long enough to cache arms warming again.
    longer = Usage(input_tokens=1500, output_tokens=200)
    state, effects = decide(
        enabled, TurnSealed(T0 + 20 * S, T0 + 22 * S, longer, terms), T0 + 22 * S
    )
    assert state.status == "scheduled" and not state.below_min_cacheable and arms(effects)


def test_a_new_interval_during_a_warm_is_pushed_by_the_warms_completion_not_before() -> None:
    state = enabled_state()
    target = state.next_warm_at or 0
    claimed, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    changed, effects = decide(claimed, SetInterval(45), target + 100)
    assert changed.interval_seconds == 45 and effects == []
    done, effects = decide(changed, WarmFinished(state.seq, target, TERMS, READ), target + 400)
    assert PushUpdate() in effects and done.next_warm_at == target + 45 * S


def test_a_warm_refused_as_too_long_stops_as_context_full_at_once() -> None:
    from chalicelib.domain.warming import WarmFinished

    terms = ModelTerms(idle_budget=11, min_cacheable_tokens=1024)
    state = WarmingState(
        enabled=True,
        status="warming",
        seq=3,
        has_prefix=True,
        last_refresh_at=0,
        warm_lease_until=100_000,
        timer_ref=None,
    )
    stopped, effects = decide(
        state, WarmFinished(3, 1000, terms, None, 0.0, "context_window_exceeded"), 2000
    )
    assert stopped.status == "context-full" and stopped.context_full
    assert not any(type(effect).__name__ == "ArmTimer" for effect in effects)


def test_a_new_interval_while_a_rebuild_is_due_books_it_again_for_now() -> None:
    expired = replace(sealed_state(), enabled=False)
    state, _ = decide(expired, Toggle(True), T0 + 400 * S)  # the cache is gone: rebuild at once
    assert state.rebuild and state.next_warm_at == T0 + 400 * S
    later = T0 + 403 * S
    changed, effects = decide(state, SetInterval(60), later)
    assert changed.interval_seconds == 60 and changed.rebuild
    assert changed.next_warm_at == later and arms(effects) and PushUpdate() in effects
