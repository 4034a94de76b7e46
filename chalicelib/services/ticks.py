"""The warm tick: wait for the exact target, claim the warm, warm, book the next tick, push."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage
from chalicelib.domain.timing import TIMINGS
from chalicelib.domain.warming import TickDue, WarmAbandoned
from chalicelib.ports import Snapshot
from chalicelib.services.unit_of_work import Scope, UnitOfWork, WarmUnfinished

log = logging.getLogger("cache_warming")

# A tick whose seq is ahead of the stored state waits this long for the write that booked it.
TICK_CATCH_UP_MS = 3_000
TICK_CATCH_UP_POLL_S = 0.05


@dataclass
class TickReport:
    """What one tick did, for the structured log line and the tests."""

    conversation_id: str
    seq: int
    target: int
    action: str
    lateness_ms: int | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Ticks:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.ports = uow.ports

    def handle(
        self, conversation_id: str, seq: int, target: int, deadline_ms: int | None = None
    ) -> TickReport:
        """`deadline_ms`: when Lambda would kill this invocation; a claimed warm is held no
        longer, and released at once if the invocation fails after claiming it."""
        clock = self.ports.clock
        deadline = deadline_ms or clock.now_ms() + TIMINGS.warm_timeout_s * 1000
        wait_s = (target - clock.now_ms()) / 1000
        if wait_s > 0:
            clock.sleep(min(wait_s, TIMINGS.max_early_wait_s))
        report = TickReport(conversation_id, seq, target, action="noop")
        snapshot = self._load_caught_up(conversation_id, seq)
        if snapshot is None:
            return report
        conversation = snapshot.conversation
        terms = self.uow.costs.terms(conversation, clock.now_ms())
        scope = Scope(
            listeners=snapshot.subscribers.get("surface", []), turns=snapshot.turns, terms=terms
        )
        # Read before the claim: an unreadable counter fails the tick for Lambda's retry.
        budget_left = self.uow.budget_left(conversation.owner)
        due = TickDue(seq, target, terms, deadline, budget_left=budget_left)
        try:
            claim = self.uow.transition(conversation_id, due, current=conversation, scope=scope)
        except Refused as refused:
            report.error = refused.code
            return report
        except WarmUnfinished as unfinished:
            # Sent, but the next booking failed: free the claim (keeping the warm's refresh)
            # so Lambda's retry, about a minute from now, takes over; let Lambda see the failure.
            self._release(conversation_id, unfinished.abandoned)
            raise (unfinished.__cause__ or unfinished) from None
        except Exception:
            self._release(conversation_id, WarmAbandoned(seq))
            raise
        if not claim.changed:
            return report
        warm = claim.warm
        if warm is None:
            report.action = claim.conversation.warming.status
            return report
        report.action = "warmed" if warm.usage is not None else "warm-failed"
        report.lateness_ms = warm.started_at - target
        report.usage, report.error = warm.usage, warm.error
        report.cost_usd = warm.cost_usd if warm.usage is not None else None
        if report.cost_usd:
            self.uow.record_spend(conversation.owner, report.cost_usd)
        state = warm.finished.conversation.warming
        report.extra = {"status": state.status, "nextWarmAt": state.next_warm_at}
        return report

    def _release(self, conversation_id: str, abandoned: WarmAbandoned) -> None:
        try:
            self.uow.transition(conversation_id, abandoned)
        except Exception:
            log.exception("could not release the warm claim; it expires at the deadline")

    def _load_caught_up(self, conversation_id: str, seq: int) -> Snapshot | None:
        """One query reads the state, the prompt's turns and the subscribers for the push.

        The timer is armed before the state write, so a tick due at once can arrive before the
        write that books it has landed: its seq is then ahead of the stored one. Wait for the
        write (bounded); if it never lands, the tick was an orphan and stays a no-op.
        """
        clock = self.ports.clock
        deadline = clock.now_ms() + TICK_CATCH_UP_MS
        while True:
            snapshot = self.ports.store.load(conversation_id, clock.now_ms() // 1000)
            if snapshot is None or snapshot.conversation.warming.seq >= seq:
                return snapshot
            if clock.now_ms() >= deadline:
                return snapshot
            clock.sleep(TICK_CATCH_UP_POLL_S)
