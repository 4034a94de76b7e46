"""HTTP bodies parsed into typed commands at the edge (through the same decoder as frames).

The edge checks shapes and types; the rules that need the domain (the model catalog, the model's
output limit) are checked by the use case.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.conversation import (
    MAX_SYSTEM_BYTES,
    MAX_TEXT_BYTES,
    MAX_TITLE_CHARS,
    PageKey,
    encoded_bytes,
    is_blank,
)
from chalicelib.domain.errors import Refused
from chalicelib.domain.warming import RetentionSetting
from chalicelib.wire.decoding import decode_object

# API Gateway accepts up to 10 MB; our largest field (the system prompt) is far below this.
MAX_BODY_BYTES = 1024 * 1024
# `GET /conversations?limit=`: one query of the summary index per page.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_MODEL_CHARS = 128
_CURSOR = re.compile(r"([0-9]{13})#([A-Za-z0-9_-]{1,64})")
_HISTORY_CURSOR = re.compile(r"h([1-9][0-9]{0,9})")


@dataclass(frozen=True)
class CreateConversation:
    title: str | None = None
    system: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    retention: RetentionSetting = "auto"


@dataclass(frozen=True)
class StartTurn:
    text: str


@dataclass(frozen=True)
class ListConversations:
    limit: int = DEFAULT_PAGE_SIZE
    after: PageKey | None = None


@dataclass(frozen=True)
class ListHistory:
    limit: int = DEFAULT_PAGE_SIZE
    # Entries older than this seq (the previous page's last); None: from the newest.
    before: int | None = None


def decode_body(raw: bytes | str | None) -> dict[str, Any]:
    """An empty body is an empty object; anything else must be a JSON object."""
    if not raw:
        return {}
    return decode_object(raw, limit_bytes=MAX_BODY_BYTES, what="body", too_large="body_too_large")


# The keys each body may carry (contract/schema.json: its body definitions allow no others).
CREATE_KEYS = ("title", "system", "model", "maxTokens", "cacheRetention")
TURN_KEYS = ("text",)


def _only(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """A key the body does not take is a client bug (a typo like `max_tokens` would otherwise
    be silently ignored): refused, as `additionalProperties: false` in the schema refuses it."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Refused(
            "invalid_field",
            f"unknown field {unknown[0][:64]!r}; this body takes {', '.join(allowed)}",
        )


def create_conversation(body: Mapping[str, Any]) -> CreateConversation:
    """Every key optional; `null` is the same as leaving it out."""
    _only(body, CREATE_KEYS)
    given = body.get("cacheRetention")
    retention: Any = "auto" if given is None else given
    if retention not in ("auto", "5m", "1h"):
        raise Refused("invalid_field", "'cacheRetention' must be 'auto', '5m' or '1h'")
    return CreateConversation(
        title=_optional_text(body, "title", MAX_TITLE_CHARS),
        system=_system(body),
        model=_model(body),
        max_tokens=_max_tokens(body.get("maxTokens")),
        retention=retention,
    )


def start_turn(body: Mapping[str, Any]) -> StartTurn:
    _only(body, TURN_KEYS)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Refused("invalid_text", "'text' must be a non-empty string")
    if encoded_bytes(text) > MAX_TEXT_BYTES:
        raise Refused("invalid_text", f"'text' is limited to {MAX_TEXT_BYTES} bytes as UTF-8 JSON")
    return StartTurn(text)


def _optional_text(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Refused("invalid_field", f"'{key}' must be a string of at most {limit} characters")
    return value or None


def _max_tokens(value: Any) -> int | None:
    # JSON Schema's "integer" is any number without a fractional part (8192.0 included), as in
    # JavaScript; bool is an int in Python, never a count.
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Refused("invalid_field", "'maxTokens' must be an integer from 1 to the model's limit")
    return value


def _model(body: Mapping[str, Any]) -> str | None:
    # "" names no catalog model: refused, not read as "the default" (leave it out for that).
    model = body.get("model")
    if model is None:
        return None
    if not isinstance(model, str) or not 0 < len(model) <= MAX_MODEL_CHARS:
        raise Refused(
            "invalid_field", f"'model' must be a catalog id (1-{MAX_MODEL_CHARS} characters)"
        )
    return model


def _system(body: Mapping[str, Any]) -> str | None:
    system = body.get("system")
    if system is None:
        return None
    if not isinstance(system, str) or encoded_bytes(system) > MAX_SYSTEM_BYTES:
        raise Refused(
            "invalid_field",
            f"'system' must be a string of at most {MAX_SYSTEM_BYTES} bytes as UTF-8 JSON",
        )
    if system and is_blank(system):
        # The API refuses whitespace-only text blocks: every request would fail.
        raise Refused("invalid_field", "'system' must contain non-whitespace text")
    return system or None


def list_conversations(query: Mapping[str, str] | None) -> ListConversations:
    """`?limit=` (1-100, default 50) and `?cursor=` (the previous page's `nextCursor`)."""
    query = query or {}
    cursor = query.get("cursor")
    return ListConversations(_limit(query), decode_cursor(cursor) if cursor else None)


def list_history(query: Mapping[str, str] | None) -> ListHistory:
    """The same `?limit=` and `?cursor=` as the conversation list, over a conversation's history."""
    query = query or {}
    cursor = query.get("cursor")
    return ListHistory(_limit(query), decode_history_cursor(cursor) if cursor else None)


def _limit(query: Mapping[str, str]) -> int:
    raw_limit = query.get("limit")
    if raw_limit is None:
        return DEFAULT_PAGE_SIZE
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
        raise Refused("invalid_field", f"'limit' must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(raw_limit)


def encode_history_cursor(before: int) -> str:
    """Opaque to clients, like the list's: base64url of `h<seq>`."""
    return base64.urlsafe_b64encode(f"h{before}".encode()).decode().rstrip("=")


def decode_history_cursor(cursor: str) -> int:
    invalid = Refused("invalid_field", "'cursor' must be a nextCursor this API returned")
    if len(cursor) > 40:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise invalid from error
    match = _HISTORY_CURSOR.fullmatch(raw)
    if match is None:
        raise invalid
    return int(match.group(1))


def encode_cursor(after: PageKey) -> str:
    """Opaque to clients: base64url of the last listed position (no owner: the server adds it)."""
    created_at, conversation_id = after
    raw = f"{created_at:013d}#{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> PageKey:
    invalid = Refused("invalid_field", "'cursor' must be a nextCursor this API returned")
    if len(cursor) > 200:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise invalid from error
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise invalid
    return int(match.group(1)), match.group(2)
