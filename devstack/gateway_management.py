"""The gateway's management API: ``POST``/``GET``/``DELETE /@connections/{id}`` on its own
loopback HTTP port, answered with API Gateway's status codes and ``x-amzn-ErrorType`` headers
(sources in `devstack/gateway.py`'s docstring)."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from devstack.gateway_parts import GatewayLimits

log = logging.getLogger("devstack.gateway")

CONNECTIONS_MARKER = "/@connections/"


class Connections(Protocol):
    """What the management API needs of the gateway."""

    @property
    def limits(self) -> GatewayLimits: ...

    def post(self, connection_id: str, data: bytes) -> bool: ...

    def describe(self, connection_id: str) -> dict[str, Any] | None: ...

    def list_connections(self) -> list[dict[str, Any]]: ...

    def delete(self, connection_id: str) -> bool: ...


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ManagementHandler(BaseHTTPRequestHandler):
    """``/@connections/{id}``, with or without a stage prefix; ids may be URL-quoted."""

    gateway: Connections
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _connection_id(self) -> str | None:
        path = urlsplit(self.path).path
        marker = path.find(CONNECTIONS_MARKER)
        if marker < 0:
            return None
        connection_id = unquote(path[marker + len(CONNECTIONS_MARKER) :])
        return connection_id or None

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_POST(self) -> None:
        body = self._body()
        connection_id = self._connection_id()
        if connection_id is None:
            self._error(HTTPStatus.NOT_FOUND, "NotFoundException", "Not Found")
        elif len(body) > self.gateway.limits.max_message_bytes:
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PayloadTooLargeException", "Payload too large"
            )
        else:
            try:
                delivered = self.gateway.post(connection_id, body)
            except TimeoutError:
                self._error(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    "InternalServerErrorException",
                    "the client did not take the frame in time",
                )
                return
            if delivered:
                self._send(HTTPStatus.OK, b"")
            else:
                self._gone()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path.endswith(CONNECTIONS_MARKER.rstrip("/")):
            listed = {"connections": self.gateway.list_connections()}
            self._send(HTTPStatus.OK, json.dumps(listed).encode())
            return
        connection_id = self._connection_id()
        if connection_id is None:
            self._error(HTTPStatus.NOT_FOUND, "NotFoundException", "Not Found")
            return
        described = self.gateway.describe(connection_id)
        if described is None:
            self._gone()
        else:
            self._send(HTTPStatus.OK, json.dumps(described).encode())

    def do_DELETE(self) -> None:
        connection_id = self._connection_id()
        if connection_id is None:
            self._error(HTTPStatus.NOT_FOUND, "NotFoundException", "Not Found")
        elif self.gateway.delete(connection_id):
            self._send(HTTPStatus.NO_CONTENT, b"")
        else:
            self._gone()

    def _gone(self) -> None:
        self._error(HTTPStatus.GONE, "GoneException", "GoneException")

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": code})

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and status != HTTPStatus.NO_CONTENT:
            with contextlib.suppress(OSError):
                self.wfile.write(body)
