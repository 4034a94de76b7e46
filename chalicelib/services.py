"""Use cases. Each loads state, asks the pure domain what to do, and applies the effects in order:
arm the next timer -> conditional state write -> cancel replaced timers -> pushes.

A version conflict means someone else changed the conversation between our read and our write:
the timer we armed is cancelled (it would be an orphan) and we decide again from a fresh read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain import catalog, protocol, surface
from chalicelib.domain.conversation import (
    MAX_SYSTEM_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    Conversation,
    Turn,
    TurnStatus,
    is_blank,
    turn_id,
    turn_prompt,
    warm_prompt,
)
from chalicelib.domain.pricing import TTL_SECONDS, Usage, idle_warm_budget
from chalicelib.domain.protocol import ProtocolError
from chalicelib.domain.warming import (
    ArmTimer,
    CancelTimer,
    Close,
    Effect,
    Event,
    InvalidInterval,
    ModelTerms,
    PushUpdate,
    SetInterval,
    TickDue,
    Toggle,
    TurnEnded,
    TurnSealed,
    TurnStarted,
    Warm,
    WarmFinished,
    WarmingState,
    decide,
)
from chalicelib.ports import (
    Channel,
    Clock,
    Connection,
    Invoker,
    Model,
    ModelError,
    PriceBook,
    Snapshot,
    Sockets,
    Store,
    Timer,
    VersionConflict,
)

log = logging.getLogger("cache_warming")

MAX_ATTEMPTS = 8
# API Gateway closes a WebSocket after 2 hours: connection and subscription items live as long.
CONNECTION_LIFETIME_S = 2 * 60 * 60
DELTA_PUSH_INTERVAL_MS = 100
SUBSCRIBER_REFRESH_MS = 2_000
ABORT_POLL_INTERVAL_MS = 200
# Past the generate function's 15-minute timeout, a turn still `generating` has lost its Lambda.
ABANDONED_TURN_MS = 16 * 60 * 1000
# A tick whose seq is ahead of the stored state waits this long for the write that booked it.
TICK_CATCH_UP_MS = 3_000
TICK_CATCH_UP_POLL_S = 0.05
# The timer may deliver a tick early (Scheduler fires in a 60 s window ending at the target).
MAX_WAIT_BEFORE_TARGET_S = 180.0


@dataclass(frozen=True)
class Outcome:
    conversation: Conversation
    effects: list[Effect]
    changed: bool

    @property
    def pushes_update(self) -> bool:
        return any(isinstance(effect, PushUpdate) for effect in self.effects)


@dataclass(frozen=True)
class Limits:
    """Per-user caps, so one user cannot run up another's bill or the account's quotas."""

    frames_per_second: int = 20  # per connection
    turns_per_minute: int = 10  # per user
    warming_conversations: int = 10  # per user, enabled at the same time


@dataclass
class Ports:
    store: Store
    timer: Timer
    sockets: Sockets
    clock: Clock
    model: Callable[[], Model]
    invoker: Callable[[], Invoker]
    # Built on first use: the price library is loaded by the warm and generate functions only.
    prices: Callable[[], PriceBook]
    new_id: Callable[[], str]
    default_model: str = "claude-sonnet-5-5"
    default_system: str = "You are a helpful assistant."
    default_max_tokens: int = 8192
    limits: Limits = field(default_factory=Limits)


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


ConversationChange = Callable[[Conversation], Conversation]


class Services:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.store = ports.store
        self.timer = ports.timer
        self.sockets = ports.sockets
        self.clock = ports.clock

    # --- the transition loop --------------------------------------------------------------

    def transition(
        self,
        conversation_id: str,
        event: Event | Callable[[Conversation], Event] | None,
        *,
        owner: str | None = None,
        change: ConversationChange | None = None,
        turn: Callable[[Conversation], Turn | None] | None = None,
        current: Conversation | None = None,
    ) -> Outcome:
        """Decide `event` against a fresh read and apply it; bounded retries on conflicts.

        `event` may be a function of the fresh read (e.g. of its abort flag); `change` applies
        conversation-level edits (turn bookkeeping, abort flag) in the same write; `turn` returns a
        turn item to write in the same transaction. `current`, when the caller just read it, saves
        the first read; a conflict always re-reads.
        """
        for _ in range(MAX_ATTEMPTS):
            if current is None:
                current = self.get_owned(conversation_id, owner)
            now = self.clock.now_ms()
            chosen = event(current) if callable(event) else event
            updated = change(current) if change else current
            state, effects = (
                decide(updated.warming, chosen, now)
                if chosen is not None
                else (updated.warming, [])
            )
            updated = replace(updated, warming=state)
            turn_item = turn(updated) if turn else None
            if updated == current and turn_item is None:
                return Outcome(current, [], changed=False)
            armed: list[str] = []
            for effect in effects:
                if isinstance(effect, ArmTimer):
                    ref = self.timer.arm(conversation_id, effect.seq, effect.target, now)
                    if ref is not None:
                        armed.append(ref)
                    updated = replace(updated, warming=replace(updated.warming, timer_ref=ref))
            try:
                saved = self.store.save_conversation(updated, turn_item)
            except VersionConflict:
                for ref in armed:
                    self.timer.cancel(ref)
                current = None
                continue
            for effect in effects:
                if isinstance(effect, CancelTimer):
                    self.timer.cancel(effect.ref)
            return Outcome(saved, effects, changed=True)
        raise ProtocolError("conflict", "the conversation is changing too fast; try again")

    def terms(self, conversation: Conversation, now: int) -> ModelTerms:
        """The conversation's model as the warming policy needs it, at today's prices."""
        facts = catalog.lookup(conversation.model)
        if facts is None:
            raise ProtocolError("internal_error", f"model {conversation.model!r} left the catalog")
        rates = self.ports.prices().cache_rates(
            conversation.model, now, conversation.warming.prefix_tokens or 0
        )
        return ModelTerms(
            idle_budget=idle_warm_budget(rates, conversation.warming.retention),
            min_cacheable_tokens=facts.min_cacheable_tokens,
        )

    def cost_usd(self, conversation: Conversation, usage: Usage, at: int) -> float:
        return round(self.ports.prices().cost_usd(conversation.model, usage, at), 8)

    def get_owned(self, conversation_id: str, owner: str | None) -> Conversation:
        conversation = self.store.get_conversation(conversation_id)
        # Another owner's conversation is indistinguishable from a missing one.
        if conversation is None or (owner is not None and conversation.owner != owner):
            raise ProtocolError("not_found", "no such conversation")
        return conversation

    # --- pushes ---------------------------------------------------------------------------

    def fan_out(
        self,
        conversation_id: str,
        channel: Channel,
        frame: dict[str, Any],
        *,
        exclude: str | None = None,
        connection_ids: list[str] | None = None,
    ) -> list[str]:
        """Post to every subscriber; a gone connection is forgotten and never stops the others."""
        if connection_ids is None:
            connection_ids = self.store.subscribers(
                conversation_id, channel, self.clock.now_ms() // 1000
            )
        delivered = []
        for connection_id in connection_ids:
            if connection_id == exclude:
                continue
            if self.sockets.post(connection_id, frame):
                delivered.append(connection_id)
            else:
                self.store.delete_connection(connection_id)
        return delivered

    def push_update(
        self,
        conversation: Conversation,
        *,
        exclude: str | None = None,
        connection_ids: list[str] | None = None,
    ) -> None:
        frame = surface.update_frame(conversation.id, conversation.warming)
        self.fan_out(
            conversation.id, "surface", frame, exclude=exclude, connection_ids=connection_ids
        )

    def reply(self, connection_id: str, frame: dict[str, Any]) -> None:
        if not self.sockets.post(connection_id, frame):
            self.store.delete_connection(connection_id)

    # --- connections and frames -----------------------------------------------------------

    def connect(self, connection_id: str, owner: str) -> None:
        now = self.clock.now_ms()
        self.store.put_connection(
            Connection(connection_id, owner, now, now // 1000 + CONNECTION_LIFETIME_S)
        )

    def disconnect(self, connection_id: str) -> None:
        # Forget the socket only: warming and turns carry on without a browser.
        self.store.delete_connection(connection_id)

    def handle_frame(self, connection_id: str, raw: str) -> None:
        """Parse and run one client frame; every outcome, errors included, is one reply frame."""
        request_id: str | None = None
        conversation_id: str | None = None
        try:
            frame = protocol.parse_frame(raw)
            request_id = frame.request_id
            conversation_id = getattr(frame, "conversation_id", None)
            connection = self.store.get_connection(connection_id)
            if connection is None:
                raise ProtocolError(
                    "unauthorized", "this connection is not authenticated", request_id
                )
            now_s = self.clock.now_ms() // 1000
            if not self.store.consume(
                f"frames#{connection_id}", now_s, self.ports.limits.frames_per_second, now_s + 60
            ):
                raise ProtocolError("rate_limited", "too many frames; slow down", request_id)
            self._dispatch(connection, frame)
        except Exception as failure:  # every frame gets exactly one reply
            if isinstance(failure, ProtocolError):
                error = failure
            else:
                log.exception("frame failed")
                error = protocol.unexpected(failure)
            request_id = error.request_id or request_id
            if conversation_id is not None:
                reply = protocol.conversation_error_frame(
                    conversation_id, error.code, error.message, request_id
                )
            else:
                reply = protocol.error_frame(error.code, error.message, request_id)
            self.reply(connection_id, reply)

    def _dispatch(self, connection: Connection, frame: protocol.Frame) -> None:
        cid = connection.connection_id
        owner = connection.owner
        request_id = frame.request_id
        try:
            match frame:
                case protocol.Ping():
                    self.reply(cid, protocol.pong_frame(request_id))
                case protocol.Subscribe(conversation_id=conversation_id):
                    conversation = self.get_owned(conversation_id, owner)
                    self.store.subscribe(cid, conversation_id, "surface", connection.expires_at)
                    self.reply(
                        cid,
                        surface.surface_frame(conversation_id, conversation.warming, request_id),
                    )
                case protocol.Unsubscribe(conversation_id=conversation_id):
                    self.get_owned(conversation_id, owner)
                    self.store.unsubscribe(cid, conversation_id, "surface")
                    self.reply(cid, protocol.ack_frame("unsubscribe", conversation_id, request_id))
                case protocol.InvokeToggle(conversation_id=conversation_id, enabled=enabled):
                    self._check_warming_cap(owner, conversation_id, enabled)
                    self._invoke(cid, owner, conversation_id, Toggle(enabled), request_id)
                case protocol.InvokeSetInterval(conversation_id=conversation_id, seconds=seconds):
                    self._invoke(cid, owner, conversation_id, SetInterval(seconds), request_id)
                case protocol.ChatSubscribe(conversation_id=conversation_id):
                    self.get_owned(conversation_id, owner)
                    self.store.subscribe(cid, conversation_id, "chat", connection.expires_at)
                    self.reply(
                        cid, protocol.ack_frame("chat.subscribe", conversation_id, request_id)
                    )
                case protocol.ChatUnsubscribe(conversation_id=conversation_id):
                    self.get_owned(conversation_id, owner)
                    self.store.unsubscribe(cid, conversation_id, "chat")
                    self.reply(
                        cid, protocol.ack_frame("chat.unsubscribe", conversation_id, request_id)
                    )
                case protocol.CloseConversation(conversation_id=conversation_id):
                    self.close(owner, conversation_id)
                    self.reply(cid, protocol.ack_frame("close", conversation_id, request_id))
        except ProtocolError as error:
            error.request_id = error.request_id or request_id
            raise

    def _check_warming_cap(self, owner: str, conversation_id: str, enabled: bool | None) -> None:
        conversation = self.get_owned(conversation_id, owner)
        if conversation.warming.enabled or enabled is False:
            return
        warming = [
            c
            for c in self.store.list_conversations(owner)
            if c.warming.enabled and c.id != conversation_id
        ]
        cap = self.ports.limits.warming_conversations
        if len(warming) >= cap:
            raise ProtocolError(
                "limit_reached", f"at most {cap} conversations can warm at the same time"
            )

    def _invoke(
        self,
        connection_id: str,
        owner: str,
        conversation_id: str,
        event: Event,
        request_id: str | None,
    ) -> None:
        try:
            outcome = self.transition(conversation_id, event, owner=owner)
        except InvalidInterval as error:
            raise ProtocolError("invalid_interval", str(error), request_id) from error
        conversation = outcome.conversation
        # The caller always hears back (with its requestId), even when nothing changed.
        self.reply(
            connection_id, surface.update_frame(conversation.id, conversation.warming, request_id)
        )
        if outcome.pushes_update:
            self.push_update(conversation, exclude=connection_id)

    # --- conversations (HTTP) -------------------------------------------------------------

    def create_conversation(self, owner: str, body: dict[str, Any]) -> Conversation:
        title = _optional_text(body, "title", MAX_TITLE_CHARS) or "New conversation"
        system = _optional_text(body, "system", MAX_SYSTEM_CHARS)
        if system is not None and is_blank(system):
            # The API refuses whitespace-only text blocks: every request would fail.
            raise ProtocolError("invalid_field", "'system' must contain non-whitespace text")
        model = _optional_text(body, "model", 128) or self.ports.default_model
        facts = catalog.lookup(model)
        if facts is None:
            raise ProtocolError(
                "invalid_field",
                f"'model' must be one of the catalog's models: {', '.join(catalog.known_ids())}",
            )
        limit = facts.max_output_tokens
        max_tokens = body.get("maxTokens", min(self.ports.default_max_tokens, limit))
        if (
            isinstance(max_tokens, bool)
            or not isinstance(max_tokens, int)
            or not 1 <= max_tokens <= limit
        ):
            raise ProtocolError(
                "invalid_field", f"'maxTokens' must be an integer from 1 to {limit} for {model}"
            )
        retention = body.get("cacheRetention", "5m")
        if retention not in TTL_SECONDS:
            raise ProtocolError("invalid_field", "'cacheRetention' must be '5m' or '1h'")
        conversation = Conversation(
            id=self.ports.new_id(),
            owner=owner,
            created_at=self.clock.now_ms(),
            title=title,
            model=model,
            system=system or self.ports.default_system,
            max_tokens=max_tokens,
            retention=retention,
            warming=WarmingState(retention=retention),
        )
        self.store.create_conversation(conversation)
        return conversation

    def get_conversation(self, owner: str, conversation_id: str) -> tuple[Conversation, list[Turn]]:
        conversation = self.get_owned(protocol.conversation_id_of(conversation_id), owner)
        return conversation, self.store.get_turns(conversation.id)

    def list_conversations(self, owner: str) -> list[Conversation]:
        return self.store.list_conversations(owner)

    # --- turns, cancel, close -------------------------------------------------------------

    def start_turn(self, owner: str, conversation_id: str, body: dict[str, Any]) -> Turn:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("invalid_text", "'text' must be a non-empty string")
        if len(text) > MAX_TEXT_CHARS:
            raise ProtocolError("invalid_text", f"'text' is limited to {MAX_TEXT_CHARS} characters")
        conversation_id = protocol.conversation_id_of(conversation_id)
        existing = self.get_owned(conversation_id, owner)
        started_at = self.clock.now_ms()
        self._fail_abandoned_turn(existing, started_at)
        minute = started_at // 60_000
        if not self.store.consume(
            f"turns#{owner}", minute, self.ports.limits.turns_per_minute, minute * 60 + 120
        ):
            raise ProtocolError("rate_limited", "too many turns this minute; wait a moment")
        turn = Turn(conversation_id, 0, text, started_at)

        def begin(conversation: Conversation) -> Conversation:
            if conversation.generating:
                raise ProtocolError("turn_in_progress", "a reply is still being generated")
            return replace(
                conversation,
                turn_count=conversation.turn_count + 1,
                active_turn_id=turn_id(conversation.turn_count),
                abort_reason=None,
            )

        def new_turn(conversation: Conversation) -> Turn:
            return replace(turn, index=conversation.turn_count - 1)

        outcome = self.transition(
            conversation_id, TurnStarted(started_at), owner=owner, change=begin, turn=new_turn
        )
        turn = new_turn(outcome.conversation)
        if outcome.pushes_update:
            self.push_update(outcome.conversation)
        try:
            self.ports.invoker().generate(conversation_id, turn.index)
        except Exception as error:
            log.exception("generate invoke failed")
            self._finish_turn(conversation_id, turn.index, "failed", "", None, "upstream_error")
            raise ProtocolError("upstream_error", "could not start the reply; try again") from error
        return turn

    def _fail_abandoned_turn(self, conversation: Conversation, now: int) -> None:
        """A turn still `generating` long after the generate function's timeout lost its Lambda:
        fail it so the conversation is usable again."""
        started = conversation.warming.turn_started_at
        if not conversation.generating or started is None or now - started < ABANDONED_TURN_MS:
            return
        assert conversation.active_turn_id is not None
        index = int(conversation.active_turn_id[1:])
        self._finish_turn(conversation.id, index, "failed", "", None, "timeout")

    def cancel(self, owner: str, conversation_id: str) -> bool:
        """Abort the in-flight turn only. True when there was one to abort."""

        def request_abort(conversation: Conversation) -> Conversation:
            if not conversation.generating or conversation.abort_reason:
                return conversation
            return replace(conversation, abort_reason="cancelled")

        outcome = self.transition(
            protocol.conversation_id_of(conversation_id), None, owner=owner, change=request_abort
        )
        return outcome.conversation.generating

    def close(self, owner: str, conversation_id: str) -> Conversation:
        """Warming off and any in-flight turn aborted; closing a closed conversation changes nothing."""

        def request_abort(conversation: Conversation) -> Conversation:
            if not conversation.generating or conversation.abort_reason:
                return conversation
            return replace(conversation, abort_reason="closed")

        outcome = self.transition(
            protocol.conversation_id_of(conversation_id), Close(), owner=owner, change=request_abort
        )
        if outcome.pushes_update:
            self.push_update(outcome.conversation)
        return outcome.conversation

    def generate(self, conversation_id: str, turn_index: int) -> str:
        """Stream one reply to the chat subscribers; returns the turn's final status."""
        tid = turn_id(turn_index)

        def claim(conversation: Conversation) -> Conversation:
            if conversation.active_turn_id != tid or conversation.streaming:
                return conversation  # a duplicate invoke, or a turn already finished
            return replace(conversation, streaming=True)

        try:
            claimed = self.transition(conversation_id, None, change=claim)
        except ProtocolError:
            return "stale"
        if not claimed.changed:
            return "stale"
        conversation = claimed.conversation
        turns = self.store.get_turns(conversation_id)
        history = [turn for turn in turns if turn.index < turn_index]
        current = next(turn for turn in turns if turn.index == turn_index)
        prompt = turn_prompt(conversation, history, current.user_text)
        pusher = _ChatPusher(self, conversation_id, tid)
        pusher.send("turn-started", userText=current.user_text)
        poller = _AbortPoller(self, conversation_id)
        reached_model = False

        def on_text(text: str) -> None:
            nonlocal reached_model
            reached_model = True
            pusher.add_text(text)

        try:
            result = self.ports.model().stream(prompt, on_text, poller.should_abort)
        except ModelError as error:
            pusher.flush()
            return self._finish_turn(
                conversation_id,
                turn_index,
                "failed",
                pusher.text,
                None,
                error.code,
                pusher=pusher,
                reached_model=reached_model,
            )
        pusher.flush()
        if not result.aborted and is_blank(result.text):
            # Sent back as history, a blank reply would make every later request a 400 ("text
            # content blocks must contain non-whitespace text"): fail the turn, keep its usage.
            return self._finish_turn(
                conversation_id,
                turn_index,
                "failed",
                result.text,
                result.usage,
                "empty_reply",
                pusher=pusher,
                reached_model=True,
            )
        status: TurnStatus = "aborted" if result.aborted else "sealed"
        return self._finish_turn(
            conversation_id,
            turn_index,
            status,
            result.text,
            result.usage,
            None,
            pusher=pusher,
            reached_model=True,
        )

    def _finish_turn(
        self,
        conversation_id: str,
        turn_index: int,
        status: TurnStatus,
        text: str,
        usage: Usage | None,
        error_code: str | None,
        *,
        pusher: _ChatPusher | None = None,
        reached_model: bool = False,
    ) -> str:
        tid = turn_id(turn_index)
        started = next(t for t in self.store.get_turns(conversation_id) if t.index == turn_index)
        ending: _Ending | None = None

        def end(conversation: Conversation) -> Conversation:
            if conversation.active_turn_id != tid:
                return conversation
            return replace(conversation, active_turn_id=None, abort_reason=None, streaming=False)

        def event_for(conversation: Conversation) -> Event:
            nonlocal ending
            ending = _Ending.of(status, conversation.abort_reason, self.clock.now_ms())
            if ending.status == "sealed":
                assert usage is not None
                terms = self.terms(conversation, ending.at)
                return TurnSealed(started.started_at, ending.at, usage, terms)
            return TurnEnded(started.started_at if reached_model else None)

        def turn_item(conversation: Conversation) -> Turn:
            assert ending is not None
            return replace(
                started,
                status=ending.status,
                assistant_text=text,
                ended_at=ending.at,
                usage=usage,
                error_code=error_code,
                abort_reason=ending.reason,
            )

        outcome = self.transition(conversation_id, event_for, change=end, turn=turn_item)
        assert ending is not None
        if pusher is None:
            pusher = _ChatPusher(self, conversation_id, tid)
        if ending.status == "sealed":
            assert usage is not None
            pusher.send(
                "turn-sealed",
                text=text,
                usage=usage.to_dict(),
                costUsd=self.cost_usd(outcome.conversation, usage, started.started_at),
            )
        elif ending.status == "aborted":
            pusher.send("turn-aborted", reason=ending.reason, text=text)
        else:
            pusher.send(
                "turn-failed", code=error_code, message=_failure_message(error_code), text=text
            )
        if outcome.pushes_update:
            self.push_update(outcome.conversation)
        return ending.status

    # --- the warm tick --------------------------------------------------------------------

    def _load_caught_up(self, conversation_id: str, seq: int) -> Snapshot | None:
        """One query reads the state, the prompt's turns and the subscribers for the push.

        The timer is armed before the state write, so a tick due at once can arrive before the
        write that books it has landed: its seq is then ahead of the stored one. Wait for the
        write (bounded); if it never lands, the tick was an orphan and stays a no-op.
        """
        deadline = self.clock.now_ms() + TICK_CATCH_UP_MS
        while True:
            snapshot = self.store.load(conversation_id, self.clock.now_ms() // 1000)
            if snapshot is None or snapshot.conversation.warming.seq >= seq:
                return snapshot
            if self.clock.now_ms() >= deadline:
                return snapshot
            self.clock.sleep(TICK_CATCH_UP_POLL_S)

    def handle_tick(self, conversation_id: str, seq: int, target: int) -> TickReport:
        """Wait for the exact target, warm, book the next tick, then push the refreshed surface."""
        wait_s = (target - self.clock.now_ms()) / 1000
        if wait_s > 0:
            self.clock.sleep(min(wait_s, MAX_WAIT_BEFORE_TARGET_S))
        report = TickReport(conversation_id, seq, target, action="noop")
        snapshot = self._load_caught_up(conversation_id, seq)
        if snapshot is None:
            return report
        listeners = snapshot.subscribers.get("surface", [])
        terms = self.terms(snapshot.conversation, self.clock.now_ms())
        try:
            claim = self.transition(
                conversation_id, TickDue(seq, target, terms), current=snapshot.conversation
            )
        except ProtocolError as refused:
            report.error = refused.code
            return report
        if not claim.changed:
            return report
        if not any(isinstance(effect, Warm) for effect in claim.effects):
            report.action = claim.conversation.warming.status
            if claim.pushes_update:
                self.push_update(claim.conversation, connection_ids=listeners)
            return report
        conversation = claim.conversation
        prompt = warm_prompt(conversation, snapshot.turns)
        started_at = self.clock.now_ms()
        report.lateness_ms = started_at - target
        usage: Usage | None = None
        failure: str | None = None
        cost = 0.0
        if prompt is None:
            failure = "nothing_to_warm"
        else:
            try:
                usage = self.ports.model().warm(prompt)
            except ModelError as error:
                failure = error.code
        if usage is not None:
            cost = self.cost_usd(conversation, usage, started_at)
        done = self.transition(
            conversation_id,
            WarmFinished(seq, started_at, terms, usage, cost, failure),
            current=conversation,
        )
        report.action = "warmed" if usage is not None else "warm-failed"
        report.usage, report.error = usage, failure
        if usage is not None:
            report.cost_usd = cost
        report.extra = {
            "status": done.conversation.warming.status,
            "nextWarmAt": done.conversation.warming.next_warm_at,
        }
        if done.pushes_update:
            self.push_update(done.conversation, connection_ids=listeners)
        return report


@dataclass(frozen=True)
class _Ending:
    """How a turn ends, decided against the fresh read that the final write is conditional on."""

    status: TurnStatus
    reason: str | None
    at: int

    @classmethod
    def of(cls, reported: TurnStatus, abort_reason: str | None, now: int) -> _Ending:
        # A cancel or close that landed before the seal wins: the user asked to stop.
        if reported == "sealed" and abort_reason:
            return cls("aborted", abort_reason, now)
        if reported == "aborted":
            return cls("aborted", abort_reason or "cancelled", now)
        return cls(reported, None, now)


class _ChatPusher:
    """Sends a turn's chat frames to the chat subscribers, batching deltas to one push per ~100 ms."""

    def __init__(self, services: Services, conversation_id: str, turn_id: str) -> None:
        self.services = services
        self.conversation_id = conversation_id
        self.turn_id = turn_id
        self.text = ""
        self._pending = ""
        self._last_push = 0
        self._subscribers: list[str] | None = None
        self._subscribers_at = 0
        self._lock = threading.Lock()

    def _targets(self) -> list[str]:
        now = self.services.clock.now_ms()
        if self._subscribers is None or now - self._subscribers_at >= SUBSCRIBER_REFRESH_MS:
            self._subscribers = self.services.store.subscribers(
                self.conversation_id, "chat", now // 1000
            )
            self._subscribers_at = now
        return self._subscribers

    def send(self, event: str, **fields: Any) -> None:
        frame = protocol.chat_frame(self.conversation_id, event, turnId=self.turn_id, **fields)
        delivered = self.services.fan_out(
            self.conversation_id, "chat", frame, connection_ids=self._targets()
        )
        self._subscribers = delivered

    def add_text(self, text: str) -> None:
        with self._lock:
            self.text += text
            self._pending += text
            now = self.services.clock.now_ms()
            if now - self._last_push >= DELTA_PUSH_INTERVAL_MS:
                self._flush_locked(now)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked(self.services.clock.now_ms())

    def _flush_locked(self, now: int) -> None:
        if self._pending:
            self.send("delta", text=self._pending)
            self._pending = ""
        self._last_push = now


class _AbortPoller:
    """Answers `should_abort` from the store at most every ABORT_POLL_INTERVAL_MS."""

    def __init__(self, services: Services, conversation_id: str) -> None:
        self.services = services
        self.conversation_id = conversation_id
        self._checked_at = -ABORT_POLL_INTERVAL_MS
        self._abort = False

    def should_abort(self) -> bool:
        now = self.services.clock.now_ms()
        if not self._abort and now - self._checked_at >= ABORT_POLL_INTERVAL_MS:
            self._checked_at = now
            conversation = self.services.store.get_conversation(self.conversation_id)
            self._abort = conversation is None or bool(conversation.abort_reason)
        return self._abort


def _optional_text(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ProtocolError(
            "invalid_field", f"'{key}' must be a string of at most {limit} characters"
        )
    return value or None


_FAILURE_MESSAGES = {
    "empty_reply": "The model returned no text (a thinking model may have spent its whole budget).",
    "model_rejected": "The model refused the request.",
    "model_unavailable": "The model is not available to this API key.",
    "rate_limited": "The model is rate limited; try again shortly.",
    "overloaded": "The model is overloaded; try again shortly.",
    "timeout": "The model did not answer in time.",
    "upstream_error": "The model failed to answer.",
}


def _failure_message(code: str | None) -> str:
    return _FAILURE_MESSAGES.get(code or "", "The model failed to answer.")
