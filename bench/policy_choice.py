"""The cache choice: whole conversations on 5m, on 1h and on the shipped auto choice, against
hindsight."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import cast

from bench.policies import CACHE_1H, CACHE_5M, Cache
from bench.policy_gaps import CACHES, CONVERSATION_GAPS, READS, SHAPES, GapModel
from bench.policy_oracle import oracle_cost
from bench.policy_replay import Outcome, shipped_terms
from bench.policy_rules import Runner
from chalicelib.domain.warming import Retention
from chalicelib.domain.warming.choice import END_SHARE, choose_cache


@dataclass
class ChoiceRow:
    model: str
    read: float
    shape: tuple[int, int]
    # Totals over all conversations, in base-input-price tokens.
    five: float
    hour: float
    auto: float
    # The same choice blind to never-answered replies (not shipped).
    blind: float
    hindsight: float
    auto_hour_share: float
    switches: float


def conversations(model: GapModel, seed: int) -> list[tuple[int, int]]:
    """(user index, number of gaps) per conversation, in order: each user's gaps split into
    conversations of Geometric(CONVERSATION_GAPS) gaps (the last one cut by the user's end)."""
    rng = random.Random(seed + 1)
    out = []
    for u, user in enumerate(model.users):
        left = len(user)
        while left > 0:
            n = 1
            while rng.random() > 1.0 / CONVERSATION_GAPS:
                n += 1
            out.append((u, min(n, left)))
            left -= min(n, left)
    return out


@functools.lru_cache(maxsize=1 << 14)
def auto_choice(
    current: str, alive: bool, prefix: int, exchange: int, read: float, ends: bool = True
) -> str:
    """The shipped auto choice (`chalicelib.domain.warming.choice.choose_cache`) at the benchmark's
    prices; memoised, as a simulation meets the same few situations thousands of times. `ends`
    False: the same formula blind to never-answered replies (a diagnostic, not shipped)."""
    rates, _ = shipped_terms("5m", read)
    share = END_SHARE if ends else 0.0
    current_cache = cast(Retention, current)
    return choose_cache(current_cache, alive, prefix, exchange, rates, end_share=share).retention


@dataclass(frozen=True)
class Conv:
    """One conversation of the choice table: its idle gaps and where their outcomes start."""

    gaps: list[float]
    flat: int


def conversation_cost(
    conv: Conv, cache: Cache, read: float, shape: tuple[int, int], played: list[Outcome]
) -> tuple[float, float]:
    """(cost on `cache` under the shipped rule, cost on `cache` warmed by the oracle)."""
    prefix0, exchange = shape
    prefix = prefix0 + exchange
    fixed = ideal = prefix * cache.write
    _, budget = shipped_terms(cache.name, read)
    for i, gap in enumerate(conv.gaps):
        o = played[conv.flat + i]
        fixed += prefix * read * o.warms + prefix * (read if o.alive else cache.write)
        ideal += prefix * oracle_cost(gap, cache, read)
        fixed += exchange * cache.write
        ideal += exchange * cache.write
        prefix += exchange
    # The last reply is never answered: decide warms it through its whole budget.
    return fixed + prefix * read * budget, ideal


def auto_cost(
    conv: Conv,
    read: float,
    shape: tuple[int, int],
    played: dict[str, list[Outcome]],
    ends: bool = True,
) -> tuple[float, int, int]:
    """(cost, gaps spent on 1h, switches) with the auto cache, which sees at each turn what the
    product sees when the turn's request goes: the first turn on 5m; from the third on, the
    prefix and the exchange the earlier turns measured, and whether the cache is alive."""
    prefix0, exchange = shape
    caches = {c.name: c for c in CACHES}
    prefix, current = prefix0 + exchange, CACHE_5M
    total, hour_gaps, switches = prefix * current.write, 0, 0
    for i in range(len(conv.gaps)):
        o = played[current.name][conv.flat + i]
        hour_gaps += current is CACHE_1H
        total += prefix * read * o.warms
        # Two sealed turns measure the exchange: turn i + 2 is the first to choose when i >= 1.
        chosen = current
        if i >= 1:
            chosen = caches[auto_choice(current.name, o.alive, prefix, exchange, read, ends)]
        if chosen is current:
            total += prefix * (read if o.alive else current.write)
        else:
            total += prefix * chosen.write
            switches += 1
        current = chosen
        total += exchange * current.write
        prefix += exchange
    _, budget = shipped_terms(current.name, read)
    return total + prefix * read * budget, hour_gaps, switches


def cache_choice(runner: Runner, model: GapModel, seed: int) -> tuple[str, list[ChoiceRow]]:
    """Whole conversations with a growing prefix, warmed by the shipped rule (decide's outcome of
    each gap on each cache): turn 1 writes prefix0 + exchange; each idle gap costs its warms;
    each next turn reads or re-writes the prefix and writes its new exchange at the cache's write
    price; after the last turn decide warms until its budget stops it. Columns: 5m only, 1h only,
    auto (the shipped choice, `auto_cost`), and the hindsight reference: per conversation the
    cheaper cache, warmed by the oracle (which does not warm after the last reply)."""
    convs = conversations(model, seed)
    gaps_total = sum(n for _, n in convs)
    never = len(convs) / (len(convs) + gaps_total)
    note = (
        f"{model.name}: {len(convs):,} conversations, {gaps_total / len(convs):.2f} idle gaps "
        f"each on average, so {100 * never:.1f} % of replies are never answered"
    )
    starts = _split(model, convs)
    rows = []
    for read in READS:
        played = {c.name: runner.decided(model, c, read) for c in CACHES}
        for shape in SHAPES:
            rows.append(_row(model.name, starts, read, shape, played, gaps_total))
    return note, rows


def _split(model: GapModel, convs: list[tuple[int, int]]) -> list[Conv]:
    """The conversations' gaps, cut from their users' gaps in order."""
    starts: list[Conv] = []
    seen: dict[int, int] = {}
    at = 0
    for u, n in convs:
        offset = seen.get(u, 0)
        starts.append(Conv(model.users[u][offset : offset + n], at))
        seen[u] = offset + n
        at += n
    return starts


def _row(
    model: str,
    starts: list[Conv],
    read: float,
    shape: tuple[int, int],
    played: dict[str, list[Outcome]],
    gaps_total: int,
) -> ChoiceRow:
    """One row of the choice table: every conversation on each cache, on auto and in hindsight."""
    totals = {"5m": 0.0, "1h": 0.0, "auto": 0.0, "blind": 0.0, "hindsight": 0.0}
    hour_gaps, switches = 0, 0
    for conv in starts:
        ideal = {}
        for c in CACHES:
            fixed, ideal[c.name] = conversation_cost(conv, c, read, shape, played[c.name])
            totals[c.name] += fixed
        totals["hindsight"] += min(ideal.values())
        cost, hours, moved = auto_cost(conv, read, shape, played)
        totals["auto"] += cost
        totals["blind"] += auto_cost(conv, read, shape, played, ends=False)[0]
        hour_gaps, switches = hour_gaps + hours, switches + moved
    return ChoiceRow(
        model,
        read,
        shape,
        totals["5m"],
        totals["1h"],
        totals["auto"],
        totals["blind"],
        totals["hindsight"],
        hour_gaps / gaps_total,
        switches / len(starts),
    )
