"""Playing a rule over idle gaps: `bench.policies` rules by `play`, the shipped `decide` by
`replay_decide` (the only code here that knows decide's events)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.policies import Cache, FixedInterval, NoWarming, Policy, warm_times
from bench.policy_gaps import GapModel
from chalicelib.domain.pricing import CacheRates, Usage, idle_warm_budget
from chalicelib.domain.warming import (
    ArmTimer,
    ConversationCreated,
    Effect,
    Event,
    ModelTerms,
    TickDue,
    Toggle,
    TurnSealed,
    TurnStarted,
    Warm,
    WarmFinished,
    WarmingState,
    decide,
)


@dataclass(frozen=True)
class Outcome:
    """One idle gap under one rule: warms sent before the user came back, cache alive then."""

    warms: int
    alive: bool


def play(policy: Policy, gap: float, history: Sequence[float], ttl: float) -> Outcome:
    """One idle gap of `gap` seconds after a reply, under `policy`."""
    refresh, warms = 0.0, 0
    while True:
        delay = policy.next_warm(refresh, warms, history)
        if delay is None:
            break
        at = refresh + delay
        # The user came back first (their turn cancels the tick), or the late-tick guard: a warm
        # at or past the expiry would be a re-write, not a read.
        if at >= gap or at >= refresh + ttl:
            break
        refresh, warms = at, warms + 1
    return Outcome(warms, gap < refresh + ttl)


def play_users(policy: Policy, model: GapModel, ttl: float) -> list[Outcome]:
    if isinstance(policy, FixedInterval | NoWarming):
        # A rule blind to history is one schedule for every gap: `play` in a bisect
        # (tests/unit/test_policy_bench.py checks that the two agree).
        schedule = warm_times(policy, (), ttl)
        return [from_schedule(gap, schedule, ttl) for gap in model.gaps]
    return [
        play(policy, gap, history, ttl)
        for gap, history in zip(model.gaps, model.histories, strict=True)
    ]


def shipped_terms(retention: str, read: float) -> tuple[CacheRates, int]:
    """The prices in the benchmark's units (base input 1, writes 1.25 / 2.0, reads `read`) as the
    domain's `CacheRates`, and the idle budget the shipped decide gets for them."""
    rates = CacheRates(input=1.0, cache_write_5m=1.25, cache_write_1h=2.0, cache_read=read)
    return rates, idle_warm_budget(rates, retention)


def replay_decide(
    gaps: Sequence[float], retention: str, read: float = 0.1, warm_log: list[float] | None = None
) -> list[Outcome]:
    """One user's idle gaps through the shipped `decide`, with a fake clock.

    The only code here that knows decide's events (`_DecideReplay`): when they change, it
    changes. The conversation is created with `retention` fixed (the cache choice is played by
    `cache_choice`), warming on, the default interval; the model's terms are the shipped ones for
    reads of `read` (the per-price budget). Turns take no time (a turn's start and seal are the
    same instant, so decide's TTL, counted from a request's start, and the gap, counted from the
    reply, share an origin); every tick arrives exactly at its target; a warm reads the whole
    prefix and finishes at once. A math.inf gap is a reply never answered: its ticks run until
    decide stops them, and the next gap belongs to a new conversation. `warm_log` collects each
    warm's start, in seconds after the reply it follows.
    """
    replay = _DecideReplay(retention, read, warm_log)
    replay.start(1_800_000_000_000)
    out = []
    for gap in gaps:
        # A reply never answered: its ticks run until the policy stops them.
        back = replay.now + round(gap * 1000) if math.isfinite(gap) else None
        warms = replay.ticks_until(back)
        if back is None:
            out.append(Outcome(warms, False))
            replay.start((replay.state.last_refresh_at or replay.now) + 86_400_000)
            continue
        expires = replay.state.cache_expires_at
        out.append(Outcome(warms, expires is not None and back < expires))
        replay.turn(back)
    return out


class _DecideReplay:
    """One conversation's state under decide, driven by a fake clock (milliseconds)."""

    LAMBDA_TIMEOUT_MS = 30_000

    def __init__(self, retention: str, read: float, warm_log: list[float] | None) -> None:
        self.retention = retention
        self.warm_log = warm_log
        self.prefix = Usage(cache_read_input_tokens=10_000)
        rates, budget = shipped_terms(retention, read)
        # Every prefix caches.
        self.terms = ModelTerms(idle_budget=budget, min_cacheable_tokens=0, rates=rates)
        self.state = WarmingState()
        self.tick: ArmTimer | None = None
        self.now = 0

    def _decide(self, event: Event, at: int) -> list[Effect]:
        self.state, effects = decide(self.state, event, at)
        return effects

    def _armed(self, effects: list[Effect]) -> None:
        arms = [e for e in effects if isinstance(e, ArmTimer)]
        self.tick = arms[-1] if arms else None

    def start(self, now: int) -> None:
        """A new conversation with warming on and one sealed turn at `now`."""
        self.state, self.now = WarmingState(), now
        self._decide(ConversationCreated(self.retention), now)  # type: ignore[arg-type]
        self._decide(Toggle(True), now)
        self.turn(now)

    def turn(self, at: int) -> None:
        """The user is back at `at`: a turn that starts and seals at once."""
        self._decide(TurnStarted(at), at)
        self._armed(self._decide(TurnSealed(at, at, self.prefix, self.terms), at))
        self.now = at

    def ticks_until(self, back: int | None) -> int:
        """Every tick due before the user is `back` (None: never), each at its target; the warms."""
        warms = 0
        while self.tick is not None and (back is None or self.tick.target < back):
            at = self.tick.target
            deadline = at + self.LAMBDA_TIMEOUT_MS
            effects = self._decide(TickDue(self.tick.seq, at, self.terms, deadline), at)
            self._armed(effects)
            for effect in effects:
                if isinstance(effect, Warm):
                    warms += 1
                    if self.warm_log is not None:
                        self.warm_log.append((at - self.now) / 1000)
                    finished = WarmFinished(effect.seq, at, self.terms, self.prefix)
                    self._armed(self._decide(finished, at))
        return warms


# Gaps of each model replayed event by event through decide even without --exact-decide.
DECIDE_CHECKED = 5_000


class DecideShortcutBroken(AssertionError):
    pass


def decide_outcomes(model: GapModel, cache: Cache, exact: bool, read: float = 0.1) -> list[Outcome]:
    """Every gap's outcome under the shipped decide.

    Exact: each user's gaps replayed event by event (about 7 s per 100k gaps: decide's
    `dataclasses.replace` costs ~14 us a call). Default: decide's own schedule, from replaying
    one never-answered reply, applied to every gap, which is the same thing while decide's state
    after a sealed turn is the same up to a time shift (it does not depend on earlier gaps); the
    first DECIDE_CHECKED gaps are replayed event by event anyway and must match, or this raises.
    """
    exact_users: list[list[float]] = []
    count = 0
    for user in model.users:
        if count >= DECIDE_CHECKED and not exact:
            break
        exact_users.append(user)
        count += len(user)
    replayed = [o for user in exact_users for o in replay_decide(user, cache.name, read)]
    if exact:
        return replayed
    schedule: list[float] = []
    replay_decide([math.inf], cache.name, read, schedule)
    derived = [from_schedule(gap, schedule, cache.ttl) for gap in model.gaps]
    if derived[: len(replayed)] != replayed:
        raise DecideShortcutBroken(
            f"{model.name}, {cache.name}: decide's outcome now depends on more than the gap "
            "(e.g. the user's history): run with --exact-decide"
        )
    return derived


def from_schedule(gap: float, schedule: Sequence[float], ttl: float) -> Outcome:
    """The outcome of a gap under a fixed warm schedule (warm starts, seconds after the reply)."""
    warms = bisect.bisect_left(schedule, gap)  # a tick at the very moment the user is back is off
    refresh = schedule[warms - 1] if warms else 0.0
    return Outcome(warms, gap < refresh + ttl)
