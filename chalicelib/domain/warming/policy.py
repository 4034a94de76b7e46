"""The warming policy: the pure transition function `decide`.

All times are epoch milliseconds passed in by the caller: this module never reads a clock.

A *tick* is identified by `(seq, target)`. Every decision that books a new tick increments `seq`,
so any tick booked earlier — a schedule still in flight, a direct invoke, a duplicate delivery —
no longer matches the state and is a no-op. `decide` returns the new state and the effects the
service must apply, in this order: arm timers, write state, cancel replaced timers, push.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.context import room_for_another_turn
from chalicelib.domain.pricing import Usage
from chalicelib.domain.timing import TIMINGS
from chalicelib.domain.warming.events import (
    ArmTimer,
    CancelTimer,
    Close,
    ConversationCreated,
    Decision,
    Effect,
    Event,
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
)
from chalicelib.domain.warming.state import (
    MAX_CONSECUTIVE_ERRORS,
    InvalidInterval,
    Status,
    WarmingState,
    interval_bounds,
)

_MARGIN_MS = TIMINGS.ttl_margin_s * 1000
_ACTIVE: frozenset[str] = frozenset({"scheduled", "warming", "waiting-for-first-turn"})


def decide(state: WarmingState, event: Event, now: int) -> Decision:
    """The whole warming policy. Returns `(state, [])` unchanged when the event changes nothing."""
    match event:
        case ConversationCreated(retention=retention):
            return WarmingState(retention=retention), []
        case Toggle(enabled=wanted):
            return _toggle(state, wanted, now)
        case SetInterval(seconds=seconds):
            return _set_interval(state, seconds, now)
        case TickDue():
            return _tick_due(state, event, now)
        case WarmFinished():
            return _warm_finished(state, event, now)
        case WarmAbandoned():
            return _warm_abandoned(state, event, now)
        case Revive():
            return _revive(state, now)
        case TurnStarted(at=at):
            return _turn_started(state, at)
        case TurnSealed():
            return _turn_sealed(state, event, now)
        case TurnEnded(refreshed_at=refreshed_at, context_full=context_full):
            return _turn_ended(state, refreshed_at, now, context_full=context_full)
        case Close():
            return _close(state)
    raise TypeError(f"unknown event {event!r}")


def _arm(state: WarmingState, target: int, *, rebuild: bool = False) -> Decision:
    """Book a new tick, replacing the live one: the replaced timer is cancelled after the write."""
    effects: list[Effect] = [ArmTimer(state.seq + 1, target)]
    if state.timer_ref is not None:
        effects.append(CancelTimer(state.timer_ref))
    armed = replace(
        state,
        seq=state.seq + 1,
        next_warm_at=target,
        timer_ref=None,
        status="scheduled",
        rebuild=rebuild,
        warm_lease_until=None,
    )
    return armed, [*effects, PushUpdate()]


def _stop(state: WarmingState, status: Status, **changes: object) -> Decision:
    """No tick from here on: invalidate the live one (seq) and cancel its timer."""
    effects: list[Effect] = []
    if state.timer_ref is not None:
        effects.append(CancelTimer(state.timer_ref))
    stopped = replace(
        state,
        seq=state.seq + 1,
        status=status,
        next_warm_at=None,
        timer_ref=None,
        rebuild=False,
        warm_lease_until=None,
        **changes,  # type: ignore[arg-type]
    )
    return stopped, [*effects, PushUpdate()]


def _resume(state: WarmingState, now: int) -> Decision:
    """Warming is (re-)enabled by the user: book the next warm from the cache's last refresh."""
    state = replace(
        state, enabled=True, closed=False, idle_warms=0, consecutive_errors=0, last_error=None
    )
    if state.context_full:
        # No turn can extend this prefix any more: keeping it warm would only cost.
        return _stop(state, "context-full")
    if not state.has_prefix:
        return _stop(state, "waiting-for-first-turn")
    expires_at = state.cache_expires_at
    if expires_at is None or now >= expires_at - _MARGIN_MS:
        # The cache is gone (or about to be): the user asked for warming, so rebuild it now.
        return _arm(state, now, rebuild=True)
    assert state.last_refresh_at is not None
    return _arm(state, max(now, state.last_refresh_at + state.interval_seconds * 1000))


def _toggle(state: WarmingState, wanted: bool | None, now: int) -> Decision:
    enable = (not state.enabled) if wanted is None else wanted
    if enable:
        if state.enabled and _alive(state, now):
            return state, []
        return _resume(state, now)
    if not state.enabled:
        return state, []
    return _stop(state, "off", enabled=False)


def _set_interval(state: WarmingState, seconds: int, now: int) -> Decision:
    low, high = interval_bounds(state.retention)
    if not low <= seconds <= high:
        raise InvalidInterval(f"interval must be between {low} and {high} seconds")
    if seconds == state.interval_seconds:
        return state, []
    state = replace(state, interval_seconds=seconds)
    if state.enabled and state.status in _ACTIVE and not _alive(state, now):
        return _resume(state, now)  # its tick was lost: book afresh with the new interval
    if state.status == "scheduled" and not state.rebuild and state.last_refresh_at is not None:
        return _arm(state, max(now, state.last_refresh_at + seconds * 1000))
    if state.status == "warming":
        # A warm is in flight: its completion books from the new interval and pushes that. A
        # push now would only show the in-flight state, whose `nextWarmAt` is already past.
        return state, []
    if state.status == "scheduled" and state.rebuild:
        # A rebuild due at once: book it again for now, so the update shows a `nextWarmAt`
        # that has not passed (the replaced tick is stale by its seq).
        return _arm(state, now, rebuild=True)
    # Off or paused: the new interval shows at once.
    return state, [PushUpdate()]


def _tick_due(state: WarmingState, tick: TickDue, now: int) -> Decision:
    if tick.seq != state.seq or tick.target != state.next_warm_at:
        return state, []
    if not state.enabled or state.closed:
        return state, []
    if state.status == "warming":
        if _claim_held(state, now):
            return state, []
    elif state.status != "scheduled":
        return state, []
    # The schedule that delivered this tick deletes itself after completion.
    state = replace(state, timer_ref=None)
    if state.turn_started_at is not None:
        # A turn is generating and refreshes the cache itself; look again one interval later.
        return _arm(state, now + state.interval_seconds * 1000)
    expires_at = state.cache_expires_at
    if not state.rebuild and (expires_at is None or now >= expires_at):
        return _stop(state, "cache-expired")
    if state.idle_warms >= tick.terms.idle_budget:
        return _stop(state, "paused-idle")
    if not tick.budget_left:
        # The owner's spend budget for the day is used up: the warm is not sent.
        return _stop(state, "budget-exhausted")
    claimed = replace(state, status="warming", warm_lease_until=tick.deadline)
    return claimed, [Warm(state.seq)]


def _warm_abandoned(state: WarmingState, abandoned: WarmAbandoned, now: int) -> Decision:
    if abandoned.usage is not None:
        # The warm was sent (and billed) before the failure: its refresh and cost count.
        state = _record_warm(state, abandoned.started_at, abandoned.usage, abandoned.cost_usd)
    if abandoned.seq == state.seq and state.status == "warming":
        state = replace(state, warm_lease_until=now)
    return state, []


def _record_warm(state: WarmingState, started_at: int, usage: Usage, cost: float) -> WarmingState:
    return replace(
        state,
        last_warm_at=started_at,
        last_refresh_at=max(started_at, state.last_refresh_at or 0),
        prefix_tokens=usage.cached_prefix_tokens or state.prefix_tokens,
        stats=state.stats.with_warm(usage, cost),
    )


def _claim_held(state: WarmingState, now: int) -> bool:
    return state.warm_lease_until is not None and now < state.warm_lease_until


def _alive(state: WarmingState, now: int) -> bool:
    """Warming is on course: waiting for a first turn, a warm in flight, or a tick still due."""
    if state.status == "waiting-for-first-turn":
        return True
    if state.status == "warming":
        return _claim_held(state, now)
    if state.status == "scheduled" and state.next_warm_at is not None:
        return now <= state.next_warm_at + TIMINGS.overdue_after_s * 1000
    return False


def _revive(state: WarmingState, now: int) -> Decision:
    """A lost tick (dead-lettered, dropped, its claim dead) is re-armed; anything else stays."""
    if not state.enabled or state.closed or state.status not in _ACTIVE or _alive(state, now):
        return state, []
    return _resume(state, now)


def _warm_finished(state: WarmingState, done: WarmFinished, now: int) -> Decision:
    current = done.seq == state.seq and state.status == "warming"
    if done.usage is not None:
        state = _record_warm(state, done.started_at, done.usage, done.cost_usd)
    if not current:
        # Toggled off, closed or re-armed while the warm ran: keep its stats, book nothing.
        return state, ([PushUpdate()] if done.usage is not None else [])
    if done.usage is None and done.error == "context_window_exceeded":
        # The prefix itself no longer fits: retrying cannot help.
        return _stop(state, "context-full", context_full=True)
    if done.usage is None:
        errors = state.consecutive_errors + 1
        state = replace(state, consecutive_errors=errors, last_error=done.error or "upstream_error")
        if errors >= MAX_CONSECUTIVE_ERRORS:
            return _stop(state, "error")
        retry_at = now + TIMINGS.min_interval_s * 1000 * errors
        expires_at = state.cache_expires_at
        if not state.rebuild and (expires_at is None or retry_at >= expires_at):
            return _stop(state, "cache-expired")
        return _arm(state, retry_at, rebuild=state.rebuild)
    state = replace(state, idle_warms=state.idle_warms + 1, consecutive_errors=0, last_error=None)
    if done.usage.cached_prefix_tokens == 0:
        # The API cached nothing: the prefix is below the model's minimum cacheable length after
        # all (the catalog's figure is checked at the seal, on an estimate). Every warm would pay
        # full input price and keep nothing. A longer conversation (the next turn) tries again.
        return _stop(state, "not-cacheable")
    if state.idle_warms >= done.terms.idle_budget:
        return _stop(state, "paused-idle")
    return _arm(state, max(now, done.started_at + state.interval_seconds * 1000))


def _turn_started(state: WarmingState, at: int) -> Decision:
    reopened = state.closed
    state = replace(
        state,
        turn_started_at=at,
        idle_warms=0,
        closed=False,
        status="off" if reopened else state.status,
    )
    return state, ([PushUpdate()] if reopened else [])


def _turn_sealed(state: WarmingState, sealed: TurnSealed, now: int) -> Decision:
    usage = sealed.usage
    state = replace(
        state,
        turn_started_at=None,
        has_prefix=True,
        last_refresh_at=max(sealed.started_at, state.last_refresh_at or 0),
        idle_warms=0,
        consecutive_errors=0,
        last_error=None,
    )
    if usage is not None:
        state = replace(
            state,
            # The next prompt's cacheable prefix: this turn's prompt plus its reply.
            prefix_tokens=usage.prompt_tokens + usage.output_tokens,
            stats=replace(state.stats, last_cache_pct=usage.cache_hit_pct),
        )
    if usage is not None and not room_for_another_turn(
        state.prefix_tokens or 0, sealed.terms.context_limit
    ):
        state = replace(state, context_full=True)
    if not state.enabled or state.closed:
        return state, [PushUpdate()]
    if state.context_full:
        return _stop(state, "context-full")
    prefix = state.prefix_tokens if usage is not None else None
    if prefix is not None and prefix < sealed.terms.min_cacheable_tokens:
        # Below the model's minimum cacheable length: a warm would be billed and cache nothing.
        return _stop(state, "not-cacheable")
    # The turn refreshed the cache at its start; a long turn must not push the warm past expiry.
    latest = sealed.started_at + state.ttl_ms - _MARGIN_MS
    target = max(now, min(sealed.sealed_at + state.interval_seconds * 1000, latest))
    return _arm(state, target)


def _turn_ended(
    state: WarmingState, refreshed_at: int | None, now: int, *, context_full: bool = False
) -> Decision:
    state = replace(state, turn_started_at=None, context_full=state.context_full or context_full)
    if context_full and state.enabled and not state.closed:
        return _stop(state, "context-full")
    if refreshed_at is not None and state.has_prefix:
        state = replace(state, last_refresh_at=max(refreshed_at, state.last_refresh_at or 0))
    if state.enabled and not state.closed and not _alive(state, now):
        return _resume(state, now)
    return state, [PushUpdate()]


def _close(state: WarmingState) -> Decision:
    if state.closed:
        return state, []
    return _stop(state, "closed", enabled=False, closed=True)
