"""Turns: start one, cancel it, close the conversation, generate the reply, finish the turn."""

from __future__ import annotations

import logging
from dataclasses import replace

from chalicelib.domain import budget, turns
from chalicelib.domain.context import context_limit
from chalicelib.domain.conversation import Conversation, Turn, fit_reply, turn_id, turn_index
from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage
from chalicelib.domain.prompts import Prompt, turn_prompt
from chalicelib.domain.turns import Change, Reported
from chalicelib.domain.warming import TurnClaimed
from chalicelib.ports import ModelError
from chalicelib.services.fanout import ChatStream
from chalicelib.services.unit_of_work import UnitOfWork
from chalicelib.wire import commands

log = logging.getLogger("cache_warming")

ABORT_POLL_INTERVAL_MS = 200
# The generate function's timeout (infra/template.yaml); the deadline when the caller gives none.
GENERATE_TIMEOUT_MS = 900_000
# The stream stops this long before the deadline, to seal and push what it has in time.
SEAL_MARGIN_MS = 30_000


class Turns:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.ports = uow.ports

    def start(self, owner: str, conversation_id: str, command: commands.StartTurn) -> Turn:
        existing = self.uow.read_owned(conversation_id, owner)
        now = self.ports.clock.now_ms()
        abandoned = turns.abandoned_turn(existing, now)
        if abandoned is not None:
            self.finish(
                conversation_id, turn_index(abandoned), Reported("failed", "", None, "timeout")
            )
        # Spent plus reserved by turns still streaming; the turn reserves its own worst case
        # when its reply starts (`_reply`).
        committed = self.ports.store.committed(owner, budget.spend_day(now))
        budget.check_budget(committed, self.ports.limits.daily_budget_usd)
        minute = now // 60_000
        limit = self.ports.limits.turns_per_minute
        if not self.ports.store.consume(f"turns#{owner}", minute, limit, minute * 60 + 120):
            raise Refused("rate_limited", "too many turns this minute; wait a moment")
        outcome = self.uow.transition(
            conversation_id,
            lambda conversation, _now: turns.begin_turn(
                conversation, command.text, now, context_limit(conversation)
            ),
            owner=owner,
        )
        assert outcome.change is not None and outcome.change.turn is not None
        turn = outcome.change.turn
        try:
            self.ports.invoker().generate(conversation_id, turn.index)
        except Exception as error:
            log.exception("generate invoke failed")
            self.finish(conversation_id, turn.index, Reported("failed", "", None, "upstream_error"))
            raise Refused("upstream_error", "could not start the reply; try again") from error
        return turn

    def cancel(self, owner: str, conversation_id: str) -> bool:
        """Abort the in-flight turn only. True when there was one to abort."""
        outcome = self.uow.transition(
            conversation_id,
            lambda conversation, _now: turns.request_abort(conversation, "cancelled"),
            owner=owner,
        )
        return outcome.conversation.generating

    def close(self, owner: str, conversation_id: str) -> Conversation:
        """Warming off and any in-flight turn aborted; closing a closed conversation changes nothing."""
        outcome = self.uow.transition(
            conversation_id, lambda conversation, _now: turns.close(conversation), owner=owner
        )
        return outcome.conversation

    def generate(self, conversation_id: str, index: int, deadline_ms: int | None = None) -> str:
        """Stream one reply to the chat subscribers; returns the turn's final status.

        The invocation claims the turn until `deadline_ms` (when Lambda would kill it). From the
        claim on, every outcome ends the turn: sealed, aborted, or failed with what was streamed.
        """
        now = self.ports.clock.now_ms()
        deadline = deadline_ms if deadline_ms is not None else now + GENERATE_TIMEOUT_MS
        owner = self.ports.new_id()
        history = self.ports.store.get_turns(conversation_id)
        current = next((turn for turn in history if turn.index == index), None)
        if current is None:
            return "stale"
        tid = turn_id(index)

        def claim(conversation: Conversation, now: int) -> Change | None:
            change = turns.claim_stream(conversation, tid, owner, deadline, now)
            if change is None or conversation.abort_reason:
                return change  # an aborted turn never starts: no turn-started
            return self._choosing_cache(replace(change, announce=turns.announce_start(current)))

        try:
            claimed = self.uow.transition(conversation_id, claim)
        except Refused:
            return "stale"
        if not claimed.changed:
            return "stale"
        stream = self.uow.fanout.chat_stream(
            conversation_id, tid, lambda text: self._checkpoint(current, text)
        )
        try:
            reported = self._reply(claimed.conversation, history, current, stream, deadline)
        except Exception:
            log.exception("generate failed after its claim")
            reported = Reported("failed", stream.text, None, "internal_error", bool(stream.text))
        return self.finish(conversation_id, index, reported, owner=owner)

    def _choosing_cache(self, claim: Change) -> Change:
        """With the auto cache, the claim lets the policy pick the cache this turn's request
        marks: prices are looked up here, in the generate function, never on the HTTP path
        that started the turn."""
        conversation = claim.conversation
        if not conversation.warming.auto:
            return claim
        terms = self.uow.costs.terms(conversation, self.ports.clock.now_ms())
        return replace(claim, event=TurnClaimed(terms))

    def _checkpoint(self, turn: Turn, text: str) -> None:
        fitted, _ = fit_reply(turn.user_text, text)
        try:
            self.ports.store.save_partial_reply(turn.conversation_id, turn.index, fitted)
        except Exception:
            log.exception("checkpointing the reply so far failed; the stream goes on")

    def _reply(
        self,
        conversation: Conversation,
        history: list[Turn],
        current: Turn,
        stream: ChatStream,
        deadline: int,
    ) -> Reported:
        if conversation.abort_reason:
            # Cancelled or closed before generation started: never call the model.
            return Reported("aborted", "")
        earlier = [turn for turn in history if turn.index < current.index]
        prompt = turn_prompt(conversation, earlier, current.user_text)
        reserved = self._worst_case_micro(conversation, prompt, current)
        if not self.uow.reserve(conversation.owner, reserved):
            # Turns still streaming have reserved the rest of the day's budget (the HTTP check
            # saw it free): this one never reaches the model.
            return Reported("failed", "", None, "budget_exhausted")
        reported = self._stream(conversation, prompt, stream, deadline)
        return replace(reported, reserved_micro=reserved)

    def _worst_case_micro(self, conversation: Conversation, prompt: Prompt, current: Turn) -> int:
        """The most this turn can cost: every prompt token at the dearest input price (a 1-hour
        cache write) and `maxTokens` of output (budget.worst_case_prompt_tokens)."""
        tokens = budget.worst_case_prompt_tokens(
            prompt.size_bytes(), conversation.warming.prefix_tokens, current.user_text
        )
        worst = Usage(
            cache_creation_input_tokens=tokens,
            cache_creation_1h_input_tokens=tokens,
            output_tokens=conversation.max_tokens,
        )
        return budget.micro_usd(self.uow.costs.usd(conversation, worst, current.started_at))

    def _stream(
        self, conversation: Conversation, prompt: Prompt, stream: ChatStream, deadline: int
    ) -> Reported:
        poller = AbortPoller(self.uow, conversation.id, stop_at=deadline - SEAL_MARGIN_MS)
        try:
            result = self.ports.model().stream(prompt, stream.add_text, poller.should_abort)
        except ModelError as error:
            stream.flush()
            reached = bool(stream.text) or error.usage is not None
            return Reported("failed", stream.text, error.usage, error.code, reached_model=reached)
        stream.flush()
        if poller.out_of_time:
            # Stopped to end before the invocation's deadline: what arrived is the reply.
            return Reported("sealed", result.text, result.usage, reached_model=True, truncated=True)
        if result.aborted:
            return Reported("aborted", result.text, result.usage, reached_model=True)
        return Reported("sealed", result.text, result.usage, reached_model=True)

    def finish(
        self, conversation_id: str, index: int, reported: Reported, owner: str | None = None
    ) -> str:
        """End the turn against a fresh read (an abort asked for meanwhile wins); "stale" when it
        is no longer the active turn or another live invocation holds it."""
        started = next(t for t in self.ports.store.get_turns(conversation_id) if t.index == index)

        def end(conversation: Conversation, now: int) -> Change | None:
            # Prices are looked up only for a request that reached the model: the HTTP handlers
            # that fail a turn never load the price library. Every billed turn is priced,
            # aborted and failed ones too, so none escapes the daily budget.
            priced, terms = reported, None
            if reported.usage is not None:
                cost = self.uow.costs.usd(conversation, reported.usage, started.started_at)
                priced = replace(reported, cost_usd=cost)
            if reported.status == "sealed":
                terms = self.uow.costs.terms(conversation, now)
            return turns.end_turn(conversation, started, priced, now, terms, owner)

        outcome = self.uow.transition(conversation_id, end)
        if outcome.change is None or outcome.change.turn is None:
            if reported.reserved_micro:  # another invocation ended it: free what this one held
                owner_id = outcome.conversation.owner
                self.uow.settle_spend(owner_id, started.started_at, reported.reserved_micro, 0)
            return "stale"
        notice = outcome.change.announce
        cost = notice.cost_usd if isinstance(notice, turns.TurnEndedNotice) else None
        if cost or reported.reserved_micro:
            owner_id = outcome.conversation.owner
            self.uow.settle_spend(owner_id, started.started_at, reported.reserved_micro, cost or 0)
        return outcome.change.turn.status


class AbortPoller:
    """Answers `should_abort`: at `stop_at`, or when the store says the user asked to stop (read
    at most every ABORT_POLL_INTERVAL_MS)."""

    def __init__(self, uow: UnitOfWork, conversation_id: str, stop_at: int) -> None:
        self.ports = uow.ports
        self.conversation_id = conversation_id
        self.stop_at = stop_at
        self.out_of_time = False
        self._checked_at = -ABORT_POLL_INTERVAL_MS
        self._abort = False

    def should_abort(self) -> bool:
        now = self.ports.clock.now_ms()
        if not self._abort and now >= self.stop_at:
            self._abort = self.out_of_time = True
        if not self._abort and now - self._checked_at >= ABORT_POLL_INTERVAL_MS:
            self._checked_at = now
            conversation = self.ports.store.get_conversation(self.conversation_id)
            self._abort = conversation is None or bool(conversation.abort_reason)
        return self._abort
