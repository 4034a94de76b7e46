"""The `chat` frames pushed to a conversation's chat subscribers while a turn runs."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.conversation import Turn
from chalicelib.domain.turns import TurnEndedNotice

FAILURE_MESSAGES = {
    "empty_reply": "The model returned no text (a thinking model may have spent its whole budget).",
    "model_rejected": "The model refused the request.",
    "model_unavailable": "The model is not available to this API key.",
    "rate_limited": "The model is rate limited; try again shortly.",
    "overloaded": "The model is overloaded; try again shortly.",
    "timeout": "The model did not answer in time.",
    "upstream_error": "The model failed to answer.",
}


def chat_frame(conversation_id: str, event: str, **fields: Any) -> dict[str, Any]:
    return {"type": "chat", "conversationId": conversation_id, "event": event, **fields}


def started_frame(turn: Turn) -> dict[str, Any]:
    return chat_frame(
        turn.conversation_id, "turn-started", turnId=turn.turn_id, userText=turn.user_text
    )


def delta_frame(conversation_id: str, turn_id: str, text: str) -> dict[str, Any]:
    return chat_frame(conversation_id, "delta", turnId=turn_id, text=text)


def ended_frame(notice: TurnEndedNotice) -> dict[str, Any]:
    turn = notice.turn
    cid, tid = turn.conversation_id, turn.turn_id
    if turn.status == "sealed":
        assert turn.usage is not None
        return chat_frame(
            cid,
            "turn-sealed",
            turnId=tid,
            text=turn.assistant_text,
            usage=turn.usage.to_dict(),
            costUsd=notice.cost_usd,
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
