"""Conversations and their turns (pure).

A conversation owns its warming state and the bookkeeping of the one turn that may be in flight
(`active_turn_id`, the abort request, the stream claim). The rules that change them are in
`turns.py`; the prompts built from them in `prompts.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming import Retention, RetentionSetting, WarmingState
from chalicelib.domain.warming.state import REASON_SET

TurnStatus = Literal["generating", "sealed", "aborted", "failed"]
AbortReason = Literal["cancelled", "closed"]

# Sizes are counted as DynamoDB stores them: the text JSON-encoded (escapes included), in UTF-8.
# One item holds at most 400 KB, attribute names included (DynamoDB developer guide, "Service,
# account, and table quotas": item size); each limit leaves room for the rest of its item.
MAX_ITEM_BYTES = 400 * 1024
MAX_TEXT_BYTES = 100 * 1024  # a turn's user text
MAX_SYSTEM_BYTES = 200 * 1024  # the conversation item also holds the warming state
MAX_TITLE_CHARS = 200
# A turn item: its user text, its reply, and at most this much of everything else.
TURN_OVERHEAD_BYTES = 8 * 1024


@dataclass(frozen=True)
class Conversation:
    id: str
    owner: str
    created_at: int
    title: str
    model: str
    system: str
    max_tokens: int
    warming: WarmingState = field(default_factory=WarmingState)
    turn_count: int = 0
    active_turn_id: str | None = None
    # Set by cancel/close; the generating Lambda polls it and stops the stream.
    abort_reason: AbortReason | None = None
    # The generate invocation that streams the active turn holds it until its own deadline (when
    # Lambda kills it at the latest): a duplicate invoke backs off, a retry after a death takes over.
    stream_owner: str | None = None
    stream_until: int | None = None
    # Entries written to the conversation's history so far (domain/history.py numbers them).
    history_count: int = 0
    version: int = 0

    @property
    def generating(self) -> bool:
        return self.active_turn_id is not None

    @property
    def retention(self) -> Retention:
        return self.warming.retention


@dataclass(frozen=True)
class ConversationSummary:
    """What the conversation list shows: a few hundred bytes, stored beside the conversation so a
    listing never reads bodies (the system prompt alone may be 200 KB)."""

    id: str
    title: str
    model: str
    max_tokens: int
    retention: Retention
    created_at: int
    closed: bool
    active_turn_id: str | None
    turn_count: int
    warming_enabled: bool
    interval_seconds: int
    status: str
    next_warm_at: int | None
    last_warm_at: int | None
    warms: int
    total_cost_usd: float
    # The auto cache and the savings (defaults for summaries stored before them): what the
    # conversation was created with (None: the cache in use, fixed), why that cache, and what
    # warming's rescues saved.
    setting: RetentionSetting | None = None
    cache_reason: str = REASON_SET
    saved_usd: float = 0.0
    rescues: int = 0


def summary_of(conversation: Conversation) -> ConversationSummary:
    state = conversation.warming
    return ConversationSummary(
        id=conversation.id,
        title=conversation.title,
        model=conversation.model,
        max_tokens=conversation.max_tokens,
        retention=state.retention,
        created_at=conversation.created_at,
        closed=state.closed,
        active_turn_id=conversation.active_turn_id,
        turn_count=conversation.turn_count,
        warming_enabled=state.enabled,
        interval_seconds=state.interval_seconds,
        status=state.status,
        next_warm_at=state.next_warm_at,
        last_warm_at=state.last_warm_at,
        warms=state.stats.warms,
        total_cost_usd=state.stats.total_cost_usd,
        setting=state.setting,
        cache_reason=state.retention_reason,
        saved_usd=state.stats.saved_usd,
        rescues=state.stats.rescues,
    )


# A position in a user's list, newest first: (created_at, id) of the last conversation shown.
PageKey = tuple[int, str]


@dataclass(frozen=True)
class Turn:
    conversation_id: str
    index: int
    user_text: str
    started_at: int
    status: TurnStatus = "generating"
    assistant_text: str = ""
    ended_at: int | None = None
    usage: Usage | None = None
    error_code: str | None = None
    abort_reason: AbortReason | None = None
    # The stored reply is shorter than the model's: cut at the invocation's deadline or to fit
    # one DynamoDB item.
    truncated: bool = False
    # What the request was billed in USD (`usage` at the model's prices), for every status; None
    # when it never reached the model (or for turns stored before costs were).
    cost_usd: float | None = None

    @property
    def turn_id(self) -> str:
        return turn_id(self.index)


def turn_id(index: int) -> str:
    return f"t{index:06d}"


def turn_index(turn_id: str) -> int:
    return int(turn_id[1:])


def is_blank(text: str) -> bool:
    """The API refuses text blocks that are empty or only whitespace: such a text can never be
    sent in a prompt."""
    return not text.strip()


def encoded_bytes(text: str) -> int:
    """The text's size as stored: JSON-encoded, UTF-8 (a control character takes 6 bytes)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def cut_to_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` whose encoded size is at most `limit`."""
    if encoded_bytes(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if encoded_bytes(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def fit_reply(user_text: str, reply: str) -> tuple[str, bool]:
    """The reply as it fits in its turn's item, and whether it was cut."""
    room = MAX_ITEM_BYTES - TURN_OVERHEAD_BYTES - encoded_bytes(user_text)
    fitted = cut_to_bytes(reply, room)
    return fitted, fitted != reply
