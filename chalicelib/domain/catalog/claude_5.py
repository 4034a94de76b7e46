"""The Claude 5 family: Fable, Opus, Sonnet and Haiku 5.x."""

from __future__ import annotations

from chalicelib.domain.catalog.facts import ModelFacts, Source
from chalicelib.domain.catalog.sources import (
    ALWAYS_ON_ERRORS,
    CACHING,
    EXTENDED_47,
    FORCED_TOOL_ERRORS,
    MAX_128K_ERROR,
    OPUS_5_5_MIGRATION,
    PREFILL_46,
    READ_ON,
    SONNET_5_MIGRATION,
    overview,
    page,
)

CLAUDE_5: tuple[ModelFacts, ...] = (
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
            page(
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
            PREFILL_46,
            EXTENDED_47,
            MAX_128K_ERROR,
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
            overview(
                "fable-5-1",
                "id claude-fable-5-1, status 'Active (latest)' (page dated 2026-10-08), context "
                "1M tokens, max output 128K tokens, thinking 'Adaptive (always on)'",
            ),
            page(
                "models/fable-5-1/whats-new-fable-5-1",
                "section 'Unchanged from Claude Fable 5': thinking enabled and disabled both "
                "return a 400; 'Prefilling the assistant response returns a 400 error'; 'The "
                "minimum cacheable prompt length is 512 tokens'; section 'Forced tool use is not "
                "supported' (read through a verbatim copy of llms-full.txt)",
            ),
            CACHING,
            FORCED_TOOL_ERRORS,
            ALWAYS_ON_ERRORS,
            MAX_128K_ERROR,
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
            overview(
                "fable-5",
                "'Legacy. Released June 9, 2026.', id claude-fable-5, context 1M tokens, max "
                "output 128K tokens",
            ),
            page(
                "models/fable-5-1/whats-new-fable-5-1",
                "accepts_forced_tool_choice=True: 'If you already call Claude Fable 5, three "
                "changes are breaking: forced tool use returns an error ...'",
            ),
            CACHING,
            PREFILL_46,
            EXTENDED_47,
            ALWAYS_ON_ERRORS,
            MAX_128K_ERROR,
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
            overview(
                "opus-5-5",
                "id claude-opus-5-5, status 'Active (latest)', released 2026-09-22, context 1M, "
                "max output 128K, thinking 'Adaptive (always on)'; 'Good to know': 'The minimum "
                "cacheable prompt length is 512 tokens.' (page dated 2026-10-08)",
            ),
            page(
                "models/opus-5-5/whats-new-opus-5-5",
                "'thinking is always on: a request that sets thinking: {type: disabled}, or a "
                "manual budget with thinking: {type: enabled, budget_tokens: N}, returns a 400 "
                "invalid_request_error'; forced tool use returns an error",
            ),
            OPUS_5_5_MIGRATION,
            FORCED_TOOL_ERRORS,
            CACHING,
            MAX_128K_ERROR,
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
            overview(
                "opus-5",
                "'Legacy. Released July 24, 2026.', id claude-opus-5, context 1M tokens, max "
                "output 128K tokens; thinking 'Adaptive'; 'Good to know': minimum cacheable "
                "prompt 512 tokens",
            ),
            page(
                "models/opus-5-5/whats-new-opus-5-5",
                "accepts_forced_tool_choice=True and thinking can be disabled: 'Four breaking "
                "changes affect code already running on Claude Opus 5: thinking can't be "
                "disabled, forced tool use returns an error ...'",
            ),
            CACHING,
            PREFILL_46,
            EXTENDED_47,
            MAX_128K_ERROR,
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
            overview(
                "sonnet-5-5",
                "'Latest. Released September 28, 2026.', id claude-sonnet-5-5, context 1M, max "
                "output 128K, thinking 'Adaptive'; breaking change 'Forced tool use returns an "
                "error'; 'Good to know': 'The minimum cacheable prompt length is 512 tokens.'",
            ),
            CACHING,
            PREFILL_46,
            EXTENDED_47,
            MAX_128K_ERROR,
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
            overview(
                "sonnet-5",
                "'Legacy. Released June 30, 2026.', id claude-sonnet-5, context 1M tokens, max "
                "output 128K tokens; thinking 'Adaptive'",
            ),
            SONNET_5_MIGRATION,
            OPUS_5_5_MIGRATION,
            CACHING,
            MAX_128K_ERROR,
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
            overview(
                "haiku-5-5",
                "id claude-haiku-5-5, status 'Active (latest)', released 2026-10-07, context 1M "
                "tokens, max output 128K tokens, thinking 'Adaptive' (page dated 2026-10-08)",
            ),
            CACHING,
            PREFILL_46,
            EXTENDED_47,
            MAX_128K_ERROR,
        ),
        unverified=(
            "accepts_forced_tool_choice=True: no Anthropic page states it either way; the "
            "official refusal list (Opus 5.5, Fable 5.1, Mythos 5.1, Sonnet 5.5) does not name "
            "Haiku 5.5, and one third-party client test asserts it accepts forced tool choice",
        ),
    ),
)
