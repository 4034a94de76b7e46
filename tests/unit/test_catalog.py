"""The model catalog: every row sourced, ids unique, aliases resolved, every id priced by
`genai-prices`, and the facts the API itself has quoted back checked against the rows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from genai_prices import data_snapshot

from chalicelib.domain import catalog
from chalicelib.domain.catalog import CATALOG, ModelFacts

ROWS = {facts.id: facts for facts in CATALOG}
ALL_IDS = [model_id for facts in CATALOG for model_id in facts.ids]
FACT_FIELDS = (
    "lifecycle",
    "context_window",
    "max_output_tokens",
    "min_cacheable_tokens",
    "accepts_prefill",
    "thinking",
    "accepts_extended_thinking",
    "accepts_forced_tool_choice",
)


def test_the_families_the_product_offers_are_all_there() -> None:
    expected = {
        "claude-haiku-4-5",
        "claude-sonnet-4-6",
        "claude-opus-4-5",
        "claude-opus-4-6",
        "claude-opus-4-7",
        "claude-opus-4-8",
        "claude-opus-5",
        "claude-opus-5-5",
        "claude-sonnet-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-fable-5",
        "claude-fable-5-1",
        "claude-fable-5-2",
    }
    assert set(ROWS) == expected


@pytest.mark.parametrize(
    "retired",
    [
        "claude-sonnet-4-5",  # retired 2026-11-30
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-1",  # retired 2026-08-05
        "claude-opus-4-0",  # retired 2026-06-15
        "claude-sonnet-4-0",
        "claude-mythos-5-1",  # verified organisations only
        "claude-3-haiku-20240307",
    ],
)
def test_retired_and_restricted_models_are_not_offered(retired: str) -> None:
    assert catalog.lookup(retired) is None


def test_ids_and_aliases_are_unique() -> None:
    assert len(ALL_IDS) == len(set(ALL_IDS))
    assert len(catalog.known_ids()) == len(ALL_IDS)


@pytest.mark.parametrize("model_id", ALL_IDS)
def test_every_id_and_alias_resolves_to_its_row(model_id: str) -> None:
    facts = catalog.lookup(model_id)
    assert facts is not None
    assert model_id in facts.ids
    assert catalog.lookup(model_id.upper()) is None  # the API's ids are exact, lowercase


@pytest.mark.parametrize("facts", CATALOG, ids=lambda f: f.id)
def test_every_row_names_dated_sources(facts: ModelFacts) -> None:
    assert facts.sources
    for source in facts.sources:
        assert source.url.startswith("https://")
        assert source.gives.strip()
        datetime.strptime(source.read_on, "%Y-%m-%d")
    # The model's own page (or, for a model too new for one, its what's-new page) is among them.
    slug = facts.id.removeprefix("claude-")
    assert any(f"/models/{slug}/" in source.url for source in facts.sources)


@pytest.mark.parametrize("facts", CATALOG, ids=lambda f: f.id)
def test_every_assumption_names_a_fact_of_the_row(facts: ModelFacts) -> None:
    for note in facts.unverified:
        field = note.split("=", 1)[0]
        assert field in FACT_FIELDS, note
        assert f"{field}={getattr(facts, field)!r}".replace("'", "") in note.replace("'", "")


@pytest.mark.parametrize("facts", CATALOG, ids=lambda f: f.id)
def test_rows_are_internally_consistent(facts: ModelFacts) -> None:
    assert facts.max_output_tokens < facts.context_window
    assert facts.min_cacheable_tokens in (512, 1024, 2048, 4096)
    if facts.thinking == "none":
        # Extended thinking is the only mode of a model without adaptive thinking.
        assert facts.accepts_extended_thinking
    if facts.thinking == "always":
        assert not facts.accepts_extended_thinking
    assert dataclasses.replace(facts) == facts  # frozen and comparable


def _genai_model(model_id: str) -> object:
    _, model = data_snapshot.get_snapshot().find_provider_model(model_id, None, "anthropic", None)
    return model


@pytest.mark.parametrize("model_id", ALL_IDS)
def test_genai_prices_knows_every_id_as_the_same_model(model_id: str) -> None:
    facts = catalog.lookup(model_id)
    assert facts is not None
    model = _genai_model(model_id)
    # Matched to the right family, not a shorter prefix (claude-opus-4-5 is not claude-opus-4).
    assert getattr(model, "name", None) == facts.name
    prices = model.get_prices(datetime(2026, 12, 1, tzinfo=UTC))  # type: ignore[attr-defined]
    for price in ("input_mtok", "output_mtok", "cache_write_mtok", "cache_read_mtok"):
        assert getattr(prices, price) is not None, (model_id, price)
    assert prices.cache_write_1h_mtok is not None


# Facts the API or the docs state in so many words, kept apart from the table they check.
@pytest.mark.parametrize(
    ("model_id", "field", "value"),
    [
        # "max_tokens: 128001 > 64000, which is the maximum ... for claude-opus-4-5-20251101"
        ("claude-opus-4-5-20251101", "max_output_tokens", 64_000),
        # "max_tokens: 128001 > 128000, which is the maximum ... for claude-opus-4-6"
        ("claude-opus-4-6", "max_output_tokens", 128_000),
        # "Prefilling the assistant message works on Claude Haiku 4.5"
        ("claude-haiku-4-5-20251001", "accepts_prefill", True),
        # "Prefill removal: ... returns a 400 error on Claude 4.6 models"
        ("claude-sonnet-4-6", "accepts_prefill", False),
        # Fable 5.1: "Prefilling the assistant response returns a 400 error."
        ("claude-fable-5-1", "accepts_prefill", False),
        # Fable 5.1: "The minimum cacheable prompt length is 512 tokens."
        ("claude-fable-5-1", "min_cacheable_tokens", 512),
        # "4,096 tokens for Claude Haiku 4.5"; "2,048 tokens for ... Claude Opus 4.7"
        ("claude-haiku-4-5", "min_cacheable_tokens", 4096),
        ("claude-opus-4-7", "min_cacheable_tokens", 2048),
        # Opus 5.5: "thinking is always on"; Haiku 4.5: thinking "Extended"
        ("claude-opus-5-5", "thinking", "always"),
        ("claude-haiku-4-5", "thinking", "none"),
        # "Claude 4.7 and later models do not support it [extended thinking]"
        ("claude-opus-4-7", "accepts_extended_thinking", False),
        ("claude-opus-4-6", "accepts_extended_thinking", True),
        # Sonnet 5.5: "Forced tool use returns an error"; Opus 4.8 "Accepts ... forced tool choice"
        ("claude-sonnet-5-5", "accepts_forced_tool_choice", False),
        ("claude-opus-4-8", "accepts_forced_tool_choice", True),
    ],
)
def test_documented_facts(model_id: str, field: str, value: object) -> None:
    facts = catalog.lookup(model_id)
    assert facts is not None
    assert getattr(facts, field) == value


def test_every_current_model_refuses_prefill_except_the_4_5_generation() -> None:
    accepting = {facts.id for facts in CATALOG if facts.accepts_prefill}
    assert accepting == {"claude-opus-4-5", "claude-haiku-4-5"}


def test_docs_models_md_is_generated_from_the_current_catalog_prices_and_rules() -> None:
    from scripts import models_table

    assert models_table.main(["--check"]) == 0, "run: python -m scripts.models_table --write"
