"""The probe's transports: the HTTP API with a bearer token and a WebSocket whose frames are
recorded with their arrival times, plus the frame readers every probe check uses."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class ProbeError(Exception):
    """A step could not go on (a missing frame, an HTTP error); fails the current check."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def field_value(frame: dict[str, Any], field_id: str) -> Any:
    """A surface field's value from a `surface` (spec.fields) or `update` (fields) frame."""
    fields = frame.get("fields") or frame.get("spec", {}).get("fields") or []
    for field in fields:
        if field.get("id") == field_id:
            return field.get("value")
    raise ProbeError(f"the {frame.get('type')} frame has no {field_id!r} field")


def timer(frame: dict[str, Any]) -> tuple[int | None, int | None]:
    """(nextWarmAt, lastWarmAt) of a surface/update frame."""
    value = field_value(frame, "timer") or {}
    return value.get("nextWarmAt"), value.get("lastWarmAt")


class Http:
    """The HTTP API with the bearer token; JSON in and out."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            raise ProbeError(f"{method} {path} failed: {error}") from error
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def expect(self, method: str, path: str, status: int, body: Any = None) -> Any:
        got, payload = self.call(method, path, body)
        if got != status:
            raise ProbeError(f"{method} {path} answered {got} (expected {status}): {payload}")
        return payload


@dataclass(frozen=True)
class Received:
    index: int
    at_ms: int
    frame: dict[str, Any]


class Socket:
    """A WebSocket whose frames are recorded, with their arrival times, by a reader thread."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.url = with_query(ws_url, token=token)
        self.frames: list[Received] = []
        self.closed = False
        self._condition = threading.Condition()
        self._request_ids = 0
        try:
            self.connection: ClientConnection = connect(self.url, open_timeout=10, close_timeout=5)
        except Exception as error:
            raise ProbeError(f"WebSocket connect to {ws_url} failed: {error}") from error
        self._reader = threading.Thread(target=self._read, name="probe-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self.connection:
                arrived = now_ms()
                try:
                    frame = json.loads(message)
                except ValueError:
                    frame = {"type": "unparseable", "raw": str(message)}
                with self._condition:
                    self.frames.append(Received(len(self.frames), arrived, frame))
                    self._condition.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._condition:
                self.closed = True
                self._condition.notify_all()

    def mark(self) -> int:
        """The index of the next frame to arrive: waits from here ignore older frames."""
        with self._condition:
            return len(self.frames)

    def send(self, frame: dict[str, Any]) -> int:
        """Send a frame; returns the send time (ms)."""
        sent = now_ms()
        try:
            self.connection.send(json.dumps(frame))
        except ConnectionClosed as error:
            raise ProbeError(f"the socket closed: {error}") from error
        return sent

    def wait(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float,
        since: int = 0,
        what: str = "a frame",
    ) -> Received:
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                for received in self.frames[since:]:
                    if predicate(received.frame):
                        return received
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProbeError(f"no {what} within {timeout_s:.1f} s")
                if self.closed:
                    raise ProbeError(f"the socket closed while waiting for {what}")
                self._condition.wait(min(remaining, 0.5))

    def frames_since(self, since: int) -> list[Received]:
        with self._condition:
            return list(self.frames[since:])

    def request(self, frame: dict[str, Any], timeout_s: float = 10.0) -> Received:
        """Send a frame with a fresh requestId and wait for the reply that echoes it."""
        self._request_ids += 1
        request_id = f"probe-{self._request_ids}"
        since = self.mark()
        self.send({**frame, "requestId": request_id})
        reply = self.wait(
            lambda f: f.get("requestId") == request_id,
            timeout_s,
            since,
            f"reply to {frame.get('type')} ({request_id})",
        )
        if reply.frame.get("type") == "error":
            raise ProbeError(f"{frame.get('type')} was refused: {reply.frame}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken socket is not a failure
            self.connection.close()
        self._reader.join(timeout=5)


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    path = parts.path or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))
