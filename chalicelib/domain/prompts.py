"""The prompts sent to the model, with their cache breakpoints (pure).

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

The prompt is provider-neutral: `model` is the catalog id and nothing here knows a wire. Each
model adapter builds its own request body from it (`adapters/model.py` for Anthropic's API,
`adapters/bedrock.py` for Amazon Bedrock), with the id that provider is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.conversation import Conversation, Turn


@dataclass(frozen=True)
class Prompt:
    model: str
    max_tokens: int
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]

    def size_bytes(self) -> int:
        """The UTF-8 size of the prompt's JSON (system and messages): every token of it covers at
        least one byte, whatever the provider's envelope around it (domain/budget.py)."""
        content = {"system": self.system, "messages": self.messages}
        return len(json.dumps(content, ensure_ascii=False).encode("utf-8", "surrogatepass"))


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
