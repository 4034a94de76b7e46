"""The SSE side of ``POST /v1/messages``: the real event sequence, pacing, and the stream faults."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from devstack.anthropic.cache import CachePlan
from devstack.anthropic.config import Fault
from devstack.anthropic.ports import EmulatorState
from devstack.anthropic.prompt import MessagesRequest


class ClientGone(Exception):
    pass


class StreamingHandler(BaseHTTPRequestHandler):
    """Writes a streamed reply; ``server.py``'s handler adds the routing and the endpoints."""

    _sent = 0

    @property
    def emu(self) -> EmulatorState:
        raise NotImplementedError

    def client_gone(self, deadline: float) -> bool:
        """Wait until ``deadline`` (monotonic); True as soon as the client closes the connection."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    return False
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK)
                except (ConnectionError, TimeoutError):
                    return True
                if not peeked:
                    return True
                # The client sent bytes (not expected mid-response): just wait the time out.
                time.sleep(max(0.0, deadline - time.monotonic()))
                return False
        return False

    def stream_reply(
        self,
        request: MessagesRequest,
        plan: CachePlan,
        words: list[str],
        stop_reason: str,
        fault: Fault | None,
        record: dict[str, Any],
        tokens_per_second: float,
    ) -> None:
        emu = self.emu
        # Counted on the handler so the disconnect path can record how far the stream got.
        self._sent = 0
        try:
            self._open_stream(record["request_id"])
            self._start_events(request, plan, record["message_id"])
            self._send_deltas(words, fault, tokens_per_second)
            if fault is not None and fault.kind == "drop":
                self._drop_stream(record)
                return
            if fault is not None and fault.kind == "stream_error":
                self._fail_stream(record)
                return
            self._stop_events(plan, stop_reason)
            emu.finish_stream(record, "ok", self._sent)
            self._chunk(b"")
        except (ConnectionError, TimeoutError, ClientGone):
            emu.finish_stream(record, "disconnected", self._sent, disconnected=True)
            self.close_connection = True

    def _open_stream(self, request_id: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", request_id)
        self.end_headers()

    def _start_events(self, request: MessagesRequest, plan: CachePlan, message_id: str) -> None:
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": plan.usage(1),
        }
        self._event("message_start", {"type": "message_start", "message": message})
        self._event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        self._event("ping", {"type": "ping"})

    def _send_deltas(self, words: list[str], fault: Fault | None, tokens_per_second: float) -> None:
        self.paced_deltas(words, fault, tokens_per_second, self._sse_delta)

    def paced_deltas(
        self,
        words: list[str],
        fault: Fault | None,
        tokens_per_second: float,
        write: Callable[[dict[str, Any]], None],
    ) -> None:
        """One `content_block_delta` per word, paced, counted in `_sent`; stops early where a drop
        or stream fault cuts in. `write` frames the event: SSE here, AWS event-stream frames in
        the Bedrock stand-in (devstack/bedrock/server.py)."""
        interval = 1.0 / tokens_per_second if tokens_per_second > 0 else 0.0
        t0 = time.monotonic()
        for i, word in enumerate(words):
            if (
                fault is not None
                and fault.kind in ("drop", "stream_error")
                and i == fault.after_deltas
            ):
                break
            if interval and self.client_gone(t0 + (i + 1) * interval):
                raise ClientGone
            write(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word},
                }
            )
            self._sent += 1

    def _sse_delta(self, event: dict[str, Any]) -> None:
        self._event("content_block_delta", event)

    def _drop_stream(self, record: dict[str, Any]) -> None:
        # No terminating chunk: the client sees the body cut short, like a reset proxy.
        self.emu.finish_stream(record, "dropped", self._sent, dropped=True)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _fail_stream(self, record: dict[str, Any]) -> None:
        self._event(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
        # Recorded before the last chunk so a client that has finished reading sees it.
        self.emu.finish_stream(record, "stream_error", self._sent)
        self._chunk(b"")

    def _stop_events(self, plan: CachePlan, stop_reason: str) -> None:
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {
                    "input_tokens": plan.input_tokens,
                    "cache_creation_input_tokens": plan.creation_tokens,
                    "cache_read_input_tokens": plan.read_tokens,
                    "output_tokens": self._sent,
                },
            },
        )
        self._event("message_stop", {"type": "message_stop"})

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _event(self, name: str, payload: dict[str, Any]) -> None:
        self._chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())
