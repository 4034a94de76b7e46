"""The model adapter's contract with the Messages API, per model: what the product sends is what the
API accepts, and the cache behaves as the warming policy assumes.

Runs against the emulator and the Bedrock stand-in in `make test` (every catalog model, each
provider), and against a real provider with `make conformance` (see conftest.py): the check an
operator runs before switching models or providers. A live run prints what it settles (whether
`max_tokens: 0` was accepted, the first warm's usage, whether the 5 min / 1 h split is reported).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chalicelib.adapters.model import usage_from
from chalicelib.domain import catalog
from chalicelib.domain.pricing import Usage
from chalicelib.ports import ModelError
from tests.conformance import scenario
from tests.conformance.conftest import Target

# Role and formatting tokens around a short question differ per tokenizer; the emulator counts
# the text alone.
NEW_EXCHANGE_MAX_TOKENS = 64


@dataclass
class Warmed:
    model: str
    nonce: str
    first: Usage
    second: Usage


@pytest.fixture(scope="module")
def warmed(target: Target, model_id: str) -> Warmed:
    nonce = secrets.token_hex(4)
    adapter = target.adapter
    first = adapter.warm(scenario.warm(model_id, nonce))
    second = adapter.warm(scenario.warm(model_id, nonce))
    zero = model_id not in adapter._no_zero_max_tokens
    print(f"\nconformance: {target.name} {model_id}: max_tokens 0 accepted: {zero}")
    # A read on the first warm of a new prefix would be Bedrock's implicit caching showing.
    print(f"conformance: {target.name} {model_id}: first warm {first}, second {second}")
    return Warmed(model_id, nonce, first, second)


def test_a_warm_in_the_pre_warm_shape_is_accepted_and_caches_the_prefix(warmed: Warmed) -> None:
    facts = catalog.lookup(warmed.model)
    assert facts is not None
    # The first warm writes the whole prefix (the run's nonce makes it new to the cache)...
    assert warmed.first.cache_creation_input_tokens >= facts.min_cacheable_tokens
    assert warmed.first.output_tokens <= 1  # max_tokens 0 (1 only where 0 is refused)
    # ...and the next reads all of it and writes nothing.
    assert warmed.second.cache_creation_input_tokens == 0
    assert warmed.second.cache_read_input_tokens == warmed.first.cached_prefix_tokens
    # Only the placeholder user message is billed at the full input price.
    assert 0 < warmed.second.input_tokens < NEW_EXCHANGE_MAX_TOKENS


def test_the_next_turn_reads_everything_the_warm_kept_alive(target: Target, warmed: Warmed) -> None:
    result = target.adapter.stream(
        scenario.next_turn(warmed.model, warmed.nonce), lambda _text: None, lambda: False
    )
    assert not result.aborted and result.usage is not None
    assert result.usage.cache_read_input_tokens >= warmed.second.cache_read_input_tokens
    # It writes only the new exchange: the question (its breakpoint), nothing of the history.
    assert 0 < result.usage.cache_creation_input_tokens < NEW_EXCHANGE_MAX_TOKENS


def test_usage_reports_every_field_the_cost_figures_read(target: Target, warmed: Warmed) -> None:
    message = target.client.messages.create(
        **target.adapter.body(scenario.warm(warmed.model, warmed.nonce), max_tokens=0)
    )
    usage = message.usage
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
        assert isinstance(getattr(usage, name), int), name
    prompt = scenario.warm(warmed.model, warmed.nonce)
    if usage.cache_creation is None:
        # Whether Bedrock's InvokeModel reports the split is unverified: without it the adapter
        # prices every write at the TTL the prompt asked for (adapters/bedrock.py).
        assert target.name == "bedrock", "Anthropic's API reports the 5 min / 1 h split"
        print(f"\nconformance: {target.name} {warmed.model}: no 5 min / 1 h split reported")
        assert target.adapter.usage_of(usage, prompt).cache_creation_1h_input_tokens == 0
        return
    assert isinstance(usage.cache_creation.ephemeral_5m_input_tokens, int)
    assert isinstance(usage.cache_creation.ephemeral_1h_input_tokens, int)
    assert usage_from(usage) == Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_creation_5m_input_tokens=usage.cache_creation.ephemeral_5m_input_tokens,
        cache_creation_1h_input_tokens=usage.cache_creation.ephemeral_1h_input_tokens,
    )


def test_a_stream_delivers_its_events_in_the_documented_order(
    target: Target, model_id: str
) -> None:
    prompt = scenario.next_turn(model_id, secrets.token_hex(4))
    kinds: list[str] = []
    open_blocks: set[int] = set()
    with target.client.messages.create(**target.adapter.body(prompt), stream=True) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_start":
                open_blocks.add(event.index)
            elif event.type in ("content_block_delta", "content_block_stop"):
                assert event.index in open_blocks, kinds
                if event.type == "content_block_stop":
                    open_blocks.remove(event.index)
    meaningful = [kind for kind in kinds if kind != "ping"]
    assert meaningful[0] == "message_start"
    assert meaningful[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in meaningful and not open_blocks


def test_the_catalogs_prefill_fact_holds(target: Target, model_id: str) -> None:
    facts = catalog.lookup(model_id)
    assert facts is not None
    prefill = scenario.warm(model_id, secrets.token_hex(4))
    prefill = dataclasses.replace(prefill, messages=prefill.messages[:-1])  # ends on the reply
    if facts.accepts_prefill:
        assert target.adapter.warm(prefill).cached_prefix_tokens > 0
        return
    with pytest.raises(ModelError) as refused:
        target.adapter.warm(prefill)
    assert refused.value.code == "model_rejected"
    assert "prefill" in str(refused.value)


def test_a_request_the_api_refuses_is_model_rejected(target: Target, model_id: str) -> None:
    blank = scenario.warm(model_id, secrets.token_hex(4))
    blank.messages[-1]["content"][0]["text"] = " \n"  # whitespace-only text blocks are a 400
    with pytest.raises(ModelError) as refused:
        target.adapter.warm(blank)
    assert refused.value.code == "model_rejected"


def test_an_unknown_model_is_model_unavailable(target: Target) -> None:
    unknown = dataclasses.replace(scenario.warm("claude-sonnet-5-5", "x"), model="claude-nope-0")
    with pytest.raises(ModelError) as refused:
        target.adapter.warm(unknown)
    assert refused.value.code == "model_unavailable"


@pytest.mark.parametrize(
    ("fault", "code"), [("rate_limit", "rate_limited"), ("overloaded", "overloaded")]
)
def test_rate_limits_and_overload_map_to_stable_codes(
    target: Target, model_id: str, fault: str, code: str
) -> None:
    if target.emulator is None:
        pytest.skip("the real API cannot be made to answer 429 or 529 on demand")
    target.emulator.set_fault(fault, count=1)
    with pytest.raises(ModelError) as refused:
        target.adapter.warm(scenario.warm(model_id, "fault"))
    assert refused.value.code == code


@pytest.fixture
def paced(target: Target) -> Iterator[None]:
    """A reply that takes seconds, as the API's do (the emulator's default is instant)."""
    if target.emulator is None:
        yield
        return
    config = target.emulator.config
    before = (config.tokens_per_second, config.reply_tokens)
    target.emulator.apply_config({"tokens_per_second": 40, "reply_tokens": 300})
    yield
    config.tokens_per_second, config.reply_tokens = before


@pytest.mark.usefixtures("paced")
def test_a_stopped_stream_reports_what_it_was_billed(target: Target, model_id: str) -> None:
    # The prompt's usage from message_start, the output so far from the free count_tokens
    # endpoint: what an aborted or deadline-stopped turn counts against the daily budget.
    prompt = scenario.next_turn(model_id, secrets.token_hex(4))
    texts: list[str] = []
    result = target.adapter.stream(prompt, texts.append, lambda: bool(texts))
    assert result.aborted and result.text
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0
    assert result.usage.output_tokens >= 1
