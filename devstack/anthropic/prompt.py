"""Token approximation, and the Messages API body parsed into the prompt's cacheable blocks.

This module checks what every model requires of a body (its shape, text blocks, breakpoints);
`rules.py` adds what depends on the model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, cast

from devstack.anthropic.errors import (
    EMPTY_SYSTEM_TEXT,
    EMPTY_TEXT,
    WHITESPACE_SYSTEM_TEXT,
    WHITESPACE_TEXT,
    invalid,
)

TTL_SECONDS: dict[str, float] = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` under the emulator's approximation: ``max(1, ceil(len(text) / 4))``."""
    return max(1, (len(text) + 3) // 4)


def canonical_json(value: Any) -> str:
    """The canonical JSON used for cache keys and token counts: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strip_cache_control(block: dict[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in block.items() if k != "cache_control"}
    # Only the top level and tool_result content items can carry cache_control; walking deeper
    # would corrupt tool schemas that happen to have a property named "cache_control".
    content = stripped.get("content")
    if stripped.get("type") == "tool_result" and isinstance(content, list):
        stripped["content"] = [
            {k: v for k, v in item.items() if k != "cache_control"}
            if isinstance(item, dict)
            else item
            for item in content
        ]
    return stripped


def tool_tokens(tool: dict[str, Any]) -> int:
    """Tokens of a tool definition: those of its canonical JSON without ``cache_control``."""
    return estimate_tokens(canonical_json(_strip_cache_control(tool)))


@dataclass(frozen=True)
class PromptBlock:
    """One cacheable unit of the prompt: a tool, a system text block or a message content block."""

    section: str  # "tools" | "system" | "messages"
    canonical: str
    tokens: int
    ttl: str | None  # TTL of the breakpoint on this block, None if it is not a breakpoint
    kind: str = "text"  # the block's type; runs of tool_use or tool_result share a position


@dataclass(frozen=True)
class FinalMessage:
    """The last message of ``messages``: what the prefill rules look at."""

    role: str
    tail_text: str | None  # the text of its last block when that block is text


@dataclass
class MessagesRequest:
    """A validated ``POST /v1/messages`` (or ``count_tokens``) request, reduced to what matters."""

    model: str
    max_tokens: int
    stream: bool
    blocks: list[PromptBlock]
    tool_choice: Any
    thinking: Any
    seed_text: str
    output_config: Any = None
    final: FinalMessage | None = None

    @property
    def input_tokens(self) -> int:
        """Total prompt tokens, cached or not."""
        return sum(block.tokens for block in self.blocks)

    @property
    def breakpoints(self) -> list[int]:
        """Indices of the blocks that carry a breakpoint, in prompt order."""
        return [i for i, block in enumerate(self.blocks) if block.ttl is not None]

    def positions(self) -> list[int]:
        """The lookback position of each block.

        On the Claude API a run of consecutive ``tool_use`` blocks counts as one position, and so
        does a run of consecutive ``tool_result`` blocks (Anthropic's claude-api skill,
        skills/claude-api/shared/prompt-caching.md, "20-block lookback window", revision of
        Sept. 2026 read through a vendored copy on 2026-12-01).
        """
        out: list[int] = []
        position = -1
        previous = ""
        for block in self.blocks:
            grouped = block.kind in ("tool_use", "tool_result") and block.kind == previous
            if not grouped:
                position += 1
            out.append(position)
            previous = block.kind
        return out

    def prefix_keys(self) -> list[str]:
        """The cache key of the prefix ending at each block."""
        # Omitted settings are the API defaults, so spelling a default out keeps the cache.
        messages_extra = canonical_json(
            {
                "tool_choice": self.tool_choice or {"type": "auto"},
                "thinking": self.thinking or {"type": "disabled"},
            }
        ).encode()
        running = hashlib.sha256(b"model\x00" + self.model.encode()).digest()
        keys: list[str] = []
        for block in self.blocks:
            running = hashlib.sha256(running + block.canonical.encode()).digest()
            extra = messages_extra if block.section == "messages" else b""
            keys.append(hashlib.sha256(running + b"\x00" + extra).hexdigest())
        return keys


def cache_ttl(block: dict[str, Any], where: str) -> str | None:
    control = block.get("cache_control")
    if control is None:
        return None
    where = f"{where}.cache_control" if where else "cache_control"
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise invalid(f"{where}.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise invalid(f"{where}.ttl: Input should be '5m' or '1h'")
    return cast(str, ttl)


def _reject_unsupported(block_type: Any, where: str) -> None:
    if block_type in ("image", "document"):
        raise invalid(f"{where}: {block_type} blocks are not supported by this emulator")


def _check_message_text(text: str) -> None:
    # Empty and whitespace-only text are refused in every message, whatever the model and role.
    if not text:
        raise EMPTY_TEXT.error()
    if not text.strip():
        raise WHITESPACE_TEXT.error()


def _content_block(block: Any, where: str, message_index: int, role: str) -> PromptBlock:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise invalid(f"{where}.type: Field required")
    block_type = block["type"]
    _reject_unsupported(block_type, where)
    ttl = cache_ttl(block, where)
    stripped = _strip_cache_control(block)
    if block_type == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise invalid(f"{where}.text: Field required")
        _check_message_text(text)
        tokens = estimate_tokens(text)
    else:
        if block_type == "tool_result" and isinstance(block.get("content"), list):
            for j, item in enumerate(block["content"]):
                _reject_unsupported(
                    item.get("type") if isinstance(item, dict) else None, f"{where}.content.{j}"
                )
        tokens = estimate_tokens(canonical_json(stripped))
    canonical = canonical_json({"m": message_index, "role": role, "block": stripped})
    return PromptBlock("messages", canonical, tokens, ttl, block_type)


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(texts) if texts else canonical_json(content)


def require_int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise invalid(f"{name}: Field required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name}: Input should be a valid integer")
    return value


def tool_blocks(tools: Any) -> list[PromptBlock]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    blocks = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise invalid(f"tools.{i}.name: Field required")
        ttl = cache_ttl(tool, f"tools.{i}")
        stripped = _strip_cache_control(tool)
        blocks.append(
            PromptBlock("tools", canonical_json({"tool": stripped}), tool_tokens(tool), ttl, "tool")
        )
    return blocks


def system_blocks(system: Any) -> list[PromptBlock]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        if not system.strip():
            raise WHITESPACE_SYSTEM_TEXT.error()
        return [
            PromptBlock("system", canonical_json({"system": system}), estimate_tokens(system), None)
        ]
    if not isinstance(system, list):
        raise invalid("system: Input should be a valid string or list of text blocks")
    blocks = []
    for i, block in enumerate(system):
        where = f"system.{i}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid(f"{where}.type: Input should be 'text'")
        text = block.get("text")
        if not isinstance(text, str):
            raise invalid(f"{where}.text: Field required")
        if not text:
            raise EMPTY_SYSTEM_TEXT.error()
        if not text.strip():
            raise WHITESPACE_SYSTEM_TEXT.error()
        ttl = cache_ttl(block, where)
        # A string system prompt and a single uncached text block are the same prompt.
        blocks.append(
            PromptBlock("system", canonical_json({"system": text}), estimate_tokens(text), ttl)
        )
    return blocks


def message_blocks(messages: Any) -> tuple[list[PromptBlock], str, FinalMessage]:
    if messages is None:
        raise invalid("messages: Field required")
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    blocks: list[PromptBlock] = []
    seed_text = ""
    last = len(messages) - 1
    final = FinalMessage("user", None)
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise invalid(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise invalid('messages: first message must use the "user" role')
        content = message.get("content")
        if isinstance(content, str):
            # A string content is the same prompt as one text block holding it; the empty string
            # alone is the documented "optional final assistant message".
            items: list[Any] = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            items = content
        else:
            raise invalid(f"{where}.content: Field required")
        if not items and not (i == last and role == "assistant"):
            raise invalid(
                f"{where}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        for j, item in enumerate(items):
            blocks.append(_content_block(item, f"{where}.content.{j}", i, cast(str, role)))
        if role == "user":
            seed_text = _message_text(content)
        if i == last:
            tail = items[-1] if items else None
            text = tail.get("text") if isinstance(tail, dict) else None
            final = FinalMessage(cast(str, role), text if isinstance(text, str) else None)
    return blocks, seed_text, final


def with_automatic_breakpoint(blocks: list[PromptBlock], body: dict[str, Any]) -> None:
    """Apply a top-level ``cache_control`` (automatic caching) to the last block, in place."""
    if body.get("cache_control") is None:
        return
    ttl = cache_ttl(body, "")
    if blocks and blocks[-1].ttl is None:
        blocks[-1] = replace(blocks[-1], ttl=ttl)


def check_breakpoints(blocks: list[PromptBlock], max_breakpoints: int) -> None:
    ttls = [block.ttl for block in blocks if block.ttl is not None]
    if len(ttls) > max_breakpoints:
        raise invalid(
            f"A maximum of {max_breakpoints} blocks with cache_control may be provided. "
            f"Found {len(ttls)}."
        )
    seen_5m = False
    for ttl in ttls:
        if ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise invalid(
                "A ttl='1h' cache_control block must not come after a ttl='5m' cache_control "
                "block. Note that blocks are processed in the following order: `tools`, "
                "`system`, `messages`."
            )
