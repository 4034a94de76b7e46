"""What the warming policy does when a turn starts, sends its request, seals or ends (pure)."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.pricing import CacheRates, Usage
from chalicelib.domain.warming.choice import choose_cache
from chalicelib.domain.warming.events import (
    Decision,
    Effect,
    PushUpdate,
    Tally,
    TurnClaimed,
    TurnSealed,
)
from chalicelib.domain.warming.state import REASON_MEASURING, WarmingState
from chalicelib.domain.warming.steps import MARGIN_MS, alive, arm, resume, stop
from chalicelib.domain.warming.stop_rules import room_for_another_turn


def turn_started(state: WarmingState, at: int) -> Decision:
    reopened = state.closed
    state = replace(
        state,
        turn_started_at=at,
        idle_warms=0,
        closed=False,
        status="off" if reopened else state.status,
    )
    return state, ([PushUpdate()] if reopened else [])


def turn_claimed(state: WarmingState, claimed: TurnClaimed, now: int) -> Decision:
    """The auto cache picks the cache this turn's request marks, from the last turn's sizes."""
    rates = claimed.terms.rates
    if not state.auto or rates is None:
        return state, []
    if state.prefix_tokens is None or state.exchange_tokens is None:
        return replace(state, retention_reason=REASON_MEASURING), []
    expires_at = state.cache_expires_at
    verdict = choose_cache(
        state.retention,
        expires_at is not None and now < expires_at,
        state.prefix_tokens,
        state.exchange_tokens,
        rates,
        state.interval_choice,
    )
    if verdict.retention == state.retention:
        # The seal's update shows the new figures; no push of its own.
        return replace(state, retention_reason=verdict.reason), []
    # The API does not say whether an entry written under one TTL serves a request that marks
    # the other (choice.py): assume not, so the cache under the new TTL starts with this turn.
    switched = replace(
        state, retention=verdict.retention, retention_reason=verdict.reason, last_refresh_at=None
    )
    return switched, [PushUpdate()]


def turn_sealed(state: WarmingState, sealed: TurnSealed, now: int) -> Decision:
    usage = sealed.usage
    state, tally = _rescue(state, sealed)
    rates = sealed.terms.rates
    state = replace(
        state,
        idle_budget=sealed.terms.idle_budget,
        cache_read_rate=rates.cache_read if rates is not None else state.cache_read_rate,
        turn_started_at=None,
        has_prefix=True,
        last_refresh_at=max(sealed.started_at, state.last_refresh_at or 0),
        turn_expires_at=sealed.started_at + state.ttl_ms,
        idle_warms=0,
        consecutive_errors=0,
        last_error=None,
    )
    if usage is not None:
        state = _measured(state, usage)
        below = (state.prefix_tokens or 0) < sealed.terms.min_cacheable_tokens
        state = replace(state, below_min_cacheable=below)
        if not room_for_another_turn(state.prefix_tokens or 0, sealed.terms.context_limit):
            state = replace(state, context_full=True)
    tallied: list[Effect] = [tally] if tally is not None else []
    if not state.enabled or state.closed:
        return state, [*tallied, PushUpdate()]
    if state.context_full:
        state, effects = stop(state, "context-full")
        return state, [*tallied, *effects]
    if usage is not None and state.below_min_cacheable:
        # Below the model's minimum cacheable length: a warm would be billed and cache nothing.
        state, effects = stop(state, "not-cacheable")
        return state, [*tallied, *effects]
    # The turn refreshed the cache at its start; a long turn must not push the warm past expiry.
    latest = sealed.started_at + state.ttl_ms - MARGIN_MS
    target = max(now, min(sealed.sealed_at + state.interval_seconds * 1000, latest))
    state, effects = arm(state, target)
    return state, [*tallied, *effects]


def _measured(state: WarmingState, usage: Usage) -> WarmingState:
    """The next prompt's cacheable prefix is this turn's prompt plus its reply; what it added to
    the previous one is the exchange the auto cache weighs."""
    prefix = usage.prompt_tokens + usage.output_tokens
    before = state.prefix_tokens
    exchange = prefix - before if before is not None and prefix > before else None
    return replace(
        state,
        prefix_tokens=prefix,
        exchange_tokens=exchange if exchange is not None else state.exchange_tokens,
        stats=replace(state.stats, last_cache_pct=usage.cache_hit_pct),
    )


def _rescue(state: WarmingState, sealed: TurnSealed) -> tuple[WarmingState, Tally | None]:
    """A turn that started after the cache its predecessor refreshed would have expired, and
    still read the prefix, because a warm refreshed it since: it saved the re-write it avoided
    minus its read, at the cache's prices."""
    usage, rates = sealed.usage, sealed.terms.rates
    if usage is None or rates is None or usage.cache_read_input_tokens == 0:
        return state, None
    lapsed_at, expires_at = state.turn_expires_at, state.cache_expires_at
    if lapsed_at is None or expires_at is None:
        return state, None
    if not lapsed_at <= sealed.started_at < expires_at:
        return state, None
    tokens = min(usage.cache_read_input_tokens, state.prefix_tokens or 0)
    saved = rescue_saving(tokens, rates, state.retention)
    rescued = replace(state, stats=state.stats.with_rescue(saved))
    return rescued, Tally(saved_usd=saved, rescues=1)


def rescue_saving(tokens: int, rates: CacheRates, retention: str) -> float:
    """Dollars a rescue of `tokens` saved: their re-write on this cache minus their read."""
    return round(tokens * (rates.write(retention) - rates.cache_read) / 1_000_000, 8)


def turn_ended(
    state: WarmingState, refreshed_at: int | None, now: int, *, context_full: bool = False
) -> Decision:
    state = replace(state, turn_started_at=None, context_full=state.context_full or context_full)
    if context_full and state.enabled and not state.closed:
        return stop(state, "context-full")
    if refreshed_at is not None and state.has_prefix:
        state = replace(
            state,
            last_refresh_at=max(refreshed_at, state.last_refresh_at or 0),
            turn_expires_at=refreshed_at + state.ttl_ms,
        )
    if state.enabled and not state.closed and not alive(state, now):
        return resume(state, now)
    return state, [PushUpdate()]
