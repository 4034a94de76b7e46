"""The Anthropic adapter against local HTTP servers (the emulator, and stubs for odd behaviour)."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import pytest

from chalicelib.adapters.model import AnthropicModel
from chalicelib.domain.prompts import Prompt
from chalicelib.ports import ModelError
from devstack.anthropic import AnthropicEmulator, EmulatorConfig
from tests.helpers import adapter_prompts

PROMPTS = adapter_prompts(600)
SYSTEM, MESSAGES, WARM, TURN = PROMPTS.system, PROMPTS.messages, PROMPTS.warm, PROMPTS.turn


def model_for(url: str) -> AnthropicModel:
    return AnthropicModel(anthropic.Anthropic(api_key="k", base_url=url, max_retries=0))


@pytest.fixture
def emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(config=EmulatorConfig(tokens_per_second=0, reply_tokens=20)) as emu:
        yield emu


def serve(handler: Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            handler(self, body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def test_warm_sends_max_tokens_zero_and_maps_usage(emulator: AnthropicEmulator) -> None:
    model = model_for(emulator.url)
    first = model.warm(WARM)
    second = model.warm(WARM)
    assert emulator.stats.requests[0]["max_tokens"] == 0
    assert first.cache_creation_input_tokens > 1000 and first.cache_read_input_tokens == 0
    assert first.cache_creation_5m_input_tokens == first.cache_creation_input_tokens
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0 and second.output_tokens == 0


@pytest.fixture
def refuses_zero() -> Iterator[tuple[str, list[int]]]:
    seen: list[int] = []

    def handle(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        seen.append(body["max_tokens"])
        if body["max_tokens"] == 0:
            reply(
                handler,
                400,
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "max_tokens: must be at least 1",
                    },
                },
            )
            return
        reply(
            handler,
            200,
            {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": "."}],
                "stop_reason": "max_tokens",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 0,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 900,
                    "cache_creation_input_tokens": 0,
                },
            },
        )

    for url in serve(handle):
        yield url, seen


def test_warm_falls_back_to_one_token_only_when_zero_is_refused(
    refuses_zero: tuple[str, list[int]],
) -> None:
    url, seen = refuses_zero
    model = model_for(url)
    usage = model.warm(WARM)
    model.warm(WARM)
    assert seen == [0, 1, 1]  # refused once, then 1 for the life of the process
    assert usage.cache_read_input_tokens == 900 and usage.output_tokens == 1


@pytest.mark.parametrize(
    "fault,code",
    [("rate_limit", "rate_limited"), ("overloaded", "overloaded"), ("api_error", "upstream_error")],
)
def test_warm_errors_map_to_stable_codes(
    emulator: AnthropicEmulator, fault: str, code: str
) -> None:
    emulator.set_fault(fault, count=1)
    with pytest.raises(ModelError) as caught:
        model_for(emulator.url).warm(WARM)
    assert caught.value.code == code


def test_an_unknown_model_is_model_unavailable() -> None:
    def not_found(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        # The API's answer to a model id it does not serve (a 404 `not_found_error`).
        error = {"type": "not_found_error", "message": f"model: {body['model']}"}
        reply(handler, 404, {"type": "error", "error": error, "request_id": "req_1"})

    for url in serve(not_found):
        with pytest.raises(ModelError) as caught:
            model_for(url).warm(WARM)
        assert caught.value.code == "model_unavailable"


def test_a_bad_request_is_model_rejected_not_retried_as_one_token(
    emulator: AnthropicEmulator,
) -> None:
    bad = Prompt("claude-sonnet-4-6", 0, SYSTEM, [])  # no messages: a 400 unrelated to max_tokens
    with pytest.raises(ModelError) as caught:
        model_for(emulator.url).warm(bad)
    assert caught.value.code == "model_rejected"
    assert [r["max_tokens"] for r in emulator.stats.requests] == [0]


def test_stream_returns_text_and_usage(emulator: AnthropicEmulator) -> None:
    pieces: list[str] = []
    result = model_for(emulator.url).stream(TURN, pieces.append, lambda: False)
    assert not result.aborted and result.text == "".join(pieces) and len(pieces) == 20
    assert result.usage is not None and result.usage.output_tokens == 20


def _opening(usage: dict[str, int], text: str) -> bytes:
    """A stream's first events: message_start with `usage`, a text block, one delta of `text`."""
    message: dict[str, Any] = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events = (
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )
    return b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events
    )


def _start_stream(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.end_headers()


@pytest.fixture
def stalls() -> Iterator[str]:
    def handle(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if handler.path.endswith("/count_tokens"):
            reply(handler, 500, {"type": "error", "error": {"type": "api_error", "message": "x"}})
            return
        _start_stream(handler)
        handler.wfile.write(_opening({"input_tokens": 1, "output_tokens": 0}, "partial "))
        handler.wfile.flush()
        time.sleep(8)  # the upstream goes silent

    yield from serve(handle)


def test_abort_stops_a_silent_stream_within_a_second(stalls: str) -> None:
    first: list[float] = []

    def on_text(text: str) -> None:
        first.append(time.monotonic())

    asked: list[float] = []

    def should_abort() -> bool:
        if first and not asked:
            asked.append(time.monotonic())
        return bool(asked)

    result = model_for(stalls).stream(TURN, on_text, should_abort)
    latency = time.monotonic() - asked[0]
    assert result.aborted and result.text == "partial "
    assert latency < 1.0, latency


def _asked(marks: dict[str, float]) -> bool:
    return "asked" in marks


def test_abort_stops_a_flowing_stream_at_the_next_token() -> None:
    config = EmulatorConfig(tokens_per_second=40, reply_tokens=300)
    with AnthropicEmulator(config=config) as emulator:
        latencies = []
        for _ in range(5):
            marks: dict[str, float] = {}
            pieces: list[str] = []

            def on_text(
                text: str, pieces: list[str] = pieces, marks: dict[str, float] = marks
            ) -> None:
                pieces.append(text)
                if len(pieces) == 5:
                    marks["asked"] = time.monotonic()

            result = model_for(emulator.url).stream(TURN, on_text, functools.partial(_asked, marks))
            latencies.append(time.monotonic() - marks["asked"])
            assert result.aborted and len(pieces) < 15
        assert max(latencies) < 1.0, latencies
        deadline = time.monotonic() + 2
        while emulator.stats.disconnects < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emulator.stats.disconnects == 5  # the HTTP stream was really closed each time


def _stop_after(count: int) -> tuple[list[str], Callable[[str], None], Callable[[], bool]]:
    pieces: list[str] = []
    return pieces, pieces.append, lambda: len(pieces) >= count


def test_a_stopped_stream_reports_its_prompt_and_counts_what_it_generated() -> None:
    # A stream stopped early never gets the final usage (message_delta comes at the end). What
    # it was billed: the prompt, exactly as message_start reported it, and the output so far,
    # counted with the free token-counting endpoint.
    words = [f" word{n:03d}" for n in range(300)]
    config = EmulatorConfig(tokens_per_second=40, reply_text="".join(words))
    with AnthropicEmulator(config=config) as emulator:
        pieces, on_text, should_abort = _stop_after(5)
        result = model_for(emulator.url).stream(TURN, on_text, should_abort)
        assert result.aborted and result.usage is not None
        started = emulator.stats.requests[0]["usage"]
        assert result.usage.input_tokens == started["input_tokens"]
        assert result.usage.cache_creation_input_tokens == started["cache_creation_input_tokens"]
        assert result.usage.cache_creation_input_tokens > 1000

        # The SDK may have taken in a delta or two after the last one forwarded: those were
        # generated, and billed, too. The count is of some prefix the emulator really sent.
        def sent() -> int:
            request = emulator.stats.requests[0]
            return int(request["deltas_sent"]) if request["outcome"] != "in_progress" else -1

        deadline = time.monotonic() + 5
        while sent() < 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        counter = anthropic.Anthropic(api_key="k", base_url=emulator.url).messages
        counts = {
            counter.count_tokens(
                model=TURN.model, messages=[{"role": "user", "content": "".join(words[:k])}]
            ).input_tokens
            for k in range(len(pieces), sent() + 1)
        }
        assert result.usage.output_tokens in counts


def test_a_stopped_stream_whose_count_fails_counts_a_token_per_byte(stalls: str) -> None:
    # The stub answers count_tokens with a 500.
    _pieces, on_text, should_abort = _stop_after(1)
    result = model_for(stalls).stream(TURN, on_text, should_abort)
    assert result.aborted and result.text == "partial "
    assert result.usage is not None
    assert result.usage.input_tokens == 1 and result.usage.output_tokens == len(b"partial ")


@pytest.fixture
def breaks() -> Iterator[str]:
    """message_start, one delta, then the connection drops."""

    def handle(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if handler.path.endswith("/count_tokens"):
            reply(handler, 200, {"input_tokens": 3})
            return
        _start_stream(handler)
        usage = {"input_tokens": 7, "output_tokens": 1, "cache_read_input_tokens": 900}
        handler.wfile.write(_opening(usage, "so far"))
        handler.wfile.flush()
        handler.connection.shutdown(2)

    yield from serve(handle)


def test_a_stream_that_breaks_after_the_model_answered_carries_what_was_billed(breaks: str) -> None:
    with pytest.raises(ModelError) as caught:
        model_for(breaks).stream(TURN, lambda _text: None, lambda: False)
    assert caught.value.code == "upstream_error"
    usage = caught.value.usage
    assert usage is not None
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (7, 900, 3)


def test_a_request_refused_before_the_model_answered_carries_no_usage() -> None:
    def handler(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        error = {"type": "rate_limit_error", "message": "Number of request tokens has exceeded"}
        reply(request, 429, {"type": "error", "error": error})

    for url in serve(handler):
        with pytest.raises(ModelError) as caught:
            model_for(url).stream(TURN, lambda _text: None, lambda: False)
        assert caught.value.code == "rate_limited" and caught.value.usage is None


@pytest.mark.parametrize(
    "message",
    [
        # Anthropic's two refusals of a prompt that does not fit (400 invalid_request_error), as
        # users reported them: anthropics/claude-code#59696 (2026-05-16) and
        # docker/docker-agent#569 (2025-10-21), read 2026-12-01.
        "prompt is too long: 208656 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 178959 + 64000 > 200000, "
        "decrease input length or `max_tokens` and try again",
    ],
    ids=["prompt-too-long", "input-and-max-tokens"],
)
@pytest.mark.parametrize("call", ["warm", "stream"])
def test_a_prompt_over_the_context_window_is_its_own_code(message: str, call: str) -> None:
    def handler(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        reply(
            request,
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": message}},
        )

    for url in serve(handler):
        model = model_for(url)
        with pytest.raises(ModelError) as failed:
            if call == "warm":
                model.warm(WARM)
            else:
                model.stream(TURN, lambda _text: None, lambda: False)
        assert failed.value.code == "context_window_exceeded"
