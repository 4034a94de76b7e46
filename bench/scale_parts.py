"""The scale benchmark's set-up (conversations warming at its interval, each with one sealed
turn) and its watchers (the stack's CPU and memory sampled from /proc; keep-alive pings)."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass

from bench.client import User, run_parallel, system_prompt, wait_until
from bench.stack import LocalStack, ProcSample, proc_sample
from devstack.probe import ProbeError

PER_USER = 5
INTERVAL_S = 60
SAMPLE_EVERY_S = 5.0


@dataclass(frozen=True)
class SetUp:
    conversations: int
    failures: int
    seconds: float
    cores: float  # the stack's CPU during set-up, in cores


def set_up(stack: LocalStack, users: list[User]) -> SetUp:
    """Every user's conversations prepared, and waited for until their turns sealed; the ones
    that never sealed are left out."""
    began = time.monotonic()
    setup_first = proc_sample(stack.pid)
    failures = sum(
        run_parallel(
            [functools.partial(_prepare, u, i * PER_USER) for i, u in enumerate(users)], workers=8
        )
    )
    progress = [-1, time.monotonic()]

    def all_sealed() -> bool:
        sealed = sum(1 for u in users if _sealed(u))
        if sealed != progress[0]:
            progress[:] = [sealed, time.monotonic()]
        # A turn whose seal failed in the stack never seals: stop waiting once nothing moves.
        return sealed == len(users) or time.monotonic() - progress[1] > 60

    wait_until(all_sealed, timeout_s=900, step_s=1)
    for user in users:
        if not _sealed(user):
            user.conversations = [c for c in user.conversations if _sealed_one(user, c)]
    conversations = sum(len(u.conversations) for u in users)
    setup_s = time.monotonic() - began
    setup_last = proc_sample(stack.pid)
    setup_cores = (setup_last.cpu_s - setup_first.cpu_s) / (setup_last.at - setup_first.at)
    return SetUp(conversations, failures, setup_s, setup_cores)


def _prepare(user: User, first: int) -> int:
    """Conversations with warming on and one turn each: the sealed turn books the first warm one
    interval later. Returns failures (a conversation whose set-up failed twice is left out: the
    local stack's moto answers some concurrent transactions with HTTP 500).

    Warming is enabled before the turn on purpose. Enabling it on conversations whose cache was
    last refreshed more than an interval ago books an immediate warm by direct invoke, and that
    tick can reach the warm function before the state write that armed it (see
    docs/performance.md): many would be lost, and this benchmark measures steady warming."""
    failures = 0
    for j in range(PER_USER):
        for attempt in range(2):
            created = None
            try:
                created = user.create(system_prompt(f"{user.name}-{j}-{attempt}"))
                user.subscribe(created)
                user.invoke(created, "set-interval", INTERVAL_S)
                user.invoke(created, "toggle", True)
                user.turn(created, f"Hello from conversation {first + j}.")
                break
            except (ProbeError, RuntimeError):
                failures += 1
                if created is not None:
                    user.conversations.remove(created)
    return failures


def _sealed_ids(user: User) -> set[str]:
    """Conversations of the user that pushed the update following their sealed turn."""
    done = set()
    for received in user.socket.frames_since(0):
        frame = received.frame
        if frame.get("type") == "update" and "requestId" not in frame:
            fields = {f.get("id"): f.get("value") for f in frame.get("fields", [])}
            if fields.get("last-cache-pct") is not None:
                done.add(str(frame.get("conversationId")))
    return done


def _sealed(user: User) -> bool:
    return _sealed_ids(user) >= set(user.conversations)


def _sealed_one(user: User, conversation_id: str) -> bool:
    return conversation_id in _sealed_ids(user)


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[ProcSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(proc_sample(self.pid))
            except OSError:
                return
            self._stop.wait(SAMPLE_EVERY_S)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class KeepAlive:
    """A ping from every user's socket every few minutes, as a front end does (the stack's gateway
    closes a socket after 10 minutes without a client message, as API Gateway does): a long
    set-up must not cost the subscribers their sockets."""

    EVERY_S = 240.0

    def __init__(self, users: list[User]) -> None:
        self.users = users
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keepalive", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.EVERY_S):
            for user in self.users:
                with contextlib.suppress(ProbeError, RuntimeError, OSError):
                    user.request({"type": "ping"}, timeout_s=10)

    def start(self) -> KeepAlive:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
