"""The model catalog: what each Claude model accepts and how it caches, from Anthropic's documentation.

Every model-dependent decision reads this table: which model ids a conversation may use, the
largest `maxTokens`, whether the pre-warm request shape is needed (all current models refuse a
final assistant message), the minimum cacheable prefix, and the thinking mode. Prices are not
here: they come from the maintained `genai-prices` library (`chalicelib/adapters/prices.py`),
which carries 1-hour writes, size tiers and dated price changes.

Each row names the pages it was read from and the date. When Anthropic ships a model, add a row
here (and check `genai-prices` knows it: `tests/unit/test_catalog.py` fails otherwise), then run
`make conformance` against the real API before offering it. `docs/models.md` is generated from
this table (`python -m scripts.models_table --write`).

Read on 2026-12-01. The stored copy of platform.claude.com holds each page's opening (status line,
model id, context window, max output); deeper sections (a model page's "Good to know", the
prompt-caching page's "Cache limitations", the errors page's "Common validation errors") were read
through verbatim quotations of those pages, and each such source says so. A fact no page states
for a model, or that another source contradicts, is listed in that row's `unverified`, with why.
"""

from __future__ import annotations

from chalicelib.domain.catalog.claude_4 import CLAUDE_4
from chalicelib.domain.catalog.claude_5 import CLAUDE_5
from chalicelib.domain.catalog.facts import Lifecycle, ModelFacts, Source, ThinkingMode
from chalicelib.domain.catalog.sources import READ_ON

__all__ = [
    "CATALOG",
    "READ_ON",
    "Lifecycle",
    "ModelFacts",
    "Source",
    "ThinkingMode",
    "known_ids",
    "lookup",
]

CATALOG: tuple[ModelFacts, ...] = (*CLAUDE_5, *CLAUDE_4)

_BY_ID: dict[str, ModelFacts] = {model_id: facts for facts in CATALOG for model_id in facts.ids}


def lookup(model_id: str) -> ModelFacts | None:
    """The facts of an exact model id or alias; None for an id the catalog does not know."""
    return _BY_ID.get(model_id)


def known_ids() -> tuple[str, ...]:
    return tuple(_BY_ID)
