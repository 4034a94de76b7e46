"""A local API Gateway WebSocket API: the socket side and the management API side.

``chalice local`` has no WebSocket support, and the app must run unchanged, so this module plays
API Gateway's two roles:

* **WebSocket endpoint** (``websockets`` asyncio server): each client connect, message and
  disconnect becomes the same event dict API Gateway hands the Lambda (``requestContext`` with
  ``routeKey`` ``$connect``/``$default``/``$disconnect``, ``eventType``, ``connectionId``,
  ``domainName``, ``stage``, ``apiId``...; ``queryStringParameters`` and ``headers`` on connect;
  ``body`` on messages), passed to the Chalice handlers in ``app.handler_map`` — the wrapped
  handlers Lambda runs, not the raw functions. They do blocking I/O (DynamoDB, pushes), so they run
  in worker threads, never on the event loop. A connect handler answering a non-2xx ``statusCode``
  refuses the upgrade with that HTTP status (the app answers 401 for a bad token); one that raises
  refuses it with 500. Messages of one connection are handled one at a time, in order.
* **Management API** (``POST``/``GET``/``DELETE /@connections/{id}`` on its own loopback HTTP
  port, optionally behind a stage prefix such as ``/api``): what the app's
  ``apigatewaymanagementapi`` client talks to when ``WEBSOCKET_ENDPOINT`` points here. A closed or
  unknown connection answers 410 with ``x-amzn-ErrorType: GoneException`` and a
  ``{"message": "GoneException"}`` body, so botocore raises the same ``GoneException`` it raises
  against AWS.

Fidelity notes (limits are ``GatewayLimits``; AWS's values by default, shorter ones for tests):

* **Message size, client to server**: a message over 128 KB closes the socket with 1009 (the
  ``websockets`` server's ``max_size``). Source: AWS, "Quotas for configuring and running a
  WebSocket in API Gateway" (docs.aws.amazon.com/apigateway/latest/developerguide/
  apigateway-execution-service-websocket-limits-table.html), rows "Message payload size: 128 KB"
  and "WebSocket frame size: 32 KB" and footnote **: a larger message or frame closes the
  connection with code 1009. Read 2026-12-01. Not emulated: the separate 32 KB *frame* limit
  (``websockets`` checks the whole message only); browsers send every message as one frame, so
  on AWS a browser message over 32 KB is already fatal: clients must keep frames under 32 KB (the
  contract's ``frame_too_large`` limit; clients/js refuses to send one).
* **Message size, server to client**: a management-API ``POST`` whose body is over 128 KB is
  refused with HTTP 413, ``x-amzn-ErrorType: PayloadTooLargeException``, and nothing is sent,
  so botocore raises ``PayloadTooLargeException`` as against AWS. Sources: the quotas page above
  (the 128 KB quota "applies to @connections commands", footnote **); AWS's service model of
  the management API as shipped in botocore 1.44.8 (``apigatewaymanagementapi/2018-11-29/
  service-2.json``: ``Data`` blob ``max`` 131072; ``PayloadTooLargeException``
  ``httpStatusCode`` 413; ``GoneException`` 410). Read 2026-12-01. The error's message text is
  not documented: ours is made up.
* **Idle timeout** (10 minutes) and **connection duration** (2 hours): the quotas page above,
  rows "Idle Connection Timeout: 10 minutes" and "Connection duration for WebSocket API: 2 hours",
  read 2026-12-01. AWS documents neither the close code nor which messages count as activity.
  Chosen conservatively: only messages *from the client* reset the idle timer (a third-party
  report, hotsock.io/docs/connections/keep-alive, read 2026-12-01, observed that server pushes
  keep an AWS connection alive too, but a client that relied on that would break if it stopped
  being true, and our pushes are rare); protocol-level pings do not count either (a browser cannot
  send them). Both limits close with 1001 "Going away" (RFC 6455's code for an endpoint going
  away), and the app's ``$disconnect`` carries that code. A client must treat any close as
  "reconnect", whatever its code.
* **Binary frames** are refused with close code 1003. Source: AWS, "Binary media types for
  WebSocket APIs in API Gateway" (docs.aws.amazon.com/apigateway/latest/developerguide/
  websocket-api-develop-binary-media-types.html): "If a client app sends a binary frame, API
  Gateway rejects it and disconnects the client with code 1003." Read 2026-12-01.
* ``DELETE /@connections/{id}`` closes the socket with 1000 (the code is not documented).
* A message handler that raises makes the client receive API Gateway's
  ``{"message": "Internal server error", ...}`` frame.
* Not emulated: throttling (500 new connections per second, the management API's
  ``LimitExceededException``), the 29-second integration timeout.

Devstack only (not AWS): ``GET /@connections`` on the management port lists the live
connections (id, ``connectedAt``, ``lastActiveAt``, identity), so tests can find the socket a
given client opened (by its ``User-Agent``) and drop it with ``DELETE``, as AWS's
``DeleteConnection`` would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State

from devstack.lambdas import DaemonThreadPool, LambdaContext

log = logging.getLogger("devstack.gateway")

Handler = Callable[[dict[str, Any], Any], Any]

SEND_TIMEOUT_S = 10.0
HANDLER_WORKERS = 32
CONNECTIONS_MARKER = "/@connections/"


def new_connection_id() -> str:
    """A fresh id shaped like API Gateway's (e.g. ``L0SM9cOFvHcCIhw=``): 16 base64 characters.

    Like AWS's, it ends in ``=``, which botocore URL-quotes in management-API paths.
    ``+`` and ``/`` are avoided so ids stay easy to copy from logs into URLs.
    """
    raw = base64.b64encode(secrets.token_bytes(11)).decode()
    return raw.replace("+", "A").replace("/", "B")


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _request_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


@dataclass(frozen=True)
class GatewayLimits:
    """API Gateway's WebSocket limits (sources in the module docstring); tests shorten them."""

    idle_timeout_s: float = 600.0
    max_connection_s: float = 7200.0
    # Both directions: client messages and management-API posts.
    max_message_bytes: int = 128 * 1024

    def __post_init__(self) -> None:
        if self.idle_timeout_s <= 0 or self.max_connection_s <= 0 or self.max_message_bytes < 1:
            raise ValueError("gateway limits must be positive")

    def as_dict(self) -> dict[str, float | int]:
        return {
            "idleTimeoutSeconds": self.idle_timeout_s,
            "maxConnectionSeconds": self.max_connection_s,
            "maxMessageBytes": self.max_message_bytes,
        }


# Undocumented by AWS (see the module docstring): RFC 6455's "going away".
LIMIT_CLOSE_CODE = CloseCode.GOING_AWAY
LIMIT_CLOSE_REASON = "Going away"


@dataclass
class _Socket:
    """One live connection, as the gateway tracks it."""

    connection_id: str
    websocket: ServerConnection
    connected_at: float
    source_ip: str
    user_agent: str
    # The last message *from the client* (what the idle timeout counts, and GetConnection's
    # lastActiveAt).
    last_active_at: float = field(default_factory=time.time)


class WebSocketGateway:
    """API Gateway's WebSocket endpoint and management API, on loopback.

    ``handlers`` maps ``connect``/``message``/``disconnect`` to Lambda-style ``(event, context)``
    callables, normally ``app.handler_map``'s entries.
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        host: str = "127.0.0.1",
        ws_port: int = 0,
        management_port: int = 0,
        *,
        stage: str = "api",
        api_id: str = "local",
        limits: GatewayLimits | None = None,
    ) -> None:
        self.handlers = dict(handlers)
        self.limits = limits or GatewayLimits()
        self.host = host
        self.ws_port = ws_port
        self.management_port = management_port
        self.stage = stage
        self.api_id = api_id
        self.pool = DaemonThreadPool(HANDLER_WORKERS, "ws-handler")
        self._sockets: dict[str, _Socket] = {}
        self._pending: dict[ServerConnection, tuple[str, float]] = {}
        self._by_websocket: dict[ServerConnection, _Socket] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._loop_thread: threading.Thread | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # --- addresses -------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    @property
    def management_url(self) -> str:
        """What ``WEBSOCKET_ENDPOINT`` should be: like AWS's, it ends with the stage."""
        return f"http://{self.host}:{self.management_port}/{self.stage}"

    @property
    def domain_name(self) -> str:
        return f"{self.host}:{self.ws_port}"

    def connection_ids(self) -> list[str]:
        with self._lock:
            return list(self._sockets)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> WebSocketGateway:
        """Bind both ports and serve in background threads; raises if a port cannot be bound."""
        if self._loop_thread is not None:
            return self
        started = threading.Event()
        failure: list[BaseException] = []

        def run_loop() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(self._serve())
                self.ws_port = self._server.sockets[0].getsockname()[1]
            except BaseException as error:  # noqa: BLE001 - re-raised by start()
                failure.append(error)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop_thread = threading.Thread(target=run_loop, name="ws-gateway", daemon=True)
        self._loop_thread.start()
        if not started.wait(timeout_s):
            raise RuntimeError("the WebSocket gateway did not start in time")
        if failure:
            self._loop_thread = None
            raise failure[0]
        handler = type("_BoundManagementHandler", (_ManagementHandler,), {"gateway": self})
        try:
            self._http = _QuietServer((self.host, self.management_port), handler)
        except OSError:
            self.stop()
            raise
        self.management_port = self._http.server_address[1]
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="ws-management-api",
            daemon=True,
        )
        self._http_thread.start()
        return self

    async def _serve(self) -> Server:
        return await serve(
            self._connection,
            self.host,
            self.ws_port,
            process_request=self._process_request,
            process_response=self._accepted,
            max_size=self.limits.max_message_bytes,
            server_header="devstack-apigateway",
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close every socket (each gets its ``$disconnect``), then stop both servers."""
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None
        loop, server = self._loop, self._server
        if loop is not None and server is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._close(server, timeout_s), loop)
            with contextlib.suppress(Exception):
                future.result(timeout=timeout_s + 2)
            loop.call_soon_threadsafe(loop.stop)
        if self._loop_thread is not None:
            self._loop_thread.join(timeout=5)
            self._loop_thread = None
        self._server = None
        self._loop = None
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _close(self, server: Server, timeout_s: float) -> None:
        server.close()  # closes every connection with 1001 (going away)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout_s)

    # --- events ----------------------------------------------------------------------------

    def _context(
        self,
        route: str,
        connection_id: str,
        event_type: str,
        now: float,
        connected_at: float,
        source_ip: str,
        user_agent: str,
    ) -> dict[str, Any]:
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": int(connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "requestId": uuid.uuid4().hex[:16],
            "domainName": self.domain_name,
            "connectionId": connection_id,
            "apiId": self.api_id,
        }

    async def _call(self, name: str, event: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        handler = self.handlers[name]
        context = LambdaContext(f"websocket_{name}", 29)
        return await loop.run_in_executor(self.pool, handler, event, context)

    async def _process_request(
        self, websocket: ServerConnection, request: Request
    ) -> Response | None:
        """``$connect``: the handler decides whether the upgrade goes through."""
        now = time.time()
        connection_id = new_connection_id()
        parts = urlsplit(request.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for key, value in pairs:
            query[key] = value
            multi_query.setdefault(key, []).append(value)
        headers, multi_headers = _header_maps(request.headers)
        source_ip = _peer(websocket)
        user_agent = request.headers.get("User-Agent", "")
        event: dict[str, Any] = {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "requestContext": self._context(
                "$connect", connection_id, "CONNECT", now, now, source_ip, user_agent
            ),
            "isBase64Encoded": False,
        }
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = multi_query
        try:
            result = await self._call("connect", event)
        except Exception:
            log.exception("$connect handler failed")
            return websocket.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error\n")
        status = int((result or {}).get("statusCode", 200)) if isinstance(result, dict) else 200
        if not 200 <= status < 300:
            status = status if 400 <= status < 600 else HTTPStatus.UNAUTHORIZED
            text = "Unauthorized\n" if status == HTTPStatus.UNAUTHORIZED else "Forbidden\n"
            return websocket.respond(status, text)
        with self._lock:
            self._pending[websocket] = (connection_id, now)
        return None

    def _accepted(self, websocket: ServerConnection, request: Request, response: Response) -> None:
        """Register the socket as the 101 goes out: on AWS, once the client sees the connection
        open, GetConnection and PostToConnection find it. Synchronous on purpose: websockets
        sends the response right after this hook without yielding (websockets 17.4,
        `asyncio/server.py`, `ServerConnection.handshake`), so no other task can see the socket
        open but unknown (the per-socket task below may start later on a busy loop)."""
        with self._lock:
            pending = self._pending.pop(websocket, None)
        if pending is None or response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            return
        connection_id, connected_at = pending
        user_agent = request.headers.get("User-Agent", "")
        socket = _Socket(
            connection_id, websocket, connected_at, _peer(websocket), user_agent, connected_at
        )
        with self._lock:
            self._sockets[connection_id] = socket
            self._by_websocket[websocket] = socket

    async def _connection(self, websocket: ServerConnection) -> None:
        with self._lock:
            socket = self._by_websocket.pop(websocket)
        connection_id = socket.connection_id
        watchdog = asyncio.get_running_loop().create_task(self._watchdog(socket))
        code: int = CloseCode.NORMAL_CLOSURE
        reason = ""
        try:
            while True:
                try:
                    message = await websocket.recv()
                except ConnectionClosed as closed:
                    # Whoever closed first: our close (a limit, DELETE, max_size) or the client's.
                    frame = closed.sent if closed.rcvd_then_sent is False else closed.rcvd
                    frame = frame or closed.rcvd or closed.sent
                    if frame is not None:
                        code, reason = frame.code, frame.reason
                    else:
                        code = CloseCode.ABNORMAL_CLOSURE
                    break
                socket.last_active_at = time.time()
                if isinstance(message, bytes):
                    code, reason = CloseCode.UNSUPPORTED_DATA, "binary frames are not supported"
                    await websocket.close(code, reason)
                    break
                await self._message(socket, message)
        finally:
            watchdog.cancel()
            with self._lock:
                self._sockets.pop(connection_id, None)
            await self._disconnect(socket, int(code), reason)

    async def _watchdog(self, socket: _Socket) -> None:
        """Close the socket at the idle timeout or the end of its lifetime, whichever is first."""
        limits = self.limits
        while socket.websocket.state is State.OPEN:
            idle_at = socket.last_active_at + limits.idle_timeout_s
            expires_at = socket.connected_at + limits.max_connection_s
            now = time.time()
            if now >= min(idle_at, expires_at):
                cause = "idle timeout" if idle_at <= expires_at else "connection duration"
                log.info("closing %s: %s", socket.connection_id, cause)
                with contextlib.suppress(Exception):
                    await socket.websocket.close(LIMIT_CLOSE_CODE, LIMIT_CLOSE_REASON)
                return
            await asyncio.sleep(min(idle_at, expires_at) - now)

    async def _message(self, socket: _Socket, body: str) -> None:
        now = time.time()
        context = self._context(
            "$default",
            socket.connection_id,
            "MESSAGE",
            now,
            socket.connected_at,
            socket.source_ip,
            socket.user_agent,
        )
        context["messageId"] = base64.b64encode(secrets.token_bytes(11)).decode()
        event = {"requestContext": context, "body": body, "isBase64Encoded": False}
        try:
            await self._call("message", event)
        except Exception:
            log.exception("$default handler failed")
            # What API Gateway tells the client when the integration fails.
            error = {
                "message": "Internal server error",
                "connectionId": socket.connection_id,
                "requestId": context["requestId"],
            }
            with contextlib.suppress(ConnectionClosed):
                await socket.websocket.send(json.dumps(error))

    async def _disconnect(self, socket: _Socket, code: int, reason: str) -> None:
        now = time.time()
        context = self._context(
            "$disconnect",
            socket.connection_id,
            "DISCONNECT",
            now,
            socket.connected_at,
            socket.source_ip,
            socket.user_agent,
        )
        context["disconnectStatusCode"] = code
        context["disconnectReason"] = reason
        event = {
            "headers": {"Host": self.domain_name},
            "multiValueHeaders": {"Host": [self.domain_name]},
            "requestContext": context,
            "isBase64Encoded": False,
        }
        try:
            await self._call("disconnect", event)
        except Exception:
            log.exception("$disconnect handler failed")

    # --- management API (called from the HTTP server's threads) ----------------------------

    def _socket(self, connection_id: str) -> _Socket | None:
        with self._lock:
            socket = self._sockets.get(connection_id)
        if socket is None or socket.websocket.state is not State.OPEN:
            return None
        return socket

    def post(self, connection_id: str, data: bytes) -> bool:
        """Send one frame; False when the connection is gone (closed, closing or unknown)."""
        socket = self._socket(connection_id)
        loop = self._loop
        if socket is None or loop is None:
            return False
        try:
            message: str | bytes = data.decode()
        except UnicodeDecodeError:
            message = data
        future = asyncio.run_coroutine_threadsafe(socket.websocket.send(message), loop)
        try:
            future.result(timeout=SEND_TIMEOUT_S)
        except ConnectionClosed:
            return False
        except TimeoutError:
            future.cancel()
            raise
        return True

    def describe(self, connection_id: str) -> dict[str, Any] | None:
        socket = self._socket(connection_id)
        if socket is None:
            return None
        # The wire names are camelCase (botocore maps them to ConnectedAt, Identity...).
        return {
            "connectedAt": _iso(socket.connected_at),
            "identity": {"sourceIp": socket.source_ip, "userAgent": socket.user_agent},
            "lastActiveAt": _iso(socket.last_active_at),
        }

    def list_connections(self) -> list[dict[str, Any]]:
        """Devstack only: every live connection, described as ``describe`` does."""
        with self._lock:
            ids = list(self._sockets)
        listed = []
        for connection_id in ids:
            described = self.describe(connection_id)
            if described is not None:
                listed.append({"connectionId": connection_id, **described})
        return listed

    def delete(self, connection_id: str) -> bool:
        socket = self._socket(connection_id)
        loop = self._loop
        if socket is None or loop is None:
            return False
        future = asyncio.run_coroutine_threadsafe(socket.websocket.close(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout=SEND_TIMEOUT_S)
        return True


def _header_maps(headers: Headers) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers.raw_items():
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _peer(websocket: ServerConnection) -> str:
    address = websocket.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "127.0.0.1"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _ManagementHandler(BaseHTTPRequestHandler):
    """``/@connections/{id}``, with or without a stage prefix; ids may be URL-quoted."""

    gateway: WebSocketGateway
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
