"""A conversation's history (pure): one entry per warm (sent, failed or skipped) and per ended turn,
derived from the change the unit of work is about to write, and written in the same transaction.

Entries are numbered per conversation (`seq`, from 1, the conversation's `history_count`); only the
newest MAX_ENTRIES are shown, and each expires RETENTION_DAYS after it happened (DynamoDB TTL
removes it; readers skip an expired one, and any older than the newest MAX_ENTRIES, before then).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming import (
    Event,
    Tally,
    TickDue,
    WarmAbandoned,
    WarmFinished,
)

MAX_ENTRIES = 1000
RETENTION_DAYS = 30
# The stops a due tick can make without sending its warm: the entry says which.
SKIPPED = frozenset({"paused-idle", "cache-expired", "budget-exhausted"})

Kind = Literal["warm", "turn"]


@dataclass(frozen=True)
class HistoryEntry:
    kind: Kind
    # A warm's request start (a skipped one: when its tick was decided); a turn's start.
    at: int
    # A warm: "warmed", "failed" or "skipped"; a turn: its final status.
    outcome: str
    conversation_id: str = ""
    seq: int = 0
    cost_usd: float = 0.0
    usage: Usage | None = None
    # A failed warm's error code, a skipped warm's stop; a failed turn's code or an abort's reason.
    reason: str | None = None
    # A warm: the time it was booked for (None when it no longer was the live tick).
    target: int | None = None
    # A turn: its id and end, and whether warming rescued it (and what that saved).
    turn_id: str | None = None
    ended_at: int | None = None
    rescue: bool = False
    saved_usd: float = 0.0
    # The conversation's warming totals once this entry is counted: a chart needs no sums.
    spent_total_usd: float = 0.0
    saved_total_usd: float = 0.0

    @property
    def expires_at_s(self) -> int:
        return self.at // 1000 + RETENTION_DAYS * 86_400


def entry_of(
    before: Conversation,
    after: Conversation,
    event: Event | None,
    turn: Turn | None,
    tally: Tally | None,
    now: int,
) -> HistoryEntry | None:
    """The entry this change adds, if it records a warm or ends a turn; `after` is the
    conversation as it will be stored (its totals count the change), `tally` what the change adds
    to the owner's savings (a turn's rescue)."""
    if turn is not None and turn.status != "generating":
        entry: HistoryEntry | None = _turn_entry(turn, tally or Tally())
    else:
        entry = _warm_entry(before, after, event, now)
    if entry is None:
        return None
    stats = after.warming.stats
    return replace(
        entry,
        conversation_id=after.id,
        seq=before.history_count + 1,
        spent_total_usd=stats.total_cost_usd,
        saved_total_usd=stats.saved_usd,
    )


def _turn_entry(turn: Turn, tally: Tally) -> HistoryEntry:
    return HistoryEntry(
        kind="turn",
        at=turn.started_at,
        outcome=turn.status,
        cost_usd=turn.cost_usd or 0.0,
        usage=turn.usage,
        reason=turn.error_code or turn.abort_reason,
        turn_id=turn.turn_id,
        ended_at=turn.ended_at,
        rescue=tally.rescues > 0,
        saved_usd=tally.saved_usd,
    )


def _warm_entry(
    before: Conversation, after: Conversation, event: Event | None, now: int
) -> HistoryEntry | None:
    live = before.warming
    match event:
        case WarmFinished(seq=seq, started_at=started, usage=usage, cost_usd=cost, error=error):
            return HistoryEntry(
                kind="warm",
                at=started,
                outcome="warmed" if usage is not None else "failed",
                cost_usd=cost,
                usage=usage,
                reason=error if usage is None else None,
                target=live.next_warm_at if seq == live.seq else None,
            )
        case WarmAbandoned(started_at=started, usage=usage, cost_usd=cost) if usage is not None:
            # Sent and billed, but its invocation failed before recording it: counted now.
            return HistoryEntry(
                kind="warm", at=started, outcome="warmed", cost_usd=cost, usage=usage
            )
        case TickDue(target=target) if after.warming.status in SKIPPED:
            return HistoryEntry(
                kind="warm", at=now, outcome="skipped", reason=after.warming.status, target=target
            )
    return None
