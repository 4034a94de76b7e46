"""The probe's turn checks: default off and ids echoed, a streamed turn, a disconnect that keeps
the turn (and the seal that re-arms warming), a close that aborts the turn and stops warming."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from devstack.probe_session import (
    ABORT_PROMISE_MS,
    SURFACE,
    WARM_PROMISE_MS,
    ProbeSession,
)
from devstack.probe_text import TURN_TEXTS
from devstack.probe_transport import Received, Socket, field_value, now_ms, timer


class TurnChecks(ProbeSession):
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
        closed = self._close_mid_turn(socket, turn_id, since, announced)
        sealed = [r for r in closed.frames if self.chat("turn-sealed", turn_id)(r.frame)]
        abort_ms = closed.aborted.at_ms - closed.at_ms
        aborted = closed.aborted.frame
        self.check(
            "close-aborts-turn",
            aborted.get("event") == "turn-aborted"
            and aborted.get("reason") == "closed"
            and abort_ms <= ABORT_PROMISE_MS
            and not sealed,
            f"{aborted.get('event')} (reason {aborted.get('reason')}) {abort_ms} ms "
            f"after the close frame; turn-sealed frames afterwards: {len(sealed)}",
        )
        self.current = "close-stops-warming"
        self._check_close_stops_warming(closed, before)

    def _close_mid_turn(
        self, socket: Socket, turn_id: str, since: int, announced: int | None
    ) -> _Closed:
        """Send `close` while the turn streams, wait for its effects, then watch long enough to
        see the warm that was announced before the close not happen."""
        closed_at = socket.send(
            {"type": "close", "conversationId": self.conversation_id, "requestId": "probe-close"}
        )
        aborted = socket.wait(
            lambda f: self.chat("turn-aborted", turn_id)(f) or self.chat("turn-sealed", turn_id)(f),
            10,
            since,
            f"end of {turn_id}",
        )
        ack = socket.wait(lambda f: f.get("requestId") == "probe-close", 10, since, "close ack")
        closed_update = socket.wait(
            lambda f: self.is_update(f) and field_value(f, "status") == "closed",
            10,
            since,
            "update with status closed",
        )
        quiet_until = max(
            now_ms() + 3_000, (announced or 0) + WARM_PROMISE_MS + self.warm_budget_ms
        )
        time.sleep(max(0.0, min((quiet_until - now_ms()) / 1000, self.interval_s + 30)))
        frames = socket.frames_since(since)
        return _Closed(turn_id, closed_at, aborted, ack, closed_update, frames)

    def _check_close_stops_warming(self, closed: _Closed, before: dict[str, Any]) -> None:
        detail = self.conversation()
        warming = detail["warming"]
        turn: dict[str, Any] = next(
            (t for t in detail["turns"] if t.get("turnId") == closed.turn_id), {}
        )
        update = closed.update
        warmed_after = [
            r
            for r in closed.frames
            if r.index > update.index
            and self.is_update(r.frame)
            and timer(r.frame)[1] != timer(update.frame)[1]
        ]
        again_status, again = self.http.call("POST", f"/conversations/{self.conversation_id}/close")
        ok = (
            closed.ack.frame.get("type") == "ack"
            and field_value(update.frame, "enabled") is False
            and timer(update.frame)[0] is None
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
        waited = (now_ms() - closed.at_ms) / 1000
        self.check(
            "close-stops-warming",
            ok,
            f"ack + update: status closed, enabled false, nextWarmAt null; {waited:.1f} s later "
            f"(past the announced warm) warms still {warming.get('warms')}, GET status "
            f"{warming.get('status')}, turn {turn.get('status')}; HTTP close again: {again_status}",
        )


@dataclass(frozen=True)
class _Closed:
    """What a close sent mid-turn produced: its send time and the frames that answered it."""

    turn_id: str
    at_ms: int
    aborted: Received
    ack: Received
    update: Received
    frames: list[Received]
