"""The stand-in's HTTP side: InvokeModel and InvokeModelWithResponseStream on `/model/{id}/...`,
the emulator's admin API on `/_emulator/...` (inherited), anything else a 404."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from http.server import ThreadingHTTPServer
from typing import Any, Protocol, cast

from devstack.anthropic.cache import CachePlan
from devstack.anthropic.config import Fault
from devstack.anthropic.ports import EmulatorState
from devstack.anthropic.prompt import MessagesRequest
from devstack.anthropic.reply import reply_pieces
from devstack.anthropic.server import EmulatorServer, _Handler
from devstack.anthropic.streaming import ClientGone
from devstack.bedrock.eventstream import CONTENT_TYPE, chunk, exception
from devstack.bedrock.rules import BedrockError, check_signed, parse_invoke, resolve_model


class StandIn(EmulatorState, Protocol):
    """What the handler needs of `standin.BedrockStandIn` (no import back: no cycle): the
    emulator's state, and Bedrock's own answers."""

    refuse_zero_max_tokens: bool

    def take_failure(self) -> BedrockError | None: ...
    def usage(self, plan: CachePlan, output_tokens: int) -> dict[str, Any]: ...
    def message(
        self,
        request: MessagesRequest,
        record: dict[str, Any],
        plan: CachePlan,
        words: list[str],
        stop_reason: str,
    ) -> dict[str, Any]: ...
    def opening_events(
        self, request: MessagesRequest, record: dict[str, Any], plan: CachePlan
    ) -> list[dict[str, Any]]: ...
    def closing_events(
        self, plan: CachePlan, stop_reason: str, sent: int
    ) -> list[dict[str, Any]]: ...


# The emulator's fault kinds as Bedrock's errors (botocore 1.44.8 bedrock-runtime service-2.json:
# ThrottlingException 429, ServiceUnavailableException 503, InternalServerException 500; in a
# stream, the ResponseStream member of the same name).
FAULT_ERRORS: dict[str, BedrockError] = {
    "rate_limit": BedrockError(
        429, "ThrottlingException", "Too many requests, please wait before trying again."
    ),
    "overloaded": BedrockError(503, "ServiceUnavailableException", "Service unavailable."),
    "api_error": BedrockError(500, "InternalServerException", "Internal server error."),
    "stream_error": BedrockError(
        424, "ModelStreamErrorException", "The model stream ended with an error."
    ),
}


class BedrockServer(EmulatorServer):
    def __init__(self, address: tuple[str, int], emulator: Any) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        ThreadingHTTPServer.__init__(self, address, _BedrockHandler)


def _invoke_path(path: str) -> tuple[str, bool] | None:
    """(model id, streamed) of `/model/{id}/invoke[-with-response-stream]`; the SDK quotes the
    id (anthropic 2.10.0 `lib/bedrock/_client._prepare_options`)."""
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "model":
        return None
    if parts[3] not in ("invoke", "invoke-with-response-stream"):
        return None
    return urllib.parse.unquote(parts[2]), parts[3] != "invoke"


class _BedrockHandler(_Handler):
    @property
    def standin(self) -> StandIn:
        return cast(StandIn, cast(EmulatorServer, self.server).emulator)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/_emulator/"):
            super().do_POST()
            return
        target = _invoke_path(path)
        try:
            if target is None:
                self._read_body()
                raise BedrockError(404, "UnknownOperationException", f"Not found: {path}")
            self._invoke(*target)
        except BedrockError as err:
            self._send_bedrock_error(err)
        except (ConnectionError, ClientGone):
            self.close_connection = True

    def _send_bedrock_error(self, err: BedrockError) -> None:
        with contextlib.suppress(ConnectionError):
            self._send_json(err.status, err.body(), headers=err.headers())

    def _record(self, model_id: str, stream: bool) -> dict[str, Any]:
        emu = self.standin
        request_id, message_id = emu.next_ids()
        return {
            "request_id": request_id,
            "message_id": message_id,
            "model": model_id,
            "stream": stream,
            "max_tokens": None,
            "usage": None,
            "started_at": emu.now(),
            "status": 200,
            "error": None,
            "fault": None,
            "outcome": "in_progress",
            "deltas_sent": 0,
            "anthropic_version": None,
        }

    def _invoke(self, model_id: str, stream: bool) -> None:
        emu = self.standin
        record = self._record(model_id, stream)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            check_signed(self.headers)
            row = resolve_model(model_id)
            with contextlib.suppress(ValueError, AttributeError):
                sent = json.loads(raw)
                record.update(
                    max_tokens=sent.get("max_tokens"),
                    anthropic_version=sent.get("anthropic_version"),
                )
            request = parse_invoke(raw, row, stream=stream, refuse_zero=emu.refuse_zero_max_tokens)
            failure = emu.take_failure()
            if failure is not None:
                raise failure
            fault = emu.take_fault(stream)
            if fault is not None and fault.kind in FAULT_ERRORS and fault.kind != "stream_error":
                record["fault"] = fault.kind
                raise FAULT_ERRORS[fault.kind]
        except BedrockError as err:
            record.update(status=err.status, error=err.shape, outcome="error")
            emu.record(record)
            raise
        record["fault"] = fault.kind if fault is not None else None
        self._answer(request, row.min_cacheable_tokens, fault, record)

    def _answer(
        self, request: MessagesRequest, min_tokens: int, fault: Fault | None, record: dict[str, Any]
    ) -> None:
        emu = self.standin
        config = emu.config
        started_at = record["started_at"]
        if config.min_cacheable_override is not None:
            min_tokens = config.min_cacheable_override
        plan = emu.cache.plan(
            request, now=started_at, min_tokens=min_tokens, lookback=config.lookback_positions
        )
        words, reply_tokens = reply_pieces(
            request.seed_text, request.max_tokens, config.reply_tokens, config.reply_text
        )
        stop_reason = "max_tokens" if request.max_tokens < reply_tokens else "end_turn"
        record["usage"] = emu.usage(plan, 0 if request.stream else len(words))
        emu.record(record)
        if (
            fault is not None
            and fault.kind == "slow"
            and self.client_gone(time.monotonic() + fault.delay)
        ):
            emu.finish_stream(record, "disconnected", 0, disconnected=True)
            self.close_connection = True
            return
        # The cache entry exists once the response begins, not when the request arrives.
        emu.cache.commit(plan, started_at=started_at)
        if request.stream:
            self._stream(request, plan, words, stop_reason, fault, record)
            return
        emu.finish_record(record, "ok")
        self._send_json(200, emu.message(request, record, plan, words, stop_reason))

    def _stream(
        self,
        request: MessagesRequest,
        plan: CachePlan,
        words: list[str],
        stop_reason: str,
        fault: Fault | None,
        record: dict[str, Any],
    ) -> None:
        emu = self.standin
        # Counted on the handler (paced_deltas) so a disconnect records how far the stream got.
        self._sent = 0
        try:
            self._open_event_stream(record["request_id"])
            for event in emu.opening_events(request, record, plan):
                self._frame(chunk(event))
            self.paced_deltas(words, fault, emu.config.tokens_per_second, self._event_frame)
            if fault is not None and fault.kind in ("stream_error", "drop"):
                self._cut(fault, record, self._sent)
                return
            for event in emu.closing_events(plan, stop_reason, self._sent):
                self._frame(chunk(event))
            emu.finish_stream(record, "ok", self._sent)
            self._chunk(b"")
        except (ConnectionError, TimeoutError, ClientGone):
            emu.finish_stream(record, "disconnected", self._sent, disconnected=True)
            self.close_connection = True

    def _open_event_stream(self, request_id: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("X-Amzn-Bedrock-Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event_frame(self, event: dict[str, Any]) -> None:
        self._frame(chunk(event))

    def _cut(self, fault: Fault, record: dict[str, Any], sent: int) -> None:
        emu = self.standin
        if fault.kind == "drop":
            # No final frame: the body ends short, like a reset connection.
            emu.finish_stream(record, "dropped", sent, dropped=True)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        err = FAULT_ERRORS["stream_error"]
        self._frame(exception(err.stream_shape, err.message))
        emu.finish_stream(record, "stream_error", sent)
        self._chunk(b"")

    def _frame(self, data: bytes) -> None:
        self._chunk(data)
