"""AWS calls per operation, counted with botocore `before-call` hooks on the app's own clients
under moto (`tests.moto_stack.build()`: the real DynamoDB, Scheduler, SQS and management-API
adapters, Chalice's handlers, a fake model). Lambda async invokes go through a recording invoker
(moto's Lambda needs Docker) and are counted from its record. The timer runs with its production
split here (SQS's 900 s): the calls of a warm on each tick path are counted, and so is the extra
invocation a Scheduler delivery costs (the tick put back on the queue with its remaining delay).
The event source mapping's own ReceiveMessage/DeleteMessage calls are Lambda's, not the app's,
and are not counted here (docs/performance.md prices them).

Besides the count, the capacity units AWS would bill: a write's from the items it touches and the
index writes it causes (`item_units.py`), a read's from the response's size (per started 4 KB,
half when eventually consistent; `wire_units.py`). The item sizes, not the call count, drive a
warm's DynamoDB cost, so a warm is measured at three sizes side by side (a ~1 KB conversation, a
~20k-token one, one with the largest system prompt the contract allows).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.common import Report
from bench.item_units import ItemUnits
from bench.wire_units import Counting, Tally

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
PREFIX_TOKENS = (LONG_SYSTEM_CHARS + LONG_TURNS * LONG_TURN_CHARS) // 4
# Issue 24: a warm's write units the same at every size, and at most this many.
TARGET_WARM_WRU = 4


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


@dataclass
class Rig:
    """The stack under measurement and the steps every operation is made of."""

    stack: Any
    counting: Counting
    items: ItemUnits
    owner: str = "alice"
    rows: list[tuple[str, Tally, str]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.stack.headers(self.owner))

    def create(self, **body: str) -> str:
        response = self.stack.http.http.post(
            "/conversations", headers=self.headers, body=json.dumps(body)
        )
        assert response.status_code == 201, response.body
        return str(response.json_body["conversationId"])

    def start_turn(self, conversation_id: str, text: str) -> int:
        response = self.stack.http.http.post(
            f"/conversations/{conversation_id}/turns",
            headers=self.headers,
            body=json.dumps({"text": text}),
        )
        assert response.status_code == 202, response.body
        return int(response.json_body["index"])

    def generate(self, conversation_id: str, index: int) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools' EMF lines
            result = self.stack.http.lambda_.invoke(
                "generate", {"conversationId": conversation_id, "turnIndex": index}
            )
        assert result.payload == {"status": "sealed"}, result.payload

    def connect(self, connection_id: str) -> None:
        assert self.stack.connect(connection_id, self.stack.token(self.owner))["statusCode"] == 200

    def frame(self, connection_id: str, **fields: Any) -> None:
        self.stack.send(connection_id, fields)

    def subscribe(self, connection_id: str, conversation_id: str) -> None:
        self.frame(
            connection_id,
            type="subscribe",
            surfaceId="cache-warming",
            conversationId=conversation_id,
        )

    def invoke(self, connection_id: str, conversation_id: str, action: str, payload: Any) -> None:
        self.frame(
            connection_id,
            type="invoke",
            surfaceId="cache-warming",
            conversationId=conversation_id,
            action=f"cache-warming/{action}",
            payload=payload,
        )

    def due_warm(self, conversation_id: str, at_target: bool = True) -> dict[str, Any]:
        """The booked tick's payload (its schedule deleted as Scheduler does after firing, or its
        queued message taken), with the clock at its target, when the queue delivers it."""
        from tests.moto_stack import ENV

        stack = self.stack
        schedules = stack.live_schedules(conversation_id)
        if schedules:
            (schedule,) = schedules
            stack.scheduler.delete_schedule(Name=schedule["Name"], GroupName=ENV["SCHEDULE_GROUP"])
            payload: dict[str, Any] = json.loads(schedule["Target"]["Input"])
        else:
            sent = [s for s in stack.queue.sent if s.payload["conversationId"] == conversation_id]
            stack.queue.sent.remove(sent[-1])
            payload = sent[-1].payload
        if at_target:
            stack.clock.now = max(stack.clock.now, payload["target"])
        return payload

    def warm(self, payload: dict[str, Any], expected: str = "warmed") -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            result = self.stack.http.lambda_.invoke("warm", payload)
        assert result.payload == {"action": expected}, result.payload

    def measure(self, operation: str, action: Callable[[], object], note: str = "") -> Tally:
        with self.counting.measure() as tally, self.items.measure() as units:
            action()
        # The write units from the items written (table and indexes), not from the wire.
        tally.write_units = units.total
        split = f"{units.table} table + {units.indexes} index"
        self.rows.append((operation, tally, f"{split}; {note}" if note else split))
        print(
            f"  {operation}: {tally.aws()} AWS calls ({tally.summary()}) + {tally.posts()} posts"
            f"; {tally.write_units} WRU ({split}), ≈{tally.read_units:g} RRU",
            flush=True,
        )
        return tally


def _turns(rig: Rig) -> str:
    """Connect, subscribe, and two turns: the conversation the warms below use."""
    cid = rig.create()
    rig.measure("connect ($connect)", lambda: rig.connect("ws-0"))
    rig.measure("subscribe", lambda: rig.subscribe("ws-0", cid))
    started: list[int] = []
    rig.measure("turn start (HTTP POST …/turns)", lambda: started.append(rig.start_turn(cid, "hi")))
    rig.measure(
        "turn sealed (generate function), 1 surface subscriber, no chat subscriber",
        lambda: rig.generate(cid, started[0]),
    )
    rig.frame("ws-0", type="chat.subscribe", conversationId=cid)
    index = rig.start_turn(cid, "and again")
    rig.measure(
        "turn sealed (generate function), 1 surface + 1 chat subscriber",
        lambda: rig.generate(cid, index),
        f"{len(rig.stack.model.reply)}-char reply in {rig.stack.model.chunks} chunks",
    )
    return cid


def _warms(rig: Rig, cid: str) -> dict[str, Tally]:
    """Toggle, interval, and the queue path's warms with 1 and 10 subscribers."""
    rig.measure("invoke toggle (on, 1 subscriber)", lambda: rig.invoke("ws-0", cid, "toggle", True))
    rig.measure(
        "invoke set-interval (1 subscriber)", lambda: rig.invoke("ws-0", cid, "set-interval", 200)
    )
    payload = rig.due_warm(cid)
    measured = {"warm_one": rig.measure("warm, 1 subscriber", lambda: rig.warm(payload))}
    for n in range(1, 10):
        rig.connect(f"ws-{n}")
        rig.subscribe(f"ws-{n}", cid)
    payload = rig.due_warm(cid)
    measured["warm_ten"] = rig.measure("warm, 10 subscribers", lambda: rig.warm(payload))
    rig.invoke("ws-0", cid, "set-interval", 60)
    payload = rig.due_warm(cid)
    measured["warm_direct"] = rig.measure(
        "warm, 10 subscribers, 60 s interval (tick queue)", lambda: rig.warm(payload)
    )
    return measured


def _scheduler_path(rig: Rig) -> dict[str, Tally]:
    """A 1-hour cache warmed every 3,000 s: Scheduler delivers the tick minutes early, and that
    invocation only puts it back on the queue."""
    stack = rig.stack
    hour = rig.create(cacheRetention="1h")
    rig.generate(hour, rig.start_turn(hour, "hello"))
    rig.subscribe("ws-0", hour)
    rig.invoke("ws-0", hour, "set-interval", 3000)
    rig.invoke("ws-0", hour, "toggle", True)
    rig.warm(rig.due_warm(hour))  # the first warm books the 3,000 s one
    payload = rig.due_warm(hour, at_target=False)
    stack.clock.now = max(stack.clock.now, payload["target"] - 330_000)
    requeue = rig.measure(
        "Scheduler delivery (early): put back on the queue",
        lambda: rig.warm(payload, expected="requeued"),
    )
    stack.queue.sent = [s for s in stack.queue.sent if s.payload != payload]
    stack.clock.now = payload["target"]
    scheduled = rig.measure(
        "warm, 1 subscriber, 3,000 s interval (Scheduler path)", lambda: rig.warm(payload)
    )
    return {"requeue": requeue, "warm_scheduled": scheduled}


def _close(rig: Rig, cid: str) -> None:
    rig.measure(
        "close (WebSocket frame, 10 subscribers)",
        lambda: rig.frame("ws-0", type="close", conversationId=cid),
    )
    rig.measure("disconnect ($disconnect)", lambda: rig.stack.disconnect("ws-1"))


def _sized_warm(rig: Rig, label: str, system: str | None, turns: int, chars: int) -> Tally:
    """The same warm at one size: only the items (and so the billed units) differ."""
    conversation_id = rig.create(**({"system": system} if system else {}))
    for n in range(turns):
        rig.generate(conversation_id, rig.start_turn(conversation_id, f"{n} " + "U" * chars))
    # A connection of its own: one subscriber, whatever a connection's subscription cap.
    connection_id = f"ws-size-{conversation_id}"
    rig.connect(connection_id)
    rig.subscribe(connection_id, conversation_id)
    rig.invoke(connection_id, conversation_id, "toggle", True)
    rig.warm(rig.due_warm(conversation_id))
    payload = rig.due_warm(conversation_id)
    # A container that never read this conversation's prompt: the worst case of its reads.
    rig.stack.services.store.systems.clear()
    return rig.measure(f"warm, 1 subscriber, {label}", lambda: rig.warm(payload))


def _sizes(rig: Rig) -> list[tuple[str, Tally]]:
    sizes = (
        ("~1 KB conversation", None, 1, 1_000),
        (
            f"~{PREFIX_TOKENS // 1000}k-token conversation",
            "S" * LONG_SYSTEM_CHARS,
            LONG_TURNS,
            LONG_TURN_CHARS,
        ),
        ("200 KB system prompt", "S" * BIG_SYSTEM_CHARS, 1, 1_000),
    )
    return [(label, _sized_warm(rig, label, *size)) for label, *size in sizes]


def _rows(report: Report, rows: list[tuple[str, Tally, str]]) -> None:
    for operation, tally, note in rows:
        warm = operation.startswith("warm")
        report.add(
            f"{operation}: AWS calls",
            tally.aws(),
            note=f"{tally.summary()}; + {tally.posts()} posts; ≈{tally.write_units} WRU / "
            f"{tally.read_units:g} RRU" + (f"; {note}" if note else ""),
            target="≤ 4 + 1 post/subscriber" if warm else "",
            met=(tally.aws() <= TARGET_WARM_CALLS) if warm else None,
        )


def _units(report: Report, measured: dict[str, Any]) -> None:
    for subscribers, key in ((1, "warm_one"), (10, "warm_ten")):
        tally = measured[key]
        report.add(
            f"warm, {subscribers} subscriber{'s' if subscribers > 1 else ''}: posts per subscriber",
            tally.posts() / subscribers,
            target="1",
            met=tally.posts() == subscribers,
        )
    by_size: list[tuple[str, Tally]] = measured["warm_by_size"]
    for label, tally in by_size:
        report.add(
            f"warm WRU, {label}",
            tally.write_units,
            "WRU",
            target=f"≤ {TARGET_WARM_WRU}, the same at every size",
            met=tally.write_units <= TARGET_WARM_WRU
            and tally.write_units == by_size[0][1].write_units,
            note=f"≈{tally.read_units:g} RRU",
        )
    report.notes.append(
        "a warm's DynamoDB units by size: "
        + "; ".join(f"{label} ≈{t.write_units} WRU / {t.read_units:g} RRU" for label, t in by_size)
    )
    report.notes.append(
        "per-warm call mix: "
        + measured["warm_one"].summary()
        + " + 1 PostToConnection per subscriber"
    )


def _run(stack: Any, report: Report) -> None:
    from chalicelib.adapters.timer import QUEUE_MAX_DELAY_MS

    stack.services.timer.queue_max_delay_ms = QUEUE_MAX_DELAY_MS  # production split
    from tests.conftest import SESSION

    store = stack.services.store
    rig = Rig(
        stack,
        Counting(stack.services, stack.invoker),
        ItemUnits(store.client, SESSION.client("dynamodb")),
    )
    cid = _turns(rig)
    measured: dict[str, Any] = _warms(rig, cid)
    measured.update(_scheduler_path(rig))
    _close(rig, cid)
    measured["warm_by_size"] = _sizes(rig)
    measured["warm_long"] = measured["warm_by_size"][1][1]
    measured["long_prefix_tokens"] = PREFIX_TOKENS
    _rows(report, rig.rows)
    _units(report, measured)
    report.extra = measured
