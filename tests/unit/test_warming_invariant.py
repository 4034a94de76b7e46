"""Nothing stops silently: a property test over random fault sequences at AWS's timings.

The real warm path (`TickBatch` -> `Ticks` -> the unit of work -> the policy) and the real timer
adapter (`PreciseTimer`: a tick and its backup per booking, requeues) run against a simulated SQS
standard queue (per-message delay, a visibility timeout of 360 s while a batch is in flight,
`ChangeMessageVisibility` for a failed tick, the DLQ after 5 receives, duplicate deliveries), a
store that throttles, loses write responses or dies mid-call, and a model that refuses warms.
After every delivery: a conversation whose panel says warming is on (`scheduled`, `warming`)
has a tick on its way for its current `(seq, target)`: in the queue (visible, delayed or in
flight) or, after five failed receives, in the DLQ an alarm watches; and every stop is a status
the panel shows, with its cause where it has one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.timer import PreciseTimer
from chalicelib.domain.timing import TIMINGS
from chalicelib.ports import ModelError, WriteOutcomeUnknown
from chalicelib.wire.ticks import TickRecord
from tests.fakes.ports import World, world
from tests.fakes.store import InMemoryStore
from tests.helpers import conversation_with_turn, invoke, subscribe

MAX_RECEIVES = 5  # the tick queue's redrive policy (infra/template.yaml)
VISIBILITY_MS = TIMINGS.warm_visibility_s * 1000
FAULTS = [
    "ok",
    "ok",
    "ok",
    "throttle",
    "lost",
    "crash",
    "refused",
    "duplicate",
    "early",
    "race",
    "user",
]
STOPS = {"off", "paused-idle", "cache-expired", "not-cacheable", "error", "closed"}
STOPS |= {"context-full", "budget-exhausted", "waiting-for-first-turn"}


class Killed(BaseException):
    """Lambda ending the invocation (its timeout, out of memory): no handler of ours runs."""


def throttled(operation: str) -> ClientError:
    error: Any = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}
    return ClientError(error, operation)


class Faults:
    """The sequence Hypothesis drew, one decision per fault point; "ok" once it runs out."""

    def __init__(self, decisions: list[str]) -> None:
        self._decisions: Iterator[str] = iter(decisions)
        self.active = False

    def next(self) -> str:
        return next(self._decisions, "ok") if self.active else "ok"


class FaultyStore(InMemoryStore):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults
        # Delivers what is due while a write is still on its way (botocore retrying it).
        self.race: Any = None

    def load(self, conversation_id: str, now_s: int) -> Any:
        fault = self.faults.next()
        if fault == "throttle":
            raise throttled("Query")
        if fault == "crash":
            raise Killed()
        return super().load(conversation_id, now_s)

    def save_conversation(self, *args: Any, **kwargs: Any) -> Any:
        fault = self.faults.next()
        if fault == "throttle":
            raise throttled("TransactWriteItems")
        if fault == "crash":
            raise Killed()
        if fault == "race" and self.race is not None:
            race, self.race = self.race, None  # one level: a delivery inside a delivery
            try:
                race()
            finally:
                self.race = race
        saved = super().save_conversation(*args, **kwargs)
        if fault == "lost":  # it landed; botocore never saw the answer
            raise WriteOutcomeUnknown(saved.id)
        return saved


@dataclass
class Message:
    id: str
    body: str
    visible_at: int
    receives: int = 0


@dataclass
class SimQueue:
    """An SQS standard queue, timed on the world's clock."""

    clock: Any
    messages: dict[str, Message] = field(default_factory=dict)
    dead: list[Message] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def send(self, payload: dict[str, Any], delay_s: int) -> None:
        message_id = f"m{next(self.ids)}"
        at = self.clock.now_ms() + delay_s * 1000
        self.messages[message_id] = Message(message_id, json.dumps(payload), at)

    def send_with_backup(self, payload: dict[str, Any], delay_s: int, backup_delay_s: int) -> None:
        self.send(payload, delay_s)
        self.send({**payload, "backup": True}, backup_delay_s)

    def retry_later(self, receipt: str, delay_s: int) -> None:
        if receipt in self.messages:
            self.messages[receipt].visible_at = self.clock.now_ms() + delay_s * 1000

    def receive(self, now: int) -> list[Message]:
        due = sorted(
            (m for m in self.messages.values() if m.visible_at <= now), key=lambda m: m.visible_at
        )
        batch = []
        for message in due[:10]:
            if message.receives >= MAX_RECEIVES:
                self.dead.append(self.messages.pop(message.id))
                continue
            message.receives += 1
            message.visible_at = now + VISIBILITY_MS
            batch.append(message)
        return batch


class SimScheduler:
    """EventBridge Scheduler's part for far targets (never reached at the 5-minute default)."""

    def __init__(self, queue: SimQueue) -> None:
        self.queue = queue

    def create_schedule(self, **schedule: Any) -> dict[str, str]:
        raise AssertionError("a 5-minute cache books every tick on the queue")

    def delete_schedule(self, **_: Any) -> dict[str, str]:
        return {}


def warming(faults: Faults) -> tuple[World, SimQueue, str]:
    store = FaultyStore(faults)
    w0 = world(store=store)
    queue = SimQueue(w0.clock)
    timer = PreciseTimer(
        lambda: SimScheduler(queue),  # type: ignore[arg-type,return-value]
        queue,
        group="g",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:ticks",
        role_arn="arn:aws:iam::123456789012:role/r",
    )
    w = world(store=store, timer=timer, clock=w0.clock)
    w.services.ports.tick_queue = queue
    conversation = conversation_with_turn(w, cacheRetention="5m")
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "toggle", True)
    return w, queue, conversation.id


def user_comes_back(w: World) -> None:
    """The user turned warming off, left for longer than the cache lives, and turns it on: a
    rebuild booked at once, whose tick can beat the write that books it (the "race" fault)."""
    conversation_id = w.store.list_conversations("alice")[0].id
    for wanted in (False, True):
        # A message handler that died: the user sees no answer and nothing was written.
        with contextlib.suppress(Killed):
            invoke(w, "ws1", conversation_id, "toggle", wanted)
        w.clock.advance(600 if not wanted else 0)


def deliver(w: World, queue: SimQueue, faults: Faults) -> None:
    """One poll of the event source mapping: a batch, its failures back on the queue."""
    delivery = faults.next()
    if delivery == "user":
        user_comes_back(w)
    if not queue.messages:
        return
    now = min(m.visible_at for m in queue.messages.values())
    if delivery == "early":
        now -= 900  # `DelaySeconds` rounds down: a tick may come up to a second early
    w.clock.now = max(w.clock.now, now)
    batch = queue.receive(max(now, min(m.visible_at for m in queue.messages.values())))
    if delivery == "duplicate" and batch:
        batch.append(batch[0])  # at-least-once: the same message twice in one batch
    refuse = faults.next() == "refused"
    if refuse:
        w.model.warm_errors.append(ModelError("overloaded", "529 overloaded_error"))
    records = [TickRecord(m.id, m.id, m.receives, m.body) for m in batch]
    try:
        outcome = w.services.handle_tick_batch(records, deadline_ms=w.clock.now + 60_000)
    except Killed:
        return  # the whole batch stays in flight for the visibility timeout
    finally:
        w.model.warm_errors.clear()
    for message in batch:
        if message.id not in outcome.failed:
            queue.messages.pop(message.id, None)


def due_now(queue: SimQueue, now: int) -> bool:
    return any(m.visible_at <= now for m in queue.messages.values())


def on_its_way(queue: SimQueue, seq: int, target: int | None) -> bool:
    def tick(message: Message) -> tuple[Any, Any]:
        body = json.loads(message.body)
        return body["seq"], body["target"]

    pending = [*queue.messages.values(), *queue.dead]
    return any(tick(message) == (seq, target) for message in pending)


def check(w: World, queue: SimQueue, conversation_id: str) -> None:
    state = w.store.get_conversation(conversation_id).warming  # type: ignore[union-attr]
    if state.enabled and state.status in ("scheduled", "warming"):
        assert on_its_way(queue, state.seq, state.next_warm_at), state
    else:
        assert state.status in STOPS, state
    if state.status == "error":
        assert state.last_error, state


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.sampled_from(FAULTS), min_size=10, max_size=80))
def test_warming_on_always_has_a_tick_on_its_way(decisions: list[str]) -> None:
    faults = Faults(decisions)
    w, queue, conversation_id = warming(faults)
    store: Any = w.store
    store.race = lambda: deliver(w, queue, faults) if due_now(queue, w.clock.now) else None
    faults.active = True
    horizon = w.clock.now + 3 * 3600 * 1000
    for _ in range(120):
        if not queue.messages or w.clock.now > horizon:
            break
        deliver(w, queue, faults)
        check(w, queue, conversation_id)
