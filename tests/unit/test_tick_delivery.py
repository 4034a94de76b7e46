"""How ticks reach the tick use case: the sub-second wait, early ticks back on the timer, batches of
SQS records side by side with failures one by one, and the timer's choice of path."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.timer import (
    QUEUE_MAX_DELAY_MS,
    SCHEDULER_WINDOW_MS,
    PreciseTimer,
    delay_seconds,
    schedule_at,
    schedule_lead_ms,
)
from chalicelib.domain.timing import TIMINGS
from chalicelib.services.tick_batch import retry_delay_s
from chalicelib.wire.ticks import (
    BadTick,
    TickRecord,
    batch_response,
    is_batch,
    records_of,
    tick_of,
    tick_of_body,
)
from tests.fakes.ports import World, world
from tests.helpers import conversation_with_turn, invoke, subscribe


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.retries: list[tuple[str, int]] = []
        self.fail_retry = False

    def send(self, payload: dict[str, Any], delay_s: int) -> None:
        self.sent.append((payload, delay_s))

    def send_with_backup(self, payload: dict[str, Any], delay_s: int, backup_delay_s: int) -> None:
        self.sent.append((payload, delay_s))
        self.sent.append(({**payload, "backup": True}, backup_delay_s))

    def retry_later(self, receipt: str, delay_s: int) -> None:
        if self.fail_retry:
            raise RuntimeError("SQS unreachable")
        self.retries.append((receipt, delay_s))


def enabled(w: World, interval: int = 60) -> Any:
    conversation = conversation_with_turn(w)
    subscribe(w, "ws1", conversation.id)
    invoke(w, "ws1", conversation.id, "set-interval", interval)
    invoke(w, "ws1", conversation.id, "toggle", True)
    (tick,) = w.timer.live_for(conversation.id)
    return conversation, tick


def record(body: Any, message_id: str = "m1", receive_count: int = 1) -> TickRecord:
    text = body if isinstance(body, str) else json.dumps(body)
    return TickRecord(message_id, f"receipt-{message_id}", receive_count, text)


def tick_body(tick: Any) -> dict[str, Any]:
    return {"conversationId": tick.conversation_id, "seq": tick.seq, "target": tick.target}


# --- the tick use case: waiting ------------------------------------------------------------


def test_a_tick_delivered_under_a_second_early_sleeps_the_rest_and_warms_on_time() -> None:
    w = world()
    conversation, tick = enabled(w)
    w.clock.now = tick.target - 600  # DelaySeconds rounded down: visible up to 1 s early
    report = w.services.handle_tick(conversation.id, tick.seq, tick.target)
    assert report.action == "warmed" and report.lateness_ms == 0
    assert w.clock.slept[-1] == pytest.approx(0.6)


def test_a_tick_delivered_minutes_early_goes_back_on_the_timer_without_reading_anything() -> None:
    w = world()
    conversation, tick = enabled(w)
    w.clock.now = tick.target - 100_000  # a Scheduler delivery, booked minutes ahead
    reads = {"n": 0}
    load = w.store.load

    def counted(*args: Any) -> Any:
        reads["n"] += 1
        return load(*args)

    w.store.load = counted  # type: ignore[method-assign,assignment]
    report = w.services.handle_tick(conversation.id, tick.seq, tick.target)
    assert report.action == "requeued"
    again = w.timer.armed[-1]
    assert (again.seq, again.target) == (tick.seq, tick.target)  # the same tick, not a new one
    assert reads["n"] == 0 and w.model.warms == [] and w.clock.slept == []


def test_the_early_limit_is_a_couple_of_seconds() -> None:
    # The queue delivers less than a second early; anything much earlier is not worth a Lambda.
    assert 1 <= TIMINGS.max_early_wait_s <= 3


def test_the_invocation_deadline_reaches_the_tick_use_case() -> None:
    w = world()
    conversation, tick = enabled(w)
    w.clock.now = tick.target
    seen: list[Any] = []
    handle = w.services.ticks.handle

    def spy(*args: Any) -> Any:
        seen.append(args)
        return handle(*args)

    w.services.ticks.handle = spy  # type: ignore[method-assign,assignment]
    body = json.dumps(tick_body(tick))
    w.services.handle_tick_batch([record(body)], deadline_ms=tick.target + 299_000)
    assert seen == [(conversation.id, tick.seq, tick.target, tick.target + 299_000)]


# --- batches ---------------------------------------------------------------------------------


class SlowModelClock:
    """Wall-clock time; the fake model's warm takes `seconds` of it."""

    def __init__(self) -> None:
        self.offset_ms = 0

    @property
    def now(self) -> int:
        return self.now_ms()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        self.offset_ms += int(seconds * 1000)


def test_the_records_of_a_batch_are_warmed_side_by_side() -> None:
    w = world(clock=SlowModelClock())  # type: ignore[arg-type]
    ticks = []
    for _ in range(4):
        conversation = conversation_with_turn(w)
        w.services.connect("ws1", "alice")
        invoke(w, "ws1", conversation.id, "set-interval", 60)
        invoke(w, "ws1", conversation.id, "toggle", True)
        (tick,) = w.timer.live_for(conversation.id)
        ticks.append(tick)
    w.clock.advance(max(t.target for t in ticks) / 1000 - w.clock.now_ms() / 1000)
    warming = threading.Barrier(4, timeout=5)
    warm = w.model.warm

    def slow(prompt: Any) -> Any:
        warming.wait()  # only passes once all four warms run at the same time
        return warm(prompt)

    w.model.warm = slow  # type: ignore[method-assign]
    records = [record(tick_body(t), f"m{n}") for n, t in enumerate(ticks)]
    outcome = w.services.handle_tick_batch(records)
    assert outcome.failed == [] and [r.action for r in outcome.reports] == ["warmed"] * 4


def test_one_failing_tick_is_reported_and_retried_soon_the_others_succeed() -> None:
    w = world()
    queue = FakeQueue()
    w.services.ports.tick_queue = queue
    _, tick = enabled(w)
    w.clock.now = tick.target
    other = conversation_with_turn(w)
    load = w.store.load

    def broken_for_other(conversation_id: str, now_s: int) -> Any:
        if conversation_id == other.id:
            raise RuntimeError("DynamoDB unreachable")
        return load(conversation_id, now_s)

    w.store.load = broken_for_other  # type: ignore[method-assign]
    bad = {"conversationId": other.id, "seq": 1, "target": tick.target}
    outcome = w.services.handle_tick_batch(
        [
            record(tick_body(tick), "good"),
            record(bad, "failing", receive_count=3),
            record("not json", "garbage"),
        ]
    )
    assert [r.action for r in outcome.reports] == ["warmed"]
    assert outcome.failed == ["failing", "garbage"]
    # Back in 20 s (third receive), and what is not a tick at once, towards the DLQ.
    assert sorted(queue.retries) == [("receipt-failing", 20), ("receipt-garbage", 1)]
    assert batch_response(outcome.failed) == {
        "batchItemFailures": [{"itemIdentifier": "failing"}, {"itemIdentifier": "garbage"}]
    }


def test_a_failed_retry_shortening_still_reports_the_failure() -> None:
    w = world()
    queue = FakeQueue()
    queue.fail_retry = True
    w.services.ports.tick_queue = queue
    outcome = w.services.handle_tick_batch([record("{}", "m")])
    assert outcome.failed == ["m"]


def test_retries_back_off_from_five_seconds_to_a_minute() -> None:
    assert [retry_delay_s(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_a_duplicate_in_the_same_batch_warms_once() -> None:
    w = world()
    _, tick = enabled(w)
    w.clock.now = tick.target
    body = tick_body(tick)
    outcome = w.services.handle_tick_batch([record(body, "a"), record(body, "b")])
    assert outcome.failed == []
    assert sorted(r.action for r in outcome.reports) == ["noop", "warmed"]
    assert len(w.model.warms) == 1


# --- the wire ----------------------------------------------------------------------------


def test_ticks_are_read_from_raw_events_records_and_dead_letters() -> None:
    tick = {"conversationId": "c-1", "seq": 4, "target": 1_800_000_000_000}
    assert tick_of(tick).seq == 4
    assert tick_of({"requestContext": {}, "requestPayload": tick}).conversation_id == "c-1"
    assert tick_of_body(json.dumps(tick)).target == 1_800_000_000_000
    event = {
        "Records": [
            {
                "messageId": "m",
                "receiptHandle": "r",
                "body": json.dumps(tick),
                "attributes": {"ApproximateReceiveCount": "2"},
            }
        ]
    }
    assert is_batch(event) and not is_batch(tick)
    assert records_of(event) == [TickRecord("m", "r", 2, json.dumps(tick))]


@pytest.mark.parametrize(
    "body",
    [
        "nope",
        "[]",
        json.dumps({"conversationId": "c", "seq": -1, "target": 1}),
        json.dumps({"conversationId": "c", "seq": True, "target": 1}),
        json.dumps({"conversationId": "c", "seq": 1, "target": "soon"}),
        json.dumps({"conversationId": "a#META", "seq": 1, "target": 1}),
        json.dumps({"conversationId": "c", "seq": 1, "target": 1, "pad": "x" * 5000}),
    ],
)
def test_what_is_not_a_tick_is_refused(body: str) -> None:
    with pytest.raises(BadTick):
        tick_of_body(body)


# --- the timer's paths ------------------------------------------------------------------------


class RecordingScheduler:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create_schedule(self, **kwargs: Any) -> dict[str, Any]:
        self.created.append(kwargs)
        return {}


def timer(queue: FakeQueue, scheduler: RecordingScheduler, **options: Any) -> PreciseTimer:
    return PreciseTimer(
        lambda: scheduler,  # type: ignore[arg-type,return-value]
        queue,
        group="g",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:ticks",
        role_arn="arn:aws:iam::123456789012:role/r",
        **options,
    )


def test_targets_within_896_s_are_a_delayed_message_and_its_backup() -> None:
    # SQS delays at most 900 s, and the backup goes 4 s after the tick: a target farther than
    # 896 s is booked on Scheduler instead.
    queue, scheduler = FakeQueue(), RecordingScheduler()
    now = 1_800_000_000_000
    assert timer(queue, scheduler).arm("c", 1, now + 896_000, now) is None
    assert timer(queue, scheduler).arm("c", 2, now + 20_999, now) is None
    assert [delay for _, delay in queue.sent] == [896, 900, 20, 24]
    assert [body.get("backup", False) for body, _ in queue.sent] == [False, True, False, True]
    assert scheduler.created == []
    assert timer(queue, scheduler).arm("c", 3, now + 896_001, now) is not None
    assert len(scheduler.created) == 1
    assert delay_seconds(now + 500, now) == 0 and delay_seconds(now - 5000, now) == 0


def test_farther_targets_are_a_schedule_on_the_queue_that_fires_its_lead_early() -> None:
    queue, scheduler = FakeQueue(), RecordingScheduler()
    now = 1_800_000_000_000
    target = now + 3_590_000
    name = timer(queue, scheduler).arm("c", 1, target, now)
    (schedule,) = scheduler.created
    assert name == schedule["Name"] and queue.sent == []
    assert schedule["Target"]["Arn"] == "arn:aws:sqs:us-east-1:123456789012:ticks"
    assert json.loads(schedule["Target"]["Input"]) == {
        "conversationId": "c",
        "seq": 1,
        "target": target,
    }
    at = datetime.strptime(schedule["ScheduleExpression"][3:-1], "%Y-%m-%dT%H:%M:%S")
    at_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
    lead = schedule_lead_ms()
    assert lead == TIMINGS.max_event_age_s * 1000  # a delivery Scheduler retries is still early
    # The latest firing is the lead early; the earliest still fits one delayed message.
    assert at_ms + SCHEDULER_WINDOW_MS <= target - lead
    assert target - at_ms <= QUEUE_MAX_DELAY_MS


@pytest.mark.parametrize("max_delay_s", [150, 180, 300, 900])
def test_a_lower_queue_limit_keeps_every_firing_within_it(max_delay_s: int) -> None:
    now = 1_800_000_000_000
    for offset_s in range(max_delay_s + 1, max_delay_s + 400, 7):
        target = now + offset_s * 1000 + 123
        at = datetime.strptime(schedule_at(target, max_delay_s * 1000), "%Y-%m-%dT%H:%M:%S")
        at_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
        assert target - at_ms <= max_delay_s * 1000  # the earliest firing
        assert at_ms + SCHEDULER_WINDOW_MS <= target  # the latest firing
