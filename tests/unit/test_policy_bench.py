"""The policy benchmark's arithmetic: oracle, rules, costs, and the decide adapter (no 100k runs)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from bench import policy_choice, policy_replay
from bench.policies import (
    CACHE_1H,
    CACHE_5M,
    Cache,
    CacheChoice,
    ExpectedValue,
    FixedInterval,
    MyopicExpectedValue,
    NoWarming,
    break_even_budget,
    expected_idle_cost,
    warm_times,
    warms_if_never_back,
)
from bench.policy_gaps import GapModel, fit_lognormal, gap_models
from bench.policy_model import GapHistory, Predictive, ReturnModel
from bench.policy_oracle import Tally, oracle_cost, oracle_outcomes, oracle_warms, tally
from bench.policy_replay import (
    DecideShortcutBroken,
    Outcome,
    decide_outcomes,
    play,
    play_users,
    replay_decide,
)
from chalicelib.domain.warming import choice

READ = 0.1


def cost_of(outcome: Outcome, read: float = READ, write: float = CACHE_5M.write) -> float:
    return read * outcome.warms + (read if outcome.alive else write)


def test_the_fit_passes_through_both_published_points() -> None:
    mu, sigma = fit_lognormal()
    gap = Predictive(mu, sigma)
    assert gap.survival(300) == pytest.approx(0.27)
    assert gap.survival(900) == pytest.approx(0.10)
    assert math.exp(mu) == pytest.approx(109.6, abs=0.1)  # the median


@pytest.mark.parametrize(
    ("gap", "warms", "cost"),
    [
        (100, 0, 0.1),  # cache still alive: the return reads it
        (299, 0, 0.1),
        (300, 1, 0.2),  # one warm at 290 s keeps it to 590 s
        (589, 1, 0.2),
        (590, 2, 0.3),
        (3489, 11, 1.2),  # 11 warms + the read still beat a re-write
        (3490, 12, 1.25),  # 12 warms + the read would not: let it lapse
        (50_000, 172, 1.25),
    ],
)
def test_oracle_on_hand_computed_gaps(gap: float, warms: int, cost: float) -> None:
    assert oracle_warms(gap, CACHE_5M) == warms
    assert oracle_cost(gap, CACHE_5M, READ) == pytest.approx(cost)


def test_oracle_on_the_hour_cache() -> None:
    assert oracle_warms(3599, CACHE_1H) == 0
    assert oracle_warms(3600, CACHE_1H) == 1  # a warm at 3590 s
    assert oracle_cost(3600 + 3590, CACHE_1H, READ) == pytest.approx(0.3)


def test_oracle_outcomes_cost_what_oracle_cost_says() -> None:
    gaps = [10, 295, 300, 1000, 3489, 3490, 9000, math.inf]
    outcomes = oracle_outcomes(gaps, CACHE_5M, READ)
    t = tally(outcomes, gaps, CACHE_5M.ttl)
    finite = [g for g in gaps if math.isfinite(g)]
    assert t.cost(READ, CACHE_5M.write) == pytest.approx(
        sum(oracle_cost(g, CACHE_5M, READ) for g in finite)
    )
    assert outcomes[-1] == Outcome(0, False)  # it knows nobody is coming: no warm, no cost


@pytest.mark.parametrize(
    ("gap", "expected"),
    [
        (100, Outcome(0, True)),
        (800, Outcome(2, True)),  # warms at 270 and 540; the tick at 810 is after the return
        (1000, Outcome(3, True)),  # warms at 270, 540, 810: alive until 1110
        (1200, Outcome(3, False)),  # out of refreshes at 810: expired at 1110
    ],
)
def test_sillytavern_extension_on_constructed_gaps(gap: float, expected: Outcome) -> None:
    outcome = play(FixedInterval(270, 3), gap, (), CACHE_5M.ttl)
    assert outcome == expected
    assert cost_of(outcome) == pytest.approx({100: 0.1, 800: 0.3, 1000: 0.4, 1200: 1.55}[int(gap)])


def test_pi_idle_cap_allows_no_warm_to_start_past_30_minutes() -> None:
    pi = FixedInterval(270, idle_cap=1800)
    assert warm_times(pi, (), CACHE_5M.ttl) == [270, 540, 810, 1080, 1350, 1620]
    assert play(pi, 1900, (), CACHE_5M.ttl) == Outcome(6, True)  # alive until 1920
    assert play(pi, 2000, (), CACHE_5M.ttl) == Outcome(6, False)


def test_a_warm_due_at_or_after_the_expiry_is_not_sent() -> None:
    late = FixedInterval(300, 5)
    assert play(late, 1000, (), CACHE_5M.ttl) == Outcome(0, False)
    assert play(NoWarming(), 299, (), CACHE_5M.ttl) == Outcome(0, True)


@pytest.mark.parametrize(("read", "five", "hour"), [(0.1, 11, 19), (0.05, 24, 39), (0.025, 49, 79)])
def test_break_even_budget(read: float, five: int, hour: int) -> None:
    assert break_even_budget(read, CACHE_5M.write) == five
    assert break_even_budget(read, CACHE_1H.write) == hour


def test_tally_charges_never_answered_replies_their_warms_only() -> None:
    t = Tally(gaps=4, ends=1, warms=10, alive=2, rescued=1)
    # 10 warms + 2 reads, 1 re-write (4 gaps - 1 never answered - 2 alive)
    assert t.cost(0.1, 1.25) == pytest.approx(1.2 + 1.25)


@pytest.mark.parametrize("read", [0.1, 0.05, 0.025])
@pytest.mark.parametrize("retention", ["5m", "1h"])
def test_decide_replay_is_the_shipped_rule_played_by_the_simulator(
    retention: str, read: float
) -> None:
    # The shipped rule: a warm every TTL - 10 s, at most floor((W - r) / r) of them.
    cache = CACHE_5M if retention == "5m" else CACHE_1H
    shipped = FixedInterval(cache.ttl - 10, break_even_budget(read, cache.write))
    gaps: list[float] = [5, 289, 290, 291, 299, 301, 589, 590, 591, 1000, 2640, 3589, 3590, 3600]
    gaps += [4560]
    gaps += [math.inf, 300, 7000, 7181, 9000, 60_000, 200_000, 400_000]
    assert replay_decide(gaps, retention, read) == [play(shipped, g, (), cache.ttl) for g in gaps]


@pytest.mark.parametrize(
    ("retention", "read", "budget"),
    [("5m", 0.1, 11), ("5m", 0.05, 24), ("5m", 0.025, 49), ("1h", 0.1, 19), ("1h", 0.025, 79)],
)
def test_a_user_who_never_comes_back_gets_the_whole_budget_from_decide(
    retention: str, read: float, budget: int
) -> None:
    assert replay_decide([math.inf], retention, read) == [Outcome(budget, False)]
    schedule: list[float] = []
    replay_decide([math.inf], retention, read, schedule)
    interval = 290 if retention == "5m" else 3590
    assert schedule == [interval * k for k in range(1, budget + 1)]


def test_play_users_passes_each_user_their_own_past_gaps() -> None:
    seen: list[tuple[float, ...]] = []

    class Spy:
        def next_warm(
            self, idle_so_far: float, warms_so_far: int, history: Sequence[float]
        ) -> float | None:
            seen.append(tuple(history))
            return None

    model = GapModel("t", "", [[10.0, 20.0], [30.0, math.inf, 40.0]], ReturnModel(0, 1, 1))
    play_users(Spy(), model, CACHE_5M.ttl)
    # An unanswered reply teaches nothing about when the user comes back.
    assert seen == [(), (10.0,), (), (30.0,), (30.0,)]


def test_the_return_model_update_is_the_conjugate_normal_one() -> None:
    model = ReturnModel(mu0=5.0, tau=1.0, sigma_w=1.0)
    prior = model.predictive(())
    assert (prior.mean, prior.sd) == pytest.approx((5.0, math.sqrt(2)))
    history = GapHistory([math.exp(7.0)] * 3)
    after = model.predictive(history)
    # precision 1 + 3 = 4; mean (5 + 3 x 7) / 4; predictive variance 1/4 + 1
    assert (after.mean, after.sd) == pytest.approx((6.5, math.sqrt(1.25)))
    assert history.log_sum == pytest.approx(21.0)


def test_look_ahead_warms_through_a_return_it_is_sure_of() -> None:
    # The user comes back at exactly 1000 s: three warms (290, 580, 870) keep the cache to 1170 s
    # for 0.4 in all, against a re-write of 1.25.
    sure = ReturnModel(math.log(1000), 0.0, 0.0)
    rule = ExpectedValue(CACHE_5M, READ, sure)
    assert rule.plan(()).warms == 3
    assert rule.plan(()).expected_cost == pytest.approx(0.4)
    assert play(rule, 1000, (), CACHE_5M.ttl) == Outcome(3, True)
    # The one-step test sees no return in the first warm's window and never starts.
    assert play(MyopicExpectedValue(CACHE_5M, READ, sure), 1000, (), CACHE_5M.ttl) == Outcome(
        0, False
    )


def test_look_ahead_sends_nothing_to_a_user_who_never_comes_back() -> None:
    gone = ReturnModel(math.log(100), 1.0, 0.0, never=1.0)
    assert ExpectedValue(CACHE_5M, READ, gone).plan(()).warms == 0


def test_look_ahead_is_capped_by_the_budget_and_consistent_gap_after_gap() -> None:
    mu, sigma = fit_lognormal()
    published = ReturnModel(mu, 0.0, sigma)
    # On the published distribution warming keeps paying past the break-even count ...
    assert ExpectedValue(CACHE_5M, READ, published, budget=1000).plan(()).warms > 11
    # ... but the budget is a hard ceiling.
    rule = ExpectedValue(CACHE_5M, READ, published)
    plan = rule.plan(())
    assert plan.warms == break_even_budget(READ, CACHE_5M.write)
    for w in range(plan.warms + 3):
        assert (rule.next_warm(w * 290.0, w, ()) is not None) == (w < plan.warms)
    assert warms_if_never_back(rule, (), CACHE_5M.ttl) == plan.warms


def test_cache_choice_weighs_the_hour_caches_dearer_writes() -> None:
    chooser = CacheChoice(READ, remaining_gaps=8)
    idle = {"5m": 0.2, "1h": 0.1}
    # First turn, 10k prefix: over 8 more gaps the prefixes warmed add up to
    # 8 x 10,000 + 56 x exchange. No new tokens per exchange: 5m 12,500 + 0.2 x 80,000 = 28,500
    # against 1h 20,000 + 0.1 x 80,000 = 28,000.
    assert chooser.choose(None, False, 10_000, 0, idle) is CACHE_1H
    # 3,000-token exchanges: 5m 12,500 + 0.2 x 248,000 + 8 x 3,000 x 1.25 = 92,100 against
    # 1h 20,000 + 0.1 x 248,000 + 8 x 3,000 x 2 = 92,800.
    assert chooser.choose(None, False, 10_000, 3_000, idle) is CACHE_5M
    # A live 5m cache moves only if the saving repays a full 1h write (2.0 instead of a read):
    # stay 1,000 + 16,000 against move 20,000 + 8,000.
    assert chooser.choose(CACHE_5M, True, 10_000, 0, idle) is CACHE_5M
    assert chooser.choose(CACHE_5M, True, 10_000, 0, {"5m": 0.5, "1h": 0.1}) is CACHE_1H


@pytest.mark.parametrize(
    "rule",
    [FixedInterval(270, 3), FixedInterval(240, 6), FixedInterval(270, idle_cap=1800), NoWarming()],
)
def test_the_schedule_shortcut_for_history_blind_rules_is_play(
    rule: FixedInterval | NoWarming,
) -> None:
    gaps = [1.0, 269.9, 270.0, 270.1, 300.0, 539.0, 810.0, 1109.9, 1110.0, 1800.0, 5000.0, math.inf]
    model = GapModel("t", "", [gaps], ReturnModel(0, 1, 1))
    assert play_users(rule, model, CACHE_5M.ttl) == [
        play(rule, gap, (), CACHE_5M.ttl) for gap in gaps
    ]


def test_decide_outcomes_match_a_full_replay_and_catch_a_history_dependent_decide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = gap_models(400, seed=1)[2]  # with never-answered replies
    full = decide_outcomes(model, CACHE_5M, exact=True)
    assert decide_outcomes(model, CACHE_5M, exact=False) == full

    def drifting(
        gaps: list[float], retention: str, read: float = 0.1, warm_log: list[float] | None = None
    ) -> list[Outcome]:
        # A decide whose second and later gaps behave differently from a fresh one.
        out = original(gaps, retention, read, warm_log)
        return [out[0], *(Outcome(o.warms + 1, o.alive) for o in out[1:])]

    original = policy_replay.replay_decide
    monkeypatch.setattr(policy_replay, "replay_decide", drifting)
    with pytest.raises(DecideShortcutBroken):
        decide_outcomes(model, CACHE_5M, exact=False)


def test_one_step_counts_users_who_never_come_back_as_not_back() -> None:
    # Half never come back, the other half exactly 400 s after the reply. The first warm (at
    # 290 s) turns a re-write into a read for the returning half only: P = 0.5, and
    # 0.5 x (1.25 - 0.1) = 0.575 > 0.1 pays; with 99 % never coming back it does not.
    half = ReturnModel(math.log(400), 0.0, 0.0, never=0.5)
    assert MyopicExpectedValue(CACHE_5M, READ, half).next_warm(0, 0, ()) == 290
    mostly_gone = ReturnModel(math.log(400), 0.0, 0.0, never=0.99)
    assert MyopicExpectedValue(CACHE_5M, READ, mostly_gone).next_warm(0, 0, ()) is None


def test_the_domains_prior_is_the_benchmarks_fit() -> None:
    mu, sigma = fit_lognormal()
    assert (choice.PRIOR.mu, choice.PRIOR.sigma) == pytest.approx((mu, sigma))
    assert (round(mu, 3), round(sigma, 3)) == (4.697, 1.643)


@pytest.mark.parametrize("read", [0.1, 0.05, 0.025])
@pytest.mark.parametrize("cache", [CACHE_5M, CACHE_1H], ids=lambda c: c.name)
def test_the_domains_idle_cost_is_the_benchmarks_for_the_shipped_rule(
    cache: Cache, read: float
) -> None:
    rates, budget = policy_replay.shipped_terms(cache.name, read)
    shipped = FixedInterval(cache.ttl - 10, budget)
    mu, sigma = fit_lognormal()
    for never in (0.0, 1 / 9):
        expected = expected_idle_cost(shipped, (), cache, read, Predictive(mu, sigma, never))
        interval = int(cache.ttl - 10)
        domain = choice.idle_cost_per_token(cache.name, rates, interval, never)  # type: ignore[arg-type]
        assert domain == pytest.approx(expected)


def test_the_auto_choice_in_the_choice_table_starts_on_5m_and_waits_for_two_turns() -> None:
    conv = policy_choice.Conv([10_000.0, 10_000.0, 10_000.0], 0)
    played = {
        "5m": [Outcome(11, False)] * 3,  # every gap expires the 5m cache
        "1h": [Outcome(0, True)] * 3,
    }
    _, hours, moved = policy_choice.auto_cost(conv, 0.1, (50_000, 500), played, ends=False)
    # Turn 2 cannot choose (one exchange not measured yet); turn 3 moves to 1h for good.
    assert (hours, moved) == (1, 1)
    # With the end share counted, as shipped, the 1h cache's budget after the last reply keeps
    # the same conversation on 5m.
    assert policy_choice.auto_cost(conv, 0.1, (50_000, 500), played)[1:] == (0, 0)
