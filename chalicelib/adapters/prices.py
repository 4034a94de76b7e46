"""Model prices from pydantic's `genai-prices` library (its data snapshot, never fetched live).

One book per provider: `anthropic` (Anthropic's API) or `aws` (Amazon Bedrock), each priced by
the model id that provider is actually sent (`wire_id`), since Bedrock prices a regional or
`us.`/`eu.` profile 10 % above its `global.` one (genai-prices 0.2.3 data, provider `aws`).

The library carries every Claude model's input, output, 5-minute and 1-hour cache write and cache
read prices, size tiers (Haiku 5.5 above 100k prompt tokens) and dated price changes, so no price
table is kept here. It needs pydantic and a 1.6 MB data module (~0.35 s to load): only the warm and
generate functions import it, through the composition root, never the WebSocket handlers.

Usage mapping (genai-prices counts cache tokens inside `input_tokens`, Anthropic reports them
beside it): input = input + cache read + cache creation; cache_write = all creation, of which
cache_write_1h the 1-hour part.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chalicelib.domain.pricing import CacheRates, Usage

if TYPE_CHECKING:
    import genai_prices

PROVIDER = "anthropic"


def _same_id(model: str) -> str:
    return model


class UnknownPrice(LookupError):
    """The price library has no price for this model."""


def _moment(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC)


def _library_usage(usage: Usage) -> genai_prices.Usage:
    import genai_prices

    return genai_prices.Usage(
        input_tokens=usage.prompt_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        cache_write_1h_tokens=usage.cache_creation_1h_input_tokens,
        output_tokens=usage.output_tokens,
    )


class GenaiPriceBook:
    def __init__(self, provider: str = PROVIDER, wire_id: Callable[[str], str] = _same_id) -> None:
        self.provider = provider
        self.wire_id = wire_id

    def cost_usd(self, model: str, usage: Usage, at_ms: int) -> float:
        """What the provider bills for `usage` on `model` at the time of the request."""
        return self._price(model, _library_usage(usage), at_ms)

    def cache_rates(self, model: str, at_ms: int, prompt_tokens: int = 0) -> CacheRates:
        """Dollars per million tokens for a prompt of `prompt_tokens`, at `at_ms`: derived by pricing
        a synthetic prompt of that size, so the library applies its own tier rules."""
        import genai_prices

        size = max(prompt_tokens, 1)

        def rate(**counts: int) -> float:
            usage = genai_prices.Usage(input_tokens=size, **counts)
            return self._price(model, usage, at_ms) * 1_000_000 / size

        return CacheRates(
            input=rate(),
            cache_write_5m=rate(cache_write_tokens=size),
            cache_write_1h=rate(cache_write_tokens=size, cache_write_1h_tokens=size),
            cache_read=rate(cache_read_tokens=size),
        )

    def _price(self, model: str, usage: genai_prices.Usage, at_ms: int) -> float:
        import genai_prices

        try:
            calculation = genai_prices.calc_price(
                usage,
                self.wire_id(model),
                provider_id=self.provider,
                genai_request_timestamp=_moment(at_ms),
            )
        except LookupError as error:
            raise UnknownPrice(model) from error
        return float(calculation.total_price)
