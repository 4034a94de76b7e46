"""One transient failure at the default interval of either cache (290 s / 3,590 s) still leaves
the cache warm for the user's next turn, at AWS's timings: botocore's own retry schedule (run
here, its sleeps on the fake clock), the queue's backoff and visibility, the warm function's
timeout. The default interval leaves 8 s between a tick's target and the late guard
(domain/timing.py, "The retry room"); each test checks the warm that kept the cache started
inside them."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.domain.timing import TIMINGS
from chalicelib.ports import ModelError
from tests.integration.test_faults_moto import LambdaKilled, client_error, stored
from tests.moto_stack import ENV, OWNER, MotoStack, create, invoke, join, sealed_turn

CACHES = ["5m", "1h"]
GUARD_MS = TIMINGS.late_guard_s * 1000
# DynamoDB's answer to a throttled request ("Error handling with DynamoDB", DynamoDB Developer
# Guide, read 2026-12-07); botocore's standard retry mode counts this code as throttling.
THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API.",
}


@pytest.fixture
def botocore_sleeps(stack: MotoStack, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry back-off, slept on the fake clock (botocore/endpoint.py sleeps with
    `time.sleep` between attempts)."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        stack.clock.advance(seconds)

    monkeypatch.setattr("botocore.endpoint.time", types.SimpleNamespace(sleep=sleep))
    return slept


def throttle(stack: MotoStack, operation: str, attempts: int) -> list[int]:
    """The next `attempts` requests of `operation` to DynamoDB are answered 400 throttled, as
    DynamoDB does; each attempt's fake time is returned."""
    seen: list[int] = []

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        if len(seen) >= attempts:
            return None
        seen.append(stack.clock.now)
        raw = types.SimpleNamespace(stream=lambda **_: [json.dumps(THROTTLED).encode()])
        headers = {"x-amzn-ErrorType": THROTTLED["__type"].split("#")[1]}
        return AWSResponse(request.url, 400, headers, raw)  # type: ignore[arg-type]

    client = stack.services.store.client  # type: ignore[attr-defined]
    client.meta.events.register_first(f"before-send.dynamodb.{operation}", answer)
    return seen


def warming_at_default(stack: MotoStack, cache: str) -> tuple[str, int, int]:
    """A conversation warming at its cache's default interval: its id, the target of its next
    tick and when its cache expires."""
    conversation_id = create(stack, cacheRetention=cache)
    sealed_turn(stack, conversation_id)
    join(stack, "ws-1", conversation_id)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    state = stored(stack, conversation_id).warming
    assert state.status == "scheduled" and state.interval_seconds == (
        290 if cache == "5m" else 3590
    )
    return conversation_id, state.next_warm_at, state.cache_expires_at


def assert_kept_warm(stack: MotoStack, conversation_id: str, expires_at: int) -> None:
    """A warm started before the guard refreshed the cache, and the next one is booked."""
    state = stored(stack, conversation_id).warming
    assert state.last_warm_at is not None and state.last_warm_at < expires_at - GUARD_MS
    assert state.last_refresh_at == state.last_warm_at
    assert state.status == "scheduled" and state.next_warm_at > stack.clock.now
    assert state.cache_expires_at > state.next_warm_at  # alive until its next warm


def deliver_until_done(stack: MotoStack, first: str) -> list[str]:
    """Deliver a tick, then whatever it put back on the queue, until one is not requeued."""
    actions = [stack.deliver(first)["action"]]
    while actions[-1] == "requeued":
        again = stack.queue.sent.pop()
        stack.clock.now = max(stack.clock.now, again.due_ms)
        actions.append(stack.deliver(again.body)["action"])
    return actions


def due(stack: MotoStack) -> str:
    """The booked tick's body, the fake clock at its target (a 1 h tick comes from Scheduler)."""
    schedules = stack.live_schedules()
    if schedules:
        stack.fire_schedule(schedules[0], jitter_s=59)
        # Minutes early: put back on the queue with the rest of its delay, and its backup.
        assert stack.deliver(stack.queue.sent.pop().body) == {"action": "requeued"}
    pending = stack.queue.sent.pop()
    stack.clock.now = max(stack.clock.now, pending.due_ms)
    return pending.body


@pytest.mark.parametrize("cache", CACHES)
def test_a_read_throttled_past_botocores_retries_is_tried_again_in_the_same_invocation(
    stack: MotoStack, botocore_sleeps: list[float], cache: str
) -> None:
    conversation_id, _, expires_at = warming_at_default(stack, cache)
    body = due(stack)
    attempts = throttle(stack, "Query", 4)  # one whole call: botocore makes 4 attempts
    assert stack.deliver(body) == {"action": "warmed"}
    assert len(attempts) == 4 and len(botocore_sleeps) >= 3  # botocore's own back-off ran
    assert_kept_warm(stack, conversation_id, expires_at)
    assert len(stack.model.warms) == 1


@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize("error", ["overloaded", "rate_limited", "upstream_error"])
def test_one_refused_warm_is_retried_before_the_cache_expires(
    stack: MotoStack, cache: str, error: str
) -> None:
    conversation_id, _, expires_at = warming_at_default(stack, cache)
    stack.model.warm_errors.append(ModelError(error, "the API refused the warm"))
    assert stack.deliver(due(stack)) == {"action": "warm-failed"}
    retry = stack.queue.sent[-1]
    assert retry.delay_s <= TIMINGS.warm_retry_s
    assert stack.fire_due() == {"action": "warmed"}
    assert_kept_warm(stack, conversation_id, expires_at)
    assert stored(stack, conversation_id).warming.consecutive_errors == 0


def crash(stack: MotoStack, monkeypatch: pytest.MonkeyPatch, body: str, where: str) -> None:
    """The warm function dies mid-batch (its timeout, out of memory): no handler of ours runs,
    and its batch stays invisible for the queue's whole visibility timeout."""

    def killed(*_: Any) -> Any:
        raise LambdaKilled()

    target: Callable[..., Any] = killed
    if where == "before the claim":
        monkeypatch.setattr(stack.services.store, "load", target)
    else:
        monkeypatch.setattr(stack.model, "warm", target)
    with pytest.raises(LambdaKilled):
        stack.deliver(body)
    # The batch stays in flight for the queue's visibility timeout (360 s), past every cache in
    # this test: take it out of moto so that the fake clock's jumps cannot make it visible.
    queue = stack.moto_queue("cache-warming-ticks")
    queue._messages = [m for m in queue._messages if m.body != body]
    monkeypatch.undo()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize("where", ["before the claim", "after the claim"])
def test_a_crashed_batch_is_warmed_by_the_ticks_backup(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch, cache: str, where: str
) -> None:
    conversation_id, target, expires_at = warming_at_default(stack, cache)
    body = due(stack)
    backup = stack.queue.backups[-1]
    crash(stack, monkeypatch, body, where)
    assert stack.queue.sent == []  # nothing booked: the batch is lost for 360 s
    stack.clock.now = max(stack.clock.now, backup.due_ms)
    assert backup.due_ms - target <= TIMINGS.backup_after_s * 1000
    actions = deliver_until_done(stack, backup.body)
    assert actions[-1] == "warmed"
    assert actions[:-1] == ([] if where == "before the claim" else ["requeued"])
    assert_kept_warm(stack, conversation_id, expires_at)


@pytest.mark.parametrize("cache", CACHES)
def test_a_warm_whose_booking_and_release_failed_is_taken_over_not_dropped(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    conversation_id, _, expires_at = warming_at_default(stack, cache)
    body = due(stack)
    store = stack.services.store
    real_save, saves = store.save_conversation, []

    def throttled_after_the_claim(*args: Any, **kwargs: Any) -> Any:
        saves.append(stack.clock.now)
        if len(saves) == 1:
            return real_save(*args, **kwargs)  # the claim
        raise client_error("ProvisionedThroughputExceededException", 400, "TransactWriteItems")

    monkeypatch.setattr(store, "save_conversation", throttled_after_the_claim)
    first = stack.deliver(body)
    assert first["action"] == "failed" and len(stack.model.warms) == 1
    assert len(saves) == 1 + 3 + 1  # the claim, three tries at the record, the release
    monkeypatch.undo()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    state = stored(stack, conversation_id).warming
    assert state.status == "warming" and state.warm_lease_until < expires_at - GUARD_MS
    # The queue brings the failed tick back after 5 s; the claim is still held: it is put back
    # until the claim ends, then takes it over, before the guard.
    stack.clock.advance(stack.queue.retries[-1][1])
    stack.make_visible(body)
    actions = deliver_until_done(stack, body)
    assert actions[-1] == "warmed" and "noop" not in actions
    assert_kept_warm(stack, conversation_id, expires_at)


@pytest.mark.parametrize("cache", CACHES)
def test_a_tick_that_beats_its_booking_write_waits_for_it_instead_of_being_dropped(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch, botocore_sleeps: list[float], cache: str
) -> None:
    conversation_id, _, _ = warming_at_default(stack, cache)
    invoke(stack, "ws-1", conversation_id, "toggle", False)
    stack.clock.advance(3600 * 2)  # the cache is long gone: enabling books a rebuild at once
    store = stack.services.store
    real_save = store.save_conversation
    early: list[str] = []

    def tick_delivered_before_the_write(*args: Any, **kwargs: Any) -> Any:
        if not early and stack.queue.sent:
            # The tick (delay 0) is delivered while botocore still retries this write: 7 s of
            # back-off, longer than the tick's 3 s wait.
            pending = stack.queue.sent.pop()
            early.append(stack.deliver(pending.body)["action"])
            stack.clock.advance(7)
        return real_save(*args, **kwargs)

    # Two hours on, API Gateway has closed ws-1 (its connection limit): the user reconnects.
    assert stack.connect("ws-2", stack.token(OWNER))["statusCode"] == 200
    monkeypatch.setattr(store, "save_conversation", tick_delivered_before_the_write)
    invoke(stack, "ws-2", conversation_id, "toggle", True)
    monkeypatch.undo()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert early == ["requeued"]
    assert stored(stack, conversation_id).warming.rebuild
    requeued = stack.queue.sent.pop()
    stack.clock.now = max(stack.clock.now, requeued.due_ms)
    assert deliver_until_done(stack, requeued.body)[-1] == "warmed"
    state = stored(stack, conversation_id).warming
    assert state.status == "scheduled" and state.last_warm_at is not None
