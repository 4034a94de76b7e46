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

The module holds the gateway's lifecycle and the management API's operations; the socket side is
`gateway_sockets.py`, the management API's HTTP handler `gateway_management.py`, the limits and
small records `gateway_parts.py`.

Devstack only (not AWS): ``GET /@connections`` on the management port lists the live
connections (id, ``connectedAt``, ``lastActiveAt``, identity), so tests can find the socket a
given client opened (by its ``User-Agent``) and drop it with ``DELETE``, as AWS's
``DeleteConnection`` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from devstack.gateway_management import ManagementHandler, QuietServer
from devstack.gateway_parts import (
    LIMIT_CLOSE_CODE,
    LIMIT_CLOSE_REASON,
    GatewayLimits,
    LiveSocket,
    iso,
    new_connection_id,
)
from devstack.gateway_sockets import Handler, SocketSide
from devstack.lambdas import DaemonThreadPool

# The gateway's public names, wherever each part lives.
__all__ = [
    "LIMIT_CLOSE_CODE",
    "LIMIT_CLOSE_REASON",
    "GatewayLimits",
    "Handler",
    "WebSocketGateway",
    "new_connection_id",
]

SEND_TIMEOUT_S = 10.0
HANDLER_WORKERS = 32


class WebSocketGateway(SocketSide):
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
        self._sockets: dict[str, LiveSocket] = {}
        self._pending: dict[ServerConnection, tuple[str, float]] = {}
        self._by_websocket: dict[ServerConnection, LiveSocket] = {}
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
        self._loop_thread = threading.Thread(
            target=self._run_loop, args=(started, failure), name="ws-gateway", daemon=True
        )
        self._loop_thread.start()
        if not started.wait(timeout_s):
            raise RuntimeError("the WebSocket gateway did not start in time")
        if failure:
            self._loop_thread = None
            raise failure[0]
        self._start_management()
        return self

    def _run_loop(self, started: threading.Event, failure: list[BaseException]) -> None:
        """The event loop's thread: bind the WebSocket port, tell `start`, serve until stopped."""
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

    def _start_management(self) -> None:
        handler = type("_BoundManagementHandler", (ManagementHandler,), {"gateway": self})
        try:
            self._http = QuietServer((self.host, self.management_port), handler)
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

    # --- management API (called from the HTTP server's threads) ----------------------------

    def _socket(self, connection_id: str) -> LiveSocket | None:
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
            "connectedAt": iso(socket.connected_at),
            "identity": {"sourceIp": socket.source_ip, "userAgent": socket.user_agent},
            "lastActiveAt": iso(socket.last_active_at),
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
