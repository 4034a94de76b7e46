"""Conversations and their turns (pure).

A conversation owns its warming state and the bookkeeping of the one turn that may be in flight
(`active_turn_id`, the abort request, the stream claim). The rules that change them are in
`turns.py`; the prompts built from them in `prompts.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming import Retention, WarmingState

TurnStatus = Literal["generating", "sealed", "aborted", "failed"]
AbortReason = Literal["cancelled", "closed"]

MAX_TEXT_CHARS = 100_000
MAX_SYSTEM_CHARS = 200_000  # the conversation item (one DynamoDB item) must stay under 400 KB
MAX_TITLE_CHARS = 200


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
    # Claimed by the generate invocation that streams the active turn: a duplicate invoke backs off.
    streaming: bool = False
    version: int = 0

    @property
    def generating(self) -> bool:
        return self.active_turn_id is not None

    @property
    def retention(self) -> Retention:
        return self.warming.retention


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
