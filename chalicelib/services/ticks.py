"""The warm tick: due at its exact target, claim the warm, warm, book the next tick, push.

The tick queue delivers a tick less than a second before its target (`DelaySeconds` rounded
down); the handler sleeps that rest. A tick that arrives earlier (a Scheduler delivery, booked
minutes ahead) goes back on the timer with the same `(seq, target)` and the invocation ends: no
Lambda waits for minutes (docs/architecture.md, "The precise timer").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage
from chalicelib.domain.timing import TIMINGS
from chalicelib.domain.warming import TickDue, WarmAbandoned, WarmingState, claim_held
from chalicelib.ports import Snapshot
from chalicelib.services.unit_of_work import Outcome, Scope, UnitOfWork, WarmUnfinished

log = logging.getLogger("cache_warming")

# A tick whose seq is ahead of the stored state waits this long for the write that booked it,
# then goes back on the queue for another look this much later (until `ahead_wait_s`).
TICK_CATCH_UP_MS = 3_000
TICK_CATCH_UP_POLL_S = 0.05
AHEAD_RETRY_MS = 5_000
# Between two in-process attempts of a tick whose read or claim failed.
IN_PROCESS_PAUSE_MS = 200


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
        report = TickReport(conversation_id, seq, target, action="noop")
        now = self.ports.clock.now_ms()
        if not self._due_now(report, now):
            return report
        deadline = deadline_ms or now + TIMINGS.warm_timeout_s * 1000
        claim = self._claim_retried(report, deadline)
        if claim is None or not claim.changed:
            return report
        warm = claim.warm
        if warm is None:
            report.action = claim.conversation.warming.status
            return report
        report.action = "warmed" if warm.usage is not None else "warm-failed"
        report.lateness_ms = warm.started_at - target
        report.usage, report.error = warm.usage, warm.error
        report.cost_usd = warm.cost_usd if warm.usage is not None else None
        state = warm.finished.conversation.warming
        report.extra = {"status": state.status, "nextWarmAt": state.next_warm_at}
        return report

    def _claim_retried(self, report: TickReport, deadline: int) -> Outcome | None:
        """Read and claim; a failure before the warm is sent (DynamoDB throttled past botocore's
        retries, unreachable) is tried again in this invocation while the tick is at most
        `in_process_retry_s` late: the queue's retry comes 5 s later, past the late guard of a
        default-interval tick (domain/timing.py). The guard still decides each attempt."""
        retry_until = report.target + TIMINGS.in_process_retry_s * 1000
        while True:
            try:
                return self._read_and_claim(report, deadline)
            except WarmUnfinished:
                raise
            except Exception:
                if self.ports.clock.now_ms() + IN_PROCESS_PAUSE_MS > retry_until:
                    raise
                log.warning(
                    "tick %s/%s failed; trying again",
                    report.conversation_id,
                    report.seq,
                    exc_info=True,
                )
                self.ports.clock.sleep(IN_PROCESS_PAUSE_MS / 1000)

    def _read_and_claim(self, report: TickReport, deadline: int) -> Outcome | None:
        snapshot = self._load_caught_up(report.conversation_id, report.seq)
        if snapshot is None:
            return None
        state = snapshot.conversation.warming
        if state.seq < report.seq:
            self._ahead(report)
            return None
        claim = self._claim(report, snapshot, deadline)
        if claim is not None and not claim.changed:
            self._held(report, claim.conversation.warming)
        return claim

    def _ahead(self, report: TickReport) -> None:
        """Its booking write has not landed (a tick due at once can beat it; botocore may still
        be retrying it): look again shortly, until no write could still land."""
        now = self.ports.clock.now_ms()
        if now >= report.target + TIMINGS.ahead_wait_s * 1000:
            return  # an orphan of a write that failed: a no-op
        at = now + AHEAD_RETRY_MS
        self.ports.timer.requeue(report.conversation_id, report.seq, report.target, at, now)
        report.action = "requeued"

    def _held(self, report: TickReport, state: WarmingState) -> None:
        """This very tick's warm is claimed by another invocation: come back when its claim
        ends. If that invocation died, this tick takes the warm over; if it finished, the tick
        is stale by then. Never dropped while the claim might be a dead one."""
        now = self.ports.clock.now_ms()
        mine = state.seq == report.seq and state.next_warm_at == report.target
        if not (mine and state.status == "warming" and claim_held(state, now)):
            return
        assert state.warm_lease_until is not None
        at = state.warm_lease_until
        self.ports.timer.requeue(report.conversation_id, report.seq, report.target, at, now)
        report.action = "requeued"

    def _due_now(self, report: TickReport, now: int) -> bool:
        """Sleep the sub-second rest to the target, or put a tick that came minutes early (a
        Scheduler delivery) back on the timer with the same `(seq, target)`."""
        if report.target - now > TIMINGS.max_early_wait_s * 1000:
            self.ports.timer.arm(report.conversation_id, report.seq, report.target, now)
            report.action = "requeued"
            return False
        if report.target > now:
            self.ports.clock.sleep((report.target - now) / 1000)
        return True

    def _claim(self, report: TickReport, snapshot: Snapshot, deadline: int) -> Outcome | None:
        """Decide the tick in the unit of work; a refusal is reported, any other failure after
        the claim releases it before Lambda sees the error."""
        conversation = snapshot.conversation
        conversation_id, seq = report.conversation_id, report.seq
        terms = self.uow.costs.terms(conversation, self.ports.clock.now_ms())
        scope = Scope(
            listeners=snapshot.subscribers.get("surface", []), turns=snapshot.turns, terms=terms
        )
        # Read before the claim: an unreadable counter fails the tick for Lambda's retry.
        budget_left = self.uow.budget_left(conversation.owner)
        due = TickDue(seq, report.target, terms, deadline, budget_left=budget_left)
        try:
            return self.uow.transition(conversation_id, due, current=conversation, scope=scope)
        except Refused as refused:
            report.error = refused.code
            return None
        except WarmUnfinished as unfinished:
            # Sent, but the next booking failed: free the claim (keeping the warm's refresh)
            # so the retry takes over; let Lambda see the failure.
            self._release(conversation_id, unfinished.abandoned)
            raise
        except Exception:
            self._release(conversation_id, WarmAbandoned(seq))
            raise

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
