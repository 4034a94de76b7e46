"""What a transient failure of a warm costs, and what keeping the retry room costs instead.

A warm fails (DynamoDB throttled past botocore's retries, a 429/529, a crashed invocation, a
booking that failed after the warm) with probability `p`, an assumption: AWS and Anthropic
publish no per-request failure rate. Three designs on the 5-minute cache, priced in the
benchmark's units (base input price 1, write 1.25, reads at 0.1x / 0.05x / 0.025x), each ÷ the
same oracle as the other tables:

- **shipped**: the interval stays TTL - 10 s; every single failure is retried inside the 8 s
  between the target and the late guard (domain/timing.py, "The retry room"), so no failure
  loses the cache. Counted as one more read per failure (a crash after the request was sent
  pays for the warm twice; a refused or throttled warm is not billed at all).
- **lost on failure**: the interval stays TTL - 10 s and the first failure in a gap loses the
  cache (the last release: its queue retry came 5 s later, inside the guard): the warms stop and
  the user's next turn re-writes the prefix.
- **a wider margin**: TTL - 40 s, room for the queue's 5 s retry after botocore's 7 s of
  throttle back-off without any retry in the invocation; failures then cost one more read each.

The AWS side of the shipped design: every booked tick is sent with its backup in one
`SendMessageBatch` (one SQS request, as the tick alone was), and the backup costs one warm
invocation that reads the state and ends (docs/performance.md, "Room for one failure").
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.policies import CACHE_5M, FixedInterval, break_even_budget
from bench.policy_gaps import READS, GapModel
from bench.policy_oracle import oracle_outcomes, tally
from bench.policy_replay import Outcome
from bench.policy_rules import Runner

FAILURE_RATES = (0.001, 0.01, 0.05)
WIDE_MARGIN_S = 40.0


def _lost_on_failure_cost(
    outcomes: Sequence[Outcome], gaps: Sequence[float], read: float, p: float
) -> float:
    """Expected cost when the first failed warm of a gap ends warming for that gap."""
    q, write, total = 1.0 - p, CACHE_5M.write, 0.0
    for outcome, gap in zip(outcomes, gaps, strict=True):
        returns = gap != float("inf")
        n = outcome.warms
        survive = q**n
        # First failure at warm j (1-based): j - 1 warms billed, the cache lost.
        billed = n * survive + sum((j - 1) * q ** (j - 1) * p for j in range(1, n + 1))
        alive = survive if outcome.alive else 0.0
        total += read * (billed + alive) + (write * (1.0 - alive) if returns else 0.0)
    return total


def failure_table(runner: Runner, models: list[GapModel]) -> str:
    cache = CACHE_5M
    lines = [
        "**Room for one failure** (5m cache, shipped budget; cost ÷ the oracle at 290 s; "
        f"a warm fails with the probability p, assumed; a wider margin = TTL - {WIDE_MARGIN_S:.0f} s)",
        "",
        "| gaps | reads | p | shipped (retried in the 8 s room) | lost on failure | a wider margin |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        for read in READS:
            budget = break_even_budget(read, cache.write)
            oracle = tally(oracle_outcomes(model.gaps, cache, read), model.gaps, cache.ttl).cost(
                read, cache.write
            )
            narrow = runner.played(model, cache, FixedInterval(cache.ttl - 10.0, budget))
            wide = runner.played(model, cache, FixedInterval(cache.ttl - WIDE_MARGIN_S, budget))
            narrow_t, wide_t = (
                tally(narrow, model.gaps, cache.ttl),
                tally(wide, model.gaps, cache.ttl),
            )
            for p in FAILURE_RATES:
                shipped = narrow_t.cost(read, cache.write) + p * narrow_t.warms * read
                lost = _lost_on_failure_cost(narrow, model.gaps, read, p)
                wider = wide_t.cost(read, cache.write) + p * wide_t.warms * read
                lines.append(
                    f"| {model.name} | {read}x | {100 * p:g} % | {shipped / oracle:.3f}x | "
                    f"{lost / oracle:.3f}x | {wider / oracle:.3f}x |"
                )
    return "\n".join(lines)
