"""Posting frames to sockets: replies, panel updates to a conversation's subscribers, and a turn's
chat stream. A gone connection is forgotten and never stops the others."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from chalicelib import metrics
from chalicelib.domain.conversation import Conversation
from chalicelib.domain.turns import Announcement, TurnEndedNotice, TurnStartedNotice
from chalicelib.ports import Channel
from chalicelib.services.ports import Ports
from chalicelib.wire import replies, surface
from chalicelib.wire.frames import MAX_PUSH_BYTES

log = logging.getLogger("cache_warming")

DELTA_PUSH_INTERVAL_MS = 100
CHECKPOINT_MS = 1_000


class FanOut:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def reply(self, connection_id: str, frame: dict[str, Any]) -> None:
        self._post(connection_id, frame)

    def subscribers(self, conversation_id: str, channel: Channel) -> list[str]:
        now_s = self.ports.clock.now_ms() // 1000
        return self.ports.store.subscribers(conversation_id, channel, now_s)

    def publish(
        self,
        conversation_id: str,
        channel: Channel,
        frame: dict[str, Any],
        *,
        exclude: str | None = None,
        connection_ids: list[str] | None = None,
    ) -> list[str]:
        """Post to every subscriber of the channel; returns those that were reached."""
        if connection_ids is None:
            connection_ids = self.subscribers(conversation_id, channel)
        delivered = []
        for connection_id in connection_ids:
            if connection_id != exclude and self._post(connection_id, frame):
                delivered.append(connection_id)
        return delivered

    def _post(self, connection_id: str, frame: dict[str, Any]) -> bool:
        """One socket never affects another: whatever befalls this post stays with it. A frame
        over API Gateway's limit is never sent (it would be refused): an error, and a metric."""
        if len(msgspec.json.encode(frame)) > MAX_PUSH_BYTES:
            log.error("a %s frame over %d bytes was not pushed", frame.get("type"), MAX_PUSH_BYTES)
            metrics.push_failed("too-large")
            return False
        try:
            delivery = self.ports.sockets.post(connection_id, frame)
        except Exception:
            log.exception("push to %s failed", connection_id)
            delivery = "failed"
        if delivery == "gone":
            self.ports.store.delete_connection(connection_id)
        elif delivery == "failed":
            metrics.push_failed("refused")
        return delivery == "delivered"

    def update(
        self,
        conversation: Conversation,
        cause: surface.Cause,
        *,
        exclude: str | None = None,
        connection_ids: list[str] | None = None,
    ) -> None:
        frame = replies.update_frame(conversation.id, conversation.warming, cause)
        self.publish(
            conversation.id, "surface", frame, exclude=exclude, connection_ids=connection_ids
        )

    def announce(self, announcement: Announcement) -> None:
        match announcement:
            case TurnStartedNotice(turn=turn):
                self.publish(turn.conversation_id, "chat", replies.started_frame(turn))
            case TurnEndedNotice(turn=turn):
                self.publish(turn.conversation_id, "chat", replies.ended_frame(announcement))

    def chat_stream(
        self,
        conversation_id: str,
        turn_id: str,
        checkpoint: Callable[[str], None] | None = None,
    ) -> ChatStream:
        return ChatStream(self, conversation_id, turn_id, checkpoint)


class ChatStream:
    """A turn's deltas to the chat subscribers, batched to one push per ~100 ms.

    Every batch reads the subscribers afresh (strongly consistent): a socket that subscribed is
    served from its ack on, one that unsubscribed is not. Each delta carries its `offset` in the
    reply (UTF-16 code units, as JavaScript counts). A socket that subscribes while the reply
    streams first gets the text so far as deltas from offset 0; the reply so far is also
    checkpointed every CHECKPOINT_MS for GET (docs/contract.md, "Joining a streaming reply").
    """

    def __init__(
        self,
        fanout: FanOut,
        conversation_id: str,
        turn_id: str,
        checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.fanout = fanout
        self.conversation_id = conversation_id
        self.turn_id = turn_id
        self.text = ""
        self._checkpoint = checkpoint
        self._pending = ""
        self._sent_units = 0
        # Sockets that have had every delta so far (a newcomer first catches up).
        self._served: set[str] = set()
        self._last_push = 0
        self._last_checkpoint = 0
        self._lock = threading.Lock()

    def add_text(self, text: str) -> None:
        with self._lock:
            self.text += text
            self._pending += text
            now = self.fanout.ports.clock.now_ms()
            if now - self._last_push >= DELTA_PUSH_INTERVAL_MS:
                self._flush_locked(now)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked(self.fanout.ports.clock.now_ms())

    def _flush_locked(self, now: int) -> None:
        if self._pending:
            if self._checkpoint is not None and now - self._last_checkpoint >= CHECKPOINT_MS:
                # Before the push, and with this batch: GET shows the reply from its first
                # batch on (never an empty reply a second in), and a subscriber that reads GET
                # after this delta already sees it (deltas re-applied by offset change nothing).
                self._checkpoint(self.text)
                self._last_checkpoint = now
            subscribers = self.fanout.subscribers(self.conversation_id, "chat")
            self._catch_up([c for c in subscribers if c not in self._served])
            self._served.update(subscribers)
            for piece in replies.delta_pieces(self._pending):
                self._push(piece, self._sent_units, subscribers)
                self._sent_units += replies.utf16_units(piece)
        self._pending = ""
        self._last_push = now

    def _catch_up(self, newcomers: list[str]) -> None:
        """A socket that subscribed while the reply streams first gets everything so far, as
        deltas from offset 0: it can rebuild the reply without asking."""
        sent = self.text[: len(self.text) - len(self._pending)]
        if not newcomers or not sent:
            return
        offset = 0
        for piece in replies.delta_pieces(sent):
            self._push(piece, offset, newcomers)
            offset += replies.utf16_units(piece)

    def _push(self, text: str, offset: int, connection_ids: list[str]) -> None:
        frame = replies.delta_frame(self.conversation_id, self.turn_id, text, offset)
        self.fanout.publish(self.conversation_id, "chat", frame, connection_ids=connection_ids)
