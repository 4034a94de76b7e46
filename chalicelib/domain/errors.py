"""The refusals the product answers with: a stable snake_case code and a human sentence.

Rules raise them where they live (the domain, a use case, the edge parsers); one table in
`chalicelib/wire/errors.py` maps each code to its HTTP status and error frame, for HTTP and
WebSocket alike. Every code is listed here, so a new one cannot be raised without the table
(and docs/contract.md) hearing of it: `tests/unit/test_contract_schema.py` checks both.
"""

from __future__ import annotations

from typing import Literal, get_args

Code = Literal[
    "bad_json",
    "unknown_type",
    "unknown_surface",
    "unknown_action",
    "missing_field",
    "invalid_field",
    "invalid_interval",
    "invalid_payload",
    "invalid_text",
    "frame_too_large",
    "body_too_large",
    "unauthorized",
    "not_found",
    "turn_in_progress",
    "conflict",
    "rate_limited",
    "limit_reached",
    "budget_exhausted",
    "context_full",
    "upstream_error",
    "internal_error",
]
CODES: tuple[Code, ...] = get_args(Code)


class Refused(Exception):
    """A request the product refuses; nothing was changed."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code: Code = code
        self.message = message


def not_found() -> Refused:
    # Another owner's conversation is indistinguishable from a missing one.
    return Refused("not_found", "no such conversation")
