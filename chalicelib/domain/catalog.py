"""The model catalog: what each Claude model accepts and how it caches, from Anthropic's documentation.

Every model-dependent decision reads this table: which model ids a conversation may use, the
largest `maxTokens`, whether the pre-warm request shape is needed (all current models refuse a
final assistant message), the minimum cacheable prefix, and the thinking mode. Prices are not
here: they come from the maintained `genai-prices` library (`chalicelib/adapters/prices.py`),
which carries 1-hour writes, size tiers and dated price changes.

Each row names the pages it was read from and the date. When Anthropic ships a model, add a row
here (and check `genai-prices` knows it: `tests/unit/test_catalog.py` fails otherwise), then run
`make conformance` against the real API before offering it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "none": thinks only when a request enables it (the docs' "Extended"); we never do.
# "adaptive": thinks by default when it judges it useful (the docs' "Adaptive").
# "always": adaptive thinking that cannot be turned off (the docs' "Adaptive (always on)").
ThinkingMode = Literal["none", "adaptive", "always"]
Lifecycle = Literal["active", "legacy", "deprecated"]


@dataclass(frozen=True)
class Source:
    url: str
    gives: str  # which facts of the row this page supports
    read_on: str  # ISO date


@dataclass(frozen=True)
class ModelFacts:
    id: str  # the id Anthropic's models overview lists first (an alias where one exists)
    name: str
    # Other ids the API accepts for the same model (dated snapshots), all resolved to `id`.
    aliases: tuple[str, ...]
    lifecycle: Lifecycle
    context_window: int
    max_output_tokens: int
    # Prefixes shorter than this (tokens) are silently not cached (prompt-caching docs).
    min_cacheable_tokens: int
    # False: a request whose last message is an assistant message gets a 400.
    accepts_prefill: bool
    thinking: ThinkingMode
    sources: tuple[Source, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


_OVERVIEW = "https://platform.claude.com/docs/en/about-claude/models/overview"
_CACHING = "https://platform.claude.com/docs/en/build-with-claude/prompt-caching"
_READ = "2026-12-01"

# Provisional rows (the full table, every source, lands with the catalog research).
CATALOG: tuple[ModelFacts, ...] = (
    ModelFacts(
        id="claude-sonnet-5-5",
        name="Claude Sonnet 5.5",
        aliases=(),
        lifecycle="active",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=1024,
        accepts_prefill=False,
        thinking="adaptive",
        sources=(
            Source(
                "https://platform.claude.com/docs/en/models/sonnet-5-5/overview",
                "context, max output, thinking",
                _READ,
            ),
        ),
    ),
    ModelFacts(
        id="claude-sonnet-4-6",
        name="Claude Sonnet 4.6",
        aliases=(),
        lifecycle="active",
        context_window=1_000_000,
        max_output_tokens=64_000,
        min_cacheable_tokens=1024,
        accepts_prefill=False,
        thinking="none",
        sources=(Source(_OVERVIEW, "context, max output", _READ),),
    ),
    ModelFacts(
        id="claude-haiku-4-5",
        name="Claude Haiku 4.5",
        aliases=("claude-haiku-4-5-20251001",),
        lifecycle="active",
        context_window=200_000,
        max_output_tokens=64_000,
        min_cacheable_tokens=4096,
        accepts_prefill=True,
        thinking="none",
        sources=(Source(_CACHING, "minimum cacheable length", _READ),),
    ),
)


_BY_ID: dict[str, ModelFacts] = {model_id: facts for facts in CATALOG for model_id in facts.ids}


def lookup(model_id: str) -> ModelFacts | None:
    """The facts of an exact model id or alias; None for an id the catalog does not know."""
    return _BY_ID.get(model_id)


def known_ids() -> tuple[str, ...]:
    return tuple(_BY_ID)
