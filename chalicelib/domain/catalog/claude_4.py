"""The Claude 4 family still served: Opus 4.5-4.8, Sonnet 4.6, Haiku 4.5."""

from __future__ import annotations

from chalicelib.domain.catalog.facts import ModelFacts
from chalicelib.domain.catalog.sources import (
    CACHING,
    EXTENDED_45,
    EXTENDED_46,
    EXTENDED_47,
    MAX_64K_ERROR,
    MAX_128K_ERROR,
    MIGRATION_46,
    MODEL_IDS,
    OPUS_5_5_MIGRATION,
    PREFILL_46,
    SONNET_5_MIGRATION,
    overview,
    page,
)

CLAUDE_4: tuple[ModelFacts, ...] = (
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
            overview(
                "opus-4-8",
                "'Legacy. Released May 28, 2026.', id claude-opus-4-8, context 1M tokens, max "
                "output 128K tokens",
            ),
            OPUS_5_5_MIGRATION,
            CACHING,
            PREFILL_46,
            EXTENDED_47,
            MAX_128K_ERROR,
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
            overview(
                "opus-4-7",
                "id claude-opus-4-7, '1M | 128K | $5 / $25 | Adaptive' (read through a verbatim "
                "quotation of the comparison row)",
            ),
            page(
                "models/opus-5-5/migration-guide",
                "listed as an earlier Opus model to migrate from ('Migrating from Claude Opus "
                "4.7')",
            ),
            CACHING,
            PREFILL_46,
            EXTENDED_47,
            MAX_128K_ERROR,
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
            overview(
                "opus-4-6",
                "'Legacy. Released February 5, 2026.', id claude-opus-4-6, context 1M tokens, "
                "max output 128K tokens; thinking 'Adaptive (extended deprecated)'",
            ),
            MIGRATION_46,
            CACHING,
            PREFILL_46,
            EXTENDED_46,
            MAX_128K_ERROR,
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
            overview(
                "sonnet-4-6",
                "'Legacy. Released February 17, 2026.', id claude-sonnet-4-6, context 1M tokens, "
                "max output 128K tokens",
            ),
            MIGRATION_46,
            SONNET_5_MIGRATION,
            CACHING,
            EXTENDED_46,
            MAX_128K_ERROR,
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
            overview(
                "opus-4-5",
                "model id claude-opus-4-5-20251101 with a 'Claude API alias', context 200K "
                "tokens, max output 64K tokens, thinking 'Extended'",
            ),
            page(
                "about-claude/model-deprecations",
                "lifecycle=deprecated: deprecated on 2026-11-23, tentative retirement 2027-01-22, "
                "replacement claude-opus-5-5 (the page's status table, as re-read on 2026-11-26 "
                "and quoted by the Modelpin 0.5.7 release notes; the stored copy holds only the "
                "page's opening)",
            ),
            OPUS_5_5_MIGRATION,
            MODEL_IDS,
            CACHING,
            EXTENDED_45,
            MAX_64K_ERROR,
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
            overview(
                "haiku-4-5",
                "'Legacy. Released October 15, 2025.', model id claude-haiku-4-5-20251001, "
                "context 200K tokens, max output 64K tokens; thinking 'Extended'",
            ),
            SONNET_5_MIGRATION,
            MODEL_IDS,
            CACHING,
            EXTENDED_45,
            MAX_64K_ERROR,
        ),
    ),
)
