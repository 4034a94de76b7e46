"""A local emulator of the Anthropic Messages API with faithful prompt-cache semantics.

It is a real HTTP server (``ThreadingHTTPServer`` on loopback) that the official ``anthropic`` SDK
can talk to through ``base_url``, so the code under test runs unchanged: the same requests, the same
SSE parsing, the same exceptions. Everything is deterministic, which lets tests assert exact token
counts and lets benchmarks compute the cost of cache warming.

Token approximation
-------------------
There is no tokenizer here. A text counts ``max(1, ceil(len(text) / 4))`` tokens (characters, not
bytes). A text block (and a string ``system`` or string message ``content``) counts its text; a tool
definition counts the text of its canonical JSON (keys sorted, compact separators, ``cache_control``
removed); any other block (``tool_use``, ``tool_result``, ``thinking``...) counts its canonical JSON
the same way. Images and documents are refused with a 400. The generated reply is ``reply_tokens``
words from a fixed list, chosen from a hash of the last user message; one word is one output token
and one streamed ``text_delta``. ``reply_text`` (admin API) replaces the generated words with a
fixed text, one whitespace-led piece per token, so tests can see how a front end renders a given
reply (Markdown, hostile HTML).

Cache model
-----------
The prompt is a sequence of blocks in this order: each tool, the system prompt (a string is one
block, a list is one block per text block), then each message's content blocks (a string content is
one block). A block carrying ``cache_control: {"type": "ephemeral"}`` (TTL ``5m``, the default) or
``{"type": "ephemeral", "ttl": "1h"}`` is a breakpoint; at most 4 are allowed and ``1h`` ones must
come before ``5m`` ones. A top-level ``cache_control`` on the request (automatic caching) puts a
breakpoint on the last block, unless it already has one; it counts toward the 4.

* The key of the prefix ending at a block is a hash of the model and the canonical JSON of every
  block up to it (``cache_control`` removed, so moving a breakpoint does not change the content
  key). Keys of prefixes that reach into ``messages`` also hash ``tool_choice`` and ``thinking``
  (omitted, they count as their defaults ``auto`` and ``disabled``). Hence changing a tool
  invalidates everything, while changing ``tool_choice``/``thinking`` invalidates only the
  messages part.
* Read: for each breakpoint, the emulator looks for a live entry at the breakpoint's prefix, then at
  each earlier block boundary, up to ``lookback_blocks`` (20) blocks back. The longest live hit over
  all breakpoints is read, and the read refreshes it.
* Write: every breakpoint whose prefix is at least the model's minimum cacheable length is written
  if it has no live entry, or refreshed if it has one. Shorter prefixes are silently not cached.
* Usage: ``cache_read_input_tokens`` is the length of the hit prefix; ``cache_creation_input_tokens``
  runs from the end of the hit to the last written breakpoint; ``input_tokens`` is what follows it
  (everything when nothing is cacheable). ``cache_creation`` splits the created tokens by the TTL
  of the written breakpoint that covers them (the first written breakpoint at or after them).
* TTL: an entry lives ``ttl`` from the *start* of the last request that read or wrote it. A refresh
  never shortens an entry: its TTL becomes the longer of the stored and requested ones.
* Entries are written when the response begins (as the API does): a request that fails (error
  faults), a ``drop``ped stream, or a client that gives up during a ``slow`` delay writes nothing.
  The plan (what is read, what counts as created) is fixed at the start of the request.

Time comes from ``EmulatorConfig.clock`` (wall time by default) plus an offset that
``AnthropicEmulator.advance`` (or ``POST /_emulator/advance``) moves forward, so TTL expiry is tested
without waiting. Stream pacing uses real time.

Admin API (no API key needed): ``POST /_emulator/advance {"seconds": n}``,
``POST /_emulator/config`` (``tokens_per_second``, ``reply_tokens``, ``reply_text``,
``min_cacheable``, ``fault``), ``GET /_emulator/stats``, ``GET /_emulator/cache``,
``GET /_emulator/health``, ``POST /_emulator/reset`` (cache and fault; ``{"stats": true}`` also
clears the stats).

Run in the foreground with ``python -m devstack.anthropic_emulator --port 25204``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import itertools
import json
import re
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, cast

__all__ = [
    "FAULT_KINDS",
    "AnthropicEmulator",
    "CachePlan",
    "EmulatorConfig",
    "EmulatorStats",
    "Fault",
    "MessagesRequest",
    "PromptBlock",
    "PromptCache",
    "RequestError",
    "canonical_json",
    "estimate_tokens",
    "generate_reply",
    "main",
    "parse_messages_request",
    "tool_tokens",
]

TTL_SECONDS: dict[str, float] = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20

# Checked in order against the model name; the first substring found wins.
DEFAULT_MIN_CACHEABLE: dict[str, int] = {
    "opus-4-5": 4096,
    "opus-4-6": 4096,
    "haiku-4-5": 4096,
    "haiku-3": 2048,
    "3-haiku": 2048,
    "3-5-haiku": 2048,
}
DEFAULT_MIN_CACHEABLE_FALLBACK = 1024

# Fault kind -> HTTP status of the response it produces (200: the failure happens in the body).
FAULT_KINDS: dict[str, int] = {
    "rate_limit": 429,
    "overloaded": 529,
    "api_error": 500,
    "slow": 200,
    "drop": 200,
    "stream_error": 200,
}
_FAULT_ALIASES = {"429": "rate_limit", "529": "overloaded", "500": "api_error"}
_ERROR_FAULTS = {
    "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    "overloaded": ("overloaded_error", "Overloaded"),
    "api_error": ("api_error", "Internal server error"),
}
_REASONS = {529: "Overloaded"}

WORDS: tuple[str, ...] = (
    "the", "cache", "warm", "prompt", "token", "stream", "model", "reply", "quick", "brown",
    "fox", "lazy", "dog", "river", "stone", "cloud", "light", "shadow", "garden", "window",
    "paper", "signal", "orbit", "harbor", "copper", "silver", "maple", "cedar", "lantern",
    "meadow", "thunder", "pebble", "valley", "summit", "breeze", "candle", "engine", "canvas",
    "anchor", "falcon", "glacier", "horizon", "island", "jungle", "kettle", "ladder", "marble",
    "needle", "oyster", "puzzle", "quartz", "ribbon", "saddle", "tunnel", "umbrella", "velvet",
    "walnut", "yonder", "zephyr", "amber", "bridge", "circuit", "delta", "ember",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Tokens and prompt parsing
# --------------------------------------------------------------------------------------------


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


class RequestError(Exception):
    """An error answered to the client in Anthropic's JSON error shape."""

    def __init__(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body the API sends for this error."""
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
            "request_id": request_id,
        }


def _invalid(message: str) -> RequestError:
    return RequestError(400, "invalid_request_error", message)


@dataclass(frozen=True)
class PromptBlock:
    """One cacheable unit of the prompt: a tool, a system text block or a message content block."""

    section: str  # "tools" | "system" | "messages"
    canonical: str
    tokens: int
    ttl: str | None  # TTL of the breakpoint on this block, None if it is not a breakpoint


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

    @property
    def input_tokens(self) -> int:
        """Total prompt tokens, cached or not."""
        return sum(block.tokens for block in self.blocks)

    @property
    def breakpoints(self) -> list[int]:
        """Indices of the blocks that carry a breakpoint, in prompt order."""
        return [i for i, block in enumerate(self.blocks) if block.ttl is not None]

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


def _cache_ttl(block: dict[str, Any], where: str) -> str | None:
    control = block.get("cache_control")
    if control is None:
        return None
    where = f"{where}.cache_control" if where else "cache_control"
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise _invalid(f"{where}.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise _invalid(f"{where}.ttl: Input should be '5m' or '1h'")
    return cast(str, ttl)


def _reject_unsupported(block_type: Any, where: str) -> None:
    if block_type in ("image", "document"):
        raise _invalid(f"{where}: {block_type} blocks are not supported by this emulator")


def _content_block(block: Any, where: str, message_index: int, role: str) -> PromptBlock:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _invalid(f"{where}.type: Field required")
    block_type = block["type"]
    _reject_unsupported(block_type, where)
    ttl = _cache_ttl(block, where)
    stripped = _strip_cache_control(block)
    if block_type == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{where}.text: Field required")
        if not text:
            raise _invalid(f"{where}: text content blocks must be non-empty")
        tokens = estimate_tokens(text)
    else:
        if block_type == "tool_result" and isinstance(block.get("content"), list):
            for j, item in enumerate(block["content"]):
                _reject_unsupported(
                    item.get("type") if isinstance(item, dict) else None, f"{where}.content.{j}"
                )
        tokens = estimate_tokens(canonical_json(stripped))
    canonical = canonical_json({"m": message_index, "role": role, "block": stripped})
    return PromptBlock("messages", canonical, tokens, ttl)


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(texts) if texts else canonical_json(content)


def _require_int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise _invalid(f"{name}: Field required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{name}: Input should be a valid integer")
    return value


def _tool_blocks(tools: Any) -> list[PromptBlock]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    blocks = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _invalid(f"tools.{i}.name: Field required")
        ttl = _cache_ttl(tool, f"tools.{i}")
        stripped = _strip_cache_control(tool)
        blocks.append(
            PromptBlock("tools", canonical_json({"tool": stripped}), tool_tokens(tool), ttl)
        )
    return blocks


def _system_blocks(system: Any) -> list[PromptBlock]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [
            PromptBlock("system", canonical_json({"system": system}), estimate_tokens(system), None)
        ]
    if not isinstance(system, list):
        raise _invalid("system: Input should be a valid string or list of text blocks")
    blocks = []
    for i, block in enumerate(system):
        where = f"system.{i}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _invalid(f"{where}.type: Input should be 'text'")
        text = block.get("text")
        if not isinstance(text, str) or not text:
            raise _invalid(f"{where}: text content blocks must be non-empty")
        ttl = _cache_ttl(block, where)
        # A string system prompt and a single uncached text block are the same prompt.
        blocks.append(
            PromptBlock("system", canonical_json({"system": text}), estimate_tokens(text), ttl)
        )
    return blocks


def _message_blocks(messages: Any) -> tuple[list[PromptBlock], str]:
    if messages is None:
        raise _invalid("messages: Field required")
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    blocks: list[PromptBlock] = []
    seed_text = ""
    last = len(messages) - 1
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _invalid(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _invalid('messages: first message must use the "user" role')
        content = message.get("content")
        prefill = i == last and role == "assistant"
        if isinstance(content, str):
            items: list[Any] = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            items = content
        else:
            raise _invalid(f"{where}.content: Field required")
        if not items and not prefill:
            raise _invalid(
                f"{where}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        if prefill and items:
            tail = items[-1]
            if (
                isinstance(tail, dict)
                and isinstance(tail.get("text"), str)
                and tail["text"] != tail["text"].rstrip()
            ):
                raise _invalid("final assistant content cannot end with trailing whitespace")
        for j, item in enumerate(items):
            # A string content is the same prompt as one text block holding it.
            blocks.append(_content_block(item, f"{where}.content.{j}", i, cast(str, role)))
        if role == "user":
            seed_text = _message_text(content)
    return blocks, seed_text


def _validate_thinking(thinking: Any, max_tokens: int, tool_choice: Any) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in (
        "enabled",
        "disabled",
        "adaptive",
    ):
        raise _invalid("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if thinking["type"] != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        raise _invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if max_tokens <= budget:
        raise _invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    if isinstance(tool_choice, dict) and tool_choice.get("type") in ("any", "tool"):
        raise _invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _validate_tool_choice(tool_choice: Any) -> None:
    if tool_choice is None:
        return
    if not isinstance(tool_choice, dict) or tool_choice.get("type") not in (
        "auto",
        "any",
        "tool",
        "none",
    ):
        raise _invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if tool_choice["type"] == "tool" and not isinstance(tool_choice.get("name"), str):
        raise _invalid("tool_choice.tool.name: Field required")


def parse_messages_request(
    body: Any, *, count_tokens: bool = False, max_breakpoints: int = MAX_BREAKPOINTS
) -> MessagesRequest:
    """Validate a Messages API body the way the API does and flatten its prompt into blocks.

    ``count_tokens`` relaxes what ``/v1/messages/count_tokens`` does not require (``max_tokens``).
    Raises ``RequestError`` (400 ``invalid_request_error``) for an invalid body.
    """
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required")
    max_tokens = 0 if count_tokens else _require_int(body, "max_tokens")
    if max_tokens < 0:
        raise _invalid("max_tokens: Input should be greater than or equal to 0")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("stream: Input should be a valid boolean")
    if stream and max_tokens == 0 and not count_tokens:
        raise _invalid("max_tokens: must be greater than 0 when streaming")
    tool_choice = body.get("tool_choice")
    thinking = body.get("thinking")
    _validate_tool_choice(tool_choice)
    if not count_tokens:
        _validate_thinking(thinking, max_tokens, tool_choice)

    blocks = _tool_blocks(body.get("tools")) + _system_blocks(body.get("system"))
    message_blocks, seed_text = _message_blocks(body.get("messages"))
    blocks += message_blocks

    automatic = body.get("cache_control")
    if automatic is not None:
        ttl = _cache_ttl(body, "")
        if blocks and blocks[-1].ttl is None:
            blocks[-1] = PromptBlock(
                blocks[-1].section, blocks[-1].canonical, blocks[-1].tokens, ttl
            )

    ttls = [block.ttl for block in blocks if block.ttl is not None]
    if len(ttls) > max_breakpoints:
        raise _invalid(
            f"A maximum of {max_breakpoints} blocks with cache_control may be provided. "
            f"Found {len(ttls)}."
        )
    seen_5m = False
    for ttl in ttls:
        if ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise _invalid(
                "A ttl='1h' cache_control block must not come after a ttl='5m' cache_control "
                "block. Note that blocks are processed in the following order: `tools`, "
                "`system`, `messages`."
            )
    return MessagesRequest(model, max_tokens, stream, blocks, tool_choice, thinking, seed_text)


def reply_pieces(text: str, limit: int) -> list[str]:
    """A fixed reply cut into streamed pieces: each word with the whitespace before it."""
    return re.findall(r"\s*\S+", text)[:limit]


def generate_reply(seed_text: str, words: int) -> list[str]:
    """``words`` deterministic words chosen from ``WORDS`` by hashing ``seed_text``."""
    seed = hashlib.sha256(seed_text.encode()).digest()
    out: list[str] = []
    for i in range(words):
        digest = hashlib.blake2b(seed + i.to_bytes(4, "big"), digest_size=4).digest()
        out.append(WORDS[int.from_bytes(digest, "big") % len(WORDS)])
    return out


# --------------------------------------------------------------------------------------------
# Prompt cache
# --------------------------------------------------------------------------------------------


@dataclass
class CacheEntry:
    """A cached prefix."""

    key: str
    model: str
    tokens: int
    ttl: str
    created_at: float
    expires_at: float


@dataclass
class CachePlan:
    """What one request reads and writes, decided at the start of the request."""

    model: str
    read_key: str | None
    read_tokens: int
    writes: list[tuple[str, int, str]]  # (key, prefix tokens, ttl)
    creation_5m: int
    creation_1h: int
    input_tokens: int

    @property
    def creation_tokens(self) -> int:
        """All tokens written to the cache by this request."""
        return self.creation_5m + self.creation_1h

    def usage(self, output_tokens: int) -> dict[str, Any]:
        """The ``usage`` object of the response."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.creation_tokens,
            "cache_read_input_tokens": self.read_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.creation_5m,
                "ephemeral_1h_input_tokens": self.creation_1h,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }


class PromptCache:
    """The prefix cache shared by every request to one emulator (see the module docstring)."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.Lock()

    def plan(
        self,
        request: MessagesRequest,
        *,
        now: float,
        min_tokens: int,
        lookback: int = LOOKBACK_BLOCKS,
    ) -> CachePlan:
        """Decide the read and the writes of ``request`` at time ``now`` without changing anything."""
        blocks = request.blocks
        keys = request.prefix_keys()
        cumulative = list(itertools.accumulate(block.tokens for block in blocks))
        breakpoints = request.breakpoints
        hit = -1
        with self._lock:
            self._purge(now)
            for bp in breakpoints:
                for j in range(bp, max(-1, bp - lookback - 1), -1):
                    if j <= hit:
                        break
                    if keys[j] in self._entries:
                        hit = j
                        break
        read_tokens = cumulative[hit] if hit >= 0 else 0
        written = [bp for bp in breakpoints if cumulative[bp] >= min_tokens]
        covered = max(read_tokens, cumulative[written[-1]] if written else 0)
        creation = {"5m": 0, "1h": 0}
        previous_end = 0
        for bp in written:
            low, high = max(previous_end, read_tokens), cumulative[bp]
            if high > low:
                creation[cast(str, blocks[bp].ttl)] += high - low
            previous_end = cumulative[bp]
        return CachePlan(
            model=request.model,
            read_key=keys[hit] if hit >= 0 else None,
            read_tokens=read_tokens,
            writes=[(keys[bp], cumulative[bp], cast(str, blocks[bp].ttl)) for bp in written],
            creation_5m=creation["5m"],
            creation_1h=creation["1h"],
            input_tokens=request.input_tokens - covered,
        )

    def commit(self, plan: CachePlan, *, started_at: float) -> None:
        """Apply ``plan``: refresh the read entry, create or refresh every written prefix."""
        with self._lock:
            if plan.read_key is not None and plan.read_key in self._entries:
                entry = self._entries[plan.read_key]
                entry.expires_at = max(entry.expires_at, started_at + TTL_SECONDS[entry.ttl])
            for key, tokens, ttl in plan.writes:
                existing = self._entries.get(key)
                if existing is not None and existing.expires_at > started_at:
                    if TTL_SECONDS[ttl] > TTL_SECONDS[existing.ttl]:
                        existing.ttl = ttl
                    existing.expires_at = max(
                        existing.expires_at, started_at + TTL_SECONDS[existing.ttl]
                    )
                else:
                    self._entries[key] = CacheEntry(
                        key, plan.model, tokens, ttl, started_at, started_at + TTL_SECONDS[ttl]
                    )

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def entries(self, now: float) -> list[dict[str, Any]]:
        """The live entries, for inspection."""
        with self._lock:
            self._purge(now)
            return [
                {
                    "key": e.key[:16],
                    "model": e.model,
                    "tokens": e.tokens,
                    "ttl": e.ttl,
                    "expires_in": round(e.expires_at - now, 3),
                }
                for e in self._entries.values()
            ]

    def _purge(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]


# --------------------------------------------------------------------------------------------
# Configuration, faults, stats
# --------------------------------------------------------------------------------------------


@dataclass
class EmulatorConfig:
    """Behaviour knobs. ``clock`` returns seconds; the emulator adds its ``advance`` offset."""

    tokens_per_second: float = 40.0  # <= 0 streams without pacing
    reply_tokens: int = 300
    min_cacheable_tokens: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_MIN_CACHEABLE)
    )
    default_min_cacheable: int = DEFAULT_MIN_CACHEABLE_FALLBACK
    min_cacheable_override: int | None = None
    lookback_blocks: int = LOOKBACK_BLOCKS
    max_breakpoints: int = MAX_BREAKPOINTS
    require_api_key: bool = True
    clock: Callable[[], float] = time.time
    verbose: bool = False
    # A fixed reply instead of generated words (None: generated).
    reply_text: str | None = None

    def min_cacheable_for(self, model: str) -> int:
        """The minimum prefix length (tokens) that ``model`` caches."""
        if self.min_cacheable_override is not None:
            return self.min_cacheable_override
        for fragment, minimum in self.min_cacheable_tokens.items():
            if fragment in model:
                return minimum
        return self.default_min_cacheable

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able part of the configuration."""
        return {
            "tokens_per_second": self.tokens_per_second,
            "reply_tokens": self.reply_tokens,
            "min_cacheable_tokens": dict(self.min_cacheable_tokens),
            "default_min_cacheable": self.default_min_cacheable,
            "min_cacheable_override": self.min_cacheable_override,
            "lookback_blocks": self.lookback_blocks,
            "max_breakpoints": self.max_breakpoints,
            "require_api_key": self.require_api_key,
            "reply_text": self.reply_text,
        }


@dataclass
class Fault:
    """An injected failure.

    ``kind``: ``rate_limit`` (429, or "429"), ``overloaded`` (529), ``api_error`` (500), ``slow``
    (wait ``delay`` seconds before the first byte, then answer normally), ``drop`` (streaming: close
    the connection after ``after_deltas`` text deltas, without ``message_stop``; non-streaming:
    close without answering), ``stream_error`` (streaming only: an ``overloaded_error`` SSE
    ``error`` event after ``after_deltas`` deltas). ``remaining`` requests are affected, or every
    request while it is None.
    """

    kind: str
    remaining: int | None = None
    retry_after: float = 1.0
    delay: float = 0.0
    after_deltas: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able form, as the admin API takes and returns it."""
        return {
            "kind": self.kind,
            "count": self.remaining,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "after_deltas": self.after_deltas,
        }


@dataclass
class EmulatorStats:
    """What happened. ``requests`` has one dict per ``/v1/messages`` request: ``request_id``,
    ``message_id``, ``model``, ``stream``, ``max_tokens``, ``usage`` (None if it failed),
    ``started_at`` (emulator clock), ``status``, ``fault``, ``outcome`` (``ok``, ``error``,
    ``disconnected``, ``dropped``, ``stream_error``, ``in_progress``), ``deltas_sent``."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnects: int = 0
    drops: int = 0
    stream_closed_at: dict[str, float] = field(default_factory=dict)  # request id -> monotonic

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return {
            "request_count": len(self.requests),
            "requests": copy.deepcopy(self.requests),
            "disconnects": self.disconnects,
            "drops": self.drops,
            "stream_closed_at": dict(self.stream_closed_at),
        }

    def clear(self) -> None:
        """Forget everything recorded."""
        self.requests.clear()
        self.disconnects = 0
        self.drops = 0
        self.stream_closed_at.clear()


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: AnthropicEmulator) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client vanishing is routine here (timeouts, early closes); anything else is a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections would otherwise hold a thread forever.
    timeout = 60

    @property
    def emu(self) -> AnthropicEmulator:
        return cast(_Server, self.server).emulator

    def setup(self) -> None:
        super().setup()
        server = cast(_Server, self.server)
        with server.sockets_lock:
            server.open_sockets.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.sockets_lock:
            server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.emu.config.verbose:
            super().log_message(format, *args)

    # -- routing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        emu = self.emu
        if path == "/_emulator/stats":
            self._send_json(200, emu.stats_snapshot())
        elif path == "/_emulator/cache":
            self._send_json(200, {"entries": emu.cache.entries(emu.now()), "now": emu.now()})
        elif path == "/_emulator/health":
            self._send_json(200, {"ok": True})
        else:
            self._send_error(RequestError(404, "not_found_error", f"Not found: {path}"), "")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/v1/messages":
                self._messages()
            elif path == "/v1/messages/count_tokens":
                self._count_tokens()
            elif path.startswith("/_emulator/"):
                self._admin(path)
            else:
                self._read_body()
                raise RequestError(404, "not_found_error", f"Not found: {path}")
        except RequestError as err:
            self._send_error(err, "")
        except (ConnectionError, _ClientGone):
            self.close_connection = True

    # -- helpers --------------------------------------------------------------------------

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as err:
            raise _invalid(f"Request body is not valid JSON: {err}") from None

    def _send_json(
        self, status: int, payload: Any, request_id: str = "", headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status, _REASONS.get(status))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if request_id:
            self.send_header("request-id", request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: RequestError, request_id: str) -> None:
        try:
            self._send_json(err.status, err.body(request_id), request_id, err.headers)
        except ConnectionError:
            self.close_connection = True

    def _check_api_key(self) -> None:
        if self.emu.config.require_api_key and not (
            self.headers.get("x-api-key") or self.headers.get("authorization")
        ):
            raise RequestError(401, "authentication_error", "x-api-key header is required")

    def _client_gone(self, deadline: float) -> bool:
        """Wait until ``deadline`` (monotonic); True as soon as the client closes the connection."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    return False
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK)
                except (ConnectionError, TimeoutError):
                    return True
                if not peeked:
                    return True
                # The client sent bytes (not expected mid-response): just wait the time out.
                time.sleep(max(0.0, deadline - time.monotonic()))
                return False
        return False

    # -- endpoints ------------------------------------------------------------------------

    def _count_tokens(self) -> None:
        self._check_api_key()
        body = self._read_body()
        request = parse_messages_request(body, count_tokens=True)
        self._send_json(200, {"input_tokens": request.input_tokens})

    def _admin(self, path: str) -> None:
        body = self._read_body() or {}
        if not isinstance(body, dict):
            raise _invalid("Request body must be a JSON object")
        emu = self.emu
        if path == "/_emulator/advance":
            seconds = body.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise _invalid("seconds: Input should be a number >= 0")
            emu.advance(float(seconds))
            self._send_json(200, {"offset": emu.offset, "now": emu.now()})
        elif path == "/_emulator/config":
            try:
                emu.apply_config(body)
            except (TypeError, ValueError) as err:
                raise _invalid(str(err)) from None
            self._send_json(200, emu.config_snapshot())
        elif path == "/_emulator/reset":
            emu.reset(clear_stats=bool(body.get("stats", False)))
            self._send_json(200, {"ok": True})
        else:
            raise RequestError(404, "not_found_error", f"Not found: {path}")

    def _messages(self) -> None:
        emu = self.emu
        started_at = emu.now()
        request_id, message_id = emu.next_ids()
        record: dict[str, Any] = {
            "request_id": request_id,
            "message_id": message_id,
            "model": None,
            "stream": False,
            "max_tokens": None,
            "usage": None,
            "started_at": started_at,
            "status": 200,
            "fault": None,
            "outcome": "in_progress",
            "deltas_sent": 0,
        }
        try:
            self._check_api_key()
            body = self._read_body()
            if isinstance(body, dict):
                record.update(
                    model=body.get("model"),
                    stream=body.get("stream") is True,
                    max_tokens=body.get("max_tokens"),
                )
            request = parse_messages_request(body, max_breakpoints=emu.config.max_breakpoints)
        except RequestError as err:
            record.update(status=err.status, outcome="error")
            emu.record(record)
            self._send_error(err, request_id)
            return

        fault = emu.take_fault(request.stream)
        if fault is not None:
            record["fault"] = fault.kind
        if fault is not None and fault.kind in _ERROR_FAULTS:
            error_type, message = _ERROR_FAULTS[fault.kind]
            headers = (
                {"retry-after": f"{fault.retry_after:g}"} if fault.kind == "rate_limit" else {}
            )
            failure = RequestError(FAULT_KINDS[fault.kind], error_type, message, headers)
            record.update(status=failure.status, outcome="error")
            emu.record(record)
            self._send_error(failure, request_id)
            return

        config = emu.config
        plan = emu.cache.plan(
            request,
            now=started_at,
            min_tokens=config.min_cacheable_for(request.model),
            lookback=config.lookback_blocks,
        )
        reply_tokens = config.reply_tokens
        tokens_per_second = config.tokens_per_second
        if config.reply_text is not None:
            pieces = reply_pieces(config.reply_text, request.max_tokens)
            reply_tokens = len(reply_pieces(config.reply_text, 1 << 30))
        else:
            generated = generate_reply(request.seed_text, min(request.max_tokens, reply_tokens))
            pieces = [word if i == 0 else " " + word for i, word in enumerate(generated)]
        words = pieces
        stop_reason = "max_tokens" if request.max_tokens < reply_tokens else "end_turn"
        record["usage"] = plan.usage(0 if request.stream else len(words))
        emu.record(record)

        if (
            fault is not None
            and fault.kind == "slow"
            and self._client_gone(time.monotonic() + fault.delay)
        ):
            emu.finish_stream(record, "disconnected", 0, disconnected=True)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "drop" and not request.stream:
            emu.finish_stream(record, "dropped", 0, dropped=True)
            self.close_connection = True
            return
        if fault is None or fault.kind == "slow":
            emu.cache.commit(plan, started_at=started_at)

        if not request.stream:
            emu.finish_record(record, "ok")
            self._send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": request.model,
                    "content": [{"type": "text", "text": "".join(words)}] if words else [],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": plan.usage(len(words)),
                },
                request_id,
            )
            return
        self._stream(request, plan, words, stop_reason, fault, record, tokens_per_second)

    def _stream(
        self,
        request: MessagesRequest,
        plan: CachePlan,
        words: list[str],
        stop_reason: str,
        fault: Fault | None,
        record: dict[str, Any],
        tokens_per_second: float,
    ) -> None:
        emu = self.emu
        request_id, message_id = record["request_id"], record["message_id"]
        sent = 0
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("request-id", request_id)
            self.end_headers()
            start_usage = plan.usage(1)
            self._event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": request.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
            self._event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            self._event("ping", {"type": "ping"})
            interval = 1.0 / tokens_per_second if tokens_per_second > 0 else 0.0
            t0 = time.monotonic()
            for i, word in enumerate(words):
                if (
                    fault is not None
                    and fault.kind in ("drop", "stream_error")
                    and i == fault.after_deltas
                ):
                    break
                if interval and self._client_gone(t0 + (i + 1) * interval):
                    raise _ClientGone
                self._event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": word},
                    },
                )
                sent += 1
            if fault is not None and fault.kind == "drop":
                # No terminating chunk: the client sees the body cut short, like a reset proxy.
                emu.finish_stream(record, "dropped", sent, dropped=True)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "stream_error":
                self._event(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                )
                # Recorded before the last chunk so a client that has finished reading sees it.
                emu.finish_stream(record, "stream_error", sent)
                self._chunk(b"")
                return
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {
                        "input_tokens": plan.input_tokens,
                        "cache_creation_input_tokens": plan.creation_tokens,
                        "cache_read_input_tokens": plan.read_tokens,
                        "output_tokens": sent,
                    },
                },
            )
            self._event("message_stop", {"type": "message_stop"})
            emu.finish_stream(record, "ok", sent)
            self._chunk(b"")
        except (ConnectionError, TimeoutError, _ClientGone):
            emu.finish_stream(record, "disconnected", sent, disconnected=True)
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _event(self, name: str, payload: dict[str, Any]) -> None:
        self._chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class AnthropicEmulator:
    """An Anthropic Messages API on ``http://host:port``; see the module docstring."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, config: EmulatorConfig | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.config = config or EmulatorConfig()
        self.cache = PromptCache()
        self.stats = EmulatorStats()
        self.offset = 0.0
        self._fault: Fault | None = None
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for ``anthropic.Anthropic(base_url=...)``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> AnthropicEmulator:
        """Bind and serve in a background thread. Returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"anthropic-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.sockets_lock:
            sockets = list(server.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AnthropicEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clock ----------------------------------------------------------------------------

    def now(self) -> float:
        """Emulator time: the configured clock plus everything ``advance``d."""
        return self.config.clock() + self.offset

    def advance(self, seconds: float) -> float:
        """Move the emulator clock forward (TTL tests); returns the total offset."""
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self.offset += seconds
            return self.offset

    # -- faults and configuration -----------------------------------------------------------

    def set_fault(
        self,
        kind: str,
        *,
        count: int | None = None,
        retry_after: float = 1.0,
        delay: float = 0.0,
        after_deltas: int = 0,
    ) -> Fault:
        """Inject ``kind`` (see ``Fault``) into the next ``count`` requests, or all if None."""
        kind = _FAULT_ALIASES.get(kind, kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for every request)")
        if delay < 0 or after_deltas < 0 or retry_after < 0:
            raise ValueError("delay, after_deltas and retry_after must be >= 0")
        fault = Fault(kind, count, retry_after, delay, after_deltas)
        with self._lock:
            self._fault = fault
        return fault

    def clear_fault(self) -> None:
        """Remove the injected fault."""
        with self._lock:
            self._fault = None

    @property
    def fault(self) -> Fault | None:
        """The pending fault, if any."""
        return self._fault

    def take_fault(self, stream: bool) -> Fault | None:
        """The fault that applies to a request arriving now, consuming one of its uses."""
        with self._lock:
            fault = self._fault
            if fault is None or (fault.kind == "stream_error" and not stream):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return copy.copy(fault)

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Apply the admin API's ``/_emulator/config`` body (raises ValueError/TypeError)."""
        unknown = set(changes) - {
            "tokens_per_second",
            "reply_tokens",
            "reply_text",
            "min_cacheable",
            "fault",
        }
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        if "tokens_per_second" in changes:
            tps = changes["tokens_per_second"]
            if isinstance(tps, bool) or not isinstance(tps, int | float):
                raise TypeError("tokens_per_second must be a number")
            self.config.tokens_per_second = float(tps)
        if "reply_tokens" in changes:
            reply = changes["reply_tokens"]
            if isinstance(reply, bool) or not isinstance(reply, int) or reply < 1:
                raise ValueError("reply_tokens must be an integer >= 1")
            self.config.reply_tokens = reply
        if "reply_text" in changes:
            text = changes["reply_text"]
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise ValueError("reply_text must be a non-empty string or null")
            self.config.reply_text = text
        if "min_cacheable" in changes:
            minimum = changes["min_cacheable"]
            if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int)):
                raise TypeError("min_cacheable must be an integer or null")
            self.config.min_cacheable_override = minimum
        if "fault" in changes:
            spec = changes["fault"]
            if spec is None:
                self.clear_fault()
            elif isinstance(spec, dict) and isinstance(spec.get("kind"), str):
                self.set_fault(
                    spec["kind"],
                    count=spec.get("count"),
                    retry_after=float(spec.get("retry_after", 1.0)),
                    delay=float(spec.get("delay", 0.0)),
                    after_deltas=int(spec.get("after_deltas", 0)),
                )
            else:
                raise TypeError('fault must be null or {"kind": ..., "count": ...}')

    def config_snapshot(self) -> dict[str, Any]:
        """Configuration, pending fault and clock offset, as the admin API returns them."""
        fault = self._fault
        return {
            **self.config.as_dict(),
            "fault": fault.as_dict() if fault else None,
            "offset": self.offset,
        }

    def reset(self, *, clear_stats: bool = False) -> None:
        """Empty the cache and remove the fault (and the stats if asked)."""
        self.cache.clear()
        with self._lock:
            self._fault = None
            if clear_stats:
                self.stats.clear()

    # -- bookkeeping ----------------------------------------------------------------------

    def next_ids(self) -> tuple[str, str]:
        """A fresh (request id, message id) pair."""
        n = next(self._counter)
        return f"req_emu_{n:06d}", f"msg_emu_{n:06d}"

    def record(self, entry: dict[str, Any]) -> None:
        """Append a request to ``stats.requests`` (later updates mutate it in place)."""
        with self._lock:
            self.stats.requests.append(entry)

    def finish_record(self, entry: dict[str, Any], outcome: str) -> None:
        """Set the final outcome of a request."""
        with self._lock:
            entry["outcome"] = outcome

    def finish_stream(
        self,
        entry: dict[str, Any],
        outcome: str,
        deltas_sent: int,
        *,
        disconnected: bool = False,
        dropped: bool = False,
    ) -> None:
        """Record how a streamed (or delayed) response ended."""
        with self._lock:
            entry["outcome"] = outcome
            entry["deltas_sent"] = deltas_sent
            if entry["usage"] is not None:
                entry["usage"]["output_tokens"] = deltas_sent
            if disconnected:
                self.stats.disconnects += 1
            if dropped:
                self.stats.drops += 1
            self.stats.stream_closed_at[entry["request_id"]] = time.monotonic()

    def stats_snapshot(self) -> dict[str, Any]:
        """A JSON-able copy of the stats."""
        with self._lock:
            return self.stats.as_dict()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.anthropic_emulator",
        description="Anthropic Messages API emulator with prompt-cache semantics.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=25204)
    parser.add_argument("--tokens-per-second", type=float, default=40.0)
    parser.add_argument("--reply-tokens", type=int, default=300)
    parser.add_argument(
        "--min-cacheable",
        type=int,
        default=None,
        help="minimum cacheable prefix (tokens) for every model",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.reply_tokens < 1:
        parser.error("--reply-tokens must be >= 1")
    config = EmulatorConfig(
        tokens_per_second=args.tokens_per_second,
        reply_tokens=args.reply_tokens,
        min_cacheable_override=args.min_cacheable,
        verbose=args.verbose,
    )
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with AnthropicEmulator(args.host, args.port, config) as emulator:
        print(f"Anthropic emulator listening on {emulator.url}", flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
