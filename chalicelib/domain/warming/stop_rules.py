"""The integer rules the warming policy stops on that are not about time (pure).

They live with the policy, not with what they measure, so the policy imports nothing that
imports it back (`domain/context.py` checks a turn against the same window before it is sent).
"""

from __future__ import annotations

# Room a next turn needs at the least: below this, warming keeps a prefix nobody can extend.
NEXT_MESSAGE_TOKENS = 100


def room_for_another_turn(prefix_tokens: int, limit: int | None) -> bool:
    """Whether a prefix of `prefix_tokens` still leaves a next turn room in a window of
    `limit` prompt tokens (None: unknown, never refused here)."""
    return limit is None or prefix_tokens + NEXT_MESSAGE_TOKENS <= limit
