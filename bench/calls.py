"""AWS calls per operation, counted with botocore `before-call` hooks on the app's own clients
under moto (`tests.moto_stack.build()`: the real DynamoDB, Scheduler, SQS and management-API
adapters, Chalice's handlers, a fake model). Lambda async invokes go through a recording invoker
(moto's Lambda needs Docker) and are counted from its record. The timer runs with its production
split here (SQS's 900 s): the calls of a warm on each tick path are counted, and so is the extra
invocation a Scheduler delivery costs (the tick put back on the queue with its remaining delay).
The event source mapping's own ReceiveMessage/DeleteMessage calls are Lambda's, not the app's,
and are not counted here (docs/performance.md prices them).

Besides the count, each DynamoDB call's size is read off the wire to estimate the capacity units
AWS would bill (writes per started 1 KB of request body, twice that inside a transaction; reads
per started 4 KB of response, half that when not strongly consistent): the item sizes, not the
call count, drive a warm's DynamoDB cost once the conversation is long. A warm is measured at
three sizes side by side (a ~1 KB conversation, a ~20k-token one, one with the largest system
prompt the contract allows). The estimate is from the JSON on the wire (a few % above DynamoDB's item
size), good enough to see which way it goes.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.common import Report

NAME = "calls"
TARGET_WARM_CALLS = 4
# The 20k-token conversation used for capacity units: a 2k-token system prompt and 18k tokens
# of history (the emulator's and our estimate: 4 characters a token).
LONG_SYSTEM_CHARS = 8_000
LONG_TURNS = 6
LONG_TURN_CHARS = 12_000
# The largest system prompt the contract allows: MAX_SYSTEM_BYTES counts it JSON-encoded, so
# its two quotes too (ASCII: one byte a character).
BIG_SYSTEM_CHARS = 200 * 1024 - 2


@dataclass
class Tally:
    calls: list[str] = field(default_factory=list)
    write_units: int = 0
    read_units: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(self.calls)

    def aws(self) -> int:
        return sum(1 for c in self.calls if c != "PostToConnection")

    def posts(self) -> int:
        return sum(1 for c in self.calls if c == "PostToConnection")

    def summary(self) -> str:
        return ", ".join(
            f"{name} x{n}"
            for name, n in sorted(self.counts().items())
            if name != "PostToConnection"
        )


class Counting:
    """Hooks on the app's clients; `measure()` returns the calls of one block."""

    def __init__(self, services: Any, invoker: Any) -> None:
        self.invoker = invoker
        self.current: Tally | None = None
        self._consistent = True
        clients = (
            services.store.client,
            services.timer.scheduler,
            services.timer.queue.client,
            services.sockets.client,
        )
        for client in clients:
            client.meta.events.register("before-call.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)

    def _before(self, model: Any, params: Any = None, **_: Any) -> None:
        if self.current is None:
            return
        self.current.calls.append(model.name)
        body = (params or {}).get("body") or b""
        if model.name in ("Query", "GetItem"):
            self._consistent = bool(json.loads(body or b"{}").get("ConsistentRead"))
        if model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.current.write_units += max(1, math.ceil(len(body) / 1024))
        elif model.name in ("TransactWriteItems", "BatchWriteItem"):
            # Per item; transactions bill double. Approximated from the whole body.
            factor = 2 if model.name == "TransactWriteItems" else 1
            request = json.loads(body or b"{}")
            items = request.get("TransactItems") or [
                r for reqs in request.get("RequestItems", {}).values() for r in reqs
            ]
            for item in items:
                size = len(json.dumps(item))
                self.current.write_units += factor * max(1, math.ceil(size / 1024))

    def _after(self, model: Any, http_response: Any = None, **_: Any) -> None:
        if self.current is None or http_response is None:
            return
        if model.name in ("Query", "GetItem"):
            size = len(http_response.content or b"")
            units = max(1, math.ceil(size / 4096))
            self.current.read_units += units if self._consistent else units / 2

    @contextmanager
    def measure(self) -> Iterator[Tally]:
        tally = Tally()
        before = len(self.invoker.calls)
        self.current = tally
        try:
            yield tally
        finally:
            self.current = None
            tally.calls += ["Invoke"] * (len(self.invoker.calls) - before)


@contextmanager
def moto_world() -> Iterator[Any]:
    import moto

    import tests.conftest  # noqa: F401 - fake credentials and the shared session, before moto use
    from chalicelib import bootstrap
    from tests.moto_stack import ENV, build

    saved = {name: os.environ.get(name) for name in ENV}
    os.environ.update(ENV)
    try:
        with moto.mock_aws():
            bootstrap.reset()
            yield build()
    finally:
        bootstrap.reset()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run() -> Report:
    report = Report(NAME)
    with moto_world() as stack:
        _run(stack, report)
    return report


def _run(stack: Any, report: Report) -> None:
    from chalicelib.adapters.timer import QUEUE_MAX_DELAY_MS
    from tests.moto_stack import ENV

    owner = "alice"
    stack.services.timer.queue_max_delay_ms = QUEUE_MAX_DELAY_MS  # production split
    counting = Counting(stack.services, stack.invoker)
    headers = stack.headers(owner)

    def create(system: str | None = None) -> str:
        body = {"system": system} if system else {}
        response = stack.http.http.post("/conversations", headers=headers, body=json.dumps(body))
        assert response.status_code == 201, response.body
        return str(response.json_body["conversationId"])

    def start_turn(conversation_id: str, text: str) -> int:
        response = stack.http.http.post(
            f"/conversations/{conversation_id}/turns",
            headers=headers,
            body=json.dumps({"text": text}),
        )
        assert response.status_code == 202, response.body
        return int(response.json_body["index"])

    def generate(conversation_id: str, index: int) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools' EMF lines
            result = stack.http.lambda_.invoke(
                "generate", {"conversationId": conversation_id, "turnIndex": index}
            )
        assert result.payload == {"status": "sealed"}, result.payload

    def frame(connection_id: str, **fields: Any) -> None:
        stack.send(connection_id, fields)

    def invoke(connection_id: str, conversation_id: str, action: str, payload: Any) -> None:
        frame(
            connection_id,
            type="invoke",
            surfaceId="cache-warming",
            conversationId=conversation_id,
            action=f"cache-warming/{action}",
            payload=payload,
        )

    def due_warm(conversation_id: str, at_target: bool = True) -> dict[str, Any]:
        """The booked tick's payload (its schedule deleted as Scheduler does after firing, or its
        queued message taken), with the clock at its target, when the queue delivers it."""
        schedules = stack.live_schedules(conversation_id)
        if schedules:
            (schedule,) = schedules
            name = schedule["Name"]
            stack.scheduler.delete_schedule(Name=name, GroupName=ENV["SCHEDULE_GROUP"])
            payload: dict[str, Any] = json.loads(schedule["Target"]["Input"])
        else:
            sent = [s for s in stack.queue.sent if s.payload["conversationId"] == conversation_id]
            stack.queue.sent.remove(sent[-1])
            payload = sent[-1].payload
        if at_target:
            stack.clock.now = max(stack.clock.now, payload["target"])
        return payload

    def warm(payload: dict[str, Any], expected: str = "warmed") -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            result = stack.http.lambda_.invoke("warm", payload)
        assert result.payload == {"action": expected}, result.payload

    rows: list[tuple[str, Tally, str]] = []

    def record(operation: str, tally: Tally, note: str = "") -> None:
        rows.append((operation, tally, note))
        print(
            f"  {operation}: {tally.aws()} AWS calls ({tally.summary()}) + {tally.posts()} posts"
            f"; ≈{tally.write_units} WRU, {tally.read_units:g} RRU",
            flush=True,
        )

    cid = create()
    with counting.measure() as tally:
        assert stack.connect("ws-0", stack.token(owner))["statusCode"] == 200
    record("connect ($connect)", tally)
    with counting.measure() as tally:
        frame("ws-0", type="subscribe", surfaceId="cache-warming", conversationId=cid)
    record("subscribe", tally)
    with counting.measure() as tally:
        index = start_turn(cid, "hello")
    record("turn start (HTTP POST …/turns)", tally)
    with counting.measure() as tally:
        generate(cid, index)
    record("turn sealed (generate function), 1 surface subscriber, no chat subscriber", tally)
    frame("ws-0", type="chat.subscribe", conversationId=cid)
    index = start_turn(cid, "and again")
    with counting.measure() as tally:
        generate(cid, index)
    record(
        "turn sealed (generate function), 1 surface + 1 chat subscriber",
        tally,
        f"{len(stack.model.reply)}-char reply in {stack.model.chunks} chunks",
    )
    with counting.measure() as tally:
        invoke("ws-0", cid, "toggle", True)
    record("invoke toggle (on, 1 subscriber)", tally)
    with counting.measure() as tally:
        invoke("ws-0", cid, "set-interval", 200)
    record("invoke set-interval (1 subscriber)", tally)
    payload = due_warm(cid)
    with counting.measure() as tally:
        warm(payload)
    record("warm, 1 subscriber", tally)
    warm_one = tally
    for n in range(1, 10):
        assert stack.connect(f"ws-{n}", stack.token(owner))["statusCode"] == 200
        frame(f"ws-{n}", type="subscribe", surfaceId="cache-warming", conversationId=cid)
    payload = due_warm(cid)
    with counting.measure() as tally:
        warm(payload)
    record("warm, 10 subscribers", tally)
    warm_ten = tally
    invoke("ws-0", cid, "set-interval", 60)
    payload = due_warm(cid)
    with counting.measure() as tally:
        warm(payload)
    record("warm, 10 subscribers, 60 s interval (tick queue)", tally)
    warm_direct = tally
    # The Scheduler path: a 1-hour cache warmed every 3,000 s. Scheduler delivers the tick
    # minutes early; that invocation only puts it back on the queue.
    response = stack.http.http.post(
        "/conversations", headers=headers, body=json.dumps({"cacheRetention": "1h"})
    )
    hour = str(response.json_body["conversationId"])
    generate(hour, start_turn(hour, "hello"))
    frame("ws-0", type="subscribe", surfaceId="cache-warming", conversationId=hour)
    invoke("ws-0", hour, "set-interval", 3000)
    invoke("ws-0", hour, "toggle", True)
    warm(due_warm(hour))  # the first warm books the 3,000 s one
    payload = due_warm(hour, at_target=False)
    stack.clock.now = max(stack.clock.now, payload["target"] - 330_000)
    with counting.measure() as tally:
        warm(payload, expected="requeued")
    record("Scheduler delivery (early): put back on the queue", tally)
    requeue = tally
    stack.queue.sent = [s for s in stack.queue.sent if s.payload != payload]
    stack.clock.now = payload["target"]
    with counting.measure() as tally:
        warm(payload)
    record("warm, 1 subscriber, 3,000 s interval (Scheduler path)", tally)
    warm_scheduled = tally
    with counting.measure() as tally:
        frame("ws-0", type="close", conversationId=cid)
    record("close (WebSocket frame, 10 subscribers)", tally)
    with counting.measure() as tally:
        stack.disconnect("ws-1")
    record("disconnect ($disconnect)", tally)

    # The same warm at three sizes: only the items (and so the billed units) differ.
    def sized_warm(system: str | None, turns: int, turn_chars: int) -> Tally:
        conversation_id = create(system)
        for n in range(turns):
            generate(conversation_id, start_turn(conversation_id, f"{n} " + "U" * turn_chars))
        # A connection of its own: one subscriber, whatever a connection's subscription cap.
        connection_id = f"ws-size-{conversation_id}"
        assert stack.connect(connection_id, stack.token(owner))["statusCode"] == 200
        frame(
            connection_id,
            type="subscribe",
            surfaceId="cache-warming",
            conversationId=conversation_id,
        )
        invoke(connection_id, conversation_id, "toggle", True)
        warm(due_warm(conversation_id))
        payload = due_warm(conversation_id)
        with counting.measure() as measured:
            warm(payload)
        return measured

    prefix_tokens = (LONG_SYSTEM_CHARS + LONG_TURNS * LONG_TURN_CHARS) // 4
    sizes = (
        ("~1 KB conversation", None, 1, 1_000),
        (
            f"~{prefix_tokens // 1000}k-token conversation",
            "S" * LONG_SYSTEM_CHARS,
            LONG_TURNS,
            LONG_TURN_CHARS,
        ),
        ("200 KB system prompt", "S" * BIG_SYSTEM_CHARS, 1, 1_000),
    )
    by_size: list[tuple[str, Tally]] = []
    for label, system, turns, turn_chars in sizes:
        measured = sized_warm(system, turns, turn_chars)
        record(f"warm, 1 subscriber, {label}", measured)
        by_size.append((label, measured))
    warm_long = by_size[1][1]
    for operation, tally, note in rows:
        report.add(
            f"{operation}: AWS calls",
            tally.aws(),
            note=f"{tally.summary()}; + {tally.posts()} posts; ≈{tally.write_units} WRU / "
            f"{tally.read_units:g} RRU" + (f"; {note}" if note else ""),
            target="≤ 4 + 1 post/subscriber" if operation.startswith("warm") else "",
            met=(tally.aws() <= TARGET_WARM_CALLS) if operation.startswith("warm") else None,
        )
    for subscribers, tally in ((1, warm_one), (10, warm_ten)):
        report.add(
            f"warm, {subscribers} subscriber{'s' if subscribers > 1 else ''}: posts per subscriber",
            tally.posts() / subscribers,
            target="1",
            met=tally.posts() == subscribers,
        )
    report.add(
        f"warm DynamoDB units, ~{prefix_tokens // 1000}k-token vs short conversation",
        warm_long.write_units + warm_long.read_units,
        "units",
        reference=warm_one.write_units + warm_one.read_units,
        reference_label="short conversation",
        note=f"≈{warm_long.write_units} WRU + {warm_long.read_units:g} RRU",
    )
    report.notes.append(
        "a warm's DynamoDB units by size: "
        + "; ".join(f"{label} ≈{t.write_units} WRU / {t.read_units:g} RRU" for label, t in by_size)
    )
    report.notes.append(
        "per-warm call mix: " + warm_one.summary() + " + 1 PostToConnection per subscriber"
    )
    report.extra = {
        "warm_one": warm_one,
        "warm_ten": warm_ten,
        "warm_direct": warm_direct,
        "warm_scheduled": warm_scheduled,
        "requeue": requeue,
        "warm_long": warm_long,
        "long_prefix_tokens": prefix_tokens,
        "warm_by_size": by_size,
    }
