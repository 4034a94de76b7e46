"""The warming state of one conversation and what the policy is told of its model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import Usage
from chalicelib.domain.timing import TIMINGS

Status = Literal[
    "off",
    "waiting-for-first-turn",
    "scheduled",
    "warming",
    "paused-idle",
    "cache-expired",
    "not-cacheable",
    "error",
    "closed",
    "context-full",
    "budget-exhausted",
]
Retention = Literal["5m", "1h"]

DEFAULT_INTERVAL_SECONDS = 240
MAX_CONSECUTIVE_ERRORS = 3


class InvalidInterval(Refused):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_interval", message)


def interval_bounds(retention: str) -> tuple[int, int]:
    return TIMINGS.interval_bounds(retention)


@dataclass(frozen=True)
class WarmStats:
    warms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_cost_usd: float = 0.0
    last_warm_cost_usd: float | None = None
    last_warm_tokens: int | None = None
    # Share read from cache by the latest request: of a warm's cacheable prefix, of a turn's prompt.
    last_cache_pct: float | None = None

    def with_warm(self, usage: Usage, cost: float) -> WarmStats:
        return replace(
            self,
            warms=self.warms + 1,
            input_tokens=self.input_tokens + usage.input_tokens,
            output_tokens=self.output_tokens + usage.output_tokens,
            cache_read_tokens=self.cache_read_tokens + usage.cache_read_input_tokens,
            cache_write_tokens=self.cache_write_tokens + usage.cache_creation_input_tokens,
            total_cost_usd=round(self.total_cost_usd + cost, 8),
            last_warm_cost_usd=round(cost, 8),
            last_warm_tokens=usage.prompt_tokens + usage.output_tokens,
            last_cache_pct=usage.prefix_hit_pct,
        )


@dataclass(frozen=True)
class WarmingState:
    retention: Retention = "5m"
    enabled: bool = False
    closed: bool = False
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    status: Status = "off"
    seq: int = 0
    next_warm_at: int | None = None
    # The timer adapter's handle of the live tick (a schedule name), None for a direct invoke.
    timer_ref: str | None = None
    last_warm_at: int | None = None
    # Start of the last request that read or wrote the cache (its TTL counts from there).
    last_refresh_at: int | None = None
    has_prefix: bool = False
    idle_warms: int = 0
    consecutive_errors: int = 0
    last_error: str | None = None
    # A claimed warm is held until its invocation's deadline (when Lambda kills it at the
    # latest), or released at once when the invocation fails: then a redelivery takes it over.
    warm_lease_until: int | None = None
    # The live tick may rebuild an expired cache: the user enabled warming and asked for it.
    rebuild: bool = False
    turn_started_at: int | None = None
    # Tokens of the cacheable prefix as last measured (a sealed turn's prompt + reply, or a warm's
    # read + write); None before any.
    prefix_tokens: int | None = None
    # The history no longer leaves room for another turn in the model's context window: warming
    # would keep alive a prefix no turn can use. It only grows, so this never clears.
    context_full: bool = False
    stats: WarmStats = field(default_factory=WarmStats)

    @property
    def ttl_ms(self) -> int:
        return TIMINGS.ttl_ms(self.retention)

    @property
    def cache_expires_at(self) -> int | None:
        if self.last_refresh_at is None:
            return None
        return self.last_refresh_at + self.ttl_ms


@dataclass(frozen=True)
class ModelTerms:
    """What the policy needs to know of the conversation's model, looked up by the caller: the
    idle budget from its prices (`pricing.idle_warm_budget`) and its minimum cacheable prefix
    (the model catalog)."""

    idle_budget: int
    min_cacheable_tokens: int
    # The largest prompt a turn of this conversation may send: the model's context window minus
    # the conversation's maxTokens (the API refuses prompt + max_tokens over the window). None:
    # unknown, never checked.
    context_limit: int | None = None


# --- events -------------------------------------------------------------------------------
