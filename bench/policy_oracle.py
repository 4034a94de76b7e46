"""The oracle that knows when the user comes back, and the tally every rule's cost is read from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.policies import Cache
from bench.policy_gaps import MARGIN_S
from bench.policy_replay import Outcome


@dataclass
class Tally:
    gaps: int = 0
    # Replies never answered: they cost their warms and nothing else.
    ends: int = 0
    warms: int = 0
    alive: int = 0
    rescued: int = 0

    def cost(self, read: float, write: float) -> float:
        returns = self.gaps - self.ends
        return read * (self.warms + self.alive) + write * (returns - self.alive)


def tally(outcomes: Sequence[Outcome], gaps: Sequence[float], ttl: float) -> Tally:
    t = Tally(gaps=len(gaps))
    for outcome, gap in zip(outcomes, gaps, strict=True):
        t.warms += outcome.warms
        t.ends += gap == math.inf
        if outcome.alive:
            t.alive += 1
            t.rescued += gap >= ttl
    return t


def oracle_warms(gap: float, cache: Cache, margin: float = MARGIN_S) -> int:
    """Warms (every TTL - margin) that keep the cache alive until the user is back."""
    if gap < cache.ttl:
        return 0
    return math.floor((gap - cache.ttl) / (cache.ttl - margin)) + 1


def oracle_cost(gap: float, cache: Cache, read: float) -> float:
    return min((oracle_warms(gap, cache) + 1) * read, cache.write)


def oracle_outcomes(gaps: Sequence[float], cache: Cache, read: float) -> list[Outcome]:
    """The oracle's choice per gap, as an outcome (so it shares every other rule's arithmetic)."""
    out = []
    for gap in gaps:
        if gap == math.inf:
            out.append(Outcome(0, False))  # it knows nobody is coming: no warm
            continue
        k = oracle_warms(gap, cache)
        out.append(
            Outcome(k, True) if (k + 1) * read < cache.write else Outcome(0, gap < cache.ttl)
        )
    return out
