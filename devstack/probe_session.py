"""The probe's state and the steps its checks share: reporting a check, opening the panel,
invoking an action, starting a turn, reading the conversation, matching pushed frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devstack.probe_transport import Http, Received, Socket

SURFACE = "cache-warming"
DEFAULT_INTERVAL_S = 20
WARM_PROMISE_MS = 2_000  # the contract: a warm starts within 2 s after nextWarmAt
EARLY_TOLERANCE_MS = 250  # clock rounding between the warm's start and the announced target
ABORT_PROMISE_MS = 1_000


class ProbeSession:
    """What every check works with: the HTTP API, the socket in use, the conversation and the
    results so far."""

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

    def summary(self, elapsed_s: float) -> str:
        failed = sum(1 for _, ok, _ in self.results if not ok)
        return (
            f"{'ok' if self.passed else 'FAILED'}: {len(self.results) - failed} passed, "
            f"{failed} failed in {elapsed_s:.0f} s"
        )

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
