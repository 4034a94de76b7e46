"""When the user comes back, and what a warming plan costs under it: the return model (lognormal
idle gaps with a per-user log-median, sharpened by the user's own history) and the scan of
"warm k times, then stop" plans that `ExpectedValue` (bench/policies.py) minimises.

Pure arithmetic on floats (no clock, no I/O); prices are multiples of the base input price.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


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
