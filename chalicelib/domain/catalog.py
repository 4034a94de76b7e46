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


CATALOG: tuple[ModelFacts, ...] = ()


_BY_ID: dict[str, ModelFacts] = {model_id: facts for facts in CATALOG for model_id in facts.ids}


def lookup(model_id: str) -> ModelFacts | None:
    """The facts of an exact model id or alias; None for an id the catalog does not know."""
    return _BY_ID.get(model_id)


def known_ids() -> tuple[str, ...]:
    return tuple(_BY_ID)
