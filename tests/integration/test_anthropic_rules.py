"""The emulator refuses what each catalog model refuses, as the API does (status, error type,
message), and accepts the neighbouring request that the same model takes. One refused and one
accepted case per rule; the rules and their sources are in ``devstack/anthropic/errors.py``.

Raw HTTP keeps the bodies exactly as written (no SDK-side defaults or validation in between).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from chalicelib.domain.catalog import CATALOG
from devstack.anthropic import RULES, AnthropicEmulator, EmulatorConfig, estimate_tokens
from devstack.anthropic import errors as rules

USER = [{"role": "user", "content": "Name a colour"}]
FILLER = "the quick brown fox jumps over the lazy dog while the cache stays warm "
TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def emu() -> Iterator[AnthropicEmulator]:
    config = EmulatorConfig(tokens_per_second=0, reply_tokens=5)
    with AnthropicEmulator(config=config) as emulator:
        yield emulator


def post(emu: AnthropicEmulator, body: dict[str, Any], path: str = "/v1/messages") -> Any:
    """(status, decoded body) of a raw POST; a streamed body comes back as its raw text."""
    request = urllib.request.Request(
        emu.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "x-api-key": "test"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            if response.headers.get_content_type() == "text/event-stream":
                return response.status, raw.decode()
            return response.status, json.loads(raw)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 20, "messages": USER, **fields}


def accepted(emu: AnthropicEmulator, request: dict[str, Any]) -> Any:
    status, payload = post(emu, request)
    assert status == 200, payload
    return payload


def refused(
    emu: AnthropicEmulator, request: dict[str, Any], rule: rules.Rule, **fields: Any
) -> str:
    """Assert ``request`` gets ``rule``'s status and type (and its exact message when the API's
    wording is known); returns the message."""
    status, payload = post(emu, request)
    assert status == rule.status, payload
    assert payload["type"] == "error"
    assert payload["error"]["type"] == rule.error_type
    message = str(payload["error"]["message"])
    if rule.exact:
        assert message == rule.message.format(**fields)
    assert emu.stats.requests[-1]["status"] == rule.status
    assert emu.stats.requests[-1]["usage"] is None
    return message


def text(tokens: int, tag: str) -> str:
    return (f"{tag}:" + FILLER * (tokens // 16 + 2))[: 4 * tokens]


def test_every_rule_has_a_source_and_a_distinct_key() -> None:
    assert len({rule.key for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.source.strip() and rule.applies_to.strip()
        assert rule.status in (400, 404)


# --- Models ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-opus-4-1", "claude-mythos-5-1"],
)
def test_a_model_outside_the_catalog_is_a_404(emu: AnthropicEmulator, model: str) -> None:
    refused(emu, body(model), rules.UNKNOWN_MODEL, model=model)
    status, payload = post(emu, body(model), "/v1/messages/count_tokens")
    assert (status, payload["error"]["message"]) == (404, f"model: {model}")


def test_the_sdk_sees_an_unknown_model_as_not_found(emu: AnthropicEmulator) -> None:
    client = anthropic.Anthropic(base_url=emu.url, api_key="test", max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="claude-unknown-9", max_tokens=5, messages=USER)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", [m for facts in CATALOG for m in facts.ids])
def test_every_catalog_id_and_alias_is_served(emu: AnthropicEmulator, model: str) -> None:
    assert accepted(emu, body(model))["model"] == model


@pytest.mark.parametrize("facts", CATALOG, ids=lambda f: f.id)
def test_each_model_caches_from_its_own_minimum(emu: AnthropicEmulator, facts: Any) -> None:
    minimum = facts.min_cacheable_tokens
    for tokens, cached in ((minimum - 1, False), (minimum, True)):
        system = [
            {"type": "text", "text": text(tokens, "s"), "cache_control": {"type": "ephemeral"}}
        ]
        usage = accepted(emu, body(facts.id, system=system))["usage"]
        assert usage["cache_creation_input_tokens"] == (tokens if cached else 0)


# --- max_tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "limit"), [("claude-haiku-4-5", 64_000), ("claude-opus-5-5", 128_000)]
)
def test_max_tokens_above_the_model_limit_is_refused(
    emu: AnthropicEmulator, model: str, limit: int
) -> None:
    accepted(emu, body(model, max_tokens=limit))
    refused(
        emu,
        body(model, max_tokens=limit + 1),
        rules.MAX_TOKENS_OVER_LIMIT,
        max_tokens=limit + 1,
        limit=limit,
        model=model,
    )


# --- Prefill and text blocks -------------------------------------------------------------------


def conversation(final: Any) -> list[dict[str, Any]]:
    return [*USER, {"role": "assistant", "content": final}]


@pytest.mark.parametrize("model", [f.id for f in CATALOG if not f.accepts_prefill])
def test_a_final_assistant_message_is_refused_where_prefill_is_gone(
    emu: AnthropicEmulator, model: str
) -> None:
    refused(emu, body(model, messages=conversation("The colour is")), rules.PREFILL_REFUSED)
    # The same turn followed by a user message (the pre-warm shape) is accepted.
    accepted(emu, body(model, messages=[*conversation("Blue."), {"role": "user", "content": "."}]))


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-opus-4-5-20251101"])
def test_a_prefill_must_not_end_in_whitespace(emu: AnthropicEmulator, model: str) -> None:
    reply = accepted(emu, body(model, messages=conversation("The colour is")))
    assert reply["usage"]["input_tokens"] == estimate_tokens("Name a colour") + estimate_tokens(
        "The colour is"
    )
    for tail in ("The colour is ", [{"type": "text", "text": "The colour is\n"}]):
        refused(emu, body(model, messages=conversation(tail)), rules.TRAILING_WHITESPACE)


def test_trailing_whitespace_on_a_model_without_prefill_is_a_prefill_error(
    emu: AnthropicEmulator,
) -> None:
    refused(emu, body("claude-sonnet-4-6", messages=conversation("Blue ")), rules.PREFILL_REFUSED)


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": [{"type": "text", "text": ""}]}],
        [*USER, {"role": "assistant", "content": [{"type": "text", "text": ""}]}, *USER],
    ],
    ids=["user", "assistant"],
)
def test_an_empty_text_block_is_refused(emu: AnthropicEmulator, messages: Any) -> None:
    refused(emu, body("claude-haiku-4-5", messages=messages), rules.EMPTY_TEXT)


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": " \n"}],
        [{"role": "user", "content": [{"type": "text", "text": "\t"}]}],
        [*USER, {"role": "assistant", "content": "   "}, *USER],
        # A blank final prefill is whitespace-only before it is a trailing-whitespace prefill.
        [*USER, {"role": "assistant", "content": [{"type": "text", "text": "  "}]}],
    ],
    ids=["user-string", "user-block", "assistant", "final-assistant"],
)
def test_a_whitespace_only_text_block_is_refused(emu: AnthropicEmulator, messages: Any) -> None:
    refused(emu, body("claude-haiku-4-5", messages=messages), rules.WHITESPACE_TEXT)


def test_text_with_surrounding_whitespace_is_accepted(emu: AnthropicEmulator) -> None:
    messages = [
        {"role": "user", "content": "  hi  "},
        {"role": "assistant", "content": "\nhello\n"},
        {"role": "user", "content": [{"type": "text", "text": " again "}]},
    ]
    accepted(emu, body("claude-sonnet-4-6", system="  be brief  ", messages=messages))


def test_blank_system_text_is_refused(emu: AnthropicEmulator) -> None:
    refused(emu, body("claude-opus-5-5", system="  \n"), rules.WHITESPACE_SYSTEM_TEXT)
    blank_block = [{"type": "text", "text": " "}]
    refused(emu, body("claude-opus-5-5", system=blank_block), rules.WHITESPACE_SYSTEM_TEXT)
    message = refused(
        emu, body("claude-opus-5-5", system=[{"type": "text", "text": ""}]), rules.EMPTY_SYSTEM_TEXT
    )
    assert message.startswith("system:") and "non-empty" in message


# --- max_tokens: 0 (cache pre-warming) ------------------------------------------------------------


PREWARM_REFUSALS = [
    ({"stream": True}, rules.PREWARM_WITH_STREAM),
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, rules.PREWARM_WITH_THINKING),
    (
        {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
        rules.PREWARM_WITH_FORMAT,
    ),
    ({"tools": [TOOL], "tool_choice": {"type": "any"}}, rules.PREWARM_WITH_FORCED_TOOL),
    (
        {"tools": [TOOL], "tool_choice": {"type": "tool", "name": "get_weather"}},
        rules.PREWARM_WITH_FORCED_TOOL,
    ),
]


@pytest.mark.parametrize(
    ("extra", "rule"), PREWARM_REFUSALS, ids=["stream", "thinking", "format", "any", "tool"]
)
def test_max_tokens_zero_refuses_the_documented_combinations(
    emu: AnthropicEmulator, extra: dict[str, Any], rule: rules.Rule
) -> None:
    # Sonnet 4.6 accepts each of these settings on its own (manual thinking is deprecated there).
    message = refused(emu, body("claude-sonnet-4-6", max_tokens=0, **extra), rule)
    # The product's warm falls back to max_tokens=1 on a refusal that names max_tokens.
    assert "max_tokens" in message
    extra_ok = {**extra, "max_tokens": 2049 if "thinking" in extra else 20}
    reply = accepted(emu, body("claude-sonnet-4-6", **extra_ok))
    if extra.get("stream"):
        assert "event: message_stop" in reply


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"tools": [TOOL], "tool_choice": {"type": "auto"}},
        {"thinking": {"type": "adaptive"}},
        {"output_config": {"effort": "low"}},
    ],
    ids=["plain", "auto", "adaptive", "effort"],
)
def test_max_tokens_zero_alone_populates_the_cache(emu: AnthropicEmulator, extra: Any) -> None:
    reply = accepted(emu, body("claude-sonnet-4-6", max_tokens=0, **extra))
    assert (reply["content"], reply["stop_reason"]) == ([], "max_tokens")
    assert reply["usage"]["output_tokens"] == 0


# --- Thinking and tool_choice per model ----------------------------------------------------------


def thinking(kind: str) -> dict[str, Any]:
    return {"type": kind, "budget_tokens": 1024} if kind == "enabled" else {"type": kind}


@pytest.mark.parametrize(
    ("kind", "refusing", "accepting", "rule"),
    [
        ("enabled", "claude-opus-4-7", "claude-opus-4-6", rules.EXTENDED_THINKING_REFUSED),
        ("enabled", "claude-sonnet-5-5", "claude-haiku-4-5", rules.EXTENDED_THINKING_REFUSED),
        ("adaptive", "claude-haiku-4-5", "claude-sonnet-4-6", rules.ADAPTIVE_THINKING_REFUSED),
        ("disabled", "claude-opus-5-5", "claude-opus-5", rules.THINKING_DISABLE_REFUSED),
        ("disabled", "claude-fable-5-2", "claude-haiku-5-5", rules.THINKING_DISABLE_REFUSED),
    ],
)
def test_thinking_modes_follow_the_model(
    emu: AnthropicEmulator, kind: str, refusing: str, accepting: str, rule: rules.Rule
) -> None:
    refused(emu, body(refusing, max_tokens=2048, thinking=thinking(kind)), rule)
    accepted(emu, body(accepting, max_tokens=2048, thinking=thinking(kind)))


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_forced_tool_use_is_refused_where_it_is_gone(
    emu: AnthropicEmulator, choice: dict[str, Any]
) -> None:
    forced = body("claude-sonnet-5-5", tools=[TOOL], tool_choice=choice)
    refused(emu, forced, rules.FORCED_TOOL_REFUSED)
    # The token counting endpoint applies the same validation.
    status, payload = post(emu, forced, "/v1/messages/count_tokens")
    assert (status, payload["error"]["message"]) == (400, rules.FORCED_TOOL_REFUSED.message)
    accepted(emu, body("claude-sonnet-5-5", tools=[TOOL], tool_choice={"type": "auto"}))
    accepted(emu, body("claude-opus-4-8", tools=[TOOL], tool_choice=choice))


# --- Lookback positions --------------------------------------------------------------------------


def tool_use(i: int) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": f"toolu_{i:02d}",
        "name": "get_weather",
        "input": {"city": "x"},
    }


def tool_result(i: int) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": f"toolu_{i:02d}", "content": "sunny"}


def test_a_run_of_parallel_tool_calls_is_one_lookback_position(emu: AnthropicEmulator) -> None:
    plain = [{"type": "text", "text": text(600, "sys")}]
    system = [{**plain[0], "cache_control": {"type": "ephemeral"}}]
    first = accepted(emu, body("claude-opus-5-5", tools=[TOOL], system=system))
    assert first["usage"]["cache_creation_input_tokens"] > 600
    # 25 parallel calls and their 25 results: 50 blocks, but only 3 positions after the system.
    calls = [tool_use(i) for i in range(25)]
    results = [tool_result(i) for i in range(24)]
    last = {**tool_result(24), "cache_control": {"type": "ephemeral"}}
    messages = [
        *USER,
        {"role": "assistant", "content": calls},
        {"role": "user", "content": [*results, last]},
    ]
    later = accepted(emu, body("claude-opus-5-5", tools=[TOOL], system=plain, messages=messages))
    assert (
        later["usage"]["cache_read_input_tokens"] == first["usage"]["cache_creation_input_tokens"]
    )
    # The same 50 blocks as separate text blocks are 50 positions: the system entry is out of reach.
    texts: list[dict[str, Any]] = [{"type": "text", "text": f"note {i}"} for i in range(49)]
    texts.append({"type": "text", "text": "end", "cache_control": {"type": "ephemeral"}})
    far = accepted(
        emu,
        body(
            "claude-opus-5-5",
            tools=[TOOL],
            system=plain,
            messages=[{"role": "user", "content": texts}],
        ),
    )
    assert far["usage"]["cache_read_input_tokens"] == 0
