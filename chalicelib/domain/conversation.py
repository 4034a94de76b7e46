"""Conversations, turns, and prompt assembly with cache breakpoints (pure).

The warm must replay exactly the prefix the next turn will read, or it misses the cache. Both
prompts are therefore built here from the same pieces: the system prompt (breakpoint 1) and the
sealed history (breakpoint 2 on its last message). A turn adds the new user message (breakpoint 3).
Only sealed turns enter the prompt; aborted and failed turns stay in the history the user sees.

The warm is Anthropic's documented pre-warm request ("Pre-warming the cache" in the prompt-caching
guide, linked from the `max_tokens` docstring of anthropic 2.10.0's `messages.create`, read
2026-12-01): that shared prefix, then a short placeholder user message *without* `cache_control`,
`max_tokens: 0`, not streamed. Current models refuse a request that ends on an assistant message
("This model does not support assistant message prefill", Claude 4.6 and later), so the warm
never ends on the last reply itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from chalicelib.domain.pricing import Usage
from chalicelib.domain.warming import Retention, WarmingState

TurnStatus = Literal["generating", "sealed", "aborted", "failed"]

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
    retention: Retention = "5m"
    warming: WarmingState = field(default_factory=WarmingState)
    turn_count: int = 0
    active_turn_id: str | None = None
    # Set by cancel/close; the generating Lambda polls it and stops the stream.
    abort_reason: str | None = None
    # Claimed by the generate invocation that streams the active turn: a duplicate invoke backs off.
    streaming: bool = False
    version: int = 0

    @property
    def generating(self) -> bool:
        return self.active_turn_id is not None


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
    abort_reason: str | None = None

    @property
    def turn_id(self) -> str:
        return turn_id(self.index)


def turn_id(index: int) -> str:
    return f"t{index:06d}"


@dataclass(frozen=True)
class Prompt:
    model: str
    max_tokens: int
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]

    def request(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": self.system,
            "messages": self.messages,
        }


def _breakpoint(retention: str) -> dict[str, str]:
    if retention == "1h":
        return {"type": "ephemeral", "ttl": "1h"}
    return {"type": "ephemeral"}


def _text(text: str, cache: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if cache is not None:
        block["cache_control"] = cache
    return block


def _prefix(
    conversation: Conversation, history: list[Turn]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cache = _breakpoint(conversation.retention)
    system = [_text(conversation.system, cache)]
    sealed = [turn for turn in history if turn.status == "sealed"]
    messages: list[dict[str, Any]] = []
    for position, turn in enumerate(sealed):
        last = position == len(sealed) - 1
        messages.append({"role": "user", "content": [_text(turn.user_text)]})
        messages.append(
            {"role": "assistant", "content": [_text(turn.assistant_text, cache if last else None)]}
        )
    return system, messages


def turn_prompt(conversation: Conversation, history: list[Turn], user_text: str) -> Prompt:
    system, messages = _prefix(conversation, history)
    messages.append(
        {"role": "user", "content": [_text(user_text, _breakpoint(conversation.retention))]}
    )
    return Prompt(conversation.model, conversation.max_tokens, system, messages)


# Sent after the warmed prefix so the request ends on a user message; never cached, never answered.
WARM_PLACEHOLDER = "(cache warm-up; no reply needed)"


def warm_prompt(conversation: Conversation, history: list[Turn]) -> Prompt | None:
    """The prefix the next turn will read (breakpoint on the last sealed reply) and the placeholder
    user message; None before any sealed turn."""
    system, messages = _prefix(conversation, history)
    if not messages:
        return None
    messages.append({"role": "user", "content": [_text(WARM_PLACEHOLDER)]})
    return Prompt(conversation.model, 0, system, messages)


def is_blank(text: str) -> bool:
    """The API refuses text blocks that are empty or only whitespace: such a reply can never be
    sent back as history."""
    return not text.strip()
