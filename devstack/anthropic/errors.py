"""Errors in Anthropic's JSON shape, and the registry of the validation rules the emulator enforces.

Each rule carries the status, error type and message the API answers with and where that wording
comes from, so `docs/models.md` is generated from the same table the emulator raises from. A rule
whose wording no stored source quotes says so (`exact=False`): tests then assert its status, type
and a stable fragment, never the whole sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

READ_ON = "2026-12-01"


class RequestError(Exception):
    """An error answered to the client in Anthropic's JSON error shape."""

    def __init__(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body the API sends for this error."""
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
            "request_id": request_id,
        }


def invalid(message: str) -> RequestError:
    """A 400 ``invalid_request_error`` for a malformed body (wording not from the API's docs)."""
    return RequestError(400, "invalid_request_error", message)


@dataclass(frozen=True)
class Rule:
    """One documented refusal. ``message`` is a ``str.format`` template over the named fields."""

    key: str
    applies_to: str
    status: int
    error_type: str
    message: str
    source: str
    exact: bool  # True: the API's own words, quoted by `source`; False: the emulator's wording

    def error(self, **fields: Any) -> RequestError:
        return RequestError(self.status, self.error_type, self.message.format(**fields))


_ERRORS_PAGE = "https://platform.claude.com/docs/en/api/errors"
_PREWARM = (
    "https://platform.claude.com/docs/en/build-with-claude/prompt-caching, section 'Pre-warming "
    "the cache' (rejected combinations, no message quoted; read through Anthropic's claude-api "
    "skill, anthropics/skills skills/claude-api/shared/prompt-caching.md)"
)

UNKNOWN_MODEL = Rule(
    "unknown_model",
    "a model id the catalog does not list (unknown, retired, or invitation-only)",
    404,
    "not_found_error",
    "model: {model}",
    "https://github.com/anthropics/claude-code/issues/5349 and "
    "https://github.com/continuedev/continue/issues/11538 (API bodies quoted verbatim: "
    '{"type":"not_found_error","message":"model: <id>"}); 404 not_found_error: ' + _ERRORS_PAGE,
    True,
)
MAX_TOKENS_OVER_LIMIT = Rule(
    "max_tokens_over_limit",
    "max_tokens above the model's max_output_tokens",
    400,
    "invalid_request_error",
    "max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output tokens "
    "for {model}",
    "https://github.com/anthropics/claude-code/issues/24451 and "
    "https://github.com/anthropics/claude-code/issues/23923 (API bodies quoted verbatim)",
    True,
)
PREFILL_REFUSED = Rule(
    "prefill_refused",
    "a final assistant message, on a model with accepts_prefill=False",
    400,
    "invalid_request_error",
    "This model does not support assistant message prefill. The conversation must end with a "
    "user message.",
    _ERRORS_PAGE + ", section 'Common validation errors' (read through a verbatim quotation); "
    "https://github.com/smallmain/vscode-unify-chat-provider/issues/249 (API body)",
    True,
)
TRAILING_WHITESPACE = Rule(
    "final_assistant_trailing_whitespace",
    "a final assistant text ending in whitespace, on a model that accepts prefill",
    400,
    "invalid_request_error",
    "messages: final assistant content cannot end with trailing whitespace",
    "https://github.com/tailcallhq/forgecode/issues/1872 and "
    "https://github.com/AnswerDotAI/fasthtml-example/pull/11 (API bodies quoted verbatim)",
    True,
)
EMPTY_TEXT = Rule(
    "empty_text_block",
    "an empty text block in messages (an empty string content has its own 400)",
    400,
    "invalid_request_error",
    "messages: text content blocks must be non-empty",
    "https://github.com/anthropics/claude-code/issues/59812 (API body quoted verbatim)",
    True,
)
WHITESPACE_TEXT = Rule(
    "whitespace_text_block",
    "a whitespace-only text block (or string content) in messages",
    400,
    "invalid_request_error",
    "messages: text content blocks must contain non-whitespace text",
    "https://github.com/anthropics/claude-code/issues/23352 (API body quoted verbatim)",
    True,
)
EMPTY_SYSTEM_TEXT = Rule(
    "empty_system_text_block",
    "an empty text block in a list-form system prompt",
    400,
    "invalid_request_error",
    "system: text content blocks must be non-empty",
    "inferred from the messages wording (anthropics/claude-code#59812) and the system wording of "
    "the whitespace rule (BoltAI/BoltAI#165); no stored source quotes this exact sentence",
    False,
)
WHITESPACE_SYSTEM_TEXT = Rule(
    "whitespace_system_text",
    "a whitespace-only system prompt or system text block",
    400,
    "invalid_request_error",
    "system: text content blocks must contain non-whitespace text",
    "https://github.com/BoltAI/BoltAI/issues/165 (API message quoted verbatim)",
    True,
)
EXTENDED_THINKING_REFUSED = Rule(
    "extended_thinking_refused",
    'thinking.type "enabled", on a model with accepts_extended_thinking=False (Claude 4.7+)',
    400,
    "invalid_request_error",
    '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
    '"output_config.effort" to control thinking behavior.',
    _ERRORS_PAGE + ", section 'Common validation errors' (read through a verbatim quotation)",
    True,
)
ADAPTIVE_THINKING_REFUSED = Rule(
    "adaptive_thinking_refused",
    'thinking.type "adaptive", on a model whose thinking mode is "none" (Claude 4.5)',
    400,
    "invalid_request_error",
    "adaptive thinking is not supported on this model",
    _ERRORS_PAGE + ", section 'Common validation errors' (read through a verbatim quotation)",
    True,
)
THINKING_DISABLE_REFUSED = Rule(
    "thinking_disable_refused",
    'thinking.type "disabled", on a model whose thinking mode is "always"',
    400,
    "invalid_request_error",
    '"thinking.type.disabled" is not supported for this model. Use "thinking.type.adaptive" and '
    '"output_config.effort" to control thinking behavior.',
    _ERRORS_PAGE + ", section 'Common validation errors' (read through a verbatim quotation)",
    True,
)
FORCED_TOOL_REFUSED = Rule(
    "forced_tool_choice_refused",
    "tool_choice any/tool, on a model with accepts_forced_tool_choice=False (also on count_tokens)",
    400,
    "invalid_request_error",
    'tool_choice: type "tool" and "any" are not supported for this model.',
    _ERRORS_PAGE
    + ", section 'Forced tool use not supported'; "
    + "https://platform.claude.com/docs/en/models/fable-5-1/whats-new-fable-5-1, section "
    "'Forced tool use is not supported' (read through verbatim copies)",
    True,
)
PREWARM_WITH_STREAM = Rule(
    "max_tokens_zero_with_stream",
    "max_tokens 0 with stream: true",
    400,
    "invalid_request_error",
    "max_tokens: 0 is not supported with stream: true",
    _PREWARM,
    False,
)
PREWARM_WITH_THINKING = Rule(
    "max_tokens_zero_with_thinking",
    'max_tokens 0 with thinking.type "enabled" (on a model that accepts it at all)',
    400,
    "invalid_request_error",
    'max_tokens: 0 is not supported with thinking.type: "enabled"',
    _PREWARM,
    False,
)
PREWARM_WITH_FORMAT = Rule(
    "max_tokens_zero_with_format",
    "max_tokens 0 with output_config.format",
    400,
    "invalid_request_error",
    "max_tokens: 0 is not supported with output_config.format",
    _PREWARM,
    False,
)
PREWARM_WITH_FORCED_TOOL = Rule(
    "max_tokens_zero_with_forced_tool",
    "max_tokens 0 with tool_choice any/tool (on a model that accepts forced tool use)",
    400,
    "invalid_request_error",
    'max_tokens: 0 is not supported with tool_choice type "{choice}"',
    _PREWARM,
    False,
)

RULES: tuple[Rule, ...] = (
    UNKNOWN_MODEL,
    MAX_TOKENS_OVER_LIMIT,
    PREFILL_REFUSED,
    TRAILING_WHITESPACE,
    EMPTY_TEXT,
    WHITESPACE_TEXT,
    EMPTY_SYSTEM_TEXT,
    WHITESPACE_SYSTEM_TEXT,
    EXTENDED_THINKING_REFUSED,
    ADAPTIVE_THINKING_REFUSED,
    THINKING_DISABLE_REFUSED,
    FORCED_TOOL_REFUSED,
    PREWARM_WITH_STREAM,
    PREWARM_WITH_THINKING,
    PREWARM_WITH_FORMAT,
    PREWARM_WITH_FORCED_TOOL,
)
