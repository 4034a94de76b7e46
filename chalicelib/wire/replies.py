"""Every frame the backend builds for a client: replies to its frames (pong, ack, error, surface,
update) and the `chat` frames pushed to a conversation's chat subscribers while a turn runs.

One home, so a new server frame has one place to go; `tests/unit/test_contract_schema.py` checks
what each builder returns against contract/schema.json.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chalicelib.domain.conversation import Turn, cut_to_bytes
from chalicelib.domain.errors import Refused
from chalicelib.domain.turns import TurnEndedNotice
from chalicelib.domain.warming import WarmingState
from chalicelib.wire.frames import MAX_PUSH_BYTES
from chalicelib.wire.surface import ACTIONS, SURFACE_ID, Cause, fields

# A delta is at most this much text, so its frame stays far below the push limit.
DELTA_TEXT_BYTES = 64 * 1024

FAILURE_MESSAGES = {
    "empty_reply": "The model returned no text (a thinking model may have spent its whole budget).",
    "model_rejected": "The model refused the request.",
    "model_unavailable": "The model is not available to this API key.",
    "rate_limited": "The model is rate limited; try again shortly.",
    "overloaded": "The model is overloaded; try again shortly.",
    "timeout": "The model did not answer in time.",
    "upstream_error": "The model failed to answer.",
    "internal_error": "Something went wrong on our side while the reply was streaming.",
    "context_window_exceeded": (
        "The conversation no longer fits the model's context window; start a new conversation."
    ),
    "budget_exhausted": (
        "Today's spend budget is reserved by replies still streaming; nothing was sent. It "
        "renews at 00:00 UTC."
    ),
}


def _with_request_id(frame: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    if request_id is not None:
        frame["requestId"] = request_id
    return frame


def pong_frame(request_id: str | None) -> dict[str, Any]:
    return _with_request_id({"type": "pong"}, request_id)


def ack_frame(frame_type: str, conversation_id: str, request_id: str | None) -> dict[str, Any]:
    """Reply to frames whose effect is not itself a frame (unsubscribe, chat.*, close)."""
    frame = {"type": "ack", "of": frame_type, "conversationId": conversation_id}
    return _with_request_id(frame, request_id)


def error_frame(
    refusal: Refused, request_id: str | None = None, conversation_id: str | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": refusal.code, "message": refusal.message}
    if request_id is not None:
        frame["requestId"] = request_id
    if conversation_id is not None:
        frame["conversationId"] = conversation_id
    return frame


def surface_frame(
    conversation_id: str, state: WarmingState, request_id: str | None
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "surface",
        "surfaceId": SURFACE_ID,
        "conversationId": conversation_id,
        "spec": {"title": "Cache warming", "actions": list(ACTIONS), "fields": fields(state)},
    }
    return _with_request_id(frame, request_id)


def update_frame(
    conversation_id: str, state: WarmingState, cause: Cause, request_id: str | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "update",
        "surfaceId": SURFACE_ID,
        "conversationId": conversation_id,
        "cause": cause,
        "fields": fields(state),
    }
    return _with_request_id(frame, request_id)


def chat_frame(conversation_id: str, event: str, **fields: Any) -> dict[str, Any]:
    return {"type": "chat", "conversationId": conversation_id, "event": event, **fields}


def started_frame(turn: Turn) -> dict[str, Any]:
    return chat_frame(
        turn.conversation_id, "turn-started", turnId=turn.turn_id, userText=turn.user_text
    )


def delta_frame(conversation_id: str, turn_id: str, text: str, offset: int) -> dict[str, Any]:
    return chat_frame(conversation_id, "delta", turnId=turn_id, text=text, offset=offset)


def utf16_units(text: str) -> int:
    """The text's length as JavaScript counts it (UTF-16 code units): a delta's `offset`."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def delta_pieces(text: str) -> list[str]:
    """The text of one batch of deltas, in pieces that each fit a frame (nothing is dropped)."""
    pieces = []
    while text:
        piece = cut_to_bytes(text, DELTA_TEXT_BYTES) or text[0]
        pieces.append(piece)
        text = text[len(piece) :]
    return pieces


def fitted(frame: dict[str, Any], field: str = "text") -> dict[str, Any]:
    """The frame with its `field` cut so the whole frame fits a push; `textTruncated` says so
    (the client has every delta, and the whole text over HTTP)."""
    size = len(msgspec.json.encode(frame))
    if size <= MAX_PUSH_BYTES:
        return frame
    text = frame[field]
    room = MAX_PUSH_BYTES - (size - len(msgspec.json.encode(text))) - 64
    return {**frame, field: cut_to_bytes(text, room), "textTruncated": True}


def ended_frame(notice: TurnEndedNotice) -> dict[str, Any]:
    return fitted(_ended_frame(notice))


def _ended_frame(notice: TurnEndedNotice) -> dict[str, Any]:
    turn = notice.turn
    cid, tid = turn.conversation_id, turn.turn_id
    if turn.status == "sealed":
        return chat_frame(
            cid,
            "turn-sealed",
            turnId=tid,
            text=turn.assistant_text,
            usage=turn.usage.to_dict() if turn.usage else None,
            costUsd=notice.cost_usd,
            truncated=turn.truncated,
        )
    if turn.status == "aborted":
        return chat_frame(
            cid, "turn-aborted", turnId=tid, reason=turn.abort_reason, text=turn.assistant_text
        )
    code = turn.error_code or "upstream_error"
    return chat_frame(
        cid,
        "turn-failed",
        turnId=tid,
        code=code,
        message=FAILURE_MESSAGES.get(code, FAILURE_MESSAGES["upstream_error"]),
        text=turn.assistant_text,
    )
