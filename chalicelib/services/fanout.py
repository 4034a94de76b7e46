"""Posting frames to sockets: replies, panel updates to a conversation's subscribers, and a turn's
chat stream. A gone connection is forgotten and never stops the others."""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.domain.conversation import Conversation
from chalicelib.domain.turns import Announcement, TurnEndedNotice, TurnStartedNotice
from chalicelib.ports import Channel
from chalicelib.services.ports import Ports
from chalicelib.wire import chat, surface

DELTA_PUSH_INTERVAL_MS = 100
SUBSCRIBER_REFRESH_MS = 2_000


class FanOut:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def reply(self, connection_id: str, frame: dict[str, Any]) -> None:
        if not self.ports.sockets.post(connection_id, frame):
            self.ports.store.delete_connection(connection_id)

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
            if connection_id == exclude:
                continue
            if self.ports.sockets.post(connection_id, frame):
                delivered.append(connection_id)
            else:
                self.ports.store.delete_connection(connection_id)
        return delivered

    def update(
        self,
        conversation: Conversation,
        *,
        exclude: str | None = None,
        connection_ids: list[str] | None = None,
    ) -> None:
        frame = surface.update_frame(conversation.id, conversation.warming)
        self.publish(
            conversation.id, "surface", frame, exclude=exclude, connection_ids=connection_ids
        )

    def announce(self, announcement: Announcement) -> None:
        match announcement:
            case TurnStartedNotice(turn=turn):
                self.publish(turn.conversation_id, "chat", chat.started_frame(turn))
            case TurnEndedNotice(turn=turn):
                self.publish(turn.conversation_id, "chat", chat.ended_frame(announcement))

    def chat_stream(self, conversation_id: str, turn_id: str) -> ChatStream:
        return ChatStream(self, conversation_id, turn_id)


class ChatStream:
    """A turn's deltas to the chat subscribers, batched to one push per ~100 ms."""

    def __init__(self, fanout: FanOut, conversation_id: str, turn_id: str) -> None:
        self.fanout = fanout
        self.conversation_id = conversation_id
        self.turn_id = turn_id
        self.text = ""
        self._pending = ""
        self._last_push = 0
        self._subscribers: list[str] | None = None
        self._subscribers_at = 0
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
            frame = chat.delta_frame(self.conversation_id, self.turn_id, self._pending)
            self._subscribers = self.fanout.publish(
                self.conversation_id, "chat", frame, connection_ids=self._targets(now)
            )
            self._pending = ""
        self._last_push = now

    def _targets(self, now: int) -> list[str]:
        if self._subscribers is None or now - self._subscribers_at >= SUBSCRIBER_REFRESH_MS:
            self._subscribers = self.fanout.subscribers(self.conversation_id, "chat")
            self._subscribers_at = now
        return self._subscribers
