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
    # Manual extended thinking (`thinking.type: "enabled"` with `budget_tokens`): Claude 4.7 and
    # later answer it with a 400, while `thinking` alone cannot tell a 4.6 model (deprecated but
    # accepted) from a 4.7 one; the emulator needs the difference to refuse what the API refuses.
    accepts_extended_thinking: bool = True
    # Forced tool use (`tool_choice` any/tool): a 400 on Opus 5.5, Sonnet 5.5 and Fable 5.1+.
    accepts_forced_tool_choice: bool = True
    # "field=value: why" for each fact of this row that no stored page states for this model (an
    # assumption) or that another source contradicts; docs/models.md marks those values.
    unverified: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


READ_ON = "2026-12-01"
_DOCS = "https://platform.claude.com/docs/en"


def _page(path: str, gives: str) -> Source:
    return Source(f"{_DOCS}/{path}", gives, READ_ON)


def _overview(slug: str, gives: str) -> Source:
    return _page(f"models/{slug}/overview", f"page header: {gives}")


_CACHING = _page(
    "build-with-claude/prompt-caching",
    "min_cacheable_tokens, section 'Cache limitations' (the list: 512 tokens for Fable 5.1, "
    "Mythos 5.1, Opus 5.5, Opus 5, Sonnet 5.5, Fable 5, Mythos 5 and Haiku 5.5; 1,024 for Opus "
    "4.8, Sonnet 5, Sonnet 4.6, Sonnet 4.5; 2,048 for Mythos Preview and Opus 4.7; 4,096 for Opus "
    "4.6, Opus 4.5 and Haiku 4.5). Read through verbatim quotations of the page dated 2026-10-08 "
    "(the stored copy holds only the page's opening)",
)
_PREFILL_46 = _page(
    "api/errors",
    "accepts_prefill=False, section 'Common validation errors': 'Claude 4.6 and later models and "
    "Claude Mythos Preview do not support prefilling assistant messages.' (read through a "
    "verbatim quotation)",
)
_EXTENDED_47 = _page(
    "build-with-claude/extended-thinking",
    "accepts_extended_thinking=False: 'Claude 4.7 and later models do not support it and reject "
    "requests that use it, returning a 400 error.' (read through a verbatim quotation)",
)
_EXTENDED_46 = _page(
    "build-with-claude/extended-thinking",
    "accepts_extended_thinking=True: 'Extended thinking ... is deprecated on the Claude 4.6 models "
    "(requests using it still succeed).' (read through a verbatim quotation)",
)
_EXTENDED_45 = _page(
    "build-with-claude/extended-thinking",
    "thinking=none, accepts_extended_thinking=True: 'On Claude 4.5 and earlier models that support "
    "thinking, extended thinking is the only available thinking mode.' (read through a verbatim "
    "quotation)",
)
_MIGRATION_46 = _page(
    "about-claude/models/migration-guide",
    "accepts_prefill=False, Claude 4.6 breaking changes: 'Prefill removal: Prefilling assistant "
    "messages returns a 400 error on Claude 4.6 models'; thinking.type enabled 'is deprecated on "
    "Claude 4.6 models'",
)
_MODEL_IDS = _page(
    "about-claude/models/model-ids-and-versions",
    "aliases: Claude 4.5 models have shorter aliases that point to the most recent dated "
    "snapshot; dateless ids (4.6 and later) are their own pinned snapshot",
)
_MAX_64K_ERROR = Source(
    "https://github.com/anthropics/claude-code/issues/24451",
    "max_output_tokens=64000 exactly for the docs' '64K': 'max_tokens: 128001 > 64000, which is "
    "the maximum allowed number of output tokens for claude-opus-4-5-20251101' (the same 64000 "
    "for claude-sonnet-4-5-20250929 in BerriAI/litellm#15715)",
    READ_ON,
)
_MAX_128K_ERROR = Source(
    "https://github.com/anthropics/claude-code/issues/23923",
    "max_output_tokens=128000 exactly for the docs' '128K': 'max_tokens: 128001 > 128000, which is "
    "the maximum allowed number of output tokens for claude-opus-4-6'",
    READ_ON,
)
_SONNET_5_MIGRATION = _page(
    "models/sonnet-5/migration-guide",
    "'Prefilling assistant messages returns a 400 error on Claude Sonnet 4.6 and later models, "
    "including Claude Sonnet 5'; 'Prefilling the assistant message works on Claude Haiku 4.5'; "
    "'Claude Haiku 4.5 supports manual extended thinking ... and rejects thinking: {type: "
    "adaptive}'; Sonnet 5: 'manual extended thinking returns a 400 error' (read through verbatim "
    "quotations)",
)
_OPUS_5_5_MIGRATION = _page(
    "models/opus-5-5/migration-guide",
    "'Prefilling assistant messages returns a 400 error on Claude Opus 4.6 and later Opus models "
    "... a change only if you come from Claude Opus 4.5 or earlier'; Opus 4.8 and Sonnet 5, like "
    "Opus 5, accept forced tool choice (read through verbatim quotations)",
)
_FORCED_TOOL_ERRORS = _page(
    "api/errors",
    "accepts_forced_tool_choice=False, section 'Forced tool use not supported': 'Claude Opus 5.5, "
    "Claude Fable 5.1, and Claude Mythos 5.1 don't support forced tool use.' (read through a "
    "verbatim quotation)",
)
_ALWAYS_ON_ERRORS = _page(
    "api/errors",
    "thinking=always: 'On Claude Fable 5.1, Claude Mythos 5.1, Claude Fable 5, Claude Mythos 5, "
    "Claude Opus 5.5, and Claude Mythos Preview, thinking is always on.' (read through a verbatim "
    "quotation)",
)

CATALOG: tuple[ModelFacts, ...] = (
    ModelFacts(
        id="claude-fable-5-2",
        name="Claude Fable 5.2",
        aliases=(),
        lifecycle="active",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=512,
        accepts_prefill=False,
        thinking="always",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=False,
        sources=(
            _page(
                "models/fable-5-2/whats-new-fable-5-2",
                "id, released 2026-11-09, section 'Models': 'a 1M token context window (default "
                "and maximum) and 128k max output tokens'; 'Thinking: adaptive thinking is always "
                "on'; available to all customers on the Claude API",
            ),
            Source(
                "https://platform.claude.com/docs/id/models/sonnet-5/overview.md",
                "lifecycle=active: the newest stored comparison table lists Claude Fable 5.2 as "
                "the current Fable model ('| Claude Fable 5.2 | 1M | 128K | $8 / $40 | Adaptive "
                "(always on) |'); the table is in English on this Indonesian page, and no English "
                "models page stored is that recent",
                READ_ON,
            ),
            _PREFILL_46,
            _EXTENDED_47,
            _MAX_128K_ERROR,
        ),
        unverified=(
            "min_cacheable_tokens=512: the stored prompt-caching list predates Fable 5.2; assumed "
            "equal to Fable 5.1, which 5.2's what's-new page does not list as changed",
            "accepts_forced_tool_choice=False: the official error list predates Fable 5.2; a "
            "third-party migration note (dev.to, 2026-11-16) says forced tool choice behaves as "
            "on Fable 5.1",
        ),
    ),
    ModelFacts(
        id="claude-fable-5-1",
        name="Claude Fable 5.1",
        aliases=(),
        lifecycle="active",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=512,
        accepts_prefill=False,
        thinking="always",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=False,
        sources=(
            _overview(
                "fable-5-1",
                "id claude-fable-5-1, status 'Active (latest)' (page dated 2026-10-08), context "
                "1M tokens, max output 128K tokens, thinking 'Adaptive (always on)'",
            ),
            _page(
                "models/fable-5-1/whats-new-fable-5-1",
                "section 'Unchanged from Claude Fable 5': thinking enabled and disabled both "
                "return a 400; 'Prefilling the assistant response returns a 400 error'; 'The "
                "minimum cacheable prompt length is 512 tokens'; section 'Forced tool use is not "
                "supported' (read through a verbatim copy of llms-full.txt)",
            ),
            _CACHING,
            _FORCED_TOOL_ERRORS,
            _ALWAYS_ON_ERRORS,
            _MAX_128K_ERROR,
        ),
        unverified=(
            "lifecycle=active: the last stored Fable 5.1 page predates Fable 5.2 (2026-11-09); "
            "its status since then is not in the stored pages",
        ),
    ),
    ModelFacts(
        id="claude-fable-5",
        name="Claude Fable 5",
        aliases=(),
        lifecycle="legacy",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=512,
        accepts_prefill=False,
        thinking="always",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "fable-5",
                "'Legacy. Released June 9, 2026.', id claude-fable-5, context 1M tokens, max "
                "output 128K tokens",
            ),
            _page(
                "models/fable-5-1/whats-new-fable-5-1",
                "accepts_forced_tool_choice=True: 'If you already call Claude Fable 5, three "
                "changes are breaking: forced tool use returns an error ...'",
            ),
            _CACHING,
            _PREFILL_46,
            _EXTENDED_47,
            _ALWAYS_ON_ERRORS,
            _MAX_128K_ERROR,
        ),
    ),
    ModelFacts(
        id="claude-opus-5-5",
        name="Claude Opus 5.5",
        aliases=(),
        lifecycle="active",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=512,
        accepts_prefill=False,
        thinking="always",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=False,
        sources=(
            _overview(
                "opus-5-5",
                "id claude-opus-5-5, status 'Active (latest)', released 2026-09-22, context 1M, "
                "max output 128K, thinking 'Adaptive (always on)'; 'Good to know': 'The minimum "
                "cacheable prompt length is 512 tokens.' (page dated 2026-10-08)",
            ),
            _page(
                "models/opus-5-5/whats-new-opus-5-5",
                "'thinking is always on: a request that sets thinking: {type: disabled}, or a "
                "manual budget with thinking: {type: enabled, budget_tokens: N}, returns a 400 "
                "invalid_request_error'; forced tool use returns an error",
            ),
            _OPUS_5_5_MIGRATION,
            _FORCED_TOOL_ERRORS,
            _CACHING,
            _MAX_128K_ERROR,
        ),
    ),
    ModelFacts(
        id="claude-opus-5",
        name="Claude Opus 5",
        aliases=(),
        lifecycle="legacy",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=512,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "opus-5",
                "'Legacy. Released July 24, 2026.', id claude-opus-5, context 1M tokens, max "
                "output 128K tokens; thinking 'Adaptive'; 'Good to know': minimum cacheable "
                "prompt 512 tokens",
            ),
            _page(
                "models/opus-5-5/whats-new-opus-5-5",
                "accepts_forced_tool_choice=True and thinking can be disabled: 'Four breaking "
                "changes affect code already running on Claude Opus 5: thinking can't be "
                "disabled, forced tool use returns an error ...'",
            ),
            _CACHING,
            _PREFILL_46,
            _EXTENDED_47,
            _MAX_128K_ERROR,
        ),
    ),
    ModelFacts(
        id="claude-sonnet-5-5",
        name="Claude Sonnet 5.5",
        aliases=(),
        lifecycle="active",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=512,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=False,
        sources=(
            _overview(
                "sonnet-5-5",
                "'Latest. Released September 28, 2026.', id claude-sonnet-5-5, context 1M, max "
                "output 128K, thinking 'Adaptive'; breaking change 'Forced tool use returns an "
                "error'; 'Good to know': 'The minimum cacheable prompt length is 512 tokens.'",
            ),
            _CACHING,
            _PREFILL_46,
            _EXTENDED_47,
            _MAX_128K_ERROR,
        ),
    ),
    ModelFacts(
        id="claude-sonnet-5",
        name="Claude Sonnet 5",
        aliases=(),
        lifecycle="legacy",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=1024,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "sonnet-5",
                "'Legacy. Released June 30, 2026.', id claude-sonnet-5, context 1M tokens, max "
                "output 128K tokens; thinking 'Adaptive'",
            ),
            _SONNET_5_MIGRATION,
            _OPUS_5_5_MIGRATION,
            _CACHING,
            _MAX_128K_ERROR,
        ),
    ),
    ModelFacts(
        id="claude-haiku-5-5",
        name="Claude Haiku 5.5",
        aliases=(),
        lifecycle="active",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=512,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "haiku-5-5",
                "id claude-haiku-5-5, status 'Active (latest)', released 2026-10-07, context 1M "
                "tokens, max output 128K tokens, thinking 'Adaptive' (page dated 2026-10-08)",
            ),
            _CACHING,
            _PREFILL_46,
            _EXTENDED_47,
            _MAX_128K_ERROR,
        ),
        unverified=(
            "accepts_forced_tool_choice=True: no Anthropic page states it either way; the "
            "official refusal list (Opus 5.5, Fable 5.1, Mythos 5.1, Sonnet 5.5) does not name "
            "Haiku 5.5, and one third-party client test asserts it accepts forced tool choice",
        ),
    ),
    ModelFacts(
        id="claude-opus-4-8",
        name="Claude Opus 4.8",
        aliases=(),
        lifecycle="legacy",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=1024,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "opus-4-8",
                "'Legacy. Released May 28, 2026.', id claude-opus-4-8, context 1M tokens, max "
                "output 128K tokens",
            ),
            _OPUS_5_5_MIGRATION,
            _CACHING,
            _PREFILL_46,
            _EXTENDED_47,
            _MAX_128K_ERROR,
        ),
    ),
    ModelFacts(
        id="claude-opus-4-7",
        name="Claude Opus 4.7",
        aliases=(),
        lifecycle="legacy",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=2048,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=False,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "opus-4-7",
                "id claude-opus-4-7, '1M | 128K | $5 / $25 | Adaptive' (read through a verbatim "
                "quotation of the comparison row)",
            ),
            _page(
                "models/opus-5-5/migration-guide",
                "listed as an earlier Opus model to migrate from ('Migrating from Claude Opus "
                "4.7')",
            ),
            _CACHING,
            _PREFILL_46,
            _EXTENDED_47,
            _MAX_128K_ERROR,
        ),
        unverified=(
            "lifecycle=legacy: the Opus 4.7 page's status line is not in the stored pages; Opus "
            "4.6 and Opus 4.8 on either side of it are both 'Legacy' since Opus 5.5",
            "min_cacheable_tokens=2048 is the Claude API value; Amazon Bedrock documents 4,096",
        ),
    ),
    ModelFacts(
        id="claude-opus-4-6",
        name="Claude Opus 4.6",
        aliases=(),
        lifecycle="legacy",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=4096,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=True,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "opus-4-6",
                "'Legacy. Released February 5, 2026.', id claude-opus-4-6, context 1M tokens, "
                "max output 128K tokens; thinking 'Adaptive (extended deprecated)'",
            ),
            _MIGRATION_46,
            _CACHING,
            _PREFILL_46,
            _EXTENDED_46,
            _MAX_128K_ERROR,
        ),
    ),
    ModelFacts(
        id="claude-sonnet-4-6",
        name="Claude Sonnet 4.6",
        aliases=(),
        lifecycle="legacy",
        context_window=1_000_000,
        max_output_tokens=128_000,
        min_cacheable_tokens=1024,
        accepts_prefill=False,
        thinking="adaptive",
        accepts_extended_thinking=True,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "sonnet-4-6",
                "'Legacy. Released February 17, 2026.', id claude-sonnet-4-6, context 1M tokens, "
                "max output 128K tokens",
            ),
            _MIGRATION_46,
            _SONNET_5_MIGRATION,
            _CACHING,
            _EXTENDED_46,
            _MAX_128K_ERROR,
        ),
        unverified=(
            "min_cacheable_tokens=1024 is the current documented value; an earlier revision of "
            "the prompt-caching page said 2,048, and anthropic-sdk-python#1194 reports caching "
            "starting only at 2,048 tokens on this model",
        ),
    ),
    ModelFacts(
        id="claude-opus-4-5",
        name="Claude Opus 4.5",
        aliases=("claude-opus-4-5-20251101",),
        lifecycle="deprecated",
        context_window=200_000,
        max_output_tokens=64_000,
        min_cacheable_tokens=4096,
        accepts_prefill=True,
        thinking="none",
        accepts_extended_thinking=True,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "opus-4-5",
                "model id claude-opus-4-5-20251101 with a 'Claude API alias', context 200K "
                "tokens, max output 64K tokens, thinking 'Extended'",
            ),
            _page(
                "about-claude/model-deprecations",
                "lifecycle=deprecated: deprecated on 2026-11-23, tentative retirement 2027-01-22, "
                "replacement claude-opus-5-5 (the page's status table, as re-read on 2026-11-26 "
                "and quoted by the Modelpin 0.5.7 release notes; the stored copy holds only the "
                "page's opening)",
            ),
            _OPUS_5_5_MIGRATION,
            _MODEL_IDS,
            _CACHING,
            _EXTENDED_45,
            _MAX_64K_ERROR,
        ),
        unverified=(
            "lifecycle=deprecated: read through a third-party release note (Modelpin 0.5.7) that "
            "re-read the deprecations page on 2026-11-26; the stored Opus 4.5 pages, all older, "
            "still say 'Legacy'",
        ),
    ),
    ModelFacts(
        id="claude-haiku-4-5",
        name="Claude Haiku 4.5",
        aliases=("claude-haiku-4-5-20251001",),
        lifecycle="legacy",
        context_window=200_000,
        max_output_tokens=64_000,
        min_cacheable_tokens=4096,
        accepts_prefill=True,
        thinking="none",
        accepts_extended_thinking=True,
        accepts_forced_tool_choice=True,
        sources=(
            _overview(
                "haiku-4-5",
                "'Legacy. Released October 15, 2025.', model id claude-haiku-4-5-20251001, "
                "context 200K tokens, max output 64K tokens; thinking 'Extended'",
            ),
            _SONNET_5_MIGRATION,
            _MODEL_IDS,
            _CACHING,
            _EXTENDED_45,
            _MAX_64K_ERROR,
        ),
    ),
)


_BY_ID: dict[str, ModelFacts] = {model_id: facts for facts in CATALOG for model_id in facts.ids}


def lookup(model_id: str) -> ModelFacts | None:
    """The facts of an exact model id or alias; None for an id the catalog does not know."""
    return _BY_ID.get(model_id)


def known_ids() -> tuple[str, ...]:
    return tuple(_BY_ID)
