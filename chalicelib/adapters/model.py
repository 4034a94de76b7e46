"""Anthropic's Messages API through the official SDK: the warm call and the streamed turn.

The request body is built here from the domain's provider-neutral prompt (`anthropic_body`), with
the model id this provider is sent (`wire_id`: the catalog id itself on Anthropic's API). The
Bedrock adapter (`adapters/bedrock.py`) reuses the calls and overrides the body, the error mapping
and the counting of a cut reply.

`anthropic` takes ~0.8 s to import, so this module imports it only inside `AnthropicModel`
construction: the WebSocket and HTTP handlers never pay for it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain.pricing import Usage
from chalicelib.domain.prompts import Prompt
from chalicelib.ports import ModelError, StreamResult

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("cache_warming")

ABORT_POLL_S = 0.05
STALL_CLOSE_S = 0.3
# Half the warm function's timeout (domain/timing.py): a warm that has not answered by then is
# late for its cache anyway, and the invocation keeps the time to record it.
WARM_TIMEOUT_S = 30.0
# Counting a stopped reply's tokens delays its turn-aborted frame: at most this long.
COUNT_TIMEOUT_S = 2.0


def anthropic_body(prompt: Prompt, model_id: str, max_tokens: int | None = None) -> dict[str, Any]:
    """The Messages API request for `prompt` (`messages.create` keyword arguments)."""
    return {
        "model": model_id,
        "max_tokens": prompt.max_tokens if max_tokens is None else max_tokens,
        "system": prompt.system,
        "messages": prompt.messages,
    }


def _same_id(model: str) -> str:
    return model


def usage_from(raw: Any) -> Usage:
    """The SDK's usage object (or the emulator's dict) as our domain value."""

    def get(obj: Any, name: str) -> int:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        return int(value or 0)

    creation = (
        raw.get("cache_creation") if isinstance(raw, dict) else getattr(raw, "cache_creation", None)
    )
    return Usage(
        input_tokens=get(raw, "input_tokens"),
        output_tokens=get(raw, "output_tokens"),
        cache_read_input_tokens=get(raw, "cache_read_input_tokens"),
        cache_creation_input_tokens=get(raw, "cache_creation_input_tokens"),
        cache_creation_5m_input_tokens=get(creation, "ephemeral_5m_input_tokens")
        if creation
        else 0,
        cache_creation_1h_input_tokens=get(creation, "ephemeral_1h_input_tokens")
        if creation
        else 0,
    )


def error_code(error: Exception) -> str:
    """Our stable code for an SDK error (the SDK's classes, anthropic 2.10.0 `_exceptions.py`)."""
    import anthropic

    if isinstance(error, anthropic.RateLimitError):
        return "rate_limited"
    if isinstance(error, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(error, anthropic.NotFoundError):
        # An unknown or retired model id (404 not_found_error), or one this key cannot use.
        return "model_unavailable"
    if isinstance(error, anthropic.APIStatusError) and error.status_code == 529:
        return "overloaded"
    if isinstance(error, anthropic.BadRequestError) and _over_context_window(error):
        return "context_window_exceeded"
    if isinstance(error, anthropic.APIStatusError) and 400 <= error.status_code < 500:
        return "model_rejected"
    return "upstream_error"


# The API's two refusals of a prompt that does not fit the context window (400
# invalid_request_error): "prompt is too long: 208656 tokens > 200000 maximum" and "input length
# and `max_tokens` exceed context limit: 178959 + 64000 > 200000, decrease input length or
# `max_tokens` and try again" (as reported in anthropics/claude-code#59696, 2026-05-16, and
# docker/docker-agent#569, 2025-10-21; read 2026-12-01).
_CONTEXT_REFUSALS = ("prompt is too long", "exceed context limit")


def _over_context_window(error: Exception) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in _CONTEXT_REFUSALS)


def _interrupt(response: Any) -> None:
    """Unblock a thread stuck reading a silent stream: closing the response from another thread
    waits for the read to return, so shut the socket underneath it instead."""
    network_stream = getattr(response, "extensions", {}).get("network_stream")
    sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    if sock is None:
        response.close()
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class AnthropicModel:
    def __init__(
        self,
        client: anthropic.Anthropic | anthropic.AnthropicBedrock,
        warm_timeout_s: float = WARM_TIMEOUT_S,
        wire_id: Callable[[str], str] = _same_id,
    ) -> None:
        self.client = client
        # The catalog id -> the id this provider is sent (the same id keys the price book).
        self.wire_id = wire_id
        # A warm that takes longer than this is late for its timer anyway.
        self.warm_timeout_s = warm_timeout_s
        # Models that refused `max_tokens: 0`. Whether models that always think accept it is not
        # documented (docs/models.md): such a model is warmed with max_tokens 1 instead, the
        # cheapest request that still reads the same prefix.
        self._no_zero_max_tokens: set[str] = set()

    @classmethod
    def from_settings(cls, api_key: str, base_url: str | None) -> AnthropicModel:
        import anthropic

        return cls(anthropic.Anthropic(api_key=api_key or "unset", base_url=base_url or None))

    def body(self, prompt: Prompt, max_tokens: int | None = None) -> dict[str, Any]:
        """The keyword arguments of `messages.create` for `prompt` on this provider."""
        return anthropic_body(prompt, self.wire_id(prompt.model), max_tokens)

    def error_code(self, error: Exception) -> str:
        return error_code(error)

    def usage_of(self, raw: Any, prompt: Prompt) -> Usage:
        """The usage a response reported, as our domain value."""
        return usage_from(raw)

    def warm(self, prompt: Prompt) -> Usage:
        """One pre-warm request (not streamed: `max_tokens: 0` is refused with `stream`)."""
        import anthropic

        max_tokens = 1 if prompt.model in self._no_zero_max_tokens else 0
        request = self.body(prompt, max_tokens)
        # No SDK retries: each retry of a warm is the policy's, checked against the cache's
        # expiry like the first (domain/timing.py, `late_guard_s`); the SDK would retry a 429 or
        # 529 after 0.375-0.5 s and 0.75-1 s, or after whatever `retry-after` the API sends, past the
        # expiry
        # (anthropic 2.10.0 `_base_client._calculate_retry_timeout`).
        client = self.client.with_options(timeout=self.warm_timeout_s, max_retries=0)
        try:
            message = client.messages.create(**request)
        except anthropic.BadRequestError as error:
            if max_tokens != 0 or "max_tokens" not in str(error) or _over_context_window(error):
                raise ModelError(self.error_code(error), str(error)) from error
            log.warning("%s refused max_tokens=0; warming it with max_tokens=1", prompt.model)
            self._no_zero_max_tokens.add(prompt.model)
            return self.warm(prompt)
        except anthropic.AnthropicError as error:
            raise ModelError(self.error_code(error), str(error)) from error
        return self.usage_of(message.usage, prompt)

    def stream(
        self,
        prompt: Prompt,
        on_text: Callable[[str], None],
        should_abort: Callable[[], bool],
    ) -> StreamResult:
        import anthropic

        parts: list[str] = []
        watch = _AbortWatch(should_abort)
        opened: Any = None
        try:
            with self.client.messages.stream(**self.body(prompt)) as stream, watch.over(stream):
                opened = stream
                for text in stream.text_stream:
                    if watch.aborted.is_set():
                        break
                    parts.append(text)
                    on_text(text)
                if watch.aborted.is_set():
                    return StreamResult("".join(parts), self._billed(opened, prompt), aborted=True)
                final = stream.get_final_message()
        except Exception as error:
            # Closing the HTTP stream from the watcher surfaces as a transport error here.
            if watch.aborted.is_set():
                return StreamResult("".join(parts), self._billed(opened, prompt), aborted=True)
            if isinstance(error, anthropic.AnthropicError):
                code, message = self.error_code(error), str(error)
            else:
                code, message = "upstream_error", f"the reply stream broke: {error}"
            raise ModelError(code, message, self._billed(opened, prompt)) from error
        if final.stop_reason is None:
            # The body ended without message_delta/message_stop: the reply is not whole.
            message = "the reply stream ended before the model finished"
            raise ModelError("upstream_error", message, self._billed(opened, prompt))
        return StreamResult("".join(parts), self.usage_of(final.usage, prompt), aborted=False)

    def _billed(self, stream: Any, prompt: Prompt) -> Usage | None:
        """What a stream that did not finish was billed; None if the model never answered.

        The prompt's usage comes with message_start, the output's only with the final
        message_delta (Messages streaming docs, "Event types", read 2026-12-02), so the output so
        far is counted with the token-counting endpoint, which is free (Token counting docs,
        "Pricing and rate limits", read 2026-12-02) and an estimate by its own account."""
        snapshot = _snapshot(stream)
        if snapshot is None:
            return None
        usage = self.usage_of(snapshot.usage, prompt)
        generated = "".join(
            getattr(block, "text", None) or getattr(block, "thinking", None) or ""
            for block in snapshot.content
        )
        counted = self._count_tokens(snapshot.model or "", generated)
        return replace(usage, output_tokens=max(usage.output_tokens, counted))

    def _count_tokens(self, model: str, text: str) -> int:
        import anthropic

        if not text.strip():
            return len(text.encode())
        client = self.client.with_options(timeout=COUNT_TIMEOUT_S, max_retries=0)
        try:
            counted = client.messages.count_tokens(
                model=model, messages=[{"role": "user", "content": text}]
            )
            return int(counted.input_tokens)
        except anthropic.AnthropicError:
            # A token is at least one byte of UTF-8 in a byte-level tokenizer (an assumption:
            # Anthropic does not document its tokenizer): an upper bound, on the budget's side.
            log.warning("counting a stopped reply's tokens failed; counting one per byte")
            return len(text.encode())


def _snapshot(stream: Any) -> Any:
    """The SDK's accumulated message, or None before message_start arrived (the property asserts
    it exists: anthropic 2.10.0 `lib/streaming/_messages.py`)."""
    if stream is None:
        return None
    try:
        return stream.current_message_snapshot
    except AssertionError:
        return None


class _AbortWatch:
    """Polls `should_abort` even while no token arrives. The reading thread stops at its next
    token; only a stream that stays silent is closed from here."""

    def __init__(self, should_abort: Callable[[], bool]) -> None:
        self.should_abort = should_abort
        self.aborted = threading.Event()
        self._finished = threading.Event()

    @contextlib.contextmanager
    def over(self, stream: Any) -> Iterator[None]:
        watcher = threading.Thread(target=self._watch, args=(stream,), name="abort-watch")
        watcher.daemon = True
        watcher.start()
        try:
            yield
        finally:
            self._finished.set()
            watcher.join()

    def _watch(self, stream: Any) -> None:
        while not self._finished.wait(ABORT_POLL_S):
            if self.should_abort():
                self.aborted.set()
                if not self._finished.wait(STALL_CLOSE_S):
                    _interrupt(stream.response)
                return
