"""The table's rows (`rules`) and the `Runner` that plays them over a gap model and a cache."""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.policies import (
    CACHE_1H,
    CACHE_5M,
    Cache,
    ExpectedValue,
    FixedInterval,
    MyopicExpectedValue,
    NoWarming,
    Policy,
    break_even_budget,
    warms_if_never_back,
)
from bench.policy_gaps import GAPS_PER_USER, MARGIN_S, READS, GapModel
from bench.policy_model import ReturnModel
from bench.policy_oracle import oracle_outcomes, tally
from bench.policy_replay import Outcome, decide_outcomes, play_users, replay_decide
from chalicelib.domain.timing import TIMINGS


@dataclass(frozen=True)
class Rule:
    label: str
    # Builds the rule for one cache, read price and return model; None for a row played through
    # decide.
    make: Callable[[Cache, float, ReturnModel], Policy] | None = None
    via_decide: bool = False
    # A peer's published rule (the target asks to beat every one of them).
    peer: bool = False
    # Not shippable (tuned on the very gaps it is scored on, or past the hard ceiling): printed to
    # show how close any rule can get.
    diagnostic: bool = False
    # Only for gap models with never-answered replies (elsewhere it equals another row).
    ends_only: bool = False


def per_price_budget(cache: Cache, read: float, returns: ReturnModel) -> Policy:
    return FixedInterval(cache.ttl - MARGIN_S, break_even_budget(read, cache.write))


# The EV rows round each user's predictive to 0.01 in log-seconds (1 % in time) so that plans are
# shared between users with nearly the same history; `run` measures what that changes.
RESOLUTION = 0.01


def look_ahead(cache: Cache, read: float, returns: ReturnModel) -> Policy:
    return ExpectedValue(cache, read, returns, MARGIN_S, resolution=RESOLUTION)


TODAY = break_even_budget(0.1, CACHE_5M.write), break_even_budget(0.1, CACHE_1H.write)
NO_WARMING = "no warming"
BEFORE = f"ours before issue 13 (240 s, {TODAY[0]} / {TODAY[1]})"
OURS = f"ours: TTL-10 s, budget floor((W - r)/r), {TIMINGS.late_guard_s} s guard (decide)"
INTERVAL_ONLY = f"ours at TTL-10 s, the old budget ({TODAY[0]} / {TODAY[1]})"
EV_MYOPIC = "EV one-step (the issue's formula), ceiling floor(W/r - 1) (not shipped)"
EV_LOOK_AHEAD = "EV look-ahead, ceiling floor(W/r - 1) (not shipped)"


def _peers() -> list[Rule]:
    """The peers' published rules, and this product's own before issue 13."""
    return [
        Rule("SillyTavern extension (270 s, 3)", lambda c, r, m: FixedInterval(270, 3), peer=True),
        Rule(
            "SillyTavern built-in proposal (240 s, 6)",
            lambda c, r, m: FixedInterval(240, 6),
            peer=True,
        ),
        Rule(
            "pi (270 s, 30-min idle cap)",
            lambda c, r, m: FixedInterval(270, idle_cap=1800),
            peer=True,
        ),
        Rule("Aider keepalive pings 5 (295 s)", lambda c, r, m: FixedInterval(295, 5), peer=True),
        Rule("a gateway (280 s, 2)", lambda c, r, m: FixedInterval(280, 2), peer=True),
        # The rule this product shipped before issue 13, simulated (decide no longer has it).
        Rule(BEFORE, lambda c, r, m: FixedInterval(240, TODAY[c is CACHE_1H]), peer=True),
    ]


def rules() -> list[Rule]:
    """Every row of the table, in order."""
    return [
        Rule(NO_WARMING, lambda c, r, m: NoWarming()),
        *_peers(),
        Rule(
            INTERVAL_ONLY,
            lambda c, r, m: FixedInterval(c.ttl - MARGIN_S, TODAY[c is CACHE_1H]),
        ),
        Rule(OURS, via_decide=True),
        Rule(EV_MYOPIC, lambda c, r, m: MyopicExpectedValue(c, r, m, MARGIN_S)),
        Rule(EV_LOOK_AHEAD, look_ahead),
        Rule(
            "EV look-ahead, ceiling 4 x floor(W/r - 1)",
            lambda c, r, m: ExpectedValue(
                c, r, m, MARGIN_S, 4 * break_even_budget(r, c.write), RESOLUTION
            ),
            diagnostic=True,
        ),
        Rule(
            "EV look-ahead, end share misjudged: assumed half the true one",
            lambda c, r, m: look_ahead(c, r, dataclasses.replace(m, never=m.never / 2)),
            diagnostic=True,
            ends_only=True,
        ),
        Rule(
            "EV look-ahead, end share misjudged: assumed twice the true one",
            lambda c, r, m: look_ahead(c, r, dataclasses.replace(m, never=m.never * 2)),
            diagnostic=True,
            ends_only=True,
        ),
    ]


# The shipped rule: its rows are the target's verdict, and the cache choice warms with it.
SHIPPED = OURS


@dataclass
class Cell:
    ratio: float
    rescued: float
    cost_per_gap: float


@dataclass
class Block:
    """One gap model x cache: rows of cells, one per read price."""

    model: str
    cache: Cache
    oracle: dict[float, Cell] = field(default_factory=dict)
    rows: dict[str, dict[float, Cell]] = field(default_factory=dict)
    never_back: dict[str, str] = field(default_factory=dict)
    diagnostic: set[str] = field(default_factory=set)


class Runner:
    """Plays rules over gap models, once per distinct (model, cache, rule object)."""

    def __init__(self, exact_decide: bool = False) -> None:
        self.exact_decide = exact_decide
        self._played: dict[tuple[str, str, object], list[Outcome]] = {}

    def decided(self, model: GapModel, cache: Cache, read: float) -> list[Outcome]:
        key: tuple[str, str, object] = (model.name, cache.name, ("decide", read))
        if key not in self._played:
            self._played[key] = decide_outcomes(model, cache, self.exact_decide, read)
        return self._played[key]

    def played(self, model: GapModel, cache: Cache, policy: Policy) -> list[Outcome]:
        # Rules that do not depend on the read price (frozen dataclasses, equal when their
        # parameters are) are played once for all three.
        key = (model.name, cache.name, policy)
        if key not in self._played:
            self._played[key] = play_users(policy, model, cache.ttl)
        return self._played[key]

    def outcomes(self, model: GapModel, cache: Cache, rule: Rule, read: float) -> list[Outcome]:
        if rule.via_decide:
            return self.decided(model, cache, read)
        assert rule.make is not None
        return self.played(model, cache, rule.make(cache, read, model.returns))

    def block(self, model: GapModel, cache: Cache, table: list[Rule]) -> Block:
        gaps = model.gaps
        block = Block(model.name, cache)
        oracle: dict[float, float] = {}
        for read in READS:
            o = tally(oracle_outcomes(gaps, cache, read), gaps, cache.ttl)
            oracle[read] = o.cost(read, cache.write)
            block.oracle[read] = Cell(1.0, o.rescued / o.gaps, oracle[read] / o.gaps)

        def add(label: str, outcomes: Callable[[float], list[Outcome]], on: Cache) -> None:
            cells = {}
            for read in READS:
                t = tally(outcomes(read), gaps, on.ttl)
                cost = t.cost(read, on.write)
                cells[read] = Cell(cost / oracle[read], t.rescued / t.gaps, cost / t.gaps)
            block.rows[label] = cells

        for rule in table:
            if rule.ends_only and not model.ends:
                continue

            def of_rule(read: float, rule: Rule = rule) -> list[Outcome]:
                return self.outcomes(model, cache, rule, read)

            add(rule.label, of_rule, cache)
            block.never_back[rule.label] = self.never_back(model, cache, rule)
            if rule.diagnostic:
                block.diagnostic.add(rule.label)
        # The other cache under its own per-price budget, idle cost only: the 1h cache's dearer
        # exchange writes are left out here (the cache-choice table counts them).
        other = CACHE_1H if cache is CACHE_5M else CACHE_5M
        label = f"{other.name} cache every {other.ttl - MARGIN_S:.0f} s instead (idle cost only)"
        add(label, lambda read: self.decided(model, other, read), other)
        block.never_back[label] = " / ".join(str(break_even_budget(r, other.write)) for r in READS)
        self.best_budget(model, cache, block, oracle)
        return block

    def never_back(self, model: GapModel, cache: Cache, rule: Rule) -> str:
        """Warms sent if the user never comes back (a conversation's last reply), per read."""
        counts = []
        if rule.via_decide:
            counts = [str(replay_decide([math.inf], cache.name, r)[0].warms) for r in READS]
            return counts[0] if len(set(counts)) == 1 else " / ".join(counts)
        assert rule.make is not None
        # Per-user rules depend on the history: average over a sample of real histories.
        sample = model.histories[: 50 * GAPS_PER_USER]
        for read in READS:
            policy = rule.make(cache, read, model.returns)
            warms = [warms_if_never_back(policy, h, cache.ttl) for h in sample]
            mean = sum(warms) / len(warms)
            counts.append(f"{mean:.0f}" if mean == int(mean) else f"{mean:.1f}")
        return counts[0] if len(set(counts)) == 1 else " / ".join(counts)

    def best_budget(
        self, model: GapModel, cache: Cache, block: Block, oracle: dict[float, float]
    ) -> None:
        """The best fixed budget at TTL - 10 s, chosen on these very gaps. For independent gaps
        from one distribution (the published model) no rule that sees only the idle time can do
        better: warming is then a stopping problem whose best answer is a fixed count."""
        gaps = sorted(g for g in model.gaps if math.isfinite(g))
        ends = len(model.gaps) - len(gaps)
        interval = cache.ttl - MARGIN_S
        # j = warm ticks before the user is back if nothing stops the warming; a budget k sends
        # min(k, j) warms, and the cache is dead on return iff gap >= k x interval + ttl.
        ticks = [max(0, math.ceil(g / interval) - 1) for g in gaps]
        top = max(ticks)
        hist = [0] * (top + 1)
        for j in ticks:
            hist[j] += 1
        short = bisect.bisect_left(gaps, cache.ttl)
        cells = {}
        chosen = []
        for read in READS:
            best: tuple[float, int, int] | None = None
            below, warms_below = 0, 0  # gaps with j <= k, and their warms
            for k in range(top + 1):
                below += hist[k]
                warms_below += k * hist[k]
                warms = warms_below + k * (len(gaps) - below + ends)
                alive = bisect.bisect_left(gaps, k * interval + cache.ttl)
                cost = read * (warms + alive) + cache.write * (len(gaps) - alive)
                if best is None or cost < best[0]:
                    best = (cost, k, alive - short)
            assert best is not None
            cost, k, rescued = best
            total = len(model.gaps)
            cells[read] = Cell(cost / oracle[read], rescued / total, cost / total)
            chosen.append(str(k))
        label = "best fixed budget at TTL-10 s, chosen in hindsight"
        block.rows[label] = cells
        block.never_back[label] = " / ".join(chosen)
        block.diagnostic.add(label)
