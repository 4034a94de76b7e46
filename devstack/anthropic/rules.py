"""A Messages API body validated the way the API does, per model, from `chalicelib.domain.catalog`.

The body's shape is checked first, then the model: which of the two the API reports first for a
body wrong in both ways is not documented. Every model-dependent refusal below is a `Rule` of
`errors.py`, which names its source; the catalog row names where each model fact comes from.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain import catalog
from chalicelib.domain.catalog import ModelFacts
from devstack.anthropic.errors import (
    ADAPTIVE_THINKING_REFUSED,
    EXTENDED_THINKING_REFUSED,
    FORCED_TOOL_REFUSED,
    MAX_TOKENS_OVER_LIMIT,
    PREFILL_REFUSED,
    PREWARM_WITH_FORCED_TOOL,
    PREWARM_WITH_FORMAT,
    PREWARM_WITH_STREAM,
    PREWARM_WITH_THINKING,
    THINKING_DISABLE_REFUSED,
    TRAILING_WHITESPACE,
    UNKNOWN_MODEL,
    invalid,
)
from devstack.anthropic.prompt import (
    MAX_BREAKPOINTS,
    MessagesRequest,
    check_breakpoints,
    message_blocks,
    require_int,
    system_blocks,
    tool_blocks,
    with_automatic_breakpoint,
)

FORCED_TOOL_CHOICES = ("any", "tool")


def model_facts(model: str) -> ModelFacts:
    """The catalog row of ``model``; a 404 for an id Anthropic does not serve (or no longer does)."""
    facts = catalog.lookup(model)
    if facts is None:
        raise UNKNOWN_MODEL.error(model=model)
    return facts


def _thinking_type(thinking: Any) -> str | None:
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in (
        "enabled",
        "disabled",
        "adaptive",
    ):
        raise invalid("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    return str(thinking["type"])


def _forced_choice(tool_choice: Any) -> str | None:
    if tool_choice is None:
        return None
    if not isinstance(tool_choice, dict) or tool_choice.get("type") not in (
        "auto",
        "any",
        "tool",
        "none",
    ):
        raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if tool_choice["type"] == "tool" and not isinstance(tool_choice.get("name"), str):
        raise invalid("tool_choice.tool.name: Field required")
    choice = str(tool_choice["type"])
    return choice if choice in FORCED_TOOL_CHOICES else None


def _check_thinking_mode(facts: ModelFacts, thinking_type: str | None) -> None:
    if thinking_type == "enabled" and not facts.accepts_extended_thinking:
        # Claude 4.7 and later removed manual extended thinking (catalog: extended-thinking page).
        raise EXTENDED_THINKING_REFUSED.error()
    if thinking_type == "adaptive" and facts.thinking == "none":
        # Claude 4.5 models think only in the manual mode (errors page, Common validation errors).
        raise ADAPTIVE_THINKING_REFUSED.error()
    if thinking_type == "disabled" and facts.thinking == "always":
        # Fable 5.x and Opus 5.5 think on every request (errors page, "thinking is always on").
        raise THINKING_DISABLE_REFUSED.error()


def _check_prewarm(request: MessagesRequest, thinking_type: str | None, forced: str | None) -> None:
    """``max_tokens: 0`` only populates the cache; the prompt-caching page's "Pre-warming the
    cache" lists what it cannot be combined with (no message wording is documented)."""
    if request.max_tokens != 0:
        return
    if request.stream:
        raise PREWARM_WITH_STREAM.error()
    if thinking_type == "enabled":
        raise PREWARM_WITH_THINKING.error()
    output_config = request.output_config
    if isinstance(output_config, dict) and output_config.get("format") is not None:
        raise PREWARM_WITH_FORMAT.error()
    if forced is not None:
        raise PREWARM_WITH_FORCED_TOOL.error(choice=forced)


def _check_budget(request: MessagesRequest, thinking_type: str | None, forced: str | None) -> None:
    if thinking_type != "enabled":
        return
    budget = request.thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        raise invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if request.max_tokens <= budget:
        raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    if forced is not None:
        raise invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _check_final_message(facts: ModelFacts, request: MessagesRequest) -> None:
    final = request.final
    if final is None or final.role != "assistant":
        return
    if not facts.accepts_prefill:
        # Claude 4.6 and later refuse any request that ends on an assistant turn (errors page).
        raise PREFILL_REFUSED.error()
    if final.tail_text is not None and final.tail_text != final.tail_text.rstrip():
        # A prefill is continued from its last character; the API refuses trailing whitespace.
        raise TRAILING_WHITESPACE.error()


def apply_model_rules(facts: ModelFacts, request: MessagesRequest, *, count_tokens: bool) -> None:
    """Refuse what ``facts``' model refuses. ``count_tokens`` applies only the rules the docs say
    the token counting endpoint shares (forced tool use)."""
    thinking_type = _thinking_type(request.thinking)
    forced = _forced_choice(request.tool_choice)
    if forced is not None and not facts.accepts_forced_tool_choice:
        raise FORCED_TOOL_REFUSED.error()
    if count_tokens:
        return
    if request.max_tokens > facts.max_output_tokens:
        raise MAX_TOKENS_OVER_LIMIT.error(
            max_tokens=request.max_tokens, limit=facts.max_output_tokens, model=request.model
        )
    _check_thinking_mode(facts, thinking_type)
    _check_prewarm(request, thinking_type, forced)
    _check_budget(request, thinking_type, forced)
    _check_final_message(facts, request)


def parse_messages_request(
    body: Any, *, count_tokens: bool = False, max_breakpoints: int = MAX_BREAKPOINTS
) -> MessagesRequest:
    """Validate a Messages API body the way the API does and flatten its prompt into blocks.

    ``count_tokens`` relaxes what ``/v1/messages/count_tokens`` does not require (``max_tokens``).
    Raises ``RequestError``: 400 ``invalid_request_error`` for an invalid body, 404
    ``not_found_error`` for a model the catalog does not list.
    """
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: Field required")
    max_tokens = 0 if count_tokens else require_int(body, "max_tokens")
    if max_tokens < 0:
        raise invalid("max_tokens: Input should be greater than or equal to 0")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream: Input should be a valid boolean")
    output_config = body.get("output_config")
    if output_config is not None and not isinstance(output_config, dict):
        raise invalid("output_config: Input should be a valid dictionary")
    _thinking_type(body.get("thinking"))
    _forced_choice(body.get("tool_choice"))

    blocks = tool_blocks(body.get("tools")) + system_blocks(body.get("system"))
    messages, seed_text, final = message_blocks(body.get("messages"))
    blocks += messages
    with_automatic_breakpoint(blocks, body)
    check_breakpoints(blocks, max_breakpoints)

    request = MessagesRequest(
        model=model,
        max_tokens=max_tokens,
        stream=stream,
        blocks=blocks,
        tool_choice=body.get("tool_choice"),
        thinking=body.get("thinking"),
        seed_text=seed_text,
        output_config=output_config,
        final=final,
    )
    apply_model_rules(model_facts(model), request, count_tokens=count_tokens)
    return request
