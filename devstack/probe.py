"""An end-to-end probe of a running stack, driven like the front end drives it.

``python -m devstack.probe --endpoints .devstack/endpoints.json`` checks the local stack;
``--http-url/--ws-url/--token`` point it at a deployed stage instead. It uses only the public
surface (the WebSocket and HTTP API of ``docs/contract.md``), through the ``websockets`` sync client
and ``urllib``, so what it proves holds for any deployment, not just for this process.

Why these checks: they are the product's promises that unit tests cannot see — warming is off by
default; ``nextWarmAt`` is a promise kept to within 2 s; warming is server-side (it goes on with no
socket connected); a real turn re-arms the timer; an explicit close stops warming and aborts the
turn within a second; a mere disconnect stops nothing. Each check prints one line,
``PASS name: detail`` or ``FAIL name: detail``, with the measured timings; the exit code is 1 if
any check failed. A run takes about two minutes (three 20-second warm intervals, one interval with
no socket, three streamed turns).

The probe's conversation carries a realistic ~1,300-token system prompt, above the minimum
cacheable prefix of the default model (1,024 tokens for Sonnet), so warms read from the cache
against the real API too, not only against the emulator.
Timing checks compare server timestamps with this machine's clock: against a deployed stage they
also measure the clock skew between the two.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

SURFACE = "cache-warming"
DEFAULT_INTERVAL_S = 20
WARM_PROMISE_MS = 2_000  # the contract: a warm starts within 2 s after nextWarmAt
EARLY_TOLERANCE_MS = 250  # clock rounding between the warm's start and the announced target
ABORT_PROMISE_MS = 1_000

SYSTEM_PROMPT = """\
You are Aster, the assistant inside a team's internal knowledge and engineering workspace. You help \
software engineers, product managers and support staff with questions about code, architecture, \
operations and writing. Follow these guidelines in every reply.

Tone and format. Be direct and friendly. Lead with the answer, then the reasoning. Prefer short \
paragraphs and, where they help, numbered steps or a compact bullet list; avoid headings for \
answers shorter than a screen. Use Markdown code fences with a language tag for any code, command \
or configuration. Never pad an answer with restatements of the question or generic closing offers.

Accuracy. When you are not sure, say so and say what would settle it (a command to run, a log to \
read, a person or document to ask). Do not invent APIs, flags, file paths, version numbers or \
citations. When a question depends on a version, state which version your answer assumes. When \
the user's premise looks wrong, point it out politely before answering.

Code. Write code that would pass review on a careful team: clear names, small functions, explicit \
error handling at the boundaries, no dead code, no commented-out code. Match the language, style \
and libraries already visible in the conversation. Prefer the standard library when it is enough. \
Include types where the language supports them. When you change existing code, show only the \
changed parts with enough surrounding context to place them, unless the user asks for the whole \
file. Mention any migration, configuration change or deployment step the change requires. Point \
out security-relevant details: input validation, injection, secrets in logs, authorization checks, \
time-of-check to time-of-use races, unbounded resource use.

Debugging. Ask for the exact error message, the smallest input that reproduces it and what \
changed recently, if the user has not given them. Work from evidence: form a hypothesis, name the \
observation that would confirm or refute it, and suggest the cheapest experiment first. Prefer \
fixes of the cause over workarounds of the symptom, and say which one you are proposing.

Architecture. Lay out the options with their trade-offs in cost, latency, operability, failure \
modes and the team's familiarity, then recommend one and say why. Consider what happens under \
retries, duplicate delivery, partial failure, clock skew and concurrent writers. Call out limits \
and quotas of managed services that shape the design. Keep the first version simple and say what \
would justify the next step up in complexity.

Operations. For incidents, help the user stabilise first (mitigate, communicate), then diagnose, \
then prevent. Suggest concrete alarms with thresholds, dashboards with the few metrics that \
matter, and runbook steps written so that a tired person at night can follow them. Never suggest \
destructive commands (deleting data, force-pushing, dropping tables, disabling authentication) \
without a clear warning and a safer alternative.

Writing. For documents, emails and reviews, match the requested audience and length. Keep the \
author's voice when editing; explain substantive edits briefly. For review comments, separate \
blocking issues from suggestions and nits, and be specific about the change you are asking for.

Data and privacy. Treat anything that looks like a credential, token, personal data or customer \
data as sensitive: do not repeat it back unnecessarily, and remind the user to rotate a secret \
that was pasted into the conversation. Do not speculate about individual people.

Limits. You cannot browse the web, run code or see the user's systems; say so when it matters and \
tell the user exactly what to run and what to paste back. If a request is outside these \
guidelines or could cause harm, decline briefly and offer a safer way to reach the user's goal.

Conversation. Remember what the user told you earlier in the conversation and build on it; do not \
ask again for information already given. If the user changes the subject, follow them. When a \
request is ambiguous in a way that changes the answer substantially, ask one focused clarifying \
question; otherwise make a reasonable assumption, state it in one sentence, and answer.

Testing. Encourage tests that pin behaviour rather than implementation: a failing test first for \
a bug, property-based tests for parsers and state machines, contract tests shared by a fake and \
the real adapter so the fake cannot drift. Keep unit tests fast and free of the network and the \
clock; give integration tests their own markers. When a test is flaky, find the race or the \
hidden dependency on time or order instead of adding retries or sleeps.

Dependencies. Before suggesting a new library, check whether the standard library or something \
already in the project covers the need. When you do suggest one, name the exact package, say \
why it is preferable to the alternatives, and note its licence and maintenance status if they \
could matter. Pin versions in examples the user may copy into a lock file, and mention the \
upgrade path when a suggested version is close to its end of support.
"""

TURN_TEXTS = (
    "In two short paragraphs: what does a prompt cache keep, and why does warming it help?",
    "Give me three pitfalls of keeping a cache warm from the client side.",
    "Summarise our discussion so far as a short checklist.",
)


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


# --- transports ---------------------------------------------------------------------------


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


# --- the probe ----------------------------------------------------------------------------


class Probe:
    def __init__(
        self,
        http_url: str,
        ws_url: str,
        token: str,
        *,
        interval_s: int = DEFAULT_INTERVAL_S,
        warm_budget_ms: int = 3_000,
        turn_timeout_s: float = 120.0,
        out: Callable[[str], None] = print,
    ) -> None:
        self.http = Http(http_url, token)
        self.ws_url = ws_url
        self.token = token
        self.interval_s = interval_s
        self.warm_budget_ms = warm_budget_ms
        self.turn_timeout_s = turn_timeout_s
        self.out = out
        self.results: list[tuple[str, bool, str]] = []
        self.conversation_id = ""
        self.socket: Socket | None = None
        self.current = "setup"
        self.warm_errors_ms: list[int] = []

    # --- reporting -------------------------------------------------------------------

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.results.append((name, ok, detail))
        self.out(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
        return ok

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(ok for _, ok, _ in self.results)

    # --- helpers ---------------------------------------------------------------------

    def open_socket(self, *, chat: bool = True) -> tuple[Socket, Received]:
        socket = Socket(self.ws_url, self.token)
        self.socket = socket
        surface = socket.request(
            {"type": "subscribe", "surfaceId": SURFACE, "conversationId": self.conversation_id}
        )
        if chat:
            socket.request({"type": "chat.subscribe", "conversationId": self.conversation_id})
        return socket, surface

    def invoke(self, socket: Socket, action: str, payload: Any) -> Received:
        return socket.request(
            {
                "type": "invoke",
                "surfaceId": SURFACE,
                "conversationId": self.conversation_id,
                "action": action,
                "payload": payload,
            }
        )

    def start_turn(self, text: str) -> dict[str, Any]:
        path = f"/conversations/{self.conversation_id}/turns"
        started: dict[str, Any] = self.http.expect("POST", path, 202, {"text": text})
        return started

    def conversation(self) -> dict[str, Any]:
        detail: dict[str, Any] = self.http.expect(
            "GET", f"/conversations/{self.conversation_id}", 200
        )
        return detail

    def chat(self, event: str, turn_id: str) -> Callable[[dict[str, Any]], bool]:
        def matches(frame: dict[str, Any]) -> bool:
            return (
                frame.get("type") == "chat"
                and frame.get("conversationId") == self.conversation_id
                and frame.get("event") == event
                and frame.get("turnId") == turn_id
            )

        return matches

    def is_update(self, frame: dict[str, Any]) -> bool:
        return (
            frame.get("type") == "update"
            and frame.get("conversationId") == self.conversation_id
            and "requestId" not in frame
        )

    # --- the run ---------------------------------------------------------------------

    def run(self) -> bool:
        try:
            self._run()
        except ProbeError as error:
            self.check(self.current, False, str(error))
        except Exception as error:  # noqa: BLE001 - reported as a failed check, never a trace
            self.check(self.current, False, f"{type(error).__name__}: {error}")
        finally:
            self._cleanup()
        return self.passed

    def _run(self) -> None:
        self.current = "health"
        status, body = self.http.call("GET", "/health")
        self.check("health", status == 200 and body == {"status": "ok"}, f"{status} {body}")

        self.current = "create"
        created = self.http.expect(
            "POST",
            "/conversations",
            201,
            {"title": f"probe {time.strftime('%H:%M:%S')}", "system": SYSTEM_PROMPT},
        )
        self.conversation_id = str(created["conversationId"])

        self._default_off_and_echo()
        self._first_turn()
        announced, last = self._enable()
        announced, last = self._warms(announced, last)
        announced, last = self._warming_without_socket(announced, last)
        self._disconnect_mid_turn_and_rearm()
        self._close_during_turn()

    def _default_off_and_echo(self) -> None:
        self.current = "default-off"
        socket = Socket(self.ws_url, self.token)
        self.socket = socket
        subscribe = {
            "type": "subscribe",
            "surfaceId": SURFACE,
            "conversationId": self.conversation_id,
            "requestId": "probe-subscribe",
        }
        since = socket.mark()
        socket.send(subscribe)
        surface = socket.wait(lambda f: f.get("type") == "surface", 10, since, "surface").frame
        enabled = field_value(surface, "enabled")
        status = field_value(surface, "status")
        next_at, _ = timer(surface)
        self.check(
            "default-off",
            enabled is False and status == "off" and next_at is None,
            f"enabled {json.dumps(enabled)}, status {status}, nextWarmAt {json.dumps(next_at)}",
        )
        self.current = "echo"
        ack = socket.request({"type": "chat.subscribe", "conversationId": self.conversation_id})
        pong = socket.request({"type": "ping"})
        echoed = [
            (
                "surface",
                surface.get("conversationId") == self.conversation_id
                and surface.get("requestId") == "probe-subscribe",
            ),
            (
                "ack",
                ack.frame.get("type") == "ack"
                and ack.frame.get("conversationId") == self.conversation_id,
            ),
            ("pong", pong.frame.get("type") == "pong"),
        ]
        self.check(
            "echo",
            all(ok for _, ok in echoed),
            "conversationId and requestId echoed by "
            + ", ".join(f"{name}{'' if ok else ' (NOT)'}" for name, ok in echoed),
        )

    def _stream_turn(self, socket: Socket, text: str) -> tuple[str, list[Received], Received]:
        """Start a turn and wait for its seal; returns (turnId, its chat frames, the seal)."""
        since = socket.mark()
        turn_id = str(self.start_turn(text)["turnId"])
        sealed = socket.wait(
            lambda f: (
                self.chat("turn-sealed", turn_id)(f)
                or self.chat("turn-failed", turn_id)(f)
                or self.chat("turn-aborted", turn_id)(f)
            ),
            self.turn_timeout_s,
            since,
            f"end of turn {turn_id}",
        )
        frames = [
            r
            for r in socket.frames_since(since)
            if r.frame.get("type") == "chat" and r.frame.get("turnId") == turn_id
        ]
        return turn_id, frames, sealed

    def _first_turn(self) -> None:
        self.current = "first-turn"
        assert self.socket is not None
        started = now_ms()
        text = TURN_TEXTS[0]
        turn_id, frames, end = self._stream_turn(self.socket, text)
        events = [r.frame.get("event") for r in frames]
        deltas = "".join(r.frame.get("text", "") for r in frames if r.frame.get("event") == "delta")
        usage = end.frame.get("usage") or {}
        ok = (
            end.frame.get("event") == "turn-sealed"
            and bool(events)
            and events[0] == "turn-started"
            and frames[0].frame.get("userText") == text
            and events.count("delta") >= 1
            and deltas == end.frame.get("text")
            and "cache_creation_input_tokens" in usage
        )
        self.check(
            "first-turn",
            ok,
            f"{turn_id}: turn-started, {events.count('delta')} deltas, {end.frame.get('event')} "
            f"after {(end.at_ms - started) / 1000:.1f} s; {len(deltas)} chars; usage input "
            f"{usage.get('input_tokens')}, cache write {usage.get('cache_creation_input_tokens')}, "
            f"cache read {usage.get('cache_read_input_tokens')}",
        )

    def _enable(self) -> tuple[int, int | None]:
        self.current = "enable"
        assert self.socket is not None
        interval = self.invoke(self.socket, "cache-warming/set-interval", self.interval_s)
        enabled = self.invoke(self.socket, "cache-warming/toggle", True)
        next_at, last_at = timer(enabled.frame)
        status = field_value(enabled.frame, "status")
        ok = (
            field_value(interval.frame, "interval") == self.interval_s
            and field_value(enabled.frame, "enabled") is True
            and status == "scheduled"
            and next_at is not None
            and next_at > enabled.at_ms - EARLY_TOLERANCE_MS
        )
        self.check(
            "enable",
            ok,
            f"interval {field_value(interval.frame, 'interval')} s, enabled, status {status}, "
            f"first warm in {((next_at or 0) - enabled.at_ms) / 1000:.1f} s",
        )
        if next_at is None:
            raise ProbeError("no nextWarmAt after enabling")
        return next_at, last_at

    def _warms(self, announced: int, last: int | None, count: int = 3) -> tuple[int, int | None]:
        assert self.socket is not None
        socket = self.socket
        since = socket.mark()
        percents: list[Any] = []
        for number in range(1, count + 1):
            self.current = f"warm-{number}"
            previous = last

            def warmed(frame: dict[str, Any], previous: int | None = previous) -> bool:
                return self.is_update(frame) and timer(frame)[1] not in (None, previous)

            timeout = max(0.0, (announced - now_ms()) / 1000) + 10 + self.warm_budget_ms / 1000
            update = socket.wait(warmed, timeout, since, f"update after warm {number}")
            since = update.index + 1
            next_at, last_at = timer(update.frame)
            assert last_at is not None
            lateness = last_at - announced
            delivery = update.at_ms - announced
            latency = update.at_ms - last_at
            self.warm_errors_ms.append(lateness)
            status = field_value(update.frame, "status")
            ok = (
                -EARLY_TOLERANCE_MS <= lateness <= WARM_PROMISE_MS
                and delivery <= WARM_PROMISE_MS + self.warm_budget_ms
                and next_at is not None
                and next_at > update.at_ms
                and status == "scheduled"
            )
            self.check(
                f"warm-{number}",
                ok,
                f"warm started {lateness:+d} ms from the announced nextWarmAt; update arrived "
                f"{delivery:+d} ms after it (warm latency {latency} ms); next warm in "
                f"{((next_at or 0) - update.at_ms) / 1000:.1f} s ({status})",
            )
            percents.append(field_value(update.frame, "last-cache-pct"))
            if next_at is None:
                raise ProbeError("warming stopped")
            announced, last = next_at, last_at
        self.current = "warms-read-cache"
        later = percents[1:]
        self.check(
            "warms-read-cache",
            bool(later) and all(p == 100 for p in later),
            "last-cache-pct per warm: "
            + ", ".join(json.dumps(p) for p in percents)
            + " (every warm after the first must read the whole prefix)",
        )
        return announced, last

    def _warming_without_socket(self, announced: int, last: int | None) -> tuple[int, int | None]:
        self.current = "warm-without-socket"
        assert self.socket is not None
        self.socket.close()
        disconnected = now_ms()
        wake = announced + WARM_PROMISE_MS + self.warm_budget_ms
        time.sleep(max(0.0, min((wake - now_ms()) / 1000, self.interval_s + 30)))
        _, surface = self.open_socket()
        next_at, last_at = timer(surface.frame)
        lateness = None if last_at is None else last_at - announced
        ok = (
            last_at is not None
            and last_at != last
            and lateness is not None
            and -EARLY_TOLERANCE_MS <= lateness <= WARM_PROMISE_MS
            and next_at is not None
            and next_at > surface.at_ms
        )
        self.check(
            "warm-without-socket",
            ok,
            f"no socket for {(surface.at_ms - disconnected) / 1000:.1f} s; lastWarmAt advanced, "
            f"warm started {lateness if lateness is not None else '?'} ms from the nextWarmAt "
            f"announced before the disconnect; next warm in "
            f"{((next_at or 0) - surface.at_ms) / 1000:.1f} s",
        )
        if lateness is not None:
            self.warm_errors_ms.append(lateness)
        if next_at is None:
            raise ProbeError("warming stopped while no socket was connected")
        return next_at, last_at

    def _disconnect_mid_turn_and_rearm(self) -> None:
        self.current = "disconnect-keeps-turn"
        assert self.socket is not None
        socket = self.socket
        since = socket.mark()
        started = self.start_turn(TURN_TEXTS[1])
        turn_id, index = str(started["turnId"]), int(started["index"])
        socket.wait(self.chat("delta", turn_id), 30, since, f"first delta of {turn_id}")
        socket.close()
        closed_at = now_ms()
        deadline = time.monotonic() + self.turn_timeout_s
        turn: dict[str, Any] = {}
        detail: dict[str, Any] = {}
        while time.monotonic() < deadline:
            detail = self.conversation()
            turn = next((t for t in detail.get("turns", []) if t.get("index") == index), {})
            if turn.get("status") not in (None, "generating"):
                break
            time.sleep(0.5)
        self.check(
            "disconnect-keeps-turn",
            turn.get("status") == "sealed",
            f"socket closed after the first delta of {turn_id}; GET shows it "
            f"{turn.get('status')} {((turn.get('endedAt') or closed_at) - closed_at) / 1000:.1f} s "
            f"later",
        )
        self.current = "turn-rearms"
        warming = detail.get("warming", {})
        sealed_at = turn.get("endedAt")
        next_at = warming.get("nextWarmAt")
        if sealed_at is None or next_at is None:
            self.check(
                "turn-rearms",
                False,
                f"sealed at {sealed_at}, nextWarmAt {next_at}, status {warming.get('status')}",
            )
            return
        error = next_at - (sealed_at + self.interval_s * 1000)
        self.check(
            "turn-rearms",
            abs(error) <= WARM_PROMISE_MS and warming.get("status") == "scheduled",
            f"nextWarmAt = sealed + {(next_at - sealed_at) / 1000:.1f} s (error {error:+d} ms), "
            f"status {warming.get('status')}",
        )

    def _close_during_turn(self) -> None:
        self.current = "close-aborts-turn"
        socket, surface = self.open_socket()
        announced, _ = timer(surface.frame)
        before = self.conversation()["warming"]
        since = socket.mark()
        started = self.start_turn(TURN_TEXTS[2])
        turn_id = str(started["turnId"])
        socket.wait(self.chat("delta", turn_id), 30, since, f"first delta of {turn_id}")
        closed_at = socket.send(
            {"type": "close", "conversationId": self.conversation_id, "requestId": "probe-close"}
        )
        aborted = socket.wait(
            lambda f: self.chat("turn-aborted", turn_id)(f) or self.chat("turn-sealed", turn_id)(f),
            10,
            since,
            f"end of {turn_id}",
        )
        abort_ms = aborted.at_ms - closed_at
        ack = socket.wait(lambda f: f.get("requestId") == "probe-close", 10, since, "close ack")
        closed_update = socket.wait(
            lambda f: self.is_update(f) and field_value(f, "status") == "closed",
            10,
            since,
            "update with status closed",
        )
        # Watch long enough to see the warm that was announced before the close not happen.
        quiet_until = max(
            now_ms() + 3_000, (announced or 0) + WARM_PROMISE_MS + self.warm_budget_ms
        )
        time.sleep(max(0.0, min((quiet_until - now_ms()) / 1000, self.interval_s + 30)))
        frames = socket.frames_since(since)
        sealed = [r for r in frames if self.chat("turn-sealed", turn_id)(r.frame)]
        self.check(
            "close-aborts-turn",
            aborted.frame.get("event") == "turn-aborted"
            and aborted.frame.get("reason") == "closed"
            and abort_ms <= ABORT_PROMISE_MS
            and not sealed,
            f"{aborted.frame.get('event')} (reason {aborted.frame.get('reason')}) {abort_ms} ms "
            f"after the close frame; turn-sealed frames afterwards: {len(sealed)}",
        )
        self.current = "close-stops-warming"
        detail = self.conversation()
        warming = detail["warming"]
        turn: dict[str, Any] = next((t for t in detail["turns"] if t.get("turnId") == turn_id), {})
        warmed_after = [
            r
            for r in frames
            if r.index > closed_update.index
            and self.is_update(r.frame)
            and timer(r.frame)[1] != timer(closed_update.frame)[1]
        ]
        again_status, again = self.http.call("POST", f"/conversations/{self.conversation_id}/close")
        ok = (
            ack.frame.get("type") == "ack"
            and field_value(closed_update.frame, "enabled") is False
            and timer(closed_update.frame)[0] is None
            and warming.get("status") == "closed"
            and warming.get("enabled") is False
            and warming.get("nextWarmAt") is None
            and warming.get("warms") == before.get("warms")
            and not warmed_after
            and turn.get("status") == "aborted"
            and again_status == 200
            and isinstance(again, dict)
            and again.get("closed") is True
        )
        waited = (now_ms() - closed_at) / 1000
        self.check(
            "close-stops-warming",
            ok,
            f"ack + update: status closed, enabled false, nextWarmAt null; {waited:.1f} s later "
            f"(past the announced warm) warms still {warming.get('warms')}, GET status "
            f"{warming.get('status')}, turn {turn.get('status')}; HTTP close again: {again_status}",
        )

    def _cleanup(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.conversation_id:
            # Never leave a probe conversation warming (it costs money on a real stage).
            with contextlib.suppress(ProbeError):
                self.http.call("POST", f"/conversations/{self.conversation_id}/close")


def load_endpoints(path: Path) -> dict[str, Any]:
    try:
        endpoints: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise SystemExit(
            f"probe: {path} does not exist; is the stack running (make up)?"
        ) from error
    return endpoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.probe", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--endpoints",
        type=Path,
        default=None,
        help="endpoints JSON written by the stack (default .devstack/endpoints.json)",
    )
    parser.add_argument("--http-url")
    parser.add_argument("--ws-url")
    parser.add_argument("--token")
    parser.add_argument(
        "--interval",
        type=int,
        default=DEFAULT_INTERVAL_S,
        help="warm interval to test, seconds (default %(default)s)",
    )
    parser.add_argument(
        "--warm-budget-ms",
        type=int,
        default=3_000,
        help="allowed warm latency (request + push) on top of the 2 s promise",
    )
    parser.add_argument("--turn-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    endpoints: dict[str, Any] = {}
    if args.endpoints is not None or not (args.http_url and args.ws_url and args.token):
        endpoints = load_endpoints(args.endpoints or Path(".devstack/endpoints.json"))
    http_url = args.http_url or endpoints.get("httpUrl")
    ws_url = args.ws_url or endpoints.get("wsUrl")
    token = args.token or endpoints.get("token")
    if not (http_url and ws_url and token):
        parser.error("need --endpoints, or all of --http-url, --ws-url and --token")
    started = time.monotonic()
    probe = Probe(
        http_url,
        ws_url,
        token,
        interval_s=args.interval,
        warm_budget_ms=args.warm_budget_ms,
        turn_timeout_s=args.turn_timeout,
        out=lambda line: print(line, flush=True),
    )
    ok = probe.run()
    failed = sum(1 for _, passed, _ in probe.results if not passed)
    # The summary goes to stderr: stdout is exactly one line per check.
    print(
        f"{'ok' if ok else 'FAILED'}: {len(probe.results) - failed} passed, {failed} failed "
        f"in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
