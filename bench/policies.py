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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


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


class GapHistory(tuple[float, ...]):
    """A user's past idle gaps (seconds, oldest first) with the sum of their logs kept alongside:
    the only per-user state the return model needs (the service would store count and sum)."""

    log_sum: float
    # One-slot memos, (whose, value): a rule asks the same of one history once per warm of a
    # gap, and a simulation plays one rule over every gap before the next rule.
    predictive_memo: tuple[object, Predictive] | None
    scan_memo: tuple[object, PlanScan] | None

    def __new__(cls, gaps: Iterable[float] = (), log_sum: float | None = None) -> GapHistory:
        self = super().__new__(cls, gaps)
        self.log_sum = _log_sum(self) if log_sum is None else log_sum
        self.predictive_memo = self.scan_memo = None
        return self

    def plus(self, gap: float) -> GapHistory:
        return GapHistory((*self, gap), self.log_sum + math.log(max(gap, 1e-3)))


def _log_sum(gaps: Iterable[float]) -> float:
    return sum(math.log(max(g, 1e-3)) for g in gaps)


@dataclass(frozen=True)
class ReturnModel:
    """When this user comes back: lognormal idle gaps with a per-user log-median.

    Prior: the user's log-median m ~ Normal(mu0, tau^2); given m, log(gap) ~ Normal(m, sigma_w^2).
    With tau^2 + sigma_w^2 = sigma^2 of the published fit, a user with no history gets exactly the
    published distribution. Each past gap sharpens m (conjugate normal update, so the state to keep
    per user is just the count and the sum of log gaps):

        precision = 1/tau^2 + n/sigma_w^2
        mean      = (mu0/tau^2 + sum(log g_i)/sigma_w^2) / precision
        log(next gap) ~ Normal(mean, 1/precision + sigma_w^2)

    `never`: the probability that this reply is the conversation's last (the user never comes
    back to it); 0 for the published idle gaps, which by definition all end in a next message.
    """

    mu0: float
    tau: float
    sigma_w: float
    never: float = 0.0

    def predictive(self, history: Sequence[float]) -> Predictive:
        if not isinstance(history, GapHistory):
            return self.predictive_from(len(history), _log_sum(history))
        memo = history.predictive_memo
        if memo is not None and memo[0] is self:
            return memo[1]
        found = self.predictive_from(len(history), history.log_sum)
        history.predictive_memo = (self, found)
        return found

    def predictive_from(self, n: int, log_sum: float) -> Predictive:
        if n == 0 or self.tau == 0:
            spread = math.hypot(self.tau, self.sigma_w)
            return Predictive(self.mu0, spread, self.never)
        if self.sigma_w == 0:
            return Predictive(log_sum / n, 0.0, self.never)
        prior, data = 1.0 / self.tau**2, n / self.sigma_w**2
        precision = prior + data
        mean = (self.mu0 * prior + log_sum / self.sigma_w**2) / precision
        return Predictive(mean, math.sqrt(1.0 / precision + self.sigma_w**2), self.never)


@dataclass(frozen=True)
class Predictive:
    """The next gap: never, with probability `never`; else lognormal, log ~ Normal(mean, sd)."""

    mean: float
    sd: float
    never: float = 0.0

    def survival(self, seconds: float) -> float:
        """P(the user is not back `seconds` after the reply)."""
        if seconds <= 0:
            return 1.0
        return self.survival_log(math.log(seconds))

    def survival_log(self, log_seconds: float) -> float:
        if self.sd == 0:
            returns = 1.0 if log_seconds < self.mean else 0.0
        else:
            returns = 0.5 * math.erfc((log_seconds - self.mean) / (self.sd * _SQRT2))
        return self.never + (1.0 - self.never) * returns


_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Plan:
    """Warm `warms` times (every interval) after the reply, then stop; and what that costs on
    average per idle gap (warms + the return's read or re-write), in prefix units."""

    warms: int
    expected_cost: float


class PlanScan:
    """Expected cost of "warm k times (at interval, 2 x interval, ...) then stop", for k = 0, 1, ...

        cost(k) = read x sum_{j<=k} S(j x interval) + read x P(back before k x interval + ttl)
                  + write x P(back, but after k x interval + ttl)

    with S the survival of `gap` (a user who never comes back pays only the warms). Computed only
    as far as a question needs, and cut where no later k can win: from k on, a plan costs at
    least its warms so far plus the return's read.
    """

    __slots__ = (
        "_log_expiry",
        "_log_warm",
        "best",
        "costs",
        "cut",
        "gap",
        "read",
        "warms",
        "write",
    )

    def __init__(self, gap: Predictive, ttl: float, interval: float, read: float, write: float):
        self.gap, self.read, self.write = gap, read, write
        self._log_warm, self._log_expiry = _log_grid(ttl, interval)
        expired = gap.survival_log(self._log_expiry(0))
        cost = read * (1.0 - expired) + write * (expired - gap.never)
        self.costs = [cost]
        self.best = [cost]  # best[k] = min(costs[: k + 1])
        self.warms = 0.0
        self.cut = False

    def _extend(self, k: int) -> bool:
        """Compute costs up to k; False if the scan was cut before k."""
        gap, read = self.gap, self.read
        while len(self.costs) <= k:
            if self.cut:
                return False
            j = len(self.costs)
            self.warms += gap.survival_log(self._log_warm(j))
            if read * (self.warms + 1.0 - gap.never) >= self.best[-1]:
                self.cut = True
                return False
            expired = gap.survival_log(self._log_expiry(j))
            cost = read * self.warms + read * (1.0 - expired) + self.write * (expired - gap.never)
            self.costs.append(cost)
            self.best.append(min(self.best[-1], cost))
        return True

    def warm_again(self, warms_so_far: int, ceiling: int) -> bool:
        """Whether the best plan with at most `ceiling` warms has more than `warms_so_far`."""
        w = warms_so_far
        if w >= ceiling or not self._extend(w):
            return False
        target = self.best[w]
        for k in range(w + 1, ceiling + 1):
            if not self._extend(k):
                return False
            if self.costs[k] < target:
                return True
        return False

    def plan(self, ceiling: int) -> Plan:
        self._extend(ceiling)
        top = min(ceiling, len(self.costs) - 1)
        cost = self.best[top]
        return Plan(self.costs.index(cost), cost)


@functools.lru_cache(maxsize=64)
def _log_grid(ttl: float, interval: float) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """log(j x interval) and log(j x interval + ttl), memoised: the scan's hot loop."""

    @functools.cache
    def warm(j: int) -> float:
        return math.log(j * interval)

    @functools.cache
    def expiry(j: int) -> float:
        return math.log(j * interval + ttl)

    return warm, expiry


@functools.lru_cache(maxsize=1 << 16)
def plan_scan(gap: Predictive, ttl: float, interval: float, read: float, write: float) -> PlanScan:
    # Shared by every ceiling and by each call within one idle gap (same history, same key).
    return PlanScan(gap, ttl, interval, read, write)


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
