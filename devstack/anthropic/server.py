"""The HTTP server: routing, the Messages and count_tokens endpoints, and the admin API."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any, cast

from devstack.anthropic.cache import CachePlan
from devstack.anthropic.config import ERROR_FAULTS, FAULT_KINDS, Fault
from devstack.anthropic.errors import RequestError, invalid
from devstack.anthropic.ports import EmulatorState
from devstack.anthropic.prompt import MessagesRequest
from devstack.anthropic.reply import message_body, reply_pieces
from devstack.anthropic.rules import parse_messages_request
from devstack.anthropic.streaming import ClientGone, StreamingHandler

_REASONS = {529: "Overloaded"}


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: EmulatorState) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client vanishing is routine here (timeouts, early closes); anything else is a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(StreamingHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections would otherwise hold a thread forever.
    timeout = 60

    @property
    def emu(self) -> EmulatorState:
        return cast(EmulatorServer, self.server).emulator

    def setup(self) -> None:
        super().setup()
        server = cast(EmulatorServer, self.server)
        with server.sockets_lock:
            server.open_sockets.add(self.connection)

    def finish(self) -> None:
        server = cast(EmulatorServer, self.server)
        with server.sockets_lock:
            server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.emu.config.verbose:
            super().log_message(format, *args)

    # -- routing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        emu = self.emu
        if path == "/_emulator/stats":
            self._send_json(200, emu.stats_snapshot())
        elif path == "/_emulator/cache":
            self._send_json(200, {"entries": emu.cache.entries(emu.now()), "now": emu.now()})
        elif path == "/_emulator/health":
            self._send_json(200, {"ok": True})
        else:
            self._send_error(RequestError(404, "not_found_error", f"Not found: {path}"), "")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/v1/messages":
                self._messages()
            elif path == "/v1/messages/count_tokens":
                self._count_tokens()
            elif path.startswith("/_emulator/"):
                self._admin(path)
            else:
                self._read_body()
                raise RequestError(404, "not_found_error", f"Not found: {path}")
        except RequestError as err:
            self._send_error(err, "")
        except (ConnectionError, ClientGone):
            self.close_connection = True

    # -- helpers --------------------------------------------------------------------------

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as err:
            raise invalid(f"Request body is not valid JSON: {err}") from None

    def _send_json(
        self, status: int, payload: Any, request_id: str = "", headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status, _REASONS.get(status))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if request_id:
            self.send_header("request-id", request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: RequestError, request_id: str) -> None:
        try:
            self._send_json(err.status, err.body(request_id), request_id, err.headers)
        except ConnectionError:
            self.close_connection = True

    def _check_api_key(self) -> None:
        if self.emu.config.require_api_key and not (
            self.headers.get("x-api-key") or self.headers.get("authorization")
        ):
            raise RequestError(401, "authentication_error", "x-api-key header is required")

    # -- endpoints ------------------------------------------------------------------------

    def _count_tokens(self) -> None:
        self._check_api_key()
        body = self._read_body()
        request = parse_messages_request(body, count_tokens=True)
        self._send_json(200, {"input_tokens": request.input_tokens})

    def _admin(self, path: str) -> None:
        body = self._read_body() or {}
        if not isinstance(body, dict):
            raise invalid("Request body must be a JSON object")
        emu = self.emu
        if path == "/_emulator/advance":
            seconds = body.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise invalid("seconds: Input should be a number >= 0")
            emu.advance(float(seconds))
            self._send_json(200, {"offset": emu.offset, "now": emu.now()})
        elif path == "/_emulator/config":
            try:
                emu.apply_config(body)
            except (TypeError, ValueError) as err:
                raise invalid(str(err)) from None
            self._send_json(200, emu.config_snapshot())
        elif path == "/_emulator/reset":
            emu.reset(clear_stats=bool(body.get("stats", False)))
            self._send_json(200, {"ok": True})
        else:
            raise RequestError(404, "not_found_error", f"Not found: {path}")

    def _messages(self) -> None:
        emu = self.emu
        started_at = emu.now()
        record = _new_record(*emu.next_ids(), started_at)
        request = self._parse_messages(record)
        if request is None:
            return
        fault = emu.take_fault(request.stream)
        if fault is not None:
            record["fault"] = fault.kind
        if fault is not None and fault.kind in ERROR_FAULTS:
            self._refuse(fault, record)
            return
        config = emu.config
        plan = emu.cache.plan(
            request,
            now=started_at,
            min_tokens=config.min_cacheable_for(request.model),
            lookback=config.lookback_positions,
        )
        words, reply_tokens = reply_pieces(
            request.seed_text, request.max_tokens, config.reply_tokens, config.reply_text
        )
        stop_reason = "max_tokens" if request.max_tokens < reply_tokens else "end_turn"
        record["usage"] = plan.usage(0 if request.stream else len(words))
        emu.record(record)
        if self._cut_short(fault, request, record):
            return
        if fault is None or fault.kind == "slow":
            # The cache entry exists once the response begins, not when the request arrives.
            emu.cache.commit(plan, started_at=started_at)
        if request.stream:
            self.stream_reply(
                request, plan, words, stop_reason, fault, record, config.tokens_per_second
            )
            return
        emu.finish_record(record, "ok")
        self._send_message(request, plan, words, stop_reason, record)

    def _parse_messages(self, record: dict[str, Any]) -> MessagesRequest | None:
        """The parsed request, or None once the refusal is recorded and sent."""
        emu = self.emu
        try:
            self._check_api_key()
            body = self._read_body()
            if isinstance(body, dict):
                record.update(
                    model=body.get("model"),
                    stream=body.get("stream") is True,
                    max_tokens=body.get("max_tokens"),
                )
            return parse_messages_request(body, max_breakpoints=emu.config.max_breakpoints)
        except RequestError as err:
            record.update(status=err.status, error=err.error_type, outcome="error")
            emu.record(record)
            self._send_error(err, record["request_id"])
            return None

    def _refuse(self, fault: Fault, record: dict[str, Any]) -> None:
        """An injected error fault: the error the real API would send, recorded."""
        error_type, message = ERROR_FAULTS[fault.kind]
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.kind == "rate_limit" else {}
        failure = RequestError(FAULT_KINDS[fault.kind], error_type, message, headers)
        record.update(status=failure.status, error=error_type, outcome="error")
        self.emu.record(record)
        self._send_error(failure, record["request_id"])

    def _cut_short(
        self, fault: Fault | None, request: MessagesRequest, record: dict[str, Any]
    ) -> bool:
        """True when a slow or drop fault ended the response before it began."""
        if (
            fault is not None
            and fault.kind == "slow"
            and self.client_gone(time.monotonic() + fault.delay)
        ):
            self.emu.finish_stream(record, "disconnected", 0, disconnected=True)
            self.close_connection = True
            return True
        if fault is not None and fault.kind == "drop" and not request.stream:
            self.emu.finish_stream(record, "dropped", 0, dropped=True)
            self.close_connection = True
            return True
        return False

    def _send_message(
        self,
        request: MessagesRequest,
        plan: CachePlan,
        words: list[str],
        stop_reason: str,
        record: dict[str, Any],
    ) -> None:
        self._send_json(
            200,
            message_body(
                record["message_id"], request.model, words, stop_reason, plan.usage(len(words))
            ),
            record["request_id"],
        )


def _new_record(request_id: str, message_id: str, started_at: float) -> dict[str, Any]:
    """The stats entry of one Messages request, updated in place as it proceeds."""
    return {
        "request_id": request_id,
        "message_id": message_id,
        "model": None,
        "stream": False,
        "max_tokens": None,
        "usage": None,
        "started_at": started_at,
        "status": 200,
        "error": None,
        "fault": None,
        "outcome": "in_progress",
        "deltas_sent": 0,
    }
