"""The auto cache and the savings through the use cases, over the in-memory fakes."""

from __future__ import annotations

import pytest

from chalicelib.domain.pricing import CacheRates, Usage
from chalicelib.domain.warming import Tally
from tests import parsed
from tests.fakes import ports as fake_ports
from tests.fakes.ports import World, field_value, world
from tests.helpers import OWNER, fire, invoke, subscribe

# A made-up price list whose 1-hour writes cost what 5-minute writes do, so that the auto cache
# has a reason to move; dollars per million tokens.
FLAT = CacheRates(input=3.0, cache_write_5m=3.75, cache_write_1h=3.75, cache_read=0.30)


class FlatPrices:
    def __init__(self) -> None:
        self.asked = 0

    def cost_usd(self, model: str, usage: Usage, at_ms: int) -> float:
        self.asked += 1
        written = usage.cache_creation_input_tokens * FLAT.cache_write_5m
        read = usage.cache_read_input_tokens * FLAT.cache_read
        return (usage.input_tokens * FLAT.input + written + read + usage.output_tokens * 15) / 1e6

    def cache_rates(self, model: str, at_ms: int, prompt_tokens: int = 0) -> CacheRates:
        self.asked += 1
        return FLAT


@pytest.fixture
def flat(monkeypatch: pytest.MonkeyPatch) -> FlatPrices:
    prices = FlatPrices()
    monkeypatch.setattr(fake_ports, "PRICES", prices)
    return prices


def turn(w: World, conversation_id: str, usage: Usage, text: str = "hello") -> None:
    w.model.turn_usage = usage
    started = w.services.start_turn(OWNER, conversation_id, parsed.turn({"text": text}))
    assert w.services.generate(conversation_id, started.index) == "sealed"


def test_an_auto_conversation_moves_to_the_hour_cache_when_that_is_cheaper(
    flat: FlatPrices,
) -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    subscribe(w, "ws1", conversation.id)
    turn(w, conversation.id, Usage(input_tokens=50_000, output_tokens=300))
    turn(
        w,
        conversation.id,
        Usage(cache_read_input_tokens=50_300, input_tokens=100, output_tokens=100),
    )
    assert w.model.streams[-1].system[0]["cache_control"] == {"type": "ephemeral"}
    w.clock.advance(3600)  # the 5-minute cache is long gone
    turn(w, conversation.id, Usage(cache_creation_input_tokens=50_600, output_tokens=100))
    assert w.model.streams[-1].system[0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    update = w.sockets.of("ws1", "update")[-1]
    retention = next(f for f in update["fields"] if f["id"] == "cache-retention")
    assert (retention["value"], retention["setting"]) == ("1h", "auto")
    assert retention["reason"].startswith("auto: 1h is cheaper for a 50,500-token prefix")
    assert field_value(update, "interval") == 3590
    # The warm marks the same cache as the turns.
    invoke(w, "ws1", conversation.id, "toggle", True)
    fire(w, conversation.id)
    assert w.model.warms[-1].system[0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_a_conversation_with_a_fixed_cache_asks_no_prices_to_start_generating(
    flat: FlatPrices,
) -> None:
    w = world()
    conversation = w.services.create_conversation(
        OWNER, parsed.conversation({"cacheRetention": "5m"})
    )
    w.services.start_turn(OWNER, conversation.id, parsed.turn({"text": "hi"}))
    assert flat.asked == 0
    asked: list[int] = []
    w.model.on_chunk = lambda number: asked.append(flat.asked)
    assert w.services.generate(conversation.id, 0) == "sealed"
    # The claim asked nothing; the reservation priced the turn's worst case before its request
    # (a budget that holds), and the seal prices the reply.
    assert asked[0] == 1


def test_warms_and_rescues_reach_the_panel_and_the_owners_totals() -> None:
    w = world()
    conversation = w.services.create_conversation(OWNER, parsed.conversation())
    turn(w, conversation.id, Usage(input_tokens=5_000, output_tokens=40))
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    fire(w, conversation.id)
    fire(w, conversation.id)
    spent = w.store.get_conversation(conversation.id).warming.stats.total_cost_usd  # type: ignore[union-attr]
    assert w.services.savings(OWNER) == Tally(spent_usd=spent, warms=2)
    w.clock.advance(100)  # past the turn's own expiry, within the warms'
    turn(
        w, conversation.id, Usage(cache_read_input_tokens=5_040, input_tokens=10, output_tokens=40)
    )
    savings = field_value(w.sockets.of("ws1", "update")[-1], "savings")
    assert savings["rescues"] == 1 and savings["savedUsd"] > 0
    assert savings["netUsd"] == round(savings["savedUsd"] - spent, 8)
    totals = w.services.savings(OWNER)
    assert (totals.rescues, totals.saved_usd, totals.spent_usd) == (1, savings["savedUsd"], spent)
    assert w.services.savings("somebody-else") == Tally()
