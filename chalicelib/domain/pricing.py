"""Usage, per-model cache rates, and the break-even arithmetic of warming (pure).

Prices themselves come from the `genai-prices` library through `chalicelib/adapters/prices.py`;
this module only holds the values the policy reasons with and the arithmetic on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    def cached_prefix_tokens(self) -> int:
        """Tokens of the prompt that are in the cache after this request (read or written)."""
        return self.cache_read_input_tokens + self.cache_creation_input_tokens

    @property
    def cache_hit_pct(self) -> float | None:
        """Share of the prompt read from cache, in percent; None for an empty prompt."""
        if self.prompt_tokens == 0:
            return None
        return round(100.0 * self.cache_read_input_tokens / self.prompt_tokens, 1)

    @property
    def prefix_hit_pct(self) -> float | None:
        """Share of the cacheable prefix read from cache, in percent: what a warm is judged by.
        The placeholder message that ends every warm is never cached and is left out."""
        if self.cached_prefix_tokens == 0:
            return None
        return round(100.0 * self.cache_read_input_tokens / self.cached_prefix_tokens, 1)

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
class CacheRates:
    """A model's input-side prices, US dollars per million tokens, at one prompt size and date."""

    input: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float

    def write(self, retention: str) -> float:
        return self.cache_write_1h if retention == "1h" else self.cache_write_5m


def idle_warm_budget(rates: CacheRates, retention: str) -> int:
    """How many warms after the last user turn still cost less than what one rescue saves.

    Each warm reads the prefix (`read` per token). A rescue — the user returns while warming kept
    the cache alive — makes the next turn pay a read instead of a re-write, saving `write - read`.
    Warming stops paying once n·read exceeds that saving: n = floor((write - read) / read).
    11 for the 5-minute cache at the classic 0.1x read, 24 at 0.05x, 49 at 0.025x; 19 / 39 / 79 for
    the 1-hour cache (2x writes).
    """
    write, read = rates.write(retention), rates.cache_read
    if read <= 0:
        raise ValueError("a cache read must cost something")
    # The small epsilon keeps exact ratios such as 11.0 from flooring to 10 through float error.
    return max(0, math.floor((write - read) / read + 1e-9))
