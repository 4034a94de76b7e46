"""Driving the local stack like the front end does: one WebSocket and the HTTP API per user
(``devstack.probe``'s transports), and reading the warm timing back out of the pushed frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from devstack.probe import SYSTEM_PROMPT, Http, Received, Socket, timer

SURFACE = "cache-warming"


@dataclass(frozen=True)
class WarmSample:
    """One warm as a subscriber saw it: the promise and when the warm really started."""

    conversation_id: str
    announced_ms: int  # nextWarmAt pushed before the warm
    started_ms: int  # lastWarmAt pushed after it
    arrived_ms: int  # when the update reached this client

    @property
    def error_ms(self) -> int:
        return self.started_ms - self.announced_ms


class User:
    """One user of the stack: a token, an HTTP client and one socket subscribed to its
    conversations' surfaces."""

    def __init__(self, name: str, token: str, endpoints: dict[str, Any]) -> None:
        self.name = name
        self.http = Http(endpoints["httpUrl"], token, timeout_s=60)
        self.socket = Socket(endpoints["wsUrl"], token)
        self.conversations: list[str] = []
        self._lock = threading.Lock()

    def request(self, frame: dict[str, Any], timeout_s: float = 60.0) -> Received:
        with self._lock:  # probe.Socket numbers request ids without a lock
            since = self.socket.mark()
            self.socket._request_ids += 1
            request_id = f"bench-{self.socket._request_ids}"
            self.socket.send({**frame, "requestId": request_id})
        return self.socket.wait(
            lambda f: f.get("requestId") == request_id, timeout_s, since, frame["type"]
        )

    def create(self, system: str, **extra: Any) -> str:
        body = self.http.expect("POST", "/conversations", 201, {"system": system, **extra})
        conversation_id = str(body["conversationId"])
        self.conversations.append(conversation_id)
        return conversation_id

    def subscribe(self, conversation_id: str, *, chat: bool = False) -> None:
        self.request({"type": "subscribe", "surfaceId": SURFACE, "conversationId": conversation_id})
        if chat:
            self.request({"type": "chat.subscribe", "conversationId": conversation_id})

    def invoke(self, conversation_id: str, action: str, payload: Any) -> dict[str, Any]:
        reply = self.request(
            {
                "type": "invoke",
                "surfaceId": SURFACE,
                "conversationId": conversation_id,
                "action": f"cache-warming/{action}",
                "payload": payload,
            }
        )
        if reply.frame.get("type") == "error":
            raise RuntimeError(f"{action} refused: {reply.frame}")
        return reply.frame

    def turn(self, conversation_id: str, text: str) -> str:
        started = self.http.expect(
            "POST", f"/conversations/{conversation_id}/turns", 202, {"text": text}
        )
        return str(started["turnId"])

    def close(self) -> None:
        self.socket.close()


def connect_users(
    endpoints: dict[str, Any], tokens: dict[str, str], count: int, offset: int = 0
) -> list[User]:
    names = sorted(tokens, key=lambda n: int(n.rsplit("-", 1)[1]))[offset : offset + count]
    if len(names) < count:
        raise RuntimeError(f"the stack minted {len(names)} user tokens, {count} needed")
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda n: User(n, tokens[n], endpoints), names))


def system_prompt(tag: str) -> str:
    """The probe's realistic ~1,300-token system prompt, made unique per conversation (identical
    prefixes would share one cache entry and hide the per-conversation cost)."""
    return f"Conversation {tag}.\n\n{SYSTEM_PROMPT}"


def run_parallel(work: Iterable[Callable[[], Any]], workers: int = 8) -> list[Any]:
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(job) for job in work]
        return [future.result() for future in futures]


def warm_samples(users: Sequence[User], since_ms: int = 0) -> list[WarmSample]:
    """Every warm seen in the users' surface frames: a `lastWarmAt` that changed, paired with the
    `nextWarmAt` of the frame before it (the promise for that warm)."""
    samples = []
    for user in users:
        state: dict[str, tuple[int | None, int | None]] = {}
        for received in user.socket.frames_since(0):
            frame = received.frame
            if frame.get("type") not in ("surface", "update"):
                continue
            conversation_id = str(frame.get("conversationId"))
            next_at, last_at = timer(frame)
            announced, previous_last = state.get(conversation_id, (None, None))
            if (
                last_at is not None
                and last_at != previous_last
                and announced is not None
                and announced >= since_ms
            ):
                samples.append(WarmSample(conversation_id, announced, last_at, received.at_ms))
            state[conversation_id] = (next_at, last_at)
    return samples


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()
