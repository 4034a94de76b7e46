"""The policy benchmark's inputs: read prices, caches, the margin, and the gap models (idle gaps
per user, fitted to the published points) that every rule is played over."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from bench.policies import CACHE_1H, CACHE_5M
from bench.policy_model import GapHistory, ReturnModel

READS = (0.1, 0.05, 0.025)
CACHES = (CACHE_5M, CACHE_1H)
GAPS = 100_000
SEED = 13
# The published points (issue 13): 27 % of next messages come after 5 min, 10 % after 15 min.
PUBLISHED = ((300.0, 0.27), (900.0, 0.10))
# A user's idle gaps in a row: the history a per-user rule learns from; one conversation each.
GAPS_PER_USER = 20
# Heterogeneous users: spread of log(gap) within one user; the rest of the published spread is
# between users (their log-medians), so the pooled gaps still match the published points.
SIGMA_WITHIN = 1.0
# Conversations (the "+ ends" model and the cache choice): Geometric(mean) answered replies, then
# one the user never answers (warmed until the rule stops, nothing to rescue).
CONVERSATION_GAPS = 8.0
# Warms start this long before the expiry: the timer starts warms within 0.07 s of target (p99,
# 0.98 s under load, docs/performance.md), the rest covers the Lambda's wait and the API's latency.
MARGIN_S = 10.0
# Conversation shapes for the cache choice: (first prefix, tokens added per exchange).
SHAPES = ((2_000, 2_000), (20_000, 1_000), (50_000, 500), (5_000, 8_000))


def fit_lognormal(points: Sequence[tuple[float, float]] = PUBLISHED) -> tuple[float, float]:
    """(mu, sigma) of the lognormal whose survival passes through both (seconds, P(gap > s))."""
    (t1, p1), (t2, p2) = points
    z1, z2 = NormalDist().inv_cdf(1 - p1), NormalDist().inv_cdf(1 - p2)
    sigma = (math.log(t2) - math.log(t1)) / (z2 - z1)
    return math.log(t1) - sigma * z1, sigma


@dataclass
class GapModel:
    name: str
    description: str
    # Idle gaps in seconds, grouped by user in the order they happen.
    users: list[list[float]]
    # What a per-user rule may assume about users (its prior, and the share of replies that are
    # never answered, which a service knows from its own history).
    returns: ReturnModel
    # Whether some replies are a conversation's last (gap math.inf: the user never comes back).
    ends: bool = False

    @functools.cached_property
    def gaps(self) -> list[float]:
        return [g for user in self.users for g in user]

    @functools.cached_property
    def histories(self) -> list[GapHistory]:
        """Before each gap, the same user's earlier gaps."""
        return [h for user in self.users for h in histories(user)[:-1]]


def _grouped(gaps: list[float]) -> list[list[float]]:
    return [gaps[i : i + GAPS_PER_USER] for i in range(0, len(gaps), GAPS_PER_USER)]


def _with_ends(users: list[list[float]], rng: random.Random, start_new: float) -> list[list[float]]:
    """Each user's gaps, with an infinite gap (a reply never answered) before each one with
    probability `start_new`."""
    ended = []
    for user in users:
        seq: list[float] = []
        for gap in user:
            if rng.random() < start_new:
                seq.append(math.inf)
            seq.append(gap)
        ended.append(seq)
    return ended


def gap_models(n: int, seed: int = SEED) -> list[GapModel]:
    mu, sigma = fit_lognormal()
    tau = math.sqrt(sigma**2 - SIGMA_WITHIN**2)
    prior = ReturnModel(mu, tau, SIGMA_WITHIN)
    rng = random.Random(seed)
    published = [rng.lognormvariate(mu, sigma) for _ in range(n)]
    hetero: list[float] = []
    while len(hetero) < n:
        user_mu = rng.gauss(mu, tau)
        hetero += [rng.lognormvariate(user_mu, SIGMA_WITHIN) for _ in range(GAPS_PER_USER)]
    # The same users, with conversations: before each gap, with probability 1/CONVERSATION_GAPS
    # the previous reply was a conversation's last and is never answered (an infinite gap).
    start_new = 1.0 / CONVERSATION_GAPS
    ended = _with_ends(_grouped(hetero[:n]), rng, start_new)
    never = start_new / (1 + start_new)
    return [
        GapModel(
            "published",
            f"one lognormal for everyone, mu {mu:.3f} sigma {sigma:.3f} (median "
            f"{math.exp(mu):.0f} s), fitted exactly through P(>300 s) = 0.27 and "
            f"P(>900 s) = 0.10; gaps independent, so a user's history tells nothing",
            _grouped(published),
            prior,
        ),
        GapModel(
            "heterogeneous",
            f"user log-median ~ Normal({mu:.3f}, {tau:.3f}) (user medians "
            f"{math.exp(mu - 1.2816 * tau):.0f}-{math.exp(mu + 1.2816 * tau):.0f} s, 10th-90th "
            f"percentile), each user's gaps lognormal around it with sigma {SIGMA_WITHIN}; "
            f"pooled, the same lognormal as the published model",
            _grouped(hetero[:n]),
            prior,
        ),
        GapModel(
            "heterogeneous + ends",
            f"the heterogeneous users' gaps, with conversations of {CONVERSATION_GAPS:.0f} "
            f"answered replies on average, so that {100 * never:.1f} % of replies are a "
            f"conversation's last and never answered (sensitivity: the published data leave "
            f"those out); the EV rule knows that share",
            ended,
            ReturnModel(mu, tau, SIGMA_WITHIN, never),
            ends=True,
        ),
    ]


def histories(user: list[float]) -> list[GapHistory]:
    """The history before each of the user's gaps, and after the last one."""
    out = [GapHistory()]
    for gap in user:
        # An unanswered reply teaches nothing about this user's return time.
        out.append(out[-1].plus(gap) if math.isfinite(gap) else out[-1])
    return out
