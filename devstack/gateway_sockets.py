"""The gateway's socket side: each client connect, message and disconnect becomes the event
dict API Gateway hands the Lambda, run by the app's handler in a worker thread (the fidelity
notes are in `devstack/gateway.py`'s docstring)."""

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
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State

from devstack.gateway_parts import (
    LIMIT_CLOSE_CODE,
    LIMIT_CLOSE_REASON,
    GatewayLimits,
    LiveSocket,
    header_maps,
    new_connection_id,
    peer,
    request_time,
)
from devstack.lambdas import DaemonThreadPool, LambdaContext

log = logging.getLogger("devstack.gateway")

Handler = Callable[[dict[str, Any], Any], Any]


class SocketSide:
    """The WebSocket endpoint's events, over the state `WebSocketGateway` sets up."""

    handlers: dict[str, Handler]
    limits: GatewayLimits
    host: str
    ws_port: int
    stage: str
    api_id: str
    pool: DaemonThreadPool
    _sockets: dict[str, LiveSocket]
    _pending: dict[ServerConnection, tuple[str, float]]
    _by_websocket: dict[ServerConnection, LiveSocket]
    _lock: threading.Lock

    @property
    def domain_name(self) -> str:
        return f"{self.host}:{self.ws_port}"

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
            "requestTime": request_time(now),
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
        headers, multi_headers = header_maps(request.headers)
        source_ip = peer(websocket)
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
        socket = LiveSocket(
            connection_id, websocket, connected_at, peer(websocket), user_agent, connected_at
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

    async def _watchdog(self, socket: LiveSocket) -> None:
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

    async def _message(self, socket: LiveSocket, body: str) -> None:
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

    async def _disconnect(self, socket: LiveSocket, code: int, reason: str) -> None:
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
