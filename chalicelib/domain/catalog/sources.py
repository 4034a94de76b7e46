"""Where the catalog's facts were read (each row names the ones it rests on)."""

from __future__ import annotations

from chalicelib.domain.catalog.facts import Source

READ_ON = "2026-12-01"
DOCS = "https://platform.claude.com/docs/en"


def page(path: str, gives: str) -> Source:
    return Source(f"{DOCS}/{path}", gives, READ_ON)


def overview(slug: str, gives: str) -> Source:
    return page(f"models/{slug}/overview", f"page header: {gives}")


CACHING = page(
    "build-with-claude/prompt-caching",
    "min_cacheable_tokens, section 'Cache limitations' (the list: 512 tokens for Fable 5.1, "
    "Mythos 5.1, Opus 5.5, Opus 5, Sonnet 5.5, Fable 5, Mythos 5 and Haiku 5.5; 1,024 for Opus "
    "4.8, Sonnet 5, Sonnet 4.6, Sonnet 4.5; 2,048 for Mythos Preview and Opus 4.7; 4,096 for Opus "
    "4.6, Opus 4.5 and Haiku 4.5). Read through verbatim quotations of the page dated 2026-10-08 "
    "(the stored copy holds only the page's opening)",
)
PREFILL_46 = page(
    "api/errors",
    "accepts_prefill=False, section 'Common validation errors': 'Claude 4.6 and later models and "
    "Claude Mythos Preview do not support prefilling assistant messages.' (read through a "
    "verbatim quotation)",
)
EXTENDED_47 = page(
    "build-with-claude/extended-thinking",
    "accepts_extended_thinking=False: 'Claude 4.7 and later models do not support it and reject "
    "requests that use it, returning a 400 error.' (read through a verbatim quotation)",
)
EXTENDED_46 = page(
    "build-with-claude/extended-thinking",
    "accepts_extended_thinking=True: 'Extended thinking ... is deprecated on the Claude 4.6 models "
    "(requests using it still succeed).' (read through a verbatim quotation)",
)
EXTENDED_45 = page(
    "build-with-claude/extended-thinking",
    "thinking=none, accepts_extended_thinking=True: 'On Claude 4.5 and earlier models that support "
    "thinking, extended thinking is the only available thinking mode.' (read through a verbatim "
    "quotation)",
)
MIGRATION_46 = page(
    "about-claude/models/migration-guide",
    "accepts_prefill=False, Claude 4.6 breaking changes: 'Prefill removal: Prefilling assistant "
    "messages returns a 400 error on Claude 4.6 models'; thinking.type enabled 'is deprecated on "
    "Claude 4.6 models'",
)
MODEL_IDS = page(
    "about-claude/models/model-ids-and-versions",
    "aliases: Claude 4.5 models have shorter aliases that point to the most recent dated "
    "snapshot; dateless ids (4.6 and later) are their own pinned snapshot",
)
MAX_64K_ERROR = Source(
    "https://github.com/anthropics/claude-code/issues/24451",
    "max_output_tokens=64000 exactly for the docs' '64K': 'max_tokens: 128001 > 64000, which is "
    "the maximum allowed number of output tokens for claude-opus-4-5-20251101' (the same 64000 "
    "for claude-sonnet-4-5-20250929 in BerriAI/litellm#15715)",
    READ_ON,
)
MAX_128K_ERROR = Source(
    "https://github.com/anthropics/claude-code/issues/23923",
    "max_output_tokens=128000 exactly for the docs' '128K': 'max_tokens: 128001 > 128000, which is "
    "the maximum allowed number of output tokens for claude-opus-4-6'",
    READ_ON,
)
SONNET_5_MIGRATION = page(
    "models/sonnet-5/migration-guide",
    "'Prefilling assistant messages returns a 400 error on Claude Sonnet 4.6 and later models, "
    "including Claude Sonnet 5'; 'Prefilling the assistant message works on Claude Haiku 4.5'; "
    "'Claude Haiku 4.5 supports manual extended thinking ... and rejects thinking: {type: "
    "adaptive}'; Sonnet 5: 'manual extended thinking returns a 400 error' (read through verbatim "
    "quotations)",
)
OPUS_5_5_MIGRATION = page(
    "models/opus-5-5/migration-guide",
    "'Prefilling assistant messages returns a 400 error on Claude Opus 4.6 and later Opus models "
    "... a change only if you come from Claude Opus 4.5 or earlier'; Opus 4.8 and Sonnet 5, like "
    "Opus 5, accept forced tool choice (read through verbatim quotations)",
)
FORCED_TOOL_ERRORS = page(
    "api/errors",
    "accepts_forced_tool_choice=False, section 'Forced tool use not supported': 'Claude Opus 5.5, "
    "Claude Fable 5.1, and Claude Mythos 5.1 don't support forced tool use.' (read through a "
    "verbatim quotation)",
)
ALWAYS_ON_ERRORS = page(
    "api/errors",
    "thinking=always: 'On Claude Fable 5.1, Claude Mythos 5.1, Claude Fable 5, Claude Mythos 5, "
    "Claude Opus 5.5, and Claude Mythos Preview, thinking is always on.' (read through a verbatim "
    "quotation)",
)
