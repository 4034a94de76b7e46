"""`cacheRetention: "auto"`: which cache the next turn marks, the 5-minute or the 1-hour one (pure).

At each turn the two caches are compared over the rest of the conversation, in US dollars:

    total(c) = this turn's prefix on c
             + idle_cost(c) x (m x prefix + (m² - m) x exchange)     the idle gaps, warmed
             + m x exchange x write(c)                               each new exchange written

- *This turn*: staying on a live cache reads the prefix; an expired one re-writes it; moving to
  the other cache writes it at the new cache's price. The API documents that "entries with the
  longer TTL must appear before shorter ones" in one request and that a read refreshes an entry
  on either TTL ("Automatic vs explicit breakpoints" and "Choosing the TTL", Anthropic's
  prompt-caching guide as carried by anthropics/skills
  `skills/claude-api/shared/prompt-caching.md`, read 2026-12-01); it does not say whether a
  5-minute entry serves a request that marks the same prefix `1h` (or the reverse). We assume it
  does not: a switch costs a full write, so the rule switches only when that pays.
- *The idle gaps*: m more replies are answered on average, the prefix grows by one exchange per
  turn, so the prefixes warmed add up to m x prefix + (m² - m) x exchange. `idle_cost(c)` is
  the expected cost per prefix token of one gap under the shipped rule on c (a warm every
  interval, at most the break-even budget of warms, a read if the user is back in time and a
  re-write if not), with the gap drawn from the published return-time prior: a lognormal fitted
  exactly through P(gap > 5 min) = 0.27 and P(gap > 15 min) = 0.10 (issue 13; mu 4.697,
  sigma 1.643, median 110 s; bench/policy.py).
- *m*: conversations are assumed to answer 8 replies on average, memorylessly (geometric), the
  policy benchmark's conversation model: `EXPECTED_GAPS_AHEAD`. In the same model 1/9 of replies
  are a conversation's last, never answered (`END_SHARE`): the shipped rule warms those through
  its whole budget, and `idle_cost(c)` counts it.

The cheaper total wins; a tie keeps the cache in use. Everything here is arithmetic on the
model's prices (`CacheRates`, dollars per million tokens): no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from chalicelib.domain.pricing import TTL_SECONDS, CacheRates, idle_warm_budget
from chalicelib.domain.warming.state import Retention, effective_interval

# The published points (issue 13): 27 % of next messages come after 5 min, 10 % after 15 min.
PUBLISHED_POINTS = ((300.0, 0.27), (900.0, 0.10))
# Answered replies still to come at any turn (geometric conversations, mean 8: bench/policy.py).
EXPECTED_GAPS_AHEAD = 8.0
# The share of replies that are a conversation's last and never answered, in the same model: the
# shipped rule warms such a reply through its whole budget (unless the tab is closed), which on the
# 1-hour cache is 19-79 hourly warms. Leaving it out would favour the 1-hour cache by that much.
END_SHARE = 1 / (1 + EXPECTED_GAPS_AHEAD)
RETENTIONS: tuple[Retention, Retention] = ("5m", "1h")


@dataclass(frozen=True)
class ReturnPrior:
    """When the user sends the next message after a reply: log(gap) ~ Normal(mu, sigma)."""

    mu: float
    sigma: float

    @classmethod
    def through(cls, points: tuple[tuple[float, float], ...] = PUBLISHED_POINTS) -> ReturnPrior:
        """The lognormal whose survival passes through both (seconds, P(gap > seconds))."""
        (t1, p1), (t2, p2) = points
        z1, z2 = NormalDist().inv_cdf(1 - p1), NormalDist().inv_cdf(1 - p2)
        sigma = (math.log(t2) - math.log(t1)) / (z2 - z1)
        return cls(math.log(t1) - sigma * z1, sigma)

    def survival(self, seconds: float) -> float:
        """P(the user is not back `seconds` after the reply)."""
        if seconds <= 0:
            return 1.0
        return 0.5 * math.erfc((math.log(seconds) - self.mu) / (self.sigma * math.sqrt(2.0)))


PRIOR = ReturnPrior.through()


def idle_cost_per_token(
    retention: Retention,
    rates: CacheRates,
    interval_s: int,
    end_share: float = 0.0,
    prior: ReturnPrior = PRIOR,
) -> float:
    """Expected dollars per million prefix tokens of one idle gap on this cache under the shipped
    rule: a warm every `interval_s` (each a read) up to the break-even budget, then the user's
    next turn reads the prefix if the cache is still alive, or re-writes it. With probability
    `end_share` the reply is the conversation's last: its warms run the whole budget and nobody
    comes back."""
    read, write = rates.cache_read, rates.write(retention)
    budget = idle_warm_budget(rates, retention)

    def not_back(seconds: float) -> float:
        return end_share + (1.0 - end_share) * prior.survival(seconds)

    warms = sum(not_back(j * interval_s) for j in range(1, budget + 1))
    expired = not_back(budget * interval_s + TTL_SECONDS[retention])
    return read * warms + read * (1.0 - expired) + write * (expired - end_share)


@dataclass(frozen=True)
class Verdict:
    retention: Retention
    # Expected dollars over the rest of the conversation, per cache.
    totals: dict[str, float]
    reason: str


def choose_cache(
    current: Retention,
    alive: bool,
    prefix: int,
    exchange: int,
    rates: CacheRates,
    interval_choice: int | None = None,
    end_share: float = END_SHARE,
) -> Verdict:
    """The cache the next turn should mark, with the figures behind it (see the module doc)."""
    m = EXPECTED_GAPS_AHEAD
    warmed = m * prefix + (m * m - m) * exchange
    totals: dict[str, float] = {}
    for cache in RETENTIONS:
        interval = effective_interval(interval_choice, cache)
        if cache == current:
            now = prefix * (rates.cache_read if alive else rates.write(cache))
        else:
            now = prefix * rates.write(cache)
        idle = idle_cost_per_token(cache, rates, interval, end_share) * warmed
        totals[cache] = (now + idle + m * exchange * rates.write(cache)) / 1_000_000
    other: Retention = "1h" if current == "5m" else "5m"
    chosen = other if totals[other] < totals[current] else current
    return Verdict(chosen, totals, _reason(chosen, totals, prefix, exchange))


def _reason(chosen: Retention, totals: dict[str, float], prefix: int, exchange: int) -> str:
    other = "1h" if chosen == "5m" else "5m"
    return (
        f"auto: {chosen} is cheaper for a {prefix:,}-token prefix growing {exchange:,} per turn "
        f"(est. ${totals[chosen]:.4f} vs ${totals[other]:.4f} on {other} for the rest of the "
        "conversation)"
    )
