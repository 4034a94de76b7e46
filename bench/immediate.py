"""Immediate warms: is a warm booked for *now* kept?

Enabling warming on a conversation whose cache was last refreshed more than one interval ago (but
is still alive) books a warm due at once, by a direct async invoke of the warm function. The
timer is armed before the state write that records it (docs/architecture.md, "Effects order"),
so the warm function can read the conversation before that write lands, see a tick it does not
know, and drop it as stale; nothing re-delivers a direct invoke, so the conversation then shows
`scheduled` with a `nextWarmAt` in the past and never warms again.

On the local stack: conversations with one sealed turn and a 20 s interval, warming off; after
the interval has passed, warming is switched on for all of them at once (8 at a time) and each is
watched for the warm it was promised. Reference: the conversations switched on. Target: every
promised warm happens.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from bench.client import User, connect_users, run_parallel, system_prompt, wait_until, warm_samples
from bench.common import Report, loadavg, percentile
from bench.stack import LocalStack, run_on_stack
from devstack.probe import timer

NAME = "immediate"
USERS = 6
PER_USER = 5
INTERVAL_S = 20
WATCH_S = 15.0


def _prepare(user: User) -> None:
    for j in range(PER_USER):
        conversation_id = user.create(system_prompt(f"{user.name}-immediate-{j}"))
        user.subscribe(conversation_id)
        user.invoke(conversation_id, "set-interval", INTERVAL_S)
        user.turn(conversation_id, f"Hello, immediate {j}.")


def _sealed(user: User) -> bool:
    done = set()
    for received in user.socket.frames_since(0):
        frame = received.frame
        if frame.get("type") == "update" and "requestId" not in frame:
            fields = {f.get("id"): f.get("value") for f in frame.get("fields", [])}
            if fields.get("last-cache-pct") is not None:
                done.add(frame.get("conversationId"))
    return done >= set(user.conversations)


def _enable(user: User) -> list[int]:
    """Warming on; returns the `nextWarmAt` each reply promised (ms)."""
    promised = []
    for conversation_id in user.conversations:
        reply = user.invoke(conversation_id, "toggle", True)
        next_at, _ = timer(reply)
        promised.append(next_at or 0)
    return promised


def run(stack: LocalStack | None = None, user_offset: int = 0) -> Report:
    return run_on_stack(NAME, USERS, _run, stack, user_offset)


def _run(stack: LocalStack, report: Report, user_offset: int) -> None:
    stack.configure_emulator(tokens_per_second=0, reply_tokens=20)
    users = connect_users(stack.endpoints, stack.tokens, USERS, user_offset)
    run_parallel([functools.partial(_prepare, u) for u in users], workers=8)
    wait_until(lambda: all(_sealed(u) for u in users), timeout_s=60, step_s=0.5)
    time.sleep(INTERVAL_S + 2)  # the cache is alive, but its last refresh is over an interval ago
    enabled_ms = int(time.time() * 1000)
    promised = [
        p
        for batch in run_parallel([functools.partial(_enable, u) for u in users], workers=8)
        for p in batch
    ]
    total = len(promised)
    time.sleep(WATCH_S)
    samples = warm_samples(users, enabled_ms - 1000)
    first: dict[str, Any] = {}
    for sample in samples:
        first.setdefault(sample.conversation_id, sample)
    kept = len(first)
    due_now = sum(1 for p in promised if p - enabled_ms < 5_000)
    # Off again, so the kept ones do not warm every 20 s under whatever runs next on the stack.
    run_parallel(
        [functools.partial(_disable_all, u) for u in users],
        workers=8,
    )
    for user in users:
        user.close()
    report.note(
        f"{total} conversations switched on ({due_now} with a warm due at once); load {loadavg()}"
    )
    report.add(
        "promised immediate warms that happened",
        kept,
        reference=total,
        reference_label="switched on",
        target="all",
        met=kept == total,
        note=f"{total - kept} lost: 'scheduled' with nextWarmAt in the past, no timer",
    )
    if first:
        errors = [s.error_ms / 1000 for s in first.values()]
        report.add("their start - announced nextWarmAt, p99", percentile(errors, 99), "s")


def _disable_all(user: Any) -> list[Any]:
    return [user.invoke(c, "toggle", False) for c in user.conversations]
