"""The pure policy's timing rules: intervals from the measured timer and the late-tick guard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from chalicelib.domain.pricing import Usage
from chalicelib.domain.timing import TIMINGS
from chalicelib.domain.warming import (
    ArmTimer,
    InvalidInterval,
    ModelTerms,
    SetInterval,
    TickDue,
    Toggle,
    TurnSealed,
    Warm,
    WarmFinished,
    WarmingState,
    decide,
    default_interval,
    interval_bounds,
)

T0 = 1_800_000_000_000
S = 1000
LEASE = T0 + 100_000 * S
TERMS = ModelTerms(idle_budget=11, min_cacheable_tokens=0)
READ = Usage(cache_read_input_tokens=5000)


def enabled(retention: str = "5m", **changes: object) -> WarmingState:
    """Warming on, one turn sealed that refreshed the cache at T0."""
    state = replace(WarmingState(retention=retention), **changes)  # type: ignore[arg-type]
    state, _ = decide(state, Toggle(True), T0)
    state, _ = decide(state, TurnSealed(T0, T0 + S, Usage(input_tokens=5000), TERMS), T0 + S)
    return state


def arms(effects: Sequence[object]) -> list[ArmTimer]:
    return [e for e in effects if isinstance(e, ArmTimer)]


@pytest.mark.parametrize(("retention", "default"), [("5m", 290), ("1h", 3590)])
def test_the_default_and_longest_interval_is_ttl_minus_10_s(retention: str, default: int) -> None:
    assert default_interval(retention) == default
    assert interval_bounds(retention) == (20, default)
    state = enabled(retention)
    assert state.interval_seconds == default and state.next_warm_at == T0 + default * S


def test_a_1h_cache_is_warmed_every_3590_s_not_every_240_s() -> None:
    state = enabled("1h")
    target = state.next_warm_at or 0
    state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    state, effects = decide(state, WarmFinished(state.seq, target, TERMS, READ), target + S)
    assert arms(effects) == [ArmTimer(state.seq, target + 3590 * S)]


def test_an_interval_the_user_set_follows_the_auto_cache_clamped_to_its_bounds() -> None:
    state = replace(WarmingState(), auto=True, interval_choice=3000)
    assert state.interval_seconds == 290  # on 5m: clamped to its longest
    assert replace(state, retention="1h").interval_seconds == 3000
    short = replace(state, interval_choice=120)
    assert (short.interval_seconds, replace(short, retention="1h").interval_seconds) == (120, 120)
    # Not set: each cache's own default.
    unset = replace(state, interval_choice=None)
    assert replace(unset, retention="1h").interval_seconds == 3590


def test_set_interval_is_bounded_by_the_cache_in_use() -> None:
    state = enabled("5m")
    with pytest.raises(InvalidInterval, match="between 20 and 290"):
        decide(state, SetInterval(300), T0 + 2 * S)
    updated, _ = decide(state, SetInterval(290), T0 + 2 * S)
    # The same figure, now the user's own: it no longer follows a cache switch.
    assert updated.interval_choice == 290 and updated.interval_seconds == 290
    assert decide(updated, SetInterval(290), T0 + 3 * S) == (updated, [])


@pytest.mark.parametrize(
    ("seconds_before_expiry", "warms"), [(10, True), (3, True), (2, False), (1, False), (0, False)]
)
def test_the_late_tick_guard_sends_no_warm_within_2_s_of_the_expiry(
    seconds_before_expiry: int, warms: bool
) -> None:
    assert TIMINGS.late_guard_s == 2
    state = enabled()
    target = state.next_warm_at or 0
    at = T0 + (300 - seconds_before_expiry) * S  # a tick that arrived late
    after, effects = decide(state, TickDue(state.seq, target, TERMS, LEASE), at)
    if warms:
        assert effects == [Warm(state.seq)]
    else:
        assert after.status == "cache-expired" and not any(isinstance(e, Warm) for e in effects)


def test_an_on_time_tick_clears_the_guard_even_at_the_worst_measured_lateness() -> None:
    # docs/performance.md: 1.17 s at most under load (scale), 0.07 s p99 idle (timer).
    state = enabled()
    target = state.next_warm_at or 0
    _, effects = decide(state, TickDue(state.seq, target, TERMS, LEASE), target + 1170)
    assert effects == [Warm(state.seq)]


def test_a_retry_that_would_land_inside_the_guard_stops_as_cache_expired() -> None:
    state = enabled()
    target = state.next_warm_at or 0  # T0 + 290 s
    state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    failed = WarmFinished(state.seq, target, TERMS, None, error="overloaded")
    # A first failure 7.5 s late: its retry 1 s later would start inside the guard (T0 + 298 s).
    stopped, effects = decide(state, failed, target + 7_500)
    assert stopped.status == "cache-expired" and arms(effects) == []


def test_a_failed_warm_at_the_default_interval_is_retried_before_the_expiry() -> None:
    # The default interval leaves 8 s before the guard: two quick retries fit (1 s, then 2 s).
    state = enabled()
    target = state.next_warm_at or 0  # T0 + 290 s, the cache expires at T0 + 300 s
    state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    failed = WarmFinished(state.seq, target, TERMS, None, error="overloaded")
    retried, effects = decide(state, failed, target + 500)
    assert retried.status == "scheduled" and arms(effects) == [ArmTimer(retried.seq, target + 1500)]
    claimed, _ = decide(retried, TickDue(retried.seq, target + 1500, TERMS, LEASE), target + 1500)
    again = WarmFinished(claimed.seq, target + 1500, TERMS, None, error="rate_limited")
    second, effects = decide(claimed, again, target + 2000)
    assert arms(effects) == [ArmTimer(second.seq, target + 4000)]
    assert second.consecutive_errors == 2


def test_a_retry_with_room_before_the_guard_is_booked() -> None:
    state = enabled(interval_choice=60)
    target = state.next_warm_at or 0  # T0 + 61 s: a 60 s interval from the seal
    state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    failed = WarmFinished(state.seq, target, TERMS, None, error="overloaded")
    retried, effects = decide(state, failed, target + S)
    assert retried.status == "scheduled"
    assert arms(effects) == [ArmTimer(retried.seq, target + 2 * S)]


def test_enabling_inside_the_guard_rebuilds_at_once_and_just_outside_it_reads() -> None:
    sealed = replace(enabled(), enabled=False, status="off", next_warm_at=None, timer_ref=None)
    inside, effects = decide(sealed, Toggle(True), T0 + 298 * S)
    assert inside.rebuild and arms(effects) == [ArmTimer(inside.seq, T0 + 298 * S)]
    outside, effects = decide(sealed, Toggle(True), T0 + 297 * S)
    assert not outside.rebuild and arms(effects) == [ArmTimer(outside.seq, T0 + 297 * S)]
