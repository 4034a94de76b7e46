"""Warming rules behind one small interface: what the policy benchmark compares, and what gets
ported into `chalicelib.domain.warming.decide` once a rule wins.

A rule answers one question each time the cache has just been refreshed (by the sealed turn, then by
each warm): *how long after this refresh should the next warm start, or never?*

    next_warm(idle_so_far, warms_so_far, history) -> seconds | None

- `idle_so_far`: seconds from the reply (the sealed turn) to this refresh: 0 right after the turn,
  then the start of the latest warm.
- `warms_so_far`: warms sent since the turn.
- `history`: the same user's previous idle gaps in seconds, oldest first (the gap in progress is
  not in it). Fixed rules ignore it.
- Returns the delay from this refresh to the next warm, or None to stop warming until the next turn.

Everything here is pure arithmetic on floats (no clock, no I/O), in the units the benchmark uses:
prices are multiples of the base input price (`read` 0.1 means a cache read costs 0.1x).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bench.policy_model import GapHistory, Plan, PlanScan, Predictive, ReturnModel, plan_scan


class Policy(Protocol):
    def next_warm(
        self, idle_so_far: float, warms_so_far: int, history: Sequence[float]
    ) -> float | None: ...


@dataclass(frozen=True)
class Cache:
    """One cache lifetime: its TTL and the price of (re-)writing the prefix into it."""

    name: str
    ttl: float
    write: float


CACHE_5M = Cache("5m", 300.0, 1.25)
CACHE_1H = Cache("1h", 3600.0, 2.0)


def break_even_budget(read: float, write: float) -> int:
    """Idle warms that together still cost less than one re-write: floor(write/read - 1).

    k warms plus the return's read cost (k + 1) x read, against one re-write; past this many the
    warming has spent more than the write it was avoiding (the ski-rental break-even, which also
    bounds a never-returning user's cost at about one re-write). The epsilon keeps 1.25/0.05 = 25
    from landing on 24.999...
    """
    return max(0, math.floor(write / read - 1 + 1e-9))


@dataclass(frozen=True)
class NoWarming:
    def next_warm(
        self, idle_so_far: float, warms_so_far: int, history: Sequence[float]
    ) -> float | None:
        return None


@dataclass(frozen=True)
class FixedInterval:
    """Warm every `interval` seconds; stop after `budget` warms or past `idle_cap` seconds idle."""

    interval: float
    budget: int | None = None
    # No warm *starts* later than this many seconds after the reply (pi's 30-minute idle cap).
    idle_cap: float | None = None

    def next_warm(
        self, idle_so_far: float, warms_so_far: int, history: Sequence[float]
    ) -> float | None:
        if self.budget is not None and warms_so_far >= self.budget:
            return None
        if self.idle_cap is not None and idle_so_far + self.interval > self.idle_cap:
            return None
        return self.interval


@dataclass(frozen=True)
class ExpectedValue:
    """Warm only while it pays on average, looking ahead: warm now iff some plan of warming k >= 1
    more times (then stopping) costs less on average than stopping now, given that the user is
    not back yet. Comparing such plans only involves gaps longer than the current idle time, so the
    best k never changes as the gap goes on: the rule is "warm K times after each reply", K the
    argmin of `PlanScan` under this user's predictive, at most the break-even budget.

    The issue's one-step test (`MyopicExpectedValue`) asks only whether the *next* warm pays on its
    own. That is optimal when the chance of coming back in the next window falls with idle time;
    for users whose gaps are typically long it first rises, so the one-step test stops too early.
    """

    cache: Cache
    read: float
    model: ReturnModel
    margin: float = 10.0
    budget: int | None = None
    # Round the predictive's log-mean to this (0 = exact), so that users with nearly the same
    # history share one plan: a simulation speed-up (0.01 is 1 % in time), not part of the rule.
    resolution: float = 0.0

    @property
    def interval(self) -> float:
        return self.cache.ttl - self.margin

    @functools.cached_property
    def ceiling(self) -> int:
        if self.budget is not None:
            return self.budget
        return break_even_budget(self.read, self.cache.write)

    def scan(self, gap: Predictive) -> PlanScan:
        if self.resolution:
            mean = round(gap.mean / self.resolution) * self.resolution
            gap = Predictive(mean, gap.sd, gap.never)
        return plan_scan(gap, self.cache.ttl, self.interval, self.read, self.cache.write)

    def plan(self, history: Sequence[float]) -> Plan:
        return self.scan(self.model.predictive(history)).plan(self.ceiling)

    def next_warm(
        self, idle_so_far: float, warms_so_far: int, history: Sequence[float]
    ) -> float | None:
        if warms_so_far >= self.ceiling:
            return None
        memo = history.scan_memo if isinstance(history, GapHistory) else None
        if memo is not None and memo[0] is self:
            scan = memo[1]
        else:
            scan = self.scan(self.model.predictive(history))
            if isinstance(history, GapHistory):
                history.scan_memo = (self, scan)
        return self.interval if scan.warm_again(warms_so_far, self.ceiling) else None


@dataclass(frozen=True)
class MyopicExpectedValue:
    """The issue's formula: warm iff P(return in the window this warm buys | not back by the warm)
    x (write - read) > read, with the break-even budget as a hard ceiling.

    A warm at idle time a = last refresh t + interval moves the expiry from t + ttl to a + ttl, so
    it turns a re-write into a read exactly when the user comes back in [t + ttl, a + ttl); it costs
    `read` whether or not they do.
    """

    cache: Cache
    read: float
    model: ReturnModel
    margin: float = 10.0
    budget: int | None = None

    def next_warm(
        self, idle_so_far: float, warms_so_far: int, history: Sequence[float]
    ) -> float | None:
        budget = self.budget
        if budget is None:
            budget = break_even_budget(self.read, self.cache.write)
        if warms_so_far >= budget:
            return None
        gap = self.model.predictive(history)
        interval = self.cache.ttl - self.margin
        at = idle_so_far + interval
        # Not back by the warm: still to come, or never (a conversation's last reply).
        not_back = gap.survival(at)
        if not_back < 1e-12:
            return None
        window = gap.survival(idle_so_far + self.cache.ttl) - gap.survival(at + self.cache.ttl)
        return interval if window / not_back * (self.cache.write - self.read) > self.read else None


def warm_times(policy: Policy, history: Sequence[float], ttl: float) -> list[float]:
    """When the rule would warm (idle seconds) if the user never came back."""
    times: list[float] = []
    refresh = 0.0
    while True:
        delay = policy.next_warm(refresh, len(times), history)
        # The late-tick guard: a warm at or past the expiry would be a re-write, not a read.
        if delay is None or delay >= ttl or len(times) > 10_000:
            return times
        refresh += delay
        times.append(refresh)


@dataclass(frozen=True)
class CacheChoice:
    """`cacheRetention: "auto"`: which cache to keep the conversation on from this turn.

    A cache c costs, per idle gap, prefix x idle_cost[c] (warms + the return's read or re-write
    under c's warming rule, a never-answered last reply included) and, per turn, exchange x
    write[c] (the new part of each turn is written at c's price: 2x on the 1h cache against 1.25x).
    The prefix grows by one exchange per turn, so over the rest of a conversation of a geometric
    number of idle gaps with mean m (memoryless: m more are expected at any turn), the prefixes
    warmed add up to m x prefix + (m^2 - m) x exchange on average.

    Changing cache is assumed to need a full write of the prefix at the new cache's price (the API
    docs do not say whether a 5m entry serves a request that marks the same prefix 1h; we assume it
    does not), instead of what this turn pays anyway: a read if the cache is alive, a re-write if
    it expired, a first write on the first turn. The cheaper total wins; ties keep the current
    cache, then the shorter one.
    """

    read: float
    remaining_gaps: float = 8.0

    def choose(
        self,
        current: Cache | None,
        alive: bool,
        prefix: float,
        exchange: float,
        idle_cost: dict[str, float],
        caches: Sequence[Cache] = (CACHE_5M, CACHE_1H),
    ) -> Cache:
        m = self.remaining_gaps
        warmed = m * prefix + (m * m - m) * exchange

        def this_turn(c: Cache) -> float:
            if current is not None and c.name == current.name:
                return prefix * (self.read if alive else c.write)
            return prefix * c.write

        def total(c: Cache) -> float:
            return this_turn(c) + idle_cost[c.name] * warmed + m * exchange * c.write

        return min(
            caches,
            key=lambda c: (
                total(c),
                0 if current is not None and c.name == current.name else 1,
                c.ttl,
            ),
        )


def warms_if_never_back(policy: Policy, history: Sequence[float], ttl: float) -> int:
    """Warms sent after a reply the user never answers (a conversation's last)."""
    if isinstance(policy, ExpectedValue):
        return policy.plan(history).warms
    return len(warm_times(policy, history, ttl))


def expected_idle_cost(
    policy: Policy, history: Sequence[float], cache: Cache, read: float, gap: Predictive
) -> float:
    """Average cost of the next idle gap under `policy` (warms + the return's read or re-write),
    in prefix units, if the gap follows `gap`."""
    if isinstance(policy, ExpectedValue):
        return policy.scan(gap).plan(policy.ceiling).expected_cost
    times = warm_times(policy, history, cache.ttl)
    warms = sum(gap.survival(at) for at in times)
    expired = gap.survival((times[-1] if times else 0.0) + cache.ttl)
    return read * warms + read * (1.0 - expired) + cache.write * (expired - gap.never)
