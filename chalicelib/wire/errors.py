"""Every refusal's HTTP status: the one table both app.py and the frame handler use (the error
frame is built in `wire/replies.py`). An unexpected exception becomes `upstream_error` (an AWS dependency failed) or
`internal_error` (a bug); its details go to the log, never to the client."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import Code, Refused

STATUS: dict[Code, int] = {
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
    "body_too_large": 413,
    "unauthorized": 401,
    "not_found": 404,
    "turn_in_progress": 409,
    "conflict": 409,
    "rate_limited": 429,
    "limit_reached": 429,
    # The user's spend budget for the day is used up: a quota, like the other 429s.
    "budget_exhausted": 429,
    # The conversation's state (its history fills the model's context window) refuses the turn;
    # retrying the same request cannot succeed.
    "context_full": 409,
    "upstream_error": 502,
    "internal_error": 500,
}


def refusal_of(error: Exception) -> Refused:
    if isinstance(error, Refused):
        return error
    if type(error).__module__.startswith("botocore"):
        return Refused("upstream_error", "a backing service failed; try again")
    return Refused("internal_error", "something went wrong on our side")


def http_body(refusal: Refused) -> dict[str, Any]:
    return {"error": {"code": refusal.code, "message": refusal.message}}
