"""WebSocket connections and frames: connect, disconnect, the per-connection frame limit, and
one handler per frame type. Every client frame gets exactly one reply, errors included.

A connection's authority ends when its token's does (`authorized_until`, kept as the
connection's `expires_at`): API Gateway checks a token at `$connect` only ("Because the WebSocket
connection is a stateful connection, you can configure authorization on the `$connect` route
only", API Gateway developer guide, "Manage connected users and client apps: $connect and
$disconnect routes", read 2026-12-07), so the backend ends it. The next frame after that gets an
`unauthorized` error frame and the socket is closed (the management API's DeleteConnection);
subscriptions carry the same expiry, so pushes stop at that second too."""

from __future__ import annotations

import logging
from typing import Any, assert_never

from chalicelib.domain.errors import Refused
from chalicelib.domain.frame_window import SeenFrames
from chalicelib.domain.warming import Event, Revive, SetInterval, Toggle
from chalicelib.ports import Connection
from chalicelib.services.turns import Turns
from chalicelib.services.unit_of_work import Scope, UnitOfWork
from chalicelib.wire import frames, replies, surface
from chalicelib.wire.errors import refusal_of
from chalicelib.wire.frames import Frame, FrameRefused

log = logging.getLogger("cache_warming")

# API Gateway closes a WebSocket after 2 hours: connection and subscription items live as long.
CONNECTION_LIFETIME_S = 2 * 60 * 60


class Frames:
    def __init__(self, uow: UnitOfWork, turns: Turns) -> None:
        self.uow = uow
        self.ports = uow.ports
        self.turns = turns
        self.seen = SeenFrames()

    def connect(
        self, connection_id: str, owner: str, authorized_until: int | None = None
    ) -> None:
        """`authorized_until`: the last epoch second the connection's token is honoured."""
        now = self.ports.clock.now_ms()
        expires_at = now // 1000 + CONNECTION_LIFETIME_S
        if authorized_until is not None:
            expires_at = min(expires_at, authorized_until)
        self.ports.store.put_connection(Connection(connection_id, owner, now, expires_at))

    def disconnect(self, connection_id: str) -> None:
        # Forget the socket only: warming and turns carry on without a browser.
        self.ports.store.delete_connection(connection_id)

    def handle(self, connection_id: str, raw: str | bytes, arrived_ms: int | None = None) -> None:
        """Parse and run one client frame; every outcome, errors included, is one reply frame.
        `arrived_ms`: when API Gateway received it (the frame limit counts by arrival)."""
        parsed = _parse(raw)
        request_id, conversation_id = _ids_of(parsed)
        ended = False
        try:
            connection = self._admit(connection_id, arrived_ms)
            if isinstance(parsed, Exception):
                raise parsed
            reply = self.dispatch(connection, parsed)
        except Exception as failure:  # every frame gets exactly one reply
            ended = isinstance(failure, AuthorityEnded)
            if not isinstance(failure, Refused):
                log.exception("frame failed")
            reply = replies.error_frame(refusal_of(failure), request_id, conversation_id)
        self.uow.fanout.reply(connection_id, reply)
        if ended:
            # After the reply, so the client reads why before the socket goes.
            self.ports.sockets.close(connection_id)

    def _admit(self, connection_id: str, arrived_ms: int | None) -> Connection:
        # Frames of one connection are processed concurrently (one Lambda invocation each), so
        # the second they arrived in, not the one they are processed in, is what they count in.
        now_s = (arrived_ms or self.ports.clock.now_ms()) // 1000
        limit = self.ports.limits.frames_per_second
        if self.seen.over_limit(connection_id, now_s, limit):
            raise too_many_frames()  # a flood costs no read and no write per frame
        connection = self.ports.store.get_connection(connection_id)
        if connection is None:
            raise AuthorityEnded("this connection is not authenticated")
        # The item outlives its expiry until DynamoDB's TTL sweep: the expiry itself decides.
        if connection.expires_at <= now_s:
            raise AuthorityEnded("this connection's token has expired; reconnect with a new one")
        if not self.ports.store.consume(f"frames#{connection_id}", now_s, limit, now_s + 60):
            raise too_many_frames()
        return connection

    def dispatch(self, connection: Connection, frame: Frame) -> dict[str, Any]:
        """The one handler of each frame type; returns the reply to the caller."""
        cid, owner, rid = connection.connection_id, connection.owner, frame.request_id
        match frame:
            case frames.Ping():
                return replies.pong_frame(rid)
            case frames.Subscribe(conversation_id=conversation_id):
                self.uow.read_owned(conversation_id, owner)
                # Subscribed before the state is read: a change after the read is pushed to this
                # socket, one before it is in the reply; none falls between.
                self.ports.store.subscribe(cid, conversation_id, "surface", connection.expires_at)
                # Opening the panel re-arms a tick that was lost (dead-lettered, dropped): no
                # write unless one was (warming/policy.py, `Revive`).
                outcome = self.uow.transition(
                    conversation_id, Revive(), owner=owner, scope=Scope(exclude=cid)
                )
                return replies.surface_frame(conversation_id, outcome.conversation.warming, rid)
            case frames.Unsubscribe(conversation_id=conversation_id):
                self.uow.read_owned(conversation_id, owner)
                self.ports.store.unsubscribe(cid, conversation_id, "surface")
                return replies.ack_frame("unsubscribe", conversation_id, rid)
            case frames.InvokeToggle(conversation_id=conversation_id, enabled=enabled):
                # The warming cap is held by the write itself (unit_of_work: a warming slot).
                return self._invoke(cid, owner, conversation_id, Toggle(enabled), rid)
            case frames.InvokeSetInterval(conversation_id=conversation_id, seconds=seconds):
                return self._invoke(cid, owner, conversation_id, SetInterval(seconds), rid)
            case frames.ChatSubscribe(conversation_id=conversation_id):
                self.uow.read_owned(conversation_id, owner)
                self.ports.store.subscribe(cid, conversation_id, "chat", connection.expires_at)
                return replies.ack_frame("chat.subscribe", conversation_id, rid)
            case frames.ChatUnsubscribe(conversation_id=conversation_id):
                self.uow.read_owned(conversation_id, owner)
                self.ports.store.unsubscribe(cid, conversation_id, "chat")
                return replies.ack_frame("chat.unsubscribe", conversation_id, rid)
            case frames.CloseConversation(conversation_id=conversation_id):
                self.turns.close(owner, conversation_id)
                return replies.ack_frame("close", conversation_id, rid)
            case _:
                assert_never(frame)

    def _invoke(
        self,
        connection_id: str,
        owner: str,
        conversation_id: str,
        event: Event,
        request_id: str | None,
    ) -> dict[str, Any]:
        outcome = self.uow.transition(
            conversation_id, event, owner=owner, scope=Scope(exclude=connection_id)
        )
        # The caller always hears back (with its requestId), even when nothing changed.
        state = outcome.conversation.warming
        cause = surface.cause_of(event, state)
        return replies.update_frame(outcome.conversation.id, state, cause, request_id)


def too_many_frames() -> Refused:
    return Refused("rate_limited", "too many frames; slow down")


class AuthorityEnded(Refused):
    """The connection holds no authority (its token expired, or it was never recorded): the
    `unauthorized` reply is its last frame; the socket is closed after it."""

    def __init__(self, message: str) -> None:
        super().__init__("unauthorized", message)


def _parse(raw: str | bytes) -> Frame | Exception:
    # Parsed before the connection is admitted, so even a refusal echoes the frame's ids.
    try:
        return frames.parse_frame(raw)
    except Exception as failure:  # noqa: BLE001 - answered after admission, by `handle`
        return failure


def _ids_of(parsed: Frame | Exception) -> tuple[str | None, str | None]:
    if isinstance(parsed, FrameRefused):
        return parsed.request_id, parsed.conversation_id
    if isinstance(parsed, Exception):
        return None, None
    return parsed.request_id, getattr(parsed, "conversation_id", None)
