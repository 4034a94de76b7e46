"""The warming state of one conversation and what the policy is told of its model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from chalicelib.domain.errors import Refused
from chalicelib.domain.pricing import CacheRates, Usage
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
# The cache a conversation's requests mark (`cache_control.ttl`).
Retention = Literal["5m", "1h"]
# What the user asked for at creation: one cache, or "auto" (the cheaper one, chosen per turn).
RetentionSetting = Literal["auto", "5m", "1h"]

MAX_CONSECUTIVE_ERRORS = 3
# A warm's error when it was not sent because its cache would have expired before it arrived.
LATE = "too_late"

# Why the cache in use is the one it is (the panel's `cache-retention.reason`).
REASON_SET = "set when the conversation was created"
# True until the third turn's request picks a cache (after two sealed turns too, issue 21).
REASON_MEASURING = (
    "auto: 5m for the first two turns, which measure this conversation's sizes; "
    "from the third on, each turn's request takes the cheaper cache"
)


class InvalidInterval(Refused):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_interval", message)


def interval_bounds(retention: str) -> tuple[int, int]:
    return TIMINGS.interval_bounds(retention)


def default_interval(retention: str) -> int:
    """TTL - 10 s: the warm lands as late as the measured timer allows (domain/timing.py)."""
    return interval_bounds(retention)[1]


def effective_interval(choice: int | None, retention: str) -> int:
    """The user's interval, clamped to this cache's bounds, or the cache's default: with the
    auto cache an interval set on one cache carries over to the other as near as it can."""
    low, high = interval_bounds(retention)
    if choice is None:
        return high
    return min(max(choice, low), high)


@dataclass(frozen=True)
class WarmStats:
    warms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # Every warm's cost, whether or not the user came back after it: what warming spent.
    total_cost_usd: float = 0.0
    last_warm_cost_usd: float | None = None
    last_warm_tokens: int | None = None
    # Share read from cache by the latest request: of a warm's cacheable prefix, of a turn's prompt.
    last_cache_pct: float | None = None
    # Turns that read the prefix only because warming kept it alive, and what they saved: the
    # re-write each avoided minus its read.
    rescues: int = 0
    saved_usd: float = 0.0

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

    def with_rescue(self, saved_usd: float) -> WarmStats:
        return replace(
            self, rescues=self.rescues + 1, saved_usd=round(self.saved_usd + saved_usd, 8)
        )

    @property
    def net_usd(self) -> float:
        """Saved minus spent: negative while warming has cost more than it rescued."""
        return round(self.saved_usd - self.total_cost_usd, 8)


@dataclass(frozen=True)
class WarmingState:
    # The cache in use: what the prompts mark, what the TTL, the interval and the budget follow.
    retention: Retention = "5m"
    # The user left the cache to us ("auto"): it is chosen again at each turn.
    auto: bool = False
    retention_reason: str = REASON_SET
    enabled: bool = False
    closed: bool = False
    # The interval the user set, None for the cache's default (`interval_seconds`).
    interval_choice: int | None = None
    status: Status = "off"
    seq: int = 0
    next_warm_at: int | None = None
    # The timer adapter's handle of the live tick (a schedule name), None for a direct invoke.
    timer_ref: str | None = None
    last_warm_at: int | None = None
    # Start of the last request that read or wrote the cache (its TTL counts from there).
    last_refresh_at: int | None = None
    # When the cache the last turn refreshed would have expired without warming: a turn that
    # starts later and still reads the prefix was rescued by warming.
    turn_expires_at: int | None = None
    has_prefix: bool = False
    idle_warms: int = 0
    consecutive_errors: int = 0
    last_error: str | None = None
    # A claimed warm is held until `steps.lease_until` (never past its invocation's deadline),
    # or released at once when the invocation fails: then a redelivery takes it over.
    warm_lease_until: int | None = None
    # The live tick may rebuild an expired cache: the user enabled warming and asked for it.
    rebuild: bool = False
    turn_started_at: int | None = None
    # Tokens of the cacheable prefix as last measured (a sealed turn's prompt + reply, or a warm's
    # read + write); None before any.
    prefix_tokens: int | None = None
    # Tokens the last sealed turn added to the prefix (its message and reply); None until two
    # turns have been measured.
    exchange_tokens: int | None = None
    # The history no longer leaves room for another turn in the model's context window: warming
    # would keep alive a prefix no turn can use. It only grows, so this never clears.
    context_full: bool = False
    # The last sealed turn measured a prefix below the model's minimum cacheable length: a warm
    # would be billed and cache nothing, so enabling warming shows `not-cacheable` at once. The
    # next sealed turn measures again.
    below_min_cacheable: bool = False
    stats: WarmStats = field(default_factory=WarmStats)
    # From the model's terms at the last seal, for the panel: how many idle warms one rescue pays
    # for on the cache in use, and that cache's read price (USD per million tokens). None before.
    idle_budget: int | None = None
    cache_read_rate: float | None = None

    @property
    def setting(self) -> RetentionSetting:
        return "auto" if self.auto else self.retention

    @property
    def interval_seconds(self) -> int:
        return effective_interval(self.interval_choice, self.retention)

    @property
    def ttl_ms(self) -> int:
        return TIMINGS.ttl_ms(self.retention)

    @property
    def cache_expires_at(self) -> int | None:
        if self.last_refresh_at is None:
            return None
        return self.last_refresh_at + self.ttl_ms

    @property
    def warms_left(self) -> int | None:
        """Warms still to come before the idle pause, if no turn comes first (None: not known)."""
        if self.idle_budget is None:
            return None
        return max(0, self.idle_budget - self.idle_warms)

    @property
    def cost_per_hour_usd(self) -> float | None:
        """What an hour of warming costs at the current interval: each warm reads the measured
        prefix at the cache-read price. None until a sealed turn measured both."""
        if self.prefix_tokens is None or self.cache_read_rate is None:
            return None
        per_warm = self.prefix_tokens * self.cache_read_rate / 1_000_000
        return round(per_warm * 3600 / self.interval_seconds, 6)


@dataclass(frozen=True)
class ModelTerms:
    """What the policy needs to know of the conversation's model, looked up by the caller: the
    idle budget from its prices for the cache in use (`pricing.idle_warm_budget`), its minimum
    cacheable prefix (the model catalog), and its cache prices, which the auto cache choice and
    the rescues' savings are computed from (None when not looked up: neither is then computed)."""

    idle_budget: int
    min_cacheable_tokens: int
    # The largest prompt a turn of this conversation may send: the model's context window minus
    # the conversation's maxTokens (the API refuses prompt + max_tokens over the window). None:
    # unknown, never checked.
    context_limit: int | None = None
    rates: CacheRates | None = None
