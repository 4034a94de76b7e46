"""Warm cost: tokens billed per warm over the physical minimum, and the idle auto-stop.

In process: the services with the in-memory store and fake timer/sockets, the real `AnthropicModel`
(the official SDK) against the Anthropic emulator, one warp clock for both (the pattern of
`tests/integration/test_turns_emulator.py`), so a 44-minute idle stretch takes a second.

A warm's *physical minimum* is reading the whole prefix from cache, sending the documented
placeholder user message (the pre-warm shape; a few uncached input tokens) and generating nothing.
Billed and minimum are priced with the model's own rates from `genai-prices` (Sonnet 4.6: reads at
0.1x input), from the emulator's usage (it counts ceil(chars / 4) tokens). Prefixes of ~2k, ~20k and ~150k tokens (system prompt up to
its 200,000-character limit, the rest as sealed turns of up to 100,000 characters).

Break-even: an idle conversation warms until it pauses at the idle budget; its total warm cost is
set against one cache re-write of its prefix (1.25 x prefix at the input price), the cost the
warming was avoiding. Target: no more than one re-write.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Report
from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.domain.pricing import Usage
from tests import parsed
from tests.fakes.ports import WarpClock, World

NAME = "cost"
SIZES = (2_000, 20_000, 150_000)
SYSTEM_LIMIT_CHARS = 200_000
TURN_LIMIT_CHARS = 100_000
REPLY_TOKENS = 40
OWNER = "bench"
MODEL = "claude-sonnet-4-6"
PRICES = GenaiPriceBook()
# Today's prices: the emulator's clock is warped, prices are not.
PRICED_AT = int(time.time() * 1000)


def usage_of(raw: dict[str, Any]) -> Usage:
    return Usage(**{k: v for k, v in raw.items() if k in Usage.__dataclass_fields__})


def billed_usd(usage: dict[str, Any]) -> float:
    return PRICES.cost_usd(MODEL, usage_of(usage), PRICED_AT)


def minimum_usd(usage: dict[str, Any]) -> float:
    """Read the whole cached prefix, send the placeholder, generate nothing."""
    prefix = usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    ideal = Usage(cache_read_input_tokens=prefix, input_tokens=usage["input_tokens"])
    return PRICES.cost_usd(MODEL, ideal, PRICED_AT)


def prefix_tokens(usage: dict[str, Any]) -> int:
    return int(
        usage["input_tokens"]
        + usage["cache_read_input_tokens"]
        + usage["cache_creation_input_tokens"]
    )


def _layout(tokens: int) -> tuple[int, list[int]]:
    """(system chars, [user text chars per turn]) for a prefix of about `tokens` tokens."""
    chars = tokens * 4
    system = min(chars // 2 if chars > SYSTEM_LIMIT_CHARS else chars * 3 // 4, SYSTEM_LIMIT_CHARS)
    rest = chars - system - 4 * REPLY_TOKENS * 2
    turns = []
    while rest > 0:
        turns.append(min(rest, TURN_LIMIT_CHARS))
        rest -= turns[-1]
    return system, turns or [400]


def _filler(tag: str, chars: int) -> str:
    words = f"{tag} keeps a long prompt alive in the cache while the user reads. "
    return (words * (chars // len(words) + 1))[:chars]


def _one_size(tokens: int) -> dict[str, Any]:
    import anthropic

    from chalicelib.adapters.model import AnthropicModel
    from chalicelib.services import Limits
    from devstack.anthropic import AnthropicEmulator, EmulatorConfig
    from tests.fakes.ports import world

    clock = WarpClock()
    config = EmulatorConfig(tokens_per_second=0, reply_tokens=REPLY_TOKENS, clock=clock.seconds)
    with AnthropicEmulator(config=config) as emulator:
        client = anthropic.Anthropic(api_key="bench", base_url=emulator.url, max_retries=0)
        model = AnthropicModel(client)
        w = world(clock=clock)  # type: ignore[arg-type]
        w.services.ports.model = lambda: model
        w.services.ports.limits = Limits(turns_per_minute=1000)
        cid, turns = _conversation_of(w, tokens)
        turns_seen = len(emulator.stats.requests)
        _warm_until_it_stops(w, cid)
        final = w.store.get_conversation(cid)
        assert final is not None
        warms = [
            r["usage"]
            for r in emulator.stats.requests[turns_seen:]
            if r["max_tokens"] == 0 and r["usage"] is not None
        ]
        return {
            "warms": warms,
            "status": final.warming.status,
            "budget": w.services.uow.costs.terms(final, PRICED_AT).idle_budget,
            "turns": len(turns),
        }


def _conversation_of(w: World, tokens: int) -> tuple[str, list[int]]:
    """A conversation whose prefix is about `tokens` tokens, every turn sealed."""
    system_chars, turns = _layout(tokens)
    conversation = w.services.create_conversation(
        OWNER,
        parsed.conversation({"system": _filler(f"size {tokens}", system_chars), "model": MODEL}),
    )
    cid: str = conversation.id
    for n, chars in enumerate(turns):
        started = w.services.start_turn(
            OWNER, cid, parsed.turn({"text": _filler(f"turn {n}", chars)})
        )
        assert w.services.generate(cid, started.index) == "sealed"
    return cid, turns


def _warm_until_it_stops(w: World, cid: str) -> None:
    """Warming on, then every tick delivered when due until none is left (the policy stopped)."""
    from chalicelib.domain.warming import Toggle

    w.services.uow.transition(cid, Toggle(True))
    while w.timer.live_for(cid):
        tick = w.timer.pop_due(cid)
        w.services.handle_tick(cid, tick.seq, tick.target)


def run() -> Report:
    report = Report(NAME)
    rates = PRICES.cache_rates(MODEL, PRICED_AT)
    for tokens in SIZES:
        result = _one_size(tokens)
        warms: list[dict[str, Any]] = result["warms"]
        if len(warms) < 2:
            report.note(f"~{tokens} tokens: only {len(warms)} warms")
            continue
        _report_size(report, result, warms, rates.cache_write_5m)
    return report


def _report_size(
    report: Report, result: dict[str, Any], warms: list[dict[str, Any]], write_per_mtok: float
) -> None:
    prefix = prefix_tokens(warms[-1])
    ratios = [billed_usd(u) / minimum_usd(u) for u in warms]
    later = ratios[1:]
    label = f"~{prefix / 1000:.1f}k-token prefix ({result['turns']} turns)"
    print(
        f"  {label}: {len(warms)} warms until '{result['status']}'; billed/minimum per "
        f"warm: {', '.join(f'{r:.3f}' for r in ratios)}",
        flush=True,
    )
    report.add(
        f"{label}: warm #1 after the turn, billed ÷ minimum",
        ratios[0],
        reference=1.0,
        reference_label="read of the prefix + placeholder",
        note=f"writes the last reply ({warms[0]['cache_creation_input_tokens']} tokens)",
    )
    worst = max(later)
    report.add(
        f"{label}: warms #2-#{len(warms)}, worst billed ÷ minimum",
        worst,
        reference=1.0,
        reference_label="read of the prefix + placeholder",
        target="1.00",
        met=abs(worst - 1.0) < 0.005,
    )
    total = sum(billed_usd(u) for u in warms)
    rewrite = write_per_mtok * prefix / 1_000_000
    report.add(
        f"{label}: idle warms until '{result['status']}' (budget {result['budget']}), total cost",
        total,
        "USD",
        reference=rewrite,
        reference_label="one cache re-write",
        target="≤ 1 re-write",
        met=total <= rewrite and result["status"] == "paused-idle",
        note=f"{len(warms)} warms",
    )
