"""WebSocket frames: inbound parsing and validation, outbound builders, and the stable error codes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from chalicelib.domain.surface import SET_INTERVAL_ACTION, SURFACE_ID, TOGGLE_ACTION

# API Gateway's WebSocket frame limit; a longer message arrives in several frames we never see.
MAX_FRAME_BYTES = 32 * 1024
MAX_REQUEST_ID_CHARS = 128
# Conversation ids are ours (uuid4 hex); anything else cannot name a conversation.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Every error code the API can answer, with its HTTP status (WebSocket errors carry the code only).
ERROR_STATUS: dict[str, int] = {
    "bad_json": 400,
    "unknown_type": 400,
    "unknown_surface": 400,
    "unknown_action": 400,
    "missing_field": 400,
    "invalid_field": 400,
    "invalid_interval": 400,
    "invalid_payload": 400,
    "invalid_text": 400,
    "frame_too_large": 413,
    "unauthorized": 401,
    "not_found": 404,
    "turn_in_progress": 409,
    "conflict": 409,
    "rate_limited": 429,
    "limit_reached": 429,
    "upstream_error": 502,
    "internal_error": 500,
}


class ProtocolError(Exception):
    """A client mistake with a stable snake_case `code` and a human `message`."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        assert code in ERROR_STATUS, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id

    @property
    def http_status(self) -> int:
        return ERROR_STATUS[self.code]


def unexpected(error: Exception) -> ProtocolError:
    """The stable error for a failure that is not the client's: an AWS call or a bug."""
    if type(error).__module__.startswith("botocore"):
        return ProtocolError("upstream_error", "a backing service failed; try again")
    return ProtocolError("internal_error", "something went wrong on our side")


@dataclass(frozen=True)
class Subscribe:
    conversation_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class Unsubscribe:
    conversation_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class InvokeToggle:
    conversation_id: str
    enabled: bool | None
    request_id: str | None = None


@dataclass(frozen=True)
class InvokeSetInterval:
    conversation_id: str
    seconds: int
    request_id: str | None = None


@dataclass(frozen=True)
class ChatSubscribe:
    conversation_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class ChatUnsubscribe:
    conversation_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class CloseConversation:
    conversation_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class Ping:
    request_id: str | None = None


Frame = (
    Subscribe
    | Unsubscribe
    | InvokeToggle
    | InvokeSetInterval
    | ChatSubscribe
    | ChatUnsubscribe
    | CloseConversation
    | Ping
)


_CONVERSATION_FRAMES: dict[str, type[ChatSubscribe | ChatUnsubscribe | CloseConversation]] = {
    "chat.subscribe": ChatSubscribe,
    "chat.unsubscribe": ChatUnsubscribe,
    "close": CloseConversation,
}


def parse_frame(raw: str | bytes) -> Frame:
    """Validate one client frame; raises ProtocolError with the first problem found."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError("frame_too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes")
    try:
        # msgspec also refuses NaN/Infinity, out-of-range floats and lone surrogate escapes,
        # which json.loads would let through into frames we later fail to encode.
        obj = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
        raise ProtocolError("bad_json", "the frame is not valid UTF-8 JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("bad_json", "a frame must be a JSON object")
    request_id = _request_id(obj)
    frame_type = obj.get("type")
    if frame_type is None:
        raise ProtocolError("missing_field", "the frame has no 'type'", request_id)
    if not isinstance(frame_type, str):
        raise ProtocolError("invalid_field", "'type' must be a string", request_id)
    if frame_type == "ping":
        return Ping(request_id)
    if frame_type in ("subscribe", "unsubscribe", "invoke"):
        _surface_id(obj, request_id)
        conversation_id = conversation_id_of(obj.get("conversationId"), request_id)
        if frame_type == "subscribe":
            return Subscribe(conversation_id, request_id)
        if frame_type == "unsubscribe":
            return Unsubscribe(conversation_id, request_id)
        return _invoke(obj, conversation_id, request_id)
    if frame_type not in _CONVERSATION_FRAMES:
        raise ProtocolError("unknown_type", f"unknown frame type {frame_type[:64]!r}", request_id)
    conversation_id = conversation_id_of(obj.get("conversationId"), request_id)
    return _CONVERSATION_FRAMES[frame_type](conversation_id, request_id)


def conversation_id_of(value: Any, request_id: str | None = None) -> str:
    if value is None or value == "":
        raise ProtocolError("missing_field", "'conversationId' is required", request_id)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ProtocolError(
            "invalid_field", "'conversationId' must be 1-64 letters, digits, - or _", request_id
        )
    return value


def _request_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("requestId")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_REQUEST_ID_CHARS:
        raise ProtocolError(
            "invalid_field", f"'requestId' must be a string of 1-{MAX_REQUEST_ID_CHARS} characters"
        )
    return value


def _surface_id(obj: dict[str, Any], request_id: str | None) -> None:
    surface_id = obj.get("surfaceId")
    if surface_id is None or surface_id == "":
        raise ProtocolError("missing_field", "'surfaceId' is required", request_id)
    if surface_id != SURFACE_ID:
        raise ProtocolError("unknown_surface", f"the only surface is {SURFACE_ID!r}", request_id)


def _invoke(obj: dict[str, Any], conversation_id: str, request_id: str | None) -> Frame:
    action = obj.get("action")
    if action is None or action == "":
        raise ProtocolError("missing_field", "'action' is required", request_id)
    payload = obj.get("payload")
    if action == TOGGLE_ACTION:
        if payload is not None and not isinstance(payload, bool):
            raise ProtocolError(
                "invalid_payload", "toggle takes true, false, or no payload (flip)", request_id
            )
        return InvokeToggle(conversation_id, payload, request_id)
    if action == SET_INTERVAL_ACTION:
        return InvokeSetInterval(conversation_id, _seconds(payload, request_id), request_id)
    raise ProtocolError("unknown_action", f"unknown action {str(action)[:64]!r}", request_id)


def _seconds(payload: Any, request_id: str | None) -> int:
    # bool is an int in Python; an interval of `true` seconds is a client bug, not 1 s.
    if isinstance(payload, bool) or not isinstance(payload, int | float):
        raise ProtocolError(
            "invalid_interval", "the interval must be a number of seconds", request_id
        )
    if isinstance(payload, float) and (not math.isfinite(payload) or not payload.is_integer()):
        raise ProtocolError("invalid_interval", "the interval must be whole seconds", request_id)
    return int(payload)


def error_frame(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def conversation_error_frame(
    conversation_id: str, code: str, message: str, request_id: str | None
) -> dict[str, Any]:
    return {**error_frame(code, message, request_id), "conversationId": conversation_id}


def pong_frame(request_id: str | None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "pong"}
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def ack_frame(frame_type: str, conversation_id: str, request_id: str | None) -> dict[str, Any]:
    """Reply to frames whose effect is not itself a frame (unsubscribe, chat.*, close)."""
    frame: dict[str, Any] = {"type": "ack", "of": frame_type, "conversationId": conversation_id}
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def chat_frame(conversation_id: str, event: str, **fields: Any) -> dict[str, Any]:
    return {"type": "chat", "conversationId": conversation_id, "event": event, **fields}
