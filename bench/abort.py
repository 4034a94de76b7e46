"""Abort latency: a `close` frame sent while a reply streams, until (a) the model stream stopped —
the Anthropic emulator saw its client go away — and (b) `turn-aborted` reached the client.

On the local stack (real WebSocket and HTTP, the generate Lambda polling its abort flag in moto's
DynamoDB, the real SDK), emulator at 40 tokens/s with 300-token replies, so every close lands
mid-stream. Times: the client's monotonic clock at the send, the emulator's monotonic clock when
the stream closed (same machine, same CLOCK_MONOTONIC), the client's arrival time of the frame.

Reference (same run): the rest of the reply when nobody aborts — first delta to `turn-sealed`
of un-aborted turns — i.e. how long the stream (and its billing) would go on without the abort.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

from bench.client import User, connect_users
from bench.common import Report, loadavg, percentile
from bench.stack import LocalStack, run_on_stack
from devstack.probe import now_ms

NAME = "abort"
RUNS = 30
REFERENCE_RUNS = 2
USERS = 5  # turns are capped at 10 per user per minute
TARGET_P99_S = 1.0
TOKENS_PER_SECOND = 40
REPLY_TOKENS = 300


def _chat(frame: dict[str, object], event: str, turn_id: str) -> bool:
    return (
        frame.get("type") == "chat"
        and frame.get("event") == event
        and frame.get("turnId") == turn_id
    )


def _ended(frame: dict[str, object], turn_id: str) -> bool:
    return _chat(frame, "turn-aborted", turn_id) or _chat(frame, "turn-sealed", turn_id)


def run(stack: LocalStack | None = None, user_offset: int = 0) -> Report:
    return run_on_stack(NAME, USERS, _run, stack, user_offset)


def _latest_stream(stack: LocalStack, deadline_s: float = 3.0) -> tuple[str, float | None]:
    """The last streamed request the emulator saw, and when (monotonic) its stream closed."""
    end = time.monotonic() + deadline_s
    while True:
        stats = stack.emulator("/_emulator/stats")
        streams = [r for r in stats["requests"] if r.get("stream")]
        request_id = streams[-1]["request_id"] if streams else ""
        closed = stats["stream_closed_at"].get(request_id)
        if closed is not None or time.monotonic() > end:
            return streams[-1].get("outcome", "?") if streams else "?", closed
        time.sleep(0.05)


@dataclass
class _Measured:
    stopped: list[float] = field(default_factory=list)
    delivered: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    remaining: list[float] = field(default_factory=list)


def _run(stack: LocalStack, report: Report, user_offset: int) -> None:
    stack.configure_emulator(tokens_per_second=TOKENS_PER_SECOND, reply_tokens=REPLY_TOKENS)
    users = connect_users(stack.endpoints, stack.tokens, USERS, user_offset)
    conversations: dict[str, str] = {}
    for member in users:
        conversation_id = member.create(f"Abort benchmark for {member.name}.")
        member.subscribe(conversation_id, chat=True)
        conversations[member.name] = conversation_id
    print(
        f"  {RUNS} closes mid-stream at {TOKENS_PER_SECOND} tokens/s; load {loadavg()}", flush=True
    )
    measured = _Measured()
    for run_index in range(RUNS + REFERENCE_RUNS):
        user: User = users[run_index % len(users)]
        _one_run(stack, report, user, conversations[user.name], run_index, measured)
    for user in users:
        user.close()
    _report(report, measured)


def _one_run(
    stack: LocalStack,
    report: Report,
    user: User,
    conversation_id: str,
    run_index: int,
    measured: _Measured,
) -> None:
    """One turn closed at its first delta, or (the last REFERENCE_RUNS) left to seal."""
    socket = user.socket
    since = socket.mark()
    turn_id = user.turn(conversation_id, f"Tell me a long story, number {run_index}.")
    first = socket.wait(
        functools.partial(_chat, event="delta", turn_id=turn_id), 30, since, "first delta"
    )
    if run_index >= RUNS:  # reference: let it run to the end
        sealed = socket.wait(
            functools.partial(_chat, event="turn-sealed", turn_id=turn_id),
            60,
            since,
            "turn-sealed",
        )
        measured.remaining.append((sealed.at_ms - first.at_ms) / 1000)
        return
    sent_mono = time.monotonic()
    sent_ms = now_ms()
    socket.send({"type": "close", "conversationId": conversation_id})
    aborted = socket.wait(
        functools.partial(_ended, turn_id=turn_id),
        10,
        since,
        "turn-aborted",
    )
    if aborted.frame.get("event") != "turn-aborted":
        report.note(f"run {run_index}: the turn sealed instead of aborting")
        return
    measured.delivered.append((aborted.at_ms - sent_ms) / 1000)
    outcome, closed_at = _latest_stream(stack)
    measured.outcomes.append(outcome)
    if closed_at is not None:
        measured.stopped.append(closed_at - sent_mono)


def _report(report: Report, measured: _Measured) -> None:
    delivered, outcomes, remaining = measured.delivered, measured.outcomes, measured.remaining
    report.note(
        f"{len(delivered)} aborts; emulator outcomes: "
        + ", ".join(f"{o} x{outcomes.count(o)}" for o in sorted(set(outcomes)))
        + f"; load {loadavg()}"
    )
    reference = sum(remaining) / len(remaining) if remaining else None
    for label, values in (
        ("close → stream stopped", measured.stopped),
        ("close → turn-aborted delivered", delivered),
    ):
        for q in (50, 99):
            value = percentile(values, q) if values else None
            report.add(
                f"{label}, p{q}",
                value,
                "s",
                reference=reference,
                reference_label="rest of an un-aborted reply",
                target=f"p99 ≤ {TARGET_P99_S:g} s" if q == 99 else "",
                met=(value is not None and value <= TARGET_P99_S) if q == 99 else None,
            )
    report.add("aborts measured", len(delivered), target=">= 30", met=len(delivered) >= 30)
