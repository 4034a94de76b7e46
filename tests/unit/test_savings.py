"""Honest savings in the pure core: every warm is spent, a rescue saves its re-write minus its read."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from chalicelib.domain.pricing import CacheRates, Usage
from chalicelib.domain.warming import (
    ModelTerms,
    Tally,
    TickDue,
    Toggle,
    TurnEnded,
    TurnSealed,
    TurnStarted,
    WarmAbandoned,
    WarmFinished,
    WarmingState,
    decide,
)

T0 = 1_800_000_000_000
S = 1000
LEASE = T0 + 100_000 * S
RATES = CacheRates(input=3.0, cache_write_5m=3.75, cache_write_1h=6.0, cache_read=0.30)
TERMS = ModelTerms(idle_budget=11, min_cacheable_tokens=0, rates=RATES)
PREFIX = 20_000
READ = Usage(cache_read_input_tokens=PREFIX, input_tokens=8)
WARM_USD = 0.006


def tallies(effects: Sequence[object]) -> list[Tally]:
    return [e for e in effects if isinstance(e, Tally)]


def turn(state: WarmingState, at: int, usage: Usage) -> tuple[WarmingState, list[object]]:
    state, _ = decide(state, TurnStarted(at), at)
    state, effects = decide(state, TurnSealed(at, at + 2 * S, usage, TERMS), at + 2 * S)
    return state, list(effects)


def warmed(retention: str = "5m", warms: int = 1) -> WarmingState:
    """A first turn at T0 (20k-token prefix), warming on, `warms` warms sent since."""
    state = WarmingState(retention=retention)  # type: ignore[arg-type]
    state, _ = decide(state, Toggle(True), T0)
    state, _ = turn(state, T0, Usage(input_tokens=PREFIX - 100, output_tokens=100))
    for _ in range(warms):
        target = state.next_warm_at or 0
        state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
        state, _ = decide(state, WarmFinished(state.seq, target, TERMS, READ, WARM_USD), target)
    return state


def test_every_warm_is_spent_and_tallied_for_the_owner() -> None:
    state = warmed(warms=0)
    target = state.next_warm_at or 0
    state, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    done, effects = decide(state, WarmFinished(state.seq, target, TERMS, READ, WARM_USD), target)
    assert tallies(effects) == [Tally(spent_usd=WARM_USD, warms=1)]
    assert done.stats.total_cost_usd == WARM_USD and done.stats.net_usd == -WARM_USD


def test_a_failed_warm_spends_nothing_and_a_late_one_still_counts() -> None:
    state = warmed(warms=0)
    target = state.next_warm_at or 0
    claimed, _ = decide(state, TickDue(state.seq, target, TERMS, LEASE), target)
    failed = WarmFinished(claimed.seq, target, TERMS, None, 0.0, error="overloaded")
    assert tallies(decide(claimed, failed, target + S)[1]) == []
    # Toggled off while the warm ran: it was billed all the same.
    off, _ = decide(claimed, Toggle(False), target + 100)
    _, effects = decide(off, WarmFinished(claimed.seq, target, TERMS, READ, WARM_USD), target + S)
    assert tallies(effects) == [Tally(spent_usd=WARM_USD, warms=1)]
    # An invocation that sent the warm and then died: its retry must not count it again, the
    # release does.
    _, effects = decide(claimed, WarmAbandoned(claimed.seq, target, READ, WARM_USD), target + S)
    assert tallies(effects) == [Tally(spent_usd=WARM_USD, warms=1)]


def test_a_turn_after_the_turns_own_expiry_that_reads_the_warmed_prefix_is_a_rescue() -> None:
    state = warmed(warms=2)  # warms at 290 s and 580 s keep the cache to 880 s
    back = T0 + 700 * S
    state, effects = turn(state, back, Usage(cache_read_input_tokens=PREFIX, input_tokens=50))
    saved = round(PREFIX * (3.75 - 0.30) / 1_000_000, 8)
    assert tallies(effects) == [Tally(saved_usd=saved, rescues=1)]
    assert (state.stats.rescues, state.stats.saved_usd) == (1, saved)
    assert state.stats.net_usd == round(saved - 2 * WARM_USD, 8)
    # The next idle gap is measured from this turn.
    assert state.turn_expires_at == back + 300 * S


def test_a_turn_the_cache_would_have_served_anyway_is_no_rescue() -> None:
    state = warmed(warms=1)
    _, effects = turn(state, T0 + 295 * S, Usage(cache_read_input_tokens=PREFIX))
    assert tallies(effects) == []


def test_a_turn_after_warming_stopped_and_the_cache_expired_is_no_rescue() -> None:
    state = warmed(warms=1)  # alive to 590 s
    _, effects = turn(state, T0 + 900 * S, Usage(cache_creation_input_tokens=PREFIX))
    assert tallies(effects) == []
    # Even if the API read something (a system prompt another conversation keeps alive).
    _, effects = turn(state, T0 + 900 * S, Usage(cache_read_input_tokens=3_000))
    assert tallies(effects) == []


def test_an_aborted_turn_that_reached_the_model_refreshes_the_turns_own_expiry() -> None:
    state = warmed(warms=2)
    state, _ = decide(state, TurnStarted(T0 + 600 * S), T0 + 600 * S)
    state, _ = decide(state, TurnEnded(T0 + 600 * S), T0 + 601 * S)
    assert state.turn_expires_at == T0 + 900 * S
    _, effects = turn(state, T0 + 700 * S, Usage(cache_read_input_tokens=PREFIX))
    assert tallies(effects) == []


def test_a_rescue_on_the_hour_cache_saves_its_dearer_write() -> None:
    state = warmed("1h", warms=1)  # warm at 3590 s keeps it to 7190 s
    _, effects = turn(state, T0 + 4000 * S, Usage(cache_read_input_tokens=PREFIX))
    assert tallies(effects) == [Tally(saved_usd=round(PREFIX * 5.70 / 1e6, 8), rescues=1)]


def test_a_rescue_counts_no_more_than_the_prefix_warming_kept() -> None:
    state = warmed(warms=2)
    # A read larger than the warmed prefix (say, a shared system prompt kept by others too).
    _, effects = turn(state, T0 + 700 * S, Usage(cache_read_input_tokens=PREFIX * 3))
    assert tallies(effects)[0].saved_usd == round(PREFIX * 3.45 / 1e6, 8)


def test_without_prices_no_saving_is_claimed() -> None:
    state = warmed(warms=2)
    state, _ = decide(state, TurnStarted(T0 + 700 * S), T0 + 700 * S)
    unpriced = ModelTerms(idle_budget=11, min_cacheable_tokens=0)
    sealed = TurnSealed(T0 + 700 * S, T0 + 702 * S, Usage(cache_read_input_tokens=PREFIX), unpriced)
    after, effects = decide(state, sealed, T0 + 702 * S)
    assert tallies(effects) == [] and after.stats.rescues == 0


def test_tallies_add_up_and_net_is_saved_minus_spent() -> None:
    total = Tally(spent_usd=0.1, warms=1).plus(Tally(saved_usd=0.35, rescues=1))
    assert total == Tally(0.1, 0.35, 1, 1)
    assert total.net_usd == pytest.approx(0.25)
    assert msgspec.structs.replace(total, saved_usd=0.0).net_usd == pytest.approx(-0.1)
