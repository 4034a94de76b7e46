"""The one loop every use case runs, and the one interpreter of its effects.

    read (strongly consistent) -> decide -> arm the new timer -> conditional write (version)
    -> cancel the replaced timer -> push the update / the chat announcement -> warm

A version conflict means someone else changed the conversation between our read and our write:
the timer we armed is cancelled (it would be an orphan) and we decide again from a fresh read.
Cancelling the replaced timer only after the write means a crash leaves an old tick that is now
stale, never a state pointing at a deleted tick. The warm itself is an effect too: its result is
decided (`WarmFinished`) and applied by the same loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import reduce

from chalicelib.domain import budget, history, turns
from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.errors import Refused, not_found
from chalicelib.domain.pricing import Usage
from chalicelib.domain.prompts import warm_prompt
from chalicelib.domain.turns import Change
from chalicelib.domain.warming import (
    LATE,
    ArmTimer,
    CancelTimer,
    Effect,
    Event,
    ModelTerms,
    PushUpdate,
    Tally,
    Warm,
    WarmAbandoned,
    WarmFinished,
    decide,
    too_late,
)
from chalicelib.ports import (
    BudgetExhausted,
    CapReached,
    ConversationCapReached,
    ModelError,
    PlaceChange,
    SlotChange,
    VersionConflict,
    WriteOutcomeUnknown,
)
from chalicelib.services.costs import Costs
from chalicelib.services.fanout import FanOut
from chalicelib.services.ports import Ports
from chalicelib.wire import surface

log = logging.getLogger("cache_warming")

MAX_ATTEMPTS = 8
# A sent warm's record is written at most this many times in its invocation, this far apart (x n).
FINISH_ATTEMPTS = 3
FINISH_RETRY_S = 0.25

Planner = Callable[[Conversation, int], Change | None]


@dataclass(frozen=True)
class Scope:
    """What a transition's effects need beyond the state: who hears its pushes (the requester is
    answered separately), and what the caller already read, so a warm costs one query."""

    exclude: str | None = None
    listeners: list[str] | None = None
    turns: list[Turn] | None = None
    terms: ModelTerms | None = None


class WarmUnfinished(Exception):
    """The warm was sent but its outcome could not be written (the next booking failed)."""

    def __init__(self, seq: int, started_at: int, usage: Usage | None, cost_usd: float) -> None:
        super().__init__(f"warm {seq} sent at {started_at} but not recorded")
        self.abandoned = WarmAbandoned(seq, started_at, usage, cost_usd)


@dataclass(frozen=True)
class WarmResult:
    started_at: int
    usage: Usage | None
    cost_usd: float
    error: str | None
    finished: Outcome


@dataclass(frozen=True)
class Outcome:
    conversation: Conversation
    effects: list[Effect]
    changed: bool
    change: Change | None = None
    warm: WarmResult | None = None

    @property
    def pushes_update(self) -> bool:
        return any(isinstance(effect, PushUpdate) for effect in self.effects)


def _tally(effects: list[Effect]) -> Tally | None:
    """What this decision adds to the owner's savings counter (written with the state)."""
    tallies = [effect for effect in effects if isinstance(effect, Tally)]
    return reduce(Tally.plus, tallies, Tally()) if tallies else None


def _warm_spend(event: Event | None, now: int, usd: float) -> budget.DaySpend:
    """A warm's cost names the warm and counts on the day it was sent: however often its record
    is written (a retry, the abandoned warm recorded later), it counts once."""
    if isinstance(event, WarmFinished | WarmAbandoned):
        return budget.day_spend(event.started_at or now, usd, event.seq)
    return budget.day_spend(now, usd)


class UnitOfWork:
    def __init__(self, ports: Ports, fanout: FanOut, costs: Costs) -> None:
        self.ports = ports
        self.fanout = fanout
        self.costs = costs

    def record_spend(self, owner: str, usd: float) -> None:
        """Count a cost the API billed against the owner's day (best effort: the spend already
        happened, so a failure to count it is logged, never turned into the caller's error)."""
        spend = budget.day_spend(self.ports.clock.now_ms(), usd)
        try:
            self.ports.store.add_spend(owner, spend.day, spend.micro_usd, spend.expires_at_s)
        except Exception:
            log.exception("could not count %s USD of spend", usd)

    def settle_spend(self, owner: str, started_at: int, reserved_micro: int, usd: float) -> None:
        """A turn's cost against the day it started on, freeing what it reserved beyond it
        (best effort, as `record_spend`: a reservation not freed blocks more than it should for
        the rest of that day, never less)."""
        spend = budget.day_spend(started_at, usd)
        try:
            self.ports.store.settle_spend(
                owner, spend.day, reserved_micro, spend.micro_usd, spend.expires_at_s
            )
        except Exception:
            log.exception("could not settle %s USD against a reservation", usd)

    def reserve(self, owner: str, micro_usd: int) -> bool:
        """Reserve a turn's worst case; False when the day's budget is already committed."""
        cap = self.ports.limits.daily_budget_usd
        if cap is None:
            return True
        now = self.ports.clock.now_ms()
        day, expires = budget.spend_day(now), budget.day_expires_at_s(now)
        try:
            self.ports.store.reserve_spend(owner, day, micro_usd, budget.micro_usd(cap), expires)
        except BudgetExhausted:
            return False
        return True

    def budget_left(self, owner: str) -> bool:
        """Against what the day has spent and what turns still streaming have reserved."""
        day = budget.spend_day(self.ports.clock.now_ms())
        return budget.budget_left(
            self.ports.store.committed(owner, day), self.ports.limits.daily_budget_usd
        )

    def read_owned(self, conversation_id: str, owner: str | None) -> Conversation:
        conversation = self.ports.store.get_conversation(conversation_id)
        if conversation is None or (owner is not None and conversation.owner != owner):
            raise not_found()
        return conversation

    def transition(
        self,
        conversation_id: str,
        plan: Event | Planner | None,
        *,
        owner: str | None = None,
        current: Conversation | None = None,
        scope: Scope | None = None,
    ) -> Outcome:
        """Decide `plan` against a fresh read, write it, and carry out its effects.

        `plan` is a warming event, or a function of the fresh read and the time that returns the
        `Change` to write (None: nothing to do). `current`, when the caller just read it, saves
        the first read; a conflict always re-reads.
        """
        outcome = self._commit(conversation_id, plan, owner, current)
        return self._carry_out(outcome, scope or Scope())

    def _commit(
        self,
        conversation_id: str,
        plan: Event | Planner | None,
        owner: str | None,
        current: Conversation | None,
    ) -> Outcome:
        for _ in range(MAX_ATTEMPTS):
            if current is None:
                current = self.read_owned(conversation_id, owner)
            now = self.ports.clock.now_ms()
            change = plan(current, now) if callable(plan) else Change(current, event=plan)
            if change is None:
                return Outcome(current, [], changed=False)
            state, effects = (
                decide(change.conversation.warming, change.event, now)
                if change.event is not None
                else (change.conversation.warming, [])
            )
            updated = replace(change.conversation, warming=state)
            if updated == current and change.turn is None:
                return Outcome(current, [], changed=False)
            updated, armed = self._arm(updated, effects, now)
            try:
                saved = self._save(current, updated, change, _tally(effects), now)
            except VersionConflict:
                self._cancel(armed)
                current = None
                continue
            except WriteOutcomeUnknown:
                # It may have landed, pointing at what we armed: an orphan tick is a no-op by
                # its seq, a cancelled one the stored state references would stop warming.
                raise
            except Exception:
                self._cancel(armed)  # the write certainly did not land
                raise
            for effect in effects:
                if isinstance(effect, CancelTimer):
                    self.ports.timer.cancel(effect.ref)
            return Outcome(saved, effects, changed=True, change=change)
        raise Refused("conflict", "the conversation is changing too fast; try again")

    def _save(
        self,
        current: Conversation,
        updated: Conversation,
        change: Change,
        tally: Tally | None,
        now: int,
    ) -> Conversation:
        """A warm's cost counts against the owner's day in the write that records the warm:
        exactly once, and no call of its own; its history entry is written in it too."""
        limits = self.ports.limits
        taking, opening = turns.warming_slot(current, updated), turns.open_place(current, updated)
        slot = None if taking is None else SlotChange(taking, limits.warming_conversations)
        place = None if opening is None else PlaceChange(opening, limits.conversations)
        spend = None
        if tally is not None and tally.spent_usd > 0:
            spend = _warm_spend(change.event, now, tally.spent_usd)
        entry = history.entry_of(current, updated, change.event, change.turn, tally, now)
        if entry is not None:
            updated = replace(updated, history_count=entry.seq)
        store = self.ports.store
        try:
            return store.save_conversation(updated, change.turn, slot, tally, spend, place, entry)
        except ConversationCapReached as error:
            raise turns.too_many_open(self.ports.limits.conversations) from error
        except CapReached as error:
            cap = self.ports.limits.warming_conversations
            raise Refused(
                "limit_reached", f"at most {cap} conversations can warm at the same time"
            ) from error

    def _cancel(self, armed: list[str]) -> None:
        for ref in armed:
            self.ports.timer.cancel(ref)

    def _arm(
        self, conversation: Conversation, effects: list[Effect], now: int
    ) -> tuple[Conversation, list[str]]:
        armed: list[str] = []
        for effect in effects:
            if isinstance(effect, ArmTimer):
                ref = self.ports.timer.arm(conversation.id, effect.seq, effect.target, now)
                if ref is not None:
                    armed.append(ref)
                warming = replace(conversation.warming, timer_ref=ref)
                conversation = replace(conversation, warming=warming)
        return conversation, armed

    def _carry_out(self, outcome: Outcome, scope: Scope) -> Outcome:
        try:
            if outcome.pushes_update:
                event = outcome.change.event if outcome.change is not None else None
                self.fanout.update(
                    outcome.conversation,
                    surface.cause_of(event, outcome.conversation.warming),
                    exclude=scope.exclude,
                    connection_ids=scope.listeners,
                )
            if outcome.change is not None and outcome.change.announce is not None:
                self.fanout.announce(outcome.change.announce)
        except Exception:
            # The change is saved: a push that cannot be made (the subscriber list unreadable)
            # must not turn it into an error for the caller.
            log.exception("pushes after a saved change failed")
        for effect in outcome.effects:
            if isinstance(effect, Warm):
                return replace(outcome, warm=self._warm(outcome.conversation, effect, scope))
        return outcome

    def _warm(self, conversation: Conversation, effect: Warm, scope: Scope) -> WarmResult:
        turns = scope.turns
        if turns is None:
            turns = self.ports.store.get_turns(conversation.id)
        now = self.ports.clock.now_ms()
        terms = scope.terms or self.costs.terms(conversation, now)
        started_at, usage, error = self._send_warm(conversation, turns)
        cost = self.costs.usd(conversation, usage, started_at) if usage is not None else 0.0
        done = WarmFinished(effect.seq, started_at, terms, usage, cost, error)
        finished = self._finish_warm(conversation, done, replace(scope, turns=turns))
        return WarmResult(started_at, usage, cost, error, finished)

    def _send_warm(
        self, conversation: Conversation, turns: list[Turn]
    ) -> tuple[int, Usage | None, str | None]:
        """The request, unless the cache would expire before it arrives: the claim's write may
        have taken seconds of botocore's retries since the tick checked (domain/timing.py)."""
        prompt = warm_prompt(conversation, turns)
        started_at = self.ports.clock.now_ms()
        if prompt is None:
            return started_at, None, "nothing_to_warm"
        state = conversation.warming
        if not state.rebuild and too_late(state, started_at):
            return started_at, None, LATE
        try:
            return started_at, self.ports.model().warm(prompt), None
        except ModelError as failure:
            return started_at, None, failure.code

    def _finish_warm(self, conversation: Conversation, done: WarmFinished, scope: Scope) -> Outcome:
        """Record the warm and book its successor. A failure that certainly did not write (a
        throttled write, a failed send of the next tick) is tried again at once from a fresh
        read: the invocation is the only one that knows the warm was sent."""
        current: Conversation | None = conversation
        for attempt in range(FINISH_ATTEMPTS):
            try:
                return self.transition(conversation.id, done, current=current, scope=scope)
            except Exception as failure:
                if isinstance(failure, WriteOutcomeUnknown) or attempt + 1 == FINISH_ATTEMPTS:
                    raise WarmUnfinished(
                        done.seq, done.started_at, done.usage, done.cost_usd
                    ) from failure
                log.warning("recording warm %s failed; trying again", done.seq, exc_info=True)
                self.ports.clock.sleep(FINISH_RETRY_S * (attempt + 1))
                current = None
        raise AssertionError("unreachable")
