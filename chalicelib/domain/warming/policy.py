"""The warming policy: the pure transition function `decide`.

All times are epoch milliseconds passed in by the caller: this module never reads a clock.

A *tick* is identified by `(seq, target)`. Every decision that books a new tick increments `seq`,
so any tick booked earlier — a schedule still in flight, a direct invoke, a duplicate delivery —
no longer matches the state and is a no-op. `decide` returns the new state and the effects the
service must apply, in this order: arm timers, write state (with any `Tally` for the owner's
savings counter), cancel replaced timers, push.

The rules (docs/architecture.md, "Stop conditions"): warm every interval (TTL - 10 s by default)
after the last refresh; never send a warm that could reach the API after the cache's expiry (the
late-tick guard); stop after the model's break-even budget of idle warms; with the auto cache,
each turn's request marks the cheaper cache (`choice.py`).
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.timing import TIMINGS
from chalicelib.domain.warming.events import (
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
    TurnClaimed,
    TurnEnded,
    TurnSealed,
    TurnStarted,
    Warm,
    WarmAbandoned,
    WarmFinished,
)
from chalicelib.domain.warming.state import (
    LATE,
    MAX_CONSECUTIVE_ERRORS,
    REASON_MEASURING,
    InvalidInterval,
    RetentionSetting,
    WarmingState,
    interval_bounds,
)
from chalicelib.domain.warming.steps import (
    ACTIVE,
    alive,
    arm,
    claim_held,
    lease_until,
    record_warm,
    resume,
    stop,
    too_late,
)
from chalicelib.domain.warming.turn_events import (
    turn_claimed,
    turn_ended,
    turn_sealed,
    turn_started,
)


def decide(state: WarmingState, event: Event, now: int) -> Decision:
    """The whole warming policy. Returns `(state, [])` unchanged when the event changes nothing."""
    match event:
        case ConversationCreated(retention=setting):
            return created(setting), []
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
            return turn_started(state, at)
        case TurnClaimed():
            return turn_claimed(state, event, now)
        case TurnSealed():
            return turn_sealed(state, event, now)
        case TurnEnded(refreshed_at=refreshed_at, context_full=context_full):
            return turn_ended(state, refreshed_at, now, context_full=context_full)
        case Close():
            return _close(state)
    raise TypeError(f"unknown event {event!r}")


def created(setting: RetentionSetting) -> WarmingState:
    """A new conversation: warming off; "auto" starts on the 5-minute cache (the cheaper write
    for the first turn, whose sizes nothing has measured yet)."""
    if setting == "auto":
        return WarmingState(retention="5m", auto=True, retention_reason=REASON_MEASURING)
    return WarmingState(retention=setting)


def _toggle(state: WarmingState, wanted: bool | None, now: int) -> Decision:
    enable = (not state.enabled) if wanted is None else wanted
    if enable:
        if state.enabled and alive(state, now):
            return state, []
        return resume(state, now)
    if not state.enabled:
        return state, []
    return stop(state, "off", enabled=False)


def _set_interval(state: WarmingState, seconds: int, now: int) -> Decision:
    low, high = interval_bounds(state.retention)
    if not low <= seconds <= high:
        raise InvalidInterval(f"interval must be between {low} and {high} seconds")
    if seconds == state.interval_choice:
        return state, []
    state = replace(state, interval_choice=seconds)
    if state.enabled and state.status in ACTIVE and not alive(state, now):
        return resume(state, now)  # its tick was lost: book afresh with the new interval
    if state.status == "scheduled" and not state.rebuild and state.last_refresh_at is not None:
        return arm(state, max(now, state.last_refresh_at + seconds * 1000))
    if state.status == "warming":
        # A warm is in flight: its completion books from the new interval and pushes that. A
        # push now would only show the in-flight state, whose `nextWarmAt` is already past.
        return state, []
    if state.status == "scheduled" and state.rebuild:
        # A rebuild due at once: book it again for now, so the update shows a `nextWarmAt`
        # that has not passed (the replaced tick is stale by its seq).
        return arm(state, now, rebuild=True)
    # Off or paused: the new interval shows at once.
    return state, [PushUpdate()]


def _tick_due(state: WarmingState, tick: TickDue, now: int) -> Decision:
    if tick.seq != state.seq or tick.target != state.next_warm_at:
        return state, []
    if not state.enabled or state.closed:
        return state, []
    if state.status == "warming":
        if claim_held(state, now):
            return state, []
    elif state.status != "scheduled":
        return state, []
    # The schedule that delivered this tick deletes itself after completion.
    state = replace(state, timer_ref=None)
    if state.turn_started_at is not None:
        # A turn is generating and refreshes the cache itself; look again one interval later.
        return arm(state, now + state.interval_seconds * 1000)
    if not state.rebuild and too_late(state, now):
        return stop(state, "cache-expired")
    if state.idle_warms >= tick.terms.idle_budget:
        return stop(state, "paused-idle")
    if not tick.budget_left:
        # The owner's spend budget for the day is used up: the warm is not sent.
        return stop(state, "budget-exhausted")
    lease = lease_until(state, now, tick.deadline)
    claimed = replace(state, status="warming", warm_lease_until=lease)
    return claimed, [Warm(state.seq)]


def _warm_abandoned(state: WarmingState, abandoned: WarmAbandoned, now: int) -> Decision:
    effects: list[Effect] = []
    if abandoned.usage is not None:
        # The warm was sent (and billed) before the failure: its refresh and cost count.
        state, tally = record_warm(state, abandoned.started_at, abandoned.usage, abandoned.cost_usd)
        effects.append(tally)
    if abandoned.seq == state.seq and state.status == "warming":
        state = replace(state, warm_lease_until=now)
    return state, effects


def _revive(state: WarmingState, now: int) -> Decision:
    """A lost tick (dead-lettered, dropped, its claim dead) is re-armed; anything else stays."""
    if not state.enabled or state.closed or state.status not in ACTIVE or alive(state, now):
        return state, []
    return resume(state, now)


def _warm_finished(state: WarmingState, done: WarmFinished, now: int) -> Decision:
    current = done.seq == state.seq and state.status == "warming"
    tallied: list[Effect] = []
    if done.usage is not None:
        state, tally = record_warm(state, done.started_at, done.usage, done.cost_usd)
        tallied.append(tally)
    if not current:
        # Toggled off, closed or re-armed while the warm ran: keep its stats, book nothing.
        return state, ([*tallied, PushUpdate()] if done.usage is not None else [])
    if done.usage is None:
        state, effects = _warm_failed(state, done, now)
        return state, [*tallied, *effects]
    state = replace(state, idle_warms=state.idle_warms + 1, consecutive_errors=0, last_error=None)
    if done.usage.cached_prefix_tokens == 0:
        # The API cached nothing: the prefix is below the model's minimum cacheable length after
        # all (the catalog's figure is checked at the seal, on an estimate). Every warm would pay
        # full input price and keep nothing. A longer conversation (the next turn) tries again.
        state, effects = stop(state, "not-cacheable")
    elif state.idle_warms >= done.terms.idle_budget:
        state, effects = stop(state, "paused-idle")
    else:
        state, effects = arm(state, max(now, done.started_at + state.interval_seconds * 1000))
    return state, [*tallied, *effects]


def _warm_failed(state: WarmingState, done: WarmFinished, now: int) -> Decision:
    """Upstream refused or failed the warm: retry after 1 s, then 2 s, while the cache lives;
    stop at the third failure in a row. The retries are quick because at the default interval
    the cache has 8 s left when its warm is due (domain/timing.py, "The retry room")."""
    if done.error == "context_window_exceeded":
        # The prefix itself no longer fits: retrying cannot help.
        return stop(state, "context-full", context_full=True)
    if done.error == LATE:
        # Not sent: by the time the request could go out, the cache was about to expire.
        return stop(state, "cache-expired")
    errors = state.consecutive_errors + 1
    state = replace(state, consecutive_errors=errors, last_error=done.error or "upstream_error")
    if errors >= MAX_CONSECUTIVE_ERRORS:
        return stop(state, "error")
    retry_at = now + TIMINGS.warm_retry_s * 1000 * (1 << (errors - 1))
    if not state.rebuild and too_late(state, retry_at):
        return stop(state, "cache-expired")
    return arm(state, retry_at, rebuild=state.rebuild)


def _close(state: WarmingState) -> Decision:
    if state.closed:
        return state, []
    return stop(state, "closed", enabled=False, closed=True)
