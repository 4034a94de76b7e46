"""The Bedrock rows of the catalog: every catalog model has one, every id sent is priced under
genai-prices' `aws` provider, and a profile's id resolves back to its model."""

from __future__ import annotations

import pytest

from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.domain import catalog
from chalicelib.domain.catalog import bedrock
from chalicelib.domain.pricing import Usage

IDS = [(row.model, scope) for row in bedrock.BEDROCK for scope in row.scopes]
NOW_MS = 1_796_601_600_000  # 2026-12-07
MILLION_IN = Usage(input_tokens=1_000_000)


def test_every_catalog_model_has_a_bedrock_row() -> None:
    assert {row.model for row in bedrock.BEDROCK} == {facts.id for facts in catalog.CATALOG}


@pytest.mark.parametrize(("model", "scope"), IDS)
def test_every_id_sent_is_priced_by_the_id_itself(model: str, scope: str) -> None:
    book = GenaiPriceBook("aws", lambda m: bedrock.bedrock_id(m, scope))
    assert book.cost_usd(model, MILLION_IN, NOW_MS) > 0
    rates = book.cache_rates(model, NOW_MS)
    assert rates.cache_read < rates.input < rates.cache_write_5m < rates.cache_write_1h


@pytest.mark.parametrize("model", [row.model for row in bedrock.BEDROCK])
def test_a_regional_profile_costs_more_than_the_global_one(model: str) -> None:
    def usd(scope: str) -> float:
        book = GenaiPriceBook("aws", lambda m: bedrock.bedrock_id(m, scope))
        return book.cost_usd(model, MILLION_IN, NOW_MS)

    assert usd("us") == pytest.approx(usd("global") * 1.1, rel=0.01)
    assert usd("") == pytest.approx(usd("us"))


def test_opus_4_7_caches_from_4096_tokens_on_bedrock_not_2048() -> None:
    row = bedrock.lookup("claude-opus-4-7")
    facts = catalog.lookup("claude-opus-4-7")
    assert row is not None and facts is not None
    assert (row.min_cacheable_tokens, facts.min_cacheable_tokens) == (4096, 2048)


@pytest.mark.parametrize(("model", "scope"), IDS)
def test_an_id_sent_resolves_to_its_catalog_model(model: str, scope: str) -> None:
    row = bedrock.catalog_model(bedrock.bedrock_id(model, scope))
    assert row is not None and row.model == model


def test_every_row_names_its_sources_and_no_row_caches_below_the_apis_minimum() -> None:
    for row in bedrock.BEDROCK:
        facts = catalog.lookup(row.model)
        assert facts is not None and row.sources
        assert row.min_cacheable_tokens >= facts.min_cacheable_tokens
