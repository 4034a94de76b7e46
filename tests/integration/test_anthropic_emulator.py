"""The Anthropic emulator, driven through the real ``anthropic`` SDK over loopback HTTP.

Token arithmetic follows the emulator's documented approximation: a text of ``4 * n`` characters
is ``n`` tokens, a tool counts the tokens of its canonical JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from devstack.anthropic import AnthropicEmulator, EmulatorConfig, estimate_tokens

MODEL = "claude-sonnet-4-6"  # minimum cacheable prefix: 1024 tokens
REPLY = 12
ROOT = Path(__file__).resolve().parents[2]
FILLER = "the quick brown fox jumps over the lazy dog while the cache stays warm "


def text(tokens: int, tag: str = "") -> str:
    """A text of exactly ``tokens`` tokens; ``tag`` makes different texts differ early."""
    return (f"{tag}:" + FILLER * (tokens // 16 + 2))[: 4 * tokens]


def block(tokens: int, tag: str = "", ttl: str | None = None) -> dict[str, Any]:
    """A text block of ``tokens`` tokens, a breakpoint if ``ttl`` is given."""
    out: dict[str, Any] = {"type": "text", "text": text(tokens, tag)}
    if ttl is not None:
        out["cache_control"] = (
            {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}
        )
    return out


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def cache_usage(message: Any) -> tuple[int, int, int]:
    """(read, created, uncached input) of a response."""
    usage = message.usage
    return usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.input_tokens


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    """A raw HTTP call: (status, decoded JSON body, headers)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., AnthropicEmulator]]:
    """Start emulators with config overrides; every one is stopped at the end of the test."""
    started: list[AnthropicEmulator] = []

    def make(**overrides: Any) -> AnthropicEmulator:
        config = EmulatorConfig(**{"tokens_per_second": 0, "reply_tokens": REPLY, **overrides})
        emulator = AnthropicEmulator(config=config).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emu(make_emulator: Callable[..., AnthropicEmulator]) -> AnthropicEmulator:
    return make_emulator()


def sdk(emulator: AnthropicEmulator, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emulator.url, api_key="test", max_retries=0, **options)


def create(client: anthropic.Anthropic, **kwargs: Any) -> anthropic.types.Message:
    """``messages.create`` with loosely typed arguments (tests build raw dicts on purpose)."""
    message: anthropic.types.Message = client.messages.create(**kwargs)
    return message


def open_stream(client: anthropic.Anthropic, **kwargs: Any) -> Any:
    """``messages.stream`` with loosely typed arguments."""
    return client.messages.stream(**kwargs)


def first_text(message: Any) -> str:
    content = message.content[0]
    assert content.type == "text"
    return str(content.text)


@pytest.fixture
def client(emu: AnthropicEmulator) -> anthropic.Anthropic:
    return sdk(emu)


# --- Shape ------------------------------------------------------------------------------------


def test_create_returns_the_message_shape(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hello there"}]
    )
    message = raw.parse()
    assert set(raw.http_response.json()) == {
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    }
    assert raw.request_id and raw.request_id.startswith("req_")
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [b.type for b in message.content] == ["text"]
    assert len(first_text(message).split()) == REPLY
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == estimate_tokens("Hello there") == 3
    assert message.usage.output_tokens == REPLY
    assert cache_usage(message) == (0, 0, 3)

    again = create(
        client, model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hello there"}]
    )
    other = create(
        client, model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Goodbye"}]
    )
    assert first_text(again) == first_text(message)
    assert first_text(other) != first_text(message)

    short = create(
        client, model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert short.stop_reason == "max_tokens"
    assert short.usage.output_tokens == 5
    assert len(first_text(short).split()) == 5


def test_max_tokens_zero_prewarms_the_cache(client: anthropic.Anthropic) -> None:
    system = [block(2000, "sys", "5m")]
    warm = create(client, model=MODEL, max_tokens=0, system=system, messages=[user(block(10, "q"))])
    assert warm.content == []
    assert warm.stop_reason == "max_tokens"
    assert warm.usage.output_tokens == 0
    assert cache_usage(warm) == (0, 2000, 10)

    real = create(
        client, model=MODEL, max_tokens=100, system=system, messages=[user(block(10, "q"))]
    )
    assert cache_usage(real) == (2000, 0, 10)
    assert real.usage.output_tokens == REPLY


def test_stream_sends_the_real_event_sequence(client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=100, stream=True, messages=[{"role": "user", "content": "Hi"}]
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(response.iter_bytes()).decode()

    frames = raw.split("\n\n")
    assert frames[-1] == ""
    events = []
    for frame in frames[:-1]:
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        events.append((name, data))
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping"] + [
        "content_block_delta"
    ] * REPLY + ["content_block_stop", "message_delta", "message_stop"]

    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert {
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "output_tokens",
    } <= set(start["usage"])
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] == REPLY


def test_stream_helper_assembles_the_same_reply(client: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "system": [block(1500, "sys", "5m")],
        "messages": [user(block(5, "q"))],
    }
    with open_stream(client, **kwargs) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == REPLY
    assert first_text(final) == "".join(pieces)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == REPLY
    assert cache_usage(final) == (0, 1500, 5)

    plain = create(client, **kwargs)
    assert first_text(plain) == first_text(final)
    assert cache_usage(plain) == (1500, 0, 5)


# --- Validation -------------------------------------------------------------------------------


def test_streaming_with_max_tokens_zero_is_rejected(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.BadRequestError) as caught,
        open_stream(
            client, model=MODEL, max_tokens=0, messages=[{"role": "user", "content": "Hi"}]
        ) as response,
    ):
        response.get_final_message()
    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"


def test_more_than_four_breakpoints_is_rejected(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        create(
            client,
            model=MODEL,
            max_tokens=10,
            system=[block(10, f"s{i}", "5m") for i in range(3)],
            messages=[user(block(10, "a", "5m"), block(10, "b", "5m"))],
        )


def test_1h_breakpoint_after_5m_one_is_rejected(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="1h"):
        create(
            client,
            model=MODEL,
            max_tokens=10,
            system=[block(10, "s", "5m")],
            messages=[user(block(10, "a", "1h"))],
        )


HELLO = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"max_tokens": 10, "messages": HELLO}, "model"),
        ({"model": MODEL, "max_tokens": 10}, "messages"),
        ({"model": MODEL, "messages": HELLO}, "max_tokens"),
        ({"model": MODEL, "max_tokens": -1, "messages": HELLO}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 10, "messages": []}, "at least one message"),
        (
            {
                "model": MODEL,
                "max_tokens": 10,
                "messages": [{"role": "assistant", "content": "Hi"}],
            },
            "first message",
        ),
        ({"model": MODEL, "max_tokens": 0, "stream": True, "messages": HELLO}, "max_tokens"),
        (
            {
                "model": MODEL,
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "x",
                                },
                            }
                        ],
                    }
                ],
            },
            "image",
        ),
    ],
    ids=[
        "no-model",
        "no-messages",
        "no-max-tokens",
        "negative-max-tokens",
        "empty-messages",
        "assistant-first",
        "stream-max-tokens-0",
        "image",
    ],
)
def test_invalid_bodies_get_anthropic_400s(
    emu: AnthropicEmulator, body: dict[str, Any], fragment: str
) -> None:
    status, payload, _ = http("POST", emu.url + "/v1/messages", body, {"x-api-key": "test"})
    assert status == 400
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"]
    assert emu.stats.requests[-1]["status"] == 400
    assert emu.stats.requests[-1]["usage"] is None


def test_missing_api_key_is_401(emu: AnthropicEmulator) -> None:
    status, payload, _ = http(
        "POST", emu.url + "/v1/messages", {"model": MODEL, "max_tokens": 5, "messages": HELLO}
    )
    assert status == 401
    assert payload["error"]["type"] == "authentication_error"


def test_final_assistant_message_is_a_prefill_only_where_the_model_allows_it(
    client: anthropic.Anthropic,
) -> None:
    conversation = [
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "The colour"},
    ]
    # Claude 4.6 and later refuse a request that ends on an assistant turn.
    with pytest.raises(anthropic.BadRequestError) as refused:
        create(client, model=MODEL, max_tokens=50, messages=conversation)
    assert refused.value.status_code == 400
    assert refused.value.body["error"]["message"] == (  # type: ignore[index]
        "This model does not support assistant message prefill. "
        "The conversation must end with a user message."
    )
    # Haiku 4.5 still continues a prefill.
    message = create(client, model="claude-haiku-4-5", max_tokens=50, messages=conversation)
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == estimate_tokens("Name a colour") + estimate_tokens(
        "The colour"
    )


# --- Prompt caching ---------------------------------------------------------------------------


def test_first_request_writes_and_identical_second_reads(client: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": [block(1800, "sys", "5m")],
        "messages": [user(block(200, "doc", "5m"))],
    }
    first = create(client, **kwargs)
    assert cache_usage(first) == (0, 2000, 0)
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 2000
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 0
    second = create(client, **kwargs)
    assert cache_usage(second) == (2000, 0, 0)


def test_next_turn_reads_the_old_prefix_by_lookback_and_writes_only_the_new_part(
    client: anthropic.Anthropic,
) -> None:
    system = [block(2000, "sys", "5m")]
    turn1 = create(
        client, model=MODEL, max_tokens=10, system=system, messages=[user(block(300, "u1", "5m"))]
    )
    assert cache_usage(turn1) == (0, 2300, 0)
    # The breakpoint moves to the new last turn: nothing is cached at that exact prefix, so the
    # hit must come from looking back to where turn 1's breakpoint was.
    turn2 = create(
        client,
        model=MODEL,
        max_tokens=10,
        system=system,
        messages=[user(block(300, "u1")), assistant(block(100, "a1")), user(block(50, "u2", "5m"))],
    )
    assert cache_usage(turn2) == (2300, 150, 0)
    turn3 = create(
        client,
        model=MODEL,
        max_tokens=10,
        system=system,
        messages=[
            user(block(300, "u1")),
            assistant(block(100, "a1")),
            user(block(50, "u2", "5m")),
            assistant(block(20, "a2")),
            user(block(7, "u3")),
        ],
    )
    assert cache_usage(turn3) == (2450, 0, 27)


# The breakpoint's own position is the first of the 20 looked at: an entry 19 positions back is
# found, one 20 positions back is not.
@pytest.mark.parametrize(("extra_blocks", "hit"), [(19, True), (20, False)])
def test_lookback_reaches_20_positions_counting_the_breakpoint(
    client: anthropic.Anthropic, extra_blocks: int, hit: bool
) -> None:
    create(
        client,
        model=MODEL,
        max_tokens=10,
        system=[block(2000, "sys", "5m")],
        messages=[user(block(5, "q"))],
    )
    blocks = [block(5, f"b{i}") for i in range(extra_blocks - 1)] + [block(5, "last", "5m")]
    later = create(
        client, model=MODEL, max_tokens=10, system=[block(2000, "sys")], messages=[user(*blocks)]
    )
    assert cache_usage(later) == (
        (2000, 5 * extra_blocks, 0) if hit else (0, 2000 + 5 * extra_blocks, 0)
    )


@pytest.mark.parametrize(
    ("model", "tokens", "cached"),
    [
        ("claude-sonnet-4-6", 1023, False),
        ("claude-sonnet-4-6", 1024, True),
        ("claude-haiku-4-5", 4095, False),
        ("claude-haiku-4-5", 4096, True),
        ("claude-opus-4-5", 2000, False),
        ("claude-opus-4-7", 2047, False),
        ("claude-opus-4-7", 2048, True),
        ("claude-opus-5-5", 511, False),
        ("claude-opus-5-5", 512, True),
    ],
)
def test_prefix_below_the_model_minimum_is_not_cached(
    client: anthropic.Anthropic, model: str, tokens: int, cached: bool
) -> None:
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": 10,
        "system": [block(tokens, "sys", "5m")],
        "messages": [user(block(4))],
    }
    for attempt in range(2):
        message = create(client, **kwargs)
        if not cached:
            assert cache_usage(message) == (0, 0, tokens + 4)
        elif attempt == 0:
            assert cache_usage(message) == (0, tokens, 4)
        else:
            assert cache_usage(message) == (tokens, 0, 4)


def test_min_cacheable_override_applies_to_every_model(
    make_emulator: Callable[..., AnthropicEmulator],
) -> None:
    client = sdk(make_emulator(min_cacheable_override=50))
    kwargs: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "system": [block(60, "sys", "5m")],
        "messages": [user(block(4))],
    }
    assert cache_usage(create(client, **kwargs)) == (0, 60, 4)
    assert cache_usage(create(client, **kwargs)) == (60, 0, 4)


def test_5m_entry_is_refreshed_by_reads_and_expires_without_them(
    emu: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(4))],
    }
    assert cache_usage(create(client, **kwargs)) == (0, 2000, 4)
    emu.advance(4 * 60 + 59)
    assert cache_usage(create(client, **kwargs)) == (2000, 0, 4)
    emu.advance(4 * 60 + 59)  # 9m58s after the write, but 4m59s after the refreshing read
    assert cache_usage(create(client, **kwargs)) == (2000, 0, 4)
    emu.advance(5 * 60 + 1)
    assert cache_usage(create(client, **kwargs)) == (0, 2000, 4)


def test_1h_entry_survives_ten_minutes_while_the_5m_part_expires(
    make_emulator: Callable[..., AnthropicEmulator],
) -> None:
    now = [1_000_000.0]
    emulator = make_emulator(clock=lambda: now[0])
    client = sdk(emulator)
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": [block(2000, "sys", "1h")],
        "messages": [user(block(500, "doc", "5m"), block(3, "q"))],
    }
    first = create(client, **kwargs)
    assert cache_usage(first) == (0, 2500, 3)
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 2000
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 500

    now[0] += 10 * 60  # the injected clock, not advance(): both move emulator time
    later = create(client, **kwargs)
    assert cache_usage(later) == (2000, 500, 3)
    assert later.usage.cache_creation is not None
    assert later.usage.cache_creation.ephemeral_1h_input_tokens == 0
    assert later.usage.cache_creation.ephemeral_5m_input_tokens == 500

    emulator.advance(3601)
    assert cache_usage(create(client, **kwargs)) == (0, 2500, 3)


WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def tokens_of_tool(tool: dict[str, Any]) -> int:
    return estimate_tokens(json.dumps(tool, sort_keys=True, separators=(",", ":")))


def test_changing_tools_invalidates_everything(client: anthropic.Anthropic) -> None:
    base: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(4))],
    }
    tool_tokens = tokens_of_tool(WEATHER_TOOL)
    first = create(client, **base, tools=[WEATHER_TOOL])
    assert cache_usage(first) == (0, tool_tokens + 2000, 4)
    assert cache_usage(create(client, **base, tools=[WEATHER_TOOL])) == (tool_tokens + 2000, 0, 4)

    changed = {**WEATHER_TOOL, "description": "Weather for a town"}
    after = create(client, **base, tools=[changed])
    assert cache_usage(after) == (0, tokens_of_tool(changed) + 2000, 4)


@pytest.mark.parametrize(
    "change",
    [
        {"tool_choice": {"type": "any"}},
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    ],
    ids=["tool_choice", "thinking"],
)
def test_changing_tool_choice_or_thinking_keeps_only_the_system_part(
    client: anthropic.Anthropic, change: dict[str, Any]
) -> None:
    base: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2048,
        "tools": [WEATHER_TOOL],
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(400, "doc", "5m"))],
    }
    prefix = tokens_of_tool(WEATHER_TOOL) + 2000
    assert cache_usage(create(client, **base)) == (0, prefix + 400, 0)
    assert cache_usage(create(client, **base, **change)) == (prefix, 400, 0)
    assert cache_usage(create(client, **base, **change)) == (prefix + 400, 0, 0)


def test_spelled_out_defaults_share_the_cache_but_another_model_does_not(
    client: anthropic.Anthropic,
) -> None:
    base: dict[str, Any] = {
        "max_tokens": 10,
        "tools": [WEATHER_TOOL],
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(400, "doc", "5m"))],
    }
    total = tokens_of_tool(WEATHER_TOOL) + 2400
    assert cache_usage(create(client, model=MODEL, **base)) == (0, total, 0)
    explicit = create(
        client,
        model=MODEL,
        tool_choice={"type": "auto"},
        thinking={"type": "disabled"},
        **base,
    )
    assert cache_usage(explicit) == (total, 0, 0)
    assert cache_usage(create(client, model="claude-opus-4-7", **base)) == (0, total, 0)


def test_top_level_cache_control_caches_up_to_the_last_block(client: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": text(1500, "sys"),
        "messages": [user(block(100, "q"))],
        "cache_control": {"type": "ephemeral"},
    }
    assert cache_usage(create(client, **kwargs)) == (0, 1600, 0)
    assert cache_usage(create(client, **kwargs)) == (1600, 0, 0)


def test_count_tokens_uses_the_same_approximation(client: anthropic.Anthropic) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "system": text(100, "s"),
        "tools": [WEATHER_TOOL],
        "messages": [user(block(7))],
    }
    count = client.messages.count_tokens(**request)
    assert count.input_tokens == 100 + tokens_of_tool(WEATHER_TOOL) + 7


# --- Faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "status", "error_type"),
    [
        ("429", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("529", anthropic.OverloadedError, 529, "overloaded_error"),
        ("500", anthropic.InternalServerError, 500, "api_error"),
    ],
)
def test_error_faults_surface_as_sdk_errors_and_write_nothing(
    emu: AnthropicEmulator,
    client: anthropic.Anthropic,
    kind: str,
    error: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(4))],
    }
    emu.set_fault(kind, count=1, retry_after=7)
    with pytest.raises(error) as caught:
        create(client, **kwargs)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == error_type
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"
    # One use only, and the failed request must not have populated the cache.
    assert cache_usage(create(client, **kwargs)) == (0, 2000, 4)
    assert [r["status"] for r in emu.stats.requests] == [status, 200]


def test_fault_without_count_applies_until_cleared(
    emu: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emu.set_fault("overloaded")
    for _ in range(3):
        with pytest.raises(anthropic.OverloadedError):
            create(client, model=MODEL, max_tokens=5, messages=HELLO)
    emu.clear_fault()
    assert create(client, model=MODEL, max_tokens=5, messages=HELLO).stop_reason


def test_drop_fault_cuts_the_stream_and_writes_nothing(
    emu: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(4))],
    }
    emu.set_fault("drop", count=1, after_deltas=3)
    pieces: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError), open_stream(client, **kwargs) as stream:
        pieces.extend(stream.text_stream)
    assert len(pieces) == 3
    assert emu.stats.drops == 1
    assert emu.stats.requests[-1]["outcome"] == "dropped"
    assert cache_usage(create(client, **kwargs)) == (0, 2000, 4)


def test_stream_error_fault_raises_from_the_sse_error_event(
    emu: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emu.set_fault("stream_error", count=1, after_deltas=2)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        open_stream(client, model=MODEL, max_tokens=100, messages=HELLO) as stream,
    ):
        stream.get_final_message()
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_slow_fault_delays_the_first_byte_then_answers_normally(
    emu: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(4))],
    }
    emu.set_fault("slow", count=1, delay=0.3)
    began = time.monotonic()
    assert cache_usage(create(client, **kwargs)) == (0, 2000, 4)
    assert time.monotonic() - began >= 0.3
    assert cache_usage(create(client, **kwargs)) == (2000, 0, 4)


def test_client_giving_up_during_a_slow_fault_writes_nothing(emu: AnthropicEmulator) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(4))],
    }
    emu.set_fault("slow", count=1, delay=2.0)
    with pytest.raises(anthropic.APITimeoutError):
        create(sdk(emu, timeout=0.2), **kwargs)
    deadline = time.monotonic() + 1.0
    while emu.stats.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.stats.disconnects == 1
    assert cache_usage(create(sdk(emu), **kwargs)) == (0, 2000, 4)


# --- Streaming lifecycle and pacing -----------------------------------------------------------


def test_server_detects_a_client_closing_the_stream_early(
    make_emulator: Callable[..., AnthropicEmulator],
) -> None:
    emulator = make_emulator(tokens_per_second=40, reply_tokens=300)
    client = sdk(emulator)
    with open_stream(client, model=MODEL, max_tokens=1000, messages=HELLO) as stream:
        for i, _ in enumerate(stream.text_stream):
            if i == 2:
                break
    closed_at = time.monotonic()
    request_id = stream.request_id
    assert request_id is not None
    while emulator.stats.disconnects == 0 and time.monotonic() - closed_at < 1.0:
        time.sleep(0.01)
    assert emulator.stats.disconnects == 1
    assert emulator.stats.stream_closed_at[request_id] - closed_at < 1.0
    record = emulator.stats.requests[-1]
    assert record["outcome"] == "disconnected"
    assert 3 <= record["deltas_sent"] < 300
    assert record["usage"]["output_tokens"] == record["deltas_sent"]


def test_stream_is_paced_at_tokens_per_second(
    make_emulator: Callable[..., AnthropicEmulator],
) -> None:
    client = sdk(make_emulator(tokens_per_second=40, reply_tokens=20))
    began = time.monotonic()
    with open_stream(client, model=MODEL, max_tokens=100, messages=HELLO) as stream:
        final = stream.get_final_message()
    elapsed = time.monotonic() - began
    assert final.usage.output_tokens == 20
    assert 0.4 <= elapsed < 2.0


# --- Admin API, stats, command line -----------------------------------------------------------


def test_admin_api_controls_the_emulator_over_http(emu: AnthropicEmulator) -> None:
    client = sdk(emu)
    admin = emu.url + "/_emulator"
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "system": [block(2000, "sys", "5m")],
        "messages": [user(block(4))],
    }

    status, config, _ = http(
        "POST",
        admin + "/config",
        {"reply_tokens": 7, "tokens_per_second": 0, "fault": {"kind": "429", "count": 1}},
    )
    assert status == 200
    assert config["reply_tokens"] == 7
    assert config["fault"]["kind"] == "rate_limit"
    with pytest.raises(anthropic.RateLimitError):
        create(client, **kwargs)
    first = create(client, **kwargs)
    assert first.usage.output_tokens == 7
    assert cache_usage(first) == (0, 2000, 4)

    status, clock, _ = http("POST", admin + "/advance", {"seconds": 301})
    assert (status, clock["offset"]) == (200, 301)
    assert cache_usage(create(client, **kwargs)) == (0, 2000, 4)
    assert cache_usage(create(client, **kwargs)) == (2000, 0, 4)

    status, cache, _ = http("GET", admin + "/cache")
    assert status == 200 and [e["tokens"] for e in cache["entries"]] == [2000]
    status, _, _ = http("POST", admin + "/reset", {})
    assert status == 200
    assert cache_usage(create(client, **kwargs)) == (0, 2000, 4)

    status, stats, _ = http("GET", admin + "/stats")
    assert status == 200
    assert stats["request_count"] == 5
    assert stats["disconnects"] == 0
    assert [r["status"] for r in stats["requests"]] == [429, 200, 200, 200, 200]
    assert [r["usage"]["cache_creation_input_tokens"] for r in stats["requests"][1:]] == [
        2000,
        2000,
        0,
        2000,
    ]
    assert all(r["model"] == MODEL and r["max_tokens"] == 100 for r in stats["requests"])

    status, error, _ = http("POST", admin + "/config", {"bogus": 1})
    assert status == 400 and error["error"]["type"] == "invalid_request_error"


def test_stats_record_every_request_for_cost_accounting(
    emu: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    system = [block(2000, "sys", "5m")]
    create(client, model=MODEL, max_tokens=0, system=system, messages=[user(block(4))])
    with open_stream(
        client, model=MODEL, max_tokens=50, system=system, messages=[user(block(4))]
    ) as stream:
        stream.get_final_message()
    warm, chat = emu.stats.requests
    assert (warm["stream"], warm["max_tokens"], chat["stream"], chat["max_tokens"]) == (
        False,
        0,
        True,
        50,
    )
    assert warm["usage"]["cache_creation_input_tokens"] == 2000
    assert warm["usage"]["output_tokens"] == 0
    assert chat["usage"]["cache_read_input_tokens"] == 2000
    assert chat["usage"]["output_tokens"] == REPLY
    assert warm["started_at"] <= chat["started_at"]
    assert chat["outcome"] == "ok"
    assert chat["request_id"] in emu.stats.stream_closed_at


def test_command_line_serves_in_the_foreground() -> None:
    command = [sys.executable, "-m", "devstack.anthropic", "--port", "0"]
    command += ["--tokens-per-second", "0", "--reply-tokens", "5", "--min-cacheable", "10"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            client = anthropic.Anthropic(base_url=url, api_key="test", max_retries=0)
            kwargs: dict[str, Any] = {
                "model": "claude-haiku-4-5",
                "max_tokens": 50,
                "system": [block(12, "sys", "5m")],
                "messages": [user(block(4))],
            }
            first = create(client, **kwargs)
            assert first.usage.output_tokens == 5
            assert cache_usage(first) == (0, 12, 4)
            assert cache_usage(create(client, **kwargs)) == (12, 0, 4)
        finally:
            process.terminate()
        # SIGTERM is the normal way to stop it: a clean exit, not a signal death.
        assert process.wait(timeout=5) == 0


def test_estimate_tokens_is_a_quarter_of_the_characters_rounded_up() -> None:
    samples = ["", "a", "abcd", "abcde", "x" * 4000]
    assert [estimate_tokens(s) for s in samples] == [1, 1, 1, 2, 1000]


def test_a_fixed_reply_text_streams_piece_by_piece_with_its_whitespace(
    emu: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    text = "# Title\n\n**bold** and <img src=x onerror=alert(1)>\n\n- one\n- two"
    status, config, _ = http("POST", emu.url + "/_emulator/config", {"reply_text": text})
    assert (status, config["reply_text"]) == (200, text)
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "anything"}],
    }
    message = create(client, **kwargs)
    assert first_text(message) == text
    assert message.usage.output_tokens == len(text.split())
    with open_stream(client, **kwargs) as stream:
        deltas = [event.delta.text for event in stream if event.type == "content_block_delta"]
    assert "".join(deltas) == text
    assert deltas[:3] == ["#", " Title", "\n\n**bold**"]
    short = create(client, **{**kwargs, "max_tokens": 2})
    assert (first_text(short), short.stop_reason) == ("# Title", "max_tokens")

    status, _, _ = http("POST", emu.url + "/_emulator/config", {"reply_text": "  "})
    assert status == 400
    http("POST", emu.url + "/_emulator/config", {"reply_text": None})
    assert first_text(create(client, **kwargs)) != text
