"""The emulator's knobs, its injectable faults, and the stats it records."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import catalog
from devstack.anthropic.cache import LOOKBACK_POSITIONS
from devstack.anthropic.prompt import MAX_BREAKPOINTS

# Fault kind -> HTTP status of the response it produces (200: the failure happens in the body).
FAULT_KINDS: dict[str, int] = {
    "rate_limit": 429,
    "overloaded": 529,
    "api_error": 500,
    "slow": 200,
    "drop": 200,
    "stream_error": 200,
}
FAULT_ALIASES = {"429": "rate_limit", "529": "overloaded", "500": "api_error"}
ERROR_FAULTS = {
    "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    "overloaded": ("overloaded_error", "Overloaded"),
    "api_error": ("api_error", "Internal server error"),
}


@dataclass
class EmulatorConfig:
    """Behaviour knobs. ``clock`` returns seconds; the emulator adds its ``advance`` offset."""

    tokens_per_second: float = 40.0  # <= 0 streams without pacing
    reply_tokens: int = 300
    # One minimum for every model instead of each catalog row's (tests and the local stack use
    # small prompts that would otherwise never cache).
    min_cacheable_override: int | None = None
    lookback_positions: int = LOOKBACK_POSITIONS
    max_breakpoints: int = MAX_BREAKPOINTS
    require_api_key: bool = True
    clock: Callable[[], float] = time.time
    verbose: bool = False
    # A fixed reply instead of generated words (None: generated); see reply.reply_pieces.
    reply_text: str | None = None

    def min_cacheable_for(self, model: str) -> int:
        """The minimum prefix length (tokens) that ``model`` caches (its catalog row's)."""
        if self.min_cacheable_override is not None:
            return self.min_cacheable_override
        facts = catalog.lookup(model)
        if facts is None:
            raise ValueError(f"{model!r} is not in the model catalog")
        return facts.min_cacheable_tokens

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able part of the configuration."""
        return {
            "tokens_per_second": self.tokens_per_second,
            "reply_tokens": self.reply_tokens,
            "min_cacheable_override": self.min_cacheable_override,
            "lookback_positions": self.lookback_positions,
            "max_breakpoints": self.max_breakpoints,
            "require_api_key": self.require_api_key,
            "reply_text": self.reply_text,
            "models": list(catalog.known_ids()),
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
    ``started_at`` (emulator clock), ``status``, ``error`` (the error type of a refused request,
    else None), ``fault``, ``outcome`` (``ok``, ``error``, ``disconnected``, ``dropped``,
    ``stream_error``, ``in_progress``), ``deltas_sent``."""

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
