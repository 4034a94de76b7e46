"""WebSocket frames: every client frame parsed into a typed value (the server's own frames are
built in `wire/replies.py`).

One registry maps each frame `type` to its parser; `services/frames.py` matches every `Frame` to
its handler with `assert_never`, so a frame type added here without a handler fails `make lint`.
A refused frame keeps the `requestId` and `conversationId` it named validly, so the error frame
can echo them (docs/contract.md, "error").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import msgspec

from chalicelib.domain.errors import Code, Refused
from chalicelib.wire.decoding import decode_object
from chalicelib.wire.surface import SET_INTERVAL_ACTION, SURFACE_ID, TOGGLE_ACTION

# API Gateway's WebSocket frame limit; a longer message arrives in several frames we never see.
MAX_FRAME_BYTES = 32 * 1024
# API Gateway's message limit for what the backend pushes: PostToConnection's `Data` is at most
# 131,072 bytes (botocore's apigatewaymanagementapi service model; "Message payload size: 128 KB"
# in API Gateway's WebSocket quotas); a larger post is refused with PayloadTooLargeException.
MAX_PUSH_BYTES = 128 * 1024
MAX_REQUEST_ID_CHARS = 128
# Conversation ids are ours (uuid4 hex); anything else cannot name a conversation.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class FrameRefused(Refused):
    """A refused frame, with the ids it named validly."""

    def __init__(
        self,
        code: Code,
        message: str,
        request_id: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(code, message)
        self.request_id = request_id
        self.conversation_id = conversation_id


class Ping(msgspec.Struct, frozen=True):
    request_id: str | None = None


class Subscribe(msgspec.Struct, frozen=True):
    conversation_id: str
    request_id: str | None = None


class Unsubscribe(msgspec.Struct, frozen=True):
    conversation_id: str
    request_id: str | None = None


class InvokeToggle(msgspec.Struct, frozen=True):
    conversation_id: str
    enabled: bool | None
    request_id: str | None = None


class InvokeSetInterval(msgspec.Struct, frozen=True):
    conversation_id: str
    seconds: int
    request_id: str | None = None


class ChatSubscribe(msgspec.Struct, frozen=True):
    conversation_id: str
    request_id: str | None = None


class ChatUnsubscribe(msgspec.Struct, frozen=True):
    conversation_id: str
    request_id: str | None = None


class CloseConversation(msgspec.Struct, frozen=True):
    conversation_id: str
    request_id: str | None = None


Frame = (
    Ping
    | Subscribe
    | Unsubscribe
    | InvokeToggle
    | InvokeSetInterval
    | ChatSubscribe
    | ChatUnsubscribe
    | CloseConversation
)


class _Fields(msgspec.Struct, frozen=True):
    """A frame's object with its valid ids, for parsers and their errors."""

    obj: dict[str, Any]
    request_id: str | None

    def refuse(self, code: Code, message: str, conversation_id: str | None = None) -> FrameRefused:
        return FrameRefused(code, message, self.request_id, conversation_id)

    def conversation_id(self) -> str:
        try:
            return conversation_id_of(self.obj.get("conversationId"))
        except Refused as refused:
            raise self.refuse(refused.code, refused.message) from None


def _ping(fields: _Fields) -> Frame:
    return Ping(fields.request_id)


def _surface(fields: _Fields) -> str:
    conversation_id = fields.conversation_id()
    surface_id = fields.obj.get("surfaceId")
    if surface_id is None or surface_id == "":
        raise fields.refuse("missing_field", "'surfaceId' is required", conversation_id)
    if surface_id != SURFACE_ID:
        raise fields.refuse(
            "unknown_surface", f"the only surface is {SURFACE_ID!r}", conversation_id
        )
    return conversation_id


def _subscribe(fields: _Fields) -> Frame:
    return Subscribe(_surface(fields), fields.request_id)


def _unsubscribe(fields: _Fields) -> Frame:
    return Unsubscribe(_surface(fields), fields.request_id)


def _invoke(fields: _Fields) -> Frame:
    conversation_id = _surface(fields)
    action = fields.obj.get("action")
    payload = fields.obj.get("payload")
    if action is None or action == "":
        raise fields.refuse("missing_field", "'action' is required", conversation_id)
    if action == TOGGLE_ACTION:
        if payload is not None and not isinstance(payload, bool):
            raise fields.refuse(
                "invalid_payload", "toggle takes true, false, or no payload (flip)", conversation_id
            )
        return InvokeToggle(conversation_id, payload, fields.request_id)
    if action == SET_INTERVAL_ACTION:
        return InvokeSetInterval(
            conversation_id, _seconds(fields, payload, conversation_id), fields.request_id
        )
    raise fields.refuse("unknown_action", f"unknown action {str(action)[:64]!r}", conversation_id)


def _seconds(fields: _Fields, payload: Any, conversation_id: str) -> int:
    # bool is an int in Python; an interval of `true` seconds is a client bug, not 1 s.
    if isinstance(payload, bool) or not isinstance(payload, int | float):
        raise fields.refuse(
            "invalid_interval", "the interval must be a number of seconds", conversation_id
        )
    if isinstance(payload, float) and (not math.isfinite(payload) or not payload.is_integer()):
        raise fields.refuse(
            "invalid_interval", "the interval must be whole seconds", conversation_id
        )
    return int(payload)


def _chat_subscribe(fields: _Fields) -> Frame:
    return ChatSubscribe(fields.conversation_id(), fields.request_id)


def _chat_unsubscribe(fields: _Fields) -> Frame:
    return ChatUnsubscribe(fields.conversation_id(), fields.request_id)


def _close(fields: _Fields) -> Frame:
    return CloseConversation(fields.conversation_id(), fields.request_id)


PARSERS: dict[str, Callable[[_Fields], Frame]] = {
    "ping": _ping,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "invoke": _invoke,
    "chat.subscribe": _chat_subscribe,
    "chat.unsubscribe": _chat_unsubscribe,
    "close": _close,
}


def parse_frame(raw: str | bytes) -> Frame:
    """Validate one client frame; raises FrameRefused with the first problem found."""
    try:
        obj = decode_object(
            raw, limit_bytes=MAX_FRAME_BYTES, what="frame", too_large="frame_too_large"
        )
    except Refused as refused:
        raise FrameRefused(refused.code, refused.message) from None
    fields = _Fields(obj, _request_id(obj))
    frame_type = obj.get("type")
    if frame_type is None or frame_type == "":
        # Absent, null or "" is missing, as for every other field (docs/contract.md).
        raise fields.refuse("missing_field", "the frame has no 'type'")
    if not isinstance(frame_type, str):
        raise fields.refuse("invalid_field", "'type' must be a string")
    parser = PARSERS.get(frame_type)
    if parser is None:
        raise fields.refuse("unknown_type", f"unknown frame type {frame_type[:64]!r}")
    return parser(fields)


def conversation_id_of(value: Any) -> str:
    if value is None or value == "":
        raise Refused("missing_field", "'conversationId' is required")
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise Refused("invalid_field", "'conversationId' must be 1-64 letters, digits, - or _")
    return value


def _request_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("requestId")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_REQUEST_ID_CHARS:
        raise FrameRefused(
            "invalid_field", f"'requestId' must be a string of 1-{MAX_REQUEST_ID_CHARS} characters"
        )
    return value
