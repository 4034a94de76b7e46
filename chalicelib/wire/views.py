"""JSON views of conversations and turns for the HTTP API (camelCase, epoch milliseconds)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.warming import Tally, WarmStats


def savings_view(stats: WarmStats) -> dict[str, Any]:
    """What warming spent (every warm), what its rescues saved, and the difference."""
    return {
        "spentUsd": stats.total_cost_usd,
        "savedUsd": stats.saved_usd,
        "netUsd": stats.net_usd,
        "rescues": stats.rescues,
    }


def user_savings_view(totals: Tally) -> dict[str, Any]:
    """The same figures over every conversation of one user (`GET /savings`)."""
    return {
        "spentUsd": totals.spent_usd,
        "savedUsd": totals.saved_usd,
        "netUsd": totals.net_usd,
        "rescues": totals.rescues,
        "warms": totals.warms,
    }


def warming_view(conversation: Conversation) -> dict[str, Any]:
    state = conversation.warming
    return {
        "enabled": state.enabled,
        "intervalSeconds": state.interval_seconds,
        "status": state.status,
        "nextWarmAt": state.next_warm_at,
        "lastWarmAt": state.last_warm_at,
        "cacheInUse": state.retention,
        "cacheReason": state.retention_reason,
        "warms": state.stats.warms,
        "totalCostUsd": state.stats.total_cost_usd,
        "savings": savings_view(state.stats),
    }


def conversation_view(conversation: Conversation) -> dict[str, Any]:
    return {
        "conversationId": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "maxTokens": conversation.max_tokens,
        "cacheRetention": conversation.warming.setting,
        "createdAt": conversation.created_at,
        "closed": conversation.warming.closed,
        "activeTurnId": conversation.active_turn_id,
        "turnCount": conversation.turn_count,
        "warming": warming_view(conversation),
    }


def turn_view(turn: Turn) -> dict[str, Any]:
    return {
        "turnId": turn.turn_id,
        "index": turn.index,
        "status": turn.status,
        "userText": turn.user_text,
        "assistantText": turn.assistant_text,
        "startedAt": turn.started_at,
        "endedAt": turn.ended_at,
        "usage": turn.usage.to_dict() if turn.usage else None,
        "errorCode": turn.error_code,
        "abortReason": turn.abort_reason,
        "truncated": turn.truncated,
    }


def conversation_detail(conversation: Conversation, turns: list[Turn]) -> dict[str, Any]:
    return {
        **conversation_view(conversation),
        "system": conversation.system,
        "turns": [turn_view(turn) for turn in turns],
    }
