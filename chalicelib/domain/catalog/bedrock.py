"""Claude on Amazon Bedrock: the id each catalog model is sent under, and how Bedrock caches it.

A row per catalog model Bedrock serves. The id sent is `{scope}.{base_id}` for a cross-region
inference profile (`global`, `us`, `eu`, ...) or `base_id` itself for the regional model
(scope ""); that same id keys the price book (genai-prices provider `aws`: regional ids and
`us.`/`eu.` profiles cost 10 % more than `global.`). Bedrock's prompt cache has the same rules as
Anthropic's API except where a row says otherwise: its minimum cacheable prefix (Opus 4.7: 4,096
on Bedrock, 2,048 on the API) and whether a `"ttl": "1h"` breakpoint is served.

All models go through InvokeModel on bedrock-runtime (`anthropic.AnthropicBedrock`); docs/models.md
"Amazon Bedrock" gives the evidence for that route over the Mantle endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.catalog.facts import Source

LEGACY_PAGE = Source(
    "https://platform.claude.com/docs/en/build-with-claude/claude-on-amazon-bedrock-legacy",
    "base ids and profile scopes, table 'API model IDs' (Opus 4.6 anthropic.claude-opus-4-6-v1: "
    "global/us/eu/jp/apac; Sonnet 4.6 anthropic.claude-sonnet-4-6: global/us/eu/jp; Opus 4.5 "
    "anthropic.claude-opus-4-5-20251101-v1:0: global/us/eu); 'Claude Opus 4.7 is reachable "
    "through InvokeModel on bedrock-runtime ... it does not have an ARN-versioned model ID'",
    "2026-12-07",
)
AWS_CACHING = Source(
    "https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html",
    "min_cacheable_tokens (the API's values except Opus 4.7: 4,096) and one_hour_cache (1 h on "
    "Fable 5, Opus 5, Opus 4.5-4.8, Sonnet 4.5-5, Haiku 4.5), as checked in ../shared/NOTES.md "
    "'Amazon Bedrock'",
    "2026-12-06",
)
AWS_PRICES = Source(
    "https://github.com/pydantic/genai-prices (0.2.3 data, provider aws)",
    "the base id and profile ids priced: each row's ids match one of its models' clauses",
    "2026-12-07",
)
# The scopes every row is offered under here; `tests/unit/test_bedrock_catalog.py` checks each id
# is priced. Other profiles (jp., apac., au.) exist for some models: add them per row when used.
SCOPES: tuple[str, ...] = ("global", "us", "eu", "")

_NOT_IN_AWS_TABLE = (
    "min_cacheable_tokens and one_hour_cache: the model was not in AWS's prompt-caching table "
    "when read; the API's minimum is assumed, and whether a 1 h breakpoint is served is unverified (the product sends what the conversation asks)"
)
_ID_FROM_PRICES = "base_id: read from genai-prices' aws match clauses, not from an AWS model table"


@dataclass(frozen=True)
class BedrockRow:
    model: str  # the catalog id
    base_id: str  # Bedrock's model id in a region, without a profile prefix
    min_cacheable_tokens: int
    one_hour_cache: bool
    sources: tuple[Source, ...]
    unverified: tuple[str, ...] = ()
    scopes: tuple[str, ...] = SCOPES


def _row(
    model: str,
    base_id: str,
    min_tokens: int,
    one_hour: bool,
    *unverified: str,
    legacy_page: bool = False,
    scopes: tuple[str, ...] = SCOPES,
) -> BedrockRow:
    sources = (LEGACY_PAGE, AWS_CACHING, AWS_PRICES) if legacy_page else (AWS_CACHING, AWS_PRICES)
    return BedrockRow(model, base_id, min_tokens, one_hour, sources, tuple(unverified), scopes)


BEDROCK: tuple[BedrockRow, ...] = (
    _row(
        "claude-fable-5-2",
        "anthropic.claude-fable-5-2",
        512,
        False,
        _NOT_IN_AWS_TABLE,
        _ID_FROM_PRICES,
    ),
    _row(
        "claude-fable-5-1",
        "anthropic.claude-fable-5-1",
        512,
        False,
        _NOT_IN_AWS_TABLE,
        _ID_FROM_PRICES,
        # genai-prices has no eu. profile for it.
        scopes=("global", "us", ""),
    ),
    _row("claude-fable-5", "anthropic.claude-fable-5", 512, True, _ID_FROM_PRICES),
    _row(
        "claude-opus-5-5",
        "anthropic.claude-opus-5-5",
        512,
        False,
        _NOT_IN_AWS_TABLE,
        _ID_FROM_PRICES,
    ),
    _row("claude-opus-5", "anthropic.claude-opus-5", 512, True, _ID_FROM_PRICES),
    _row(
        "claude-sonnet-5-5",
        "anthropic.claude-sonnet-5-5",
        512,
        False,
        _NOT_IN_AWS_TABLE,
        _ID_FROM_PRICES,
    ),
    _row("claude-sonnet-5", "anthropic.claude-sonnet-5", 1024, True, _ID_FROM_PRICES),
    _row(
        "claude-haiku-5-5",
        "anthropic.claude-haiku-5-5",
        512,
        False,
        _NOT_IN_AWS_TABLE,
        _ID_FROM_PRICES,
    ),
    _row("claude-opus-4-8", "anthropic.claude-opus-4-8", 1024, True, _ID_FROM_PRICES),
    _row("claude-opus-4-7", "anthropic.claude-opus-4-7", 4096, True, legacy_page=True),
    _row("claude-opus-4-6", "anthropic.claude-opus-4-6-v1", 4096, True, legacy_page=True),
    _row("claude-sonnet-4-6", "anthropic.claude-sonnet-4-6", 1024, True, legacy_page=True),
    _row(
        "claude-opus-4-5", "anthropic.claude-opus-4-5-20251101-v1:0", 4096, True, legacy_page=True
    ),
    _row(
        "claude-haiku-4-5",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        4096,
        True,
        "base_id: the legacy page's table was read only down to Opus 4.5; genai-prices prices "
        "Haiku 4.5 only under this dated id",
    ),
)

_BY_MODEL: dict[str, BedrockRow] = {row.model: row for row in BEDROCK}


def lookup(model: str) -> BedrockRow | None:
    """The Bedrock row of a catalog id; None for a model this table does not serve."""
    return _BY_MODEL.get(model)


def bedrock_id(model: str, scope: str) -> str:
    """The id sent to Bedrock for catalog model `model` under profile `scope` ("" = regional)."""
    row = _BY_MODEL.get(model)
    if row is None:
        # Sent as it is: Bedrock refuses it, and the refusal is the caller's model_unavailable.
        return model
    return f"{scope}.{row.base_id}" if scope else row.base_id


def catalog_model(sent_id: str) -> BedrockRow | None:
    """The row a Bedrock id (with or without a profile prefix) belongs to."""
    for row in BEDROCK:
        if sent_id == row.base_id or any(sent_id == f"{s}.{row.base_id}" for s in row.scopes if s):
            return row
    return None
