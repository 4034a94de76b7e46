"""The prompt cache shared by every request to one emulator (semantics: the package docstring)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any, cast

from devstack.anthropic.prompt import TTL_SECONDS, MessagesRequest

# "The system checks at most 20 positions per breakpoint, counting the breakpoint itself as the
# first" (https://platform.claude.com/docs/en/build-with-claude/prompt-caching, as quoted on
# 2026-08-10; Anthropic's claude-api skill: "Each breakpoint walks backward at most 20 positions").
LOOKBACK_POSITIONS = 20


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
    """Prefix entries keyed by model and content, each with a TTL from its last use."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.Lock()

    def plan(
        self,
        request: MessagesRequest,
        *,
        now: float,
        min_tokens: int,
        lookback: int = LOOKBACK_POSITIONS,
    ) -> CachePlan:
        """Decide the read and the writes of ``request`` at time ``now`` without changing anything."""
        blocks = request.blocks
        keys = request.prefix_keys()
        positions = request.positions()
        cumulative = list(itertools.accumulate(block.tokens for block in blocks))
        breakpoints = request.breakpoints
        hit = -1
        with self._lock:
            self._purge(now)
            for bp in breakpoints:
                # The breakpoint's own position is the first of the `lookback` checked.
                oldest = positions[bp] - lookback + 1
                for j in range(bp, -1, -1):
                    if j <= hit or positions[j] < oldest:
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
