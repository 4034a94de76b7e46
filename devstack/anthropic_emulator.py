"""The Anthropic Messages API emulator: kept as a module so its callers and
``python -m devstack.anthropic_emulator`` keep working. The code is the ``devstack.anthropic``
package; its docstring describes the emulator."""

from __future__ import annotations

import sys

from devstack.anthropic import (
    FAULT_KINDS,
    LOOKBACK_POSITIONS,
    RULES,
    AnthropicEmulator,
    CachePlan,
    EmulatorConfig,
    EmulatorStats,
    Fault,
    MessagesRequest,
    PromptBlock,
    PromptCache,
    RequestError,
    Rule,
    canonical_json,
    estimate_tokens,
    generate_reply,
    main,
    parse_messages_request,
    tool_tokens,
)

__all__ = [
    "FAULT_KINDS",
    "LOOKBACK_POSITIONS",
    "RULES",
    "AnthropicEmulator",
    "CachePlan",
    "EmulatorConfig",
    "EmulatorStats",
    "Fault",
    "MessagesRequest",
    "PromptBlock",
    "PromptCache",
    "RequestError",
    "Rule",
    "canonical_json",
    "estimate_tokens",
    "generate_reply",
    "main",
    "parse_messages_request",
    "tool_tokens",
]

if __name__ == "__main__":
    sys.exit(main())
