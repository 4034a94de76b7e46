"""The composition root builds one model provider from MODEL_PROVIDER, in one place."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.model import AnthropicModel
from chalicelib.adapters.prices import GenaiPriceBook


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    bootstrap.reset()
    yield monkeypatch
    monkeypatch.undo()
    bootstrap.reset()


def test_the_default_provider_is_anthropics_api_with_the_catalog_ids(
    fresh: pytest.MonkeyPatch,
) -> None:
    fresh.delenv("MODEL_PROVIDER", raising=False)
    fresh.setenv("ANTHROPIC_API_KEY", "test-key")
    provider = bootstrap.provider()
    assert provider.name == "anthropic"
    assert provider.wire_id("claude-sonnet-5-5") == "claude-sonnet-5-5"
    model = bootstrap._model()
    assert isinstance(model, AnthropicModel)
    prices = bootstrap._prices()
    assert isinstance(prices, GenaiPriceBook) and prices.provider == "anthropic"


def test_an_unknown_provider_is_refused_by_name(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("MODEL_PROVIDER", "vertex")
    with pytest.raises(ValueError, match=r"MODEL_PROVIDER must be one of .*'vertex'"):
        bootstrap.provider()
