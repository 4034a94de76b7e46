"""The cache-warming surface: a small server-described panel rendered from the warming state."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.warming import WarmingState, interval_bounds

SURFACE_ID = "cache-warming"
TOGGLE_ACTION = "cache-warming/toggle"
SET_INTERVAL_ACTION = "cache-warming/set-interval"
ACTIONS = (TOGGLE_ACTION, SET_INTERVAL_ACTION)
TIMER_COMPONENT = "cache-warming-timer"

Field = dict[str, Any]


def fields(state: WarmingState) -> list[Field]:
    low, high = interval_bounds(state.retention)
    stats = state.stats
    return [
        {
            "id": "enabled",
            "kind": "toggle",
            "label": "Cache warming",
            "value": state.enabled,
            "action": TOGGLE_ACTION,
        },
        {
            "id": "interval",
            "kind": "number",
            "label": "Interval",
            "value": state.interval_seconds,
            "min": low,
            "max": high,
            "unit": "s",
            "action": SET_INTERVAL_ACTION,
        },
        {
            "id": "timer",
            "kind": "custom",
            "component": TIMER_COMPONENT,
            "label": "Next warm",
            "value": {"nextWarmAt": state.next_warm_at, "lastWarmAt": state.last_warm_at},
        },
        {"id": "status", "kind": "status", "label": "Status", "value": state.status},
        {
            "id": "last-cache-pct",
            "kind": "percent",
            "label": "Last Cache %",
            "value": stats.last_cache_pct,
        },
        {
            "id": "cache-retention",
            "kind": "text",
            "label": "Cache retention",
            "value": state.retention,
        },
        {
            "id": "warm-cost",
            "kind": "cost",
            "label": "Warm cost",
            "value": {
                "warms": stats.warms,
                "lastTokens": stats.last_warm_tokens,
                "lastUsd": stats.last_warm_cost_usd,
                "totalTokens": stats.input_tokens
                + stats.output_tokens
                + stats.cache_read_tokens
                + stats.cache_write_tokens,
                "totalUsd": stats.total_cost_usd,
            },
        },
    ]


def surface_frame(
    conversation_id: str, state: WarmingState, request_id: str | None
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "surface",
        "surfaceId": SURFACE_ID,
        "conversationId": conversation_id,
        "spec": {"title": "Cache warming", "actions": list(ACTIONS), "fields": fields(state)},
    }
    return _with_request_id(frame, request_id)


def update_frame(
    conversation_id: str, state: WarmingState, request_id: str | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "update",
        "surfaceId": SURFACE_ID,
        "conversationId": conversation_id,
        "fields": fields(state),
    }
    return _with_request_id(frame, request_id)


def _with_request_id(frame: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    if request_id is not None:
        frame["requestId"] = request_id
    return frame
