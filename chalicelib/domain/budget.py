"""Per-user daily spend (pure): which day a cost counts for, and the budget rule.

Spend is kept in whole micro-dollars so the DynamoDB counter adds integers exactly. A day is a UTC
calendar day; the budget renews at 00:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib.domain.errors import Refused

MICRO = 1_000_000
# A day's counter outlives its day by a week (DynamoDB TTL), long enough to answer questions.
KEEP_DAYS = 8


def spend_day(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat()


def day_expires_at_s(now_ms: int) -> int:
    day = datetime.fromtimestamp(now_ms / 1000, UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return int((day + timedelta(days=KEEP_DAYS)).timestamp())


def micro_usd(usd: float) -> int:
    return max(0, round(usd * MICRO))


@dataclass(frozen=True)
class DaySpend:
    """A cost to add to the owner's counter for `day` (the counter expires at `expires_at_s`).
    A warm's cost names its warm (`warm_seq`, the tick's seq): whoever records that warm, and
    however often, it counts once."""

    day: str
    micro_usd: int
    expires_at_s: int
    warm_seq: int | None = None


def day_spend(now_ms: int, usd: float, warm_seq: int | None = None) -> DaySpend:
    return DaySpend(spend_day(now_ms), micro_usd(usd), day_expires_at_s(now_ms), warm_seq)


# Tokens a message adds beyond its text (role and turn markers): generous on purpose.
MESSAGE_OVERHEAD_TOKENS = 64


def worst_case_prompt_tokens(request_bytes: int, measured_prefix: int | None, text: str) -> int:
    """An upper bound on a turn's prompt tokens. No token covers less than one byte of text, so
    the request's JSON size bounds it (the JSON adds only bytes); once a sealed turn has measured
    the prefix, that count plus the new message's bytes is the tighter bound. Anthropic does not
    publish its tokenizer: this is the bound that holds whatever it is (docs/security.md)."""
    bound = request_bytes
    if measured_prefix is not None:
        text_bytes = len(text.encode("utf-8", "surrogatepass"))
        bound = min(bound, measured_prefix + text_bytes + MESSAGE_OVERHEAD_TOKENS)
    return bound


def budget_left(spent_micro: int, budget_usd: float | None) -> bool:
    """None: no budget."""
    return budget_usd is None or spent_micro < micro_usd(budget_usd)


def check_budget(spent_micro: int, budget_usd: float | None) -> None:
    if not budget_left(spent_micro, budget_usd):
        raise Refused(
            "budget_exhausted",
            f"today's spend budget (${budget_usd:g}) is used up; it renews at 00:00 UTC",
        )
