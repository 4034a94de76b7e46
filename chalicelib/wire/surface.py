"""The cache-warming surface: a small server-described panel rendered from the warming state."""

from __future__ import annotations

from typing import Any, Literal, get_args

from chalicelib.domain.warming import (
    Close,
    Event,
    SetInterval,
    TickDue,
    Toggle,
    TurnClaimed,
    TurnEnded,
    TurnSealed,
    TurnStarted,
    WarmAbandoned,
    WarmFinished,
    WarmingState,
    interval_bounds,
)
from chalicelib.wire.views import savings_view

SURFACE_ID = "cache-warming"
TOGGLE_ACTION = "cache-warming/toggle"
SET_INTERVAL_ACTION = "cache-warming/set-interval"
ACTIONS = (TOGGLE_ACTION, SET_INTERVAL_ACTION)
TIMER_COMPONENT = "cache-warming-timer"

Field = dict[str, Any]

# What an `update` frame answers or reports (docs/contract.md, "update"): the change that made it.
Cause = Literal[
    "toggle",
    "interval",
    "warm",
    "stop",
    "tick",
    "turn-started",
    "cache-switch",
    "turn-sealed",
    "turn-ended",
    "close",
    "revive",
]
CAUSES: tuple[Cause, ...] = get_args(Cause)


def cause_of(event: Event | None, state: WarmingState) -> Cause:
    """The cause an update reports for the event that changed `state` (its new value)."""
    match event:
        case Toggle():
            return "toggle"
        case SetInterval():
            return "interval"
        case WarmFinished() | WarmAbandoned():
            return "warm"
        case TickDue():
            # A due tick sends no warm of its own when it pushes: it stopped warming (the
            # status says why) or booked a later look while a turn generates.
            return "tick" if state.status == "scheduled" else "stop"
        case TurnStarted():
            return "turn-started"
        case TurnClaimed():
            return "cache-switch"
        case TurnSealed():
            return "turn-sealed"
        case TurnEnded():
            return "turn-ended"
        case Close():
            return "close"
        case _:
            return "revive"


def _field(field_id: str, kind: str, label: str, value: Any, **extra: Any) -> Field:
    return {"id": field_id, "kind": kind, "label": label, "value": value, **extra}


def _interval(state: WarmingState) -> Field:
    low, high = interval_bounds(state.retention)
    return _field(
        "interval",
        "number",
        "Interval",
        state.interval_seconds,
        min=low,
        max=high,
        unit="s",
        action=SET_INTERVAL_ACTION,
        costPerHourUsd=state.cost_per_hour_usd,
    )


def _timer(state: WarmingState) -> Field:
    value = {
        "nextWarmAt": state.next_warm_at,
        "lastWarmAt": state.last_warm_at,
        "cacheExpiresAt": state.cache_expires_at,
        "warmsLeft": state.warms_left,
    }
    return _field("timer", "custom", "Next warm", value, component=TIMER_COMPONENT)


def _warm_cost(state: WarmingState) -> Field:
    stats = state.stats
    total_tokens = (
        stats.input_tokens
        + stats.output_tokens
        + stats.cache_read_tokens
        + stats.cache_write_tokens
    )
    value = {
        "warms": stats.warms,
        "lastTokens": stats.last_warm_tokens,
        "lastUsd": stats.last_warm_cost_usd,
        "totalTokens": total_tokens,
        "totalUsd": stats.total_cost_usd,
    }
    return _field("warm-cost", "cost", "Warm cost", value)


def _savings(state: WarmingState) -> dict[str, Any]:
    stats = state.stats
    return savings_view(stats.total_cost_usd, stats.saved_usd, stats.rescues)


def fields(state: WarmingState) -> list[Field]:
    """The panel's fields, always all of them, in the contract's order."""
    return [
        _field("enabled", "toggle", "Cache warming", state.enabled, action=TOGGLE_ACTION),
        _interval(state),
        _timer(state),
        _field("status", "status", "Status", state.status),
        _field("last-cache-pct", "percent", "Last Cache %", state.stats.last_cache_pct),
        _field(
            "cache-retention",
            "text",
            "Cache retention",
            state.retention,
            setting=state.setting,
            reason=state.retention_reason,
        ),
        _warm_cost(state),
        _field("savings", "cost", "Savings", _savings(state)),
    ]
