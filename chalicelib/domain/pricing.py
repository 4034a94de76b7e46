"""Anthropic prices and the cost arithmetic of a request's usage (pure)."""

from __future__ import annotations

from dataclasses import dataclass

# Multiples of the base input price, as Anthropic publishes them.
CACHE_WRITE_5M = 1.25
CACHE_WRITE_1H = 2.0
CACHE_READ = 0.1

TTL_SECONDS = {"5m": 300, "1h": 3600}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @property
    def cache_hit_pct(self) -> float | None:
        """Share of the prompt read from cache, in percent; None for an empty prompt."""
        if self.prompt_tokens == 0:
            return None
        return round(100.0 * self.cache_read_input_tokens / self.prompt_tokens, 1)

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_creation_5m_input_tokens": self.cache_creation_5m_input_tokens,
            "cache_creation_1h_input_tokens": self.cache_creation_1h_input_tokens,
        }


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


# Longest matching prefix wins; unknown models are priced like Sonnet (the common default).
PRICES: tuple[tuple[str, Price], ...] = (
    ("claude-opus-4-5", Price(5.0, 25.0)),
    ("claude-opus-4-6", Price(5.0, 25.0)),
    ("claude-opus-4", Price(15.0, 75.0)),
    ("claude-sonnet-4", Price(3.0, 15.0)),
    ("claude-haiku-4-5", Price(1.0, 5.0)),
    ("claude-3-5-haiku", Price(0.8, 4.0)),
)
DEFAULT_PRICE = Price(3.0, 15.0)


def price_for(model: str) -> Price:
    best: Price | None = None
    best_len = -1
    for prefix, price in PRICES:
        if model.startswith(prefix) and len(prefix) > best_len:
            best, best_len = price, len(prefix)
    return best or DEFAULT_PRICE


def cost_usd(model: str, usage: Usage) -> float:
    price = price_for(model)
    # Creation tokens the API did not split by TTL are billed as 5-minute writes.
    unsplit = usage.cache_creation_input_tokens - (
        usage.cache_creation_5m_input_tokens + usage.cache_creation_1h_input_tokens
    )
    five_minute_writes = usage.cache_creation_5m_input_tokens + max(unsplit, 0)
    input_units = (
        usage.input_tokens
        + CACHE_WRITE_5M * five_minute_writes
        + CACHE_WRITE_1H * usage.cache_creation_1h_input_tokens
        + CACHE_READ * usage.cache_read_input_tokens
    )
    return (input_units * price.input + usage.output_tokens * price.output) / 1_000_000


def idle_warm_budget(retention: str) -> int:
    """Warms after the last user turn that still cost less than one cache re-write.

    A warm reads the prefix at 0.1x; letting the cache lapse costs one write (1.25x for 5m,
    2x for 1h) on the next turn. Past floor(write/read) - 1 warms, warming costs more than it saves.
    """
    write = CACHE_WRITE_1H if retention == "1h" else CACHE_WRITE_5M
    return int(write / CACHE_READ) - 1
