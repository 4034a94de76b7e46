"""The steps every warming rule is made of: book a tick, stop, resume, record a warm (pure).

All times are epoch milliseconds passed in by the caller.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.pricing import Usage
from chalicelib.domain.timing import TIMINGS
from chalicelib.domain.warming.events import (
    ArmTimer,
    CancelTimer,
    Decision,
    Effect,
    PushUpdate,
    Tally,
)
from chalicelib.domain.warming.state import Status, WarmingState

MARGIN_MS = TIMINGS.ttl_margin_s * 1000
GUARD_MS = TIMINGS.late_guard_s * 1000
TAKEOVER_MS = int(TIMINGS.claim_takeover_s * 1000)
MIN_LEASE_MS = TIMINGS.min_lease_s * 1000
ACTIVE: frozenset[str] = frozenset({"scheduled", "warming", "waiting-for-first-turn"})


def arm(state: WarmingState, target: int, *, rebuild: bool = False) -> Decision:
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


def stop(state: WarmingState, status: Status, **changes: object) -> Decision:
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


def too_late(state: WarmingState, start: int) -> bool:
    """A warm starting at `start` could reach the API at or after the cache's expiry, and so
    re-write the prefix instead of reading it: the late-tick guard (domain/timing.py)."""
    expires_at = state.cache_expires_at
    return expires_at is None or start >= expires_at - GUARD_MS


def resume(state: WarmingState, now: int) -> Decision:
    """Warming is (re-)enabled by the user: book the next warm from the cache's last refresh."""
    state = replace(
        state, enabled=True, closed=False, idle_warms=0, consecutive_errors=0, last_error=None
    )
    if state.context_full:
        # No turn can extend this prefix any more: keeping it warm would only cost.
        return stop(state, "context-full")
    if not state.has_prefix:
        return stop(state, "waiting-for-first-turn")
    if state.below_min_cacheable:
        # The last sealed turn said so: a warm would be billed and read nothing.
        return stop(state, "not-cacheable")
    if too_late(state, now):
        # The cache is gone (or about to be): the user asked for warming, so rebuild it now.
        return arm(state, now, rebuild=True)
    assert state.last_refresh_at is not None
    return arm(state, max(now, state.last_refresh_at + state.interval_seconds * 1000))


def lease_until(state: WarmingState, now: int, deadline: int) -> int:
    """How long a claimed warm is held: a keep-alive warm's claim ends early enough that a tick
    finding it held by a dead invocation still takes it over before the late guard; a rebuild's
    runs to the invocation's deadline. Never past the deadline, never shorter than the minimum
    lease (a claimant whose lease ran out may be overtaken: both warms are then recorded, and
    only the first books the next tick)."""
    expires_at = state.cache_expires_at
    if state.rebuild or expires_at is None:
        return deadline
    takeover_by = expires_at - GUARD_MS - TAKEOVER_MS
    return min(deadline, max(now + MIN_LEASE_MS, takeover_by))


def claim_held(state: WarmingState, now: int) -> bool:
    return state.warm_lease_until is not None and now < state.warm_lease_until


def alive(state: WarmingState, now: int) -> bool:
    """Warming is on course: waiting for a first turn, a warm in flight, or a tick still due."""
    if state.status == "waiting-for-first-turn":
        return True
    if state.status == "warming":
        return claim_held(state, now)
    if state.status == "scheduled" and state.next_warm_at is not None:
        return now <= state.next_warm_at + TIMINGS.overdue_after_s * 1000
    return False


def record_warm(
    state: WarmingState, started_at: int, usage: Usage, cost: float
) -> tuple[WarmingState, Tally]:
    """A warm that reached the API: its refresh, its tokens and its cost (spent, whatever the user
    does next), and the same cost for the owner's savings counter."""
    recorded = replace(
        state,
        last_warm_at=started_at,
        last_refresh_at=max(started_at, state.last_refresh_at or 0),
        prefix_tokens=usage.cached_prefix_tokens or state.prefix_tokens,
        stats=state.stats.with_warm(usage, cost),
    )
    return recorded, Tally(spent_usd=round(cost, 8), warms=1)
