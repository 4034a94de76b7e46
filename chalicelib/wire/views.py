"""JSON views of conversations and turns for the HTTP API (camelCase, epoch milliseconds)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.conversation import Conversation, ConversationSummary, Turn, summary_of
from chalicelib.domain.history import HistoryEntry
from chalicelib.domain.warming import Tally
from chalicelib.ports import HistoryPage, SummaryPage
from chalicelib.wire.commands import encode_cursor, encode_history_cursor


def savings_view(spent_usd: float, saved_usd: float, rescues: int) -> dict[str, Any]:
    """What warming spent (every warm), what its rescues saved, and the difference."""
    return {
        "spentUsd": spent_usd,
        "savedUsd": saved_usd,
        "netUsd": round(saved_usd - spent_usd, 8),
        "rescues": rescues,
    }


def user_savings_view(totals: Tally) -> dict[str, Any]:
    """The same figures over every conversation of one user (`GET /savings`)."""
    return {
        **savings_view(totals.spent_usd, totals.saved_usd, totals.rescues),
        "warms": totals.warms,
    }


def warming_view(conversation: Conversation) -> dict[str, Any]:
    return _warming(summary_of(conversation))


def _warming(summary: ConversationSummary) -> dict[str, Any]:
    return {
        "enabled": summary.warming_enabled,
        "intervalSeconds": summary.interval_seconds,
        "status": summary.status,
        "nextWarmAt": summary.next_warm_at,
        "lastWarmAt": summary.last_warm_at,
        "cacheInUse": summary.retention,
        "cacheReason": summary.cache_reason,
        "warms": summary.warms,
        "totalCostUsd": summary.total_cost_usd,
        "savings": savings_view(summary.total_cost_usd, summary.saved_usd, summary.rescues),
    }


def summary_view(summary: ConversationSummary) -> dict[str, Any]:
    """A conversation as every route shows it; the list builds it from the stored summary alone."""
    return {
        "conversationId": summary.id,
        "title": summary.title,
        "model": summary.model,
        "maxTokens": summary.max_tokens,
        "cacheRetention": summary.setting or summary.retention,
        "createdAt": summary.created_at,
        "closed": summary.closed,
        "activeTurnId": summary.active_turn_id,
        "turnCount": summary.turn_count,
        "warming": _warming(summary),
    }


def conversation_view(conversation: Conversation) -> dict[str, Any]:
    return summary_view(summary_of(conversation))


def conversation_list(page: SummaryPage) -> dict[str, Any]:
    return {
        "conversations": [summary_view(summary) for summary in page.summaries],
        "nextCursor": encode_cursor(page.next_after) if page.next_after else None,
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
        "costUsd": turn.cost_usd,
    }


def conversation_detail(conversation: Conversation, turns: list[Turn]) -> dict[str, Any]:
    return {
        **conversation_view(conversation),
        "system": conversation.system,
        "turns": [turn_view(turn) for turn in turns],
    }


def history_entry_view(entry: HistoryEntry) -> dict[str, Any]:
    """One warm or turn of `GET /conversations/{id}/history` (docs/contract.md, "History")."""
    usage = entry.usage
    common: dict[str, Any] = {
        "seq": entry.seq,
        "kind": entry.kind,
        "at": entry.at,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "usage": usage.to_dict() if usage else None,
        "cacheReadTokens": usage.cache_read_input_tokens if usage else 0,
        "cacheWriteTokens": usage.cache_creation_input_tokens if usage else 0,
        "cachePct": (usage.prefix_hit_pct if entry.kind == "warm" else usage.cache_hit_pct)
        if usage
        else None,
        "costUsd": entry.cost_usd,
        "totals": {"spentUsd": entry.spent_total_usd, "savedUsd": entry.saved_total_usd},
    }
    if entry.kind == "warm":
        delay = entry.at - entry.target if entry.target is not None else None
        return {**common, "target": entry.target, "delayMs": delay}
    return {
        **common,
        "turnId": entry.turn_id,
        "endedAt": entry.ended_at,
        "rescue": entry.rescue,
        "savedUsd": entry.saved_usd,
    }


def history_view(page: HistoryPage) -> dict[str, Any]:
    return {
        "entries": [history_entry_view(entry) for entry in page.entries],
        "nextCursor": encode_history_cursor(page.next_before) if page.next_before else None,
    }
