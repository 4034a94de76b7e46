"""AWS failure paths under moto: every one ends in a clear reply and a consistent state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.ports import VersionConflict
from tests.fakes.ports import field_value
from tests.moto_stack import ENV, OWNER, MotoStack, create, invoke, join, sealed_turn


def client_error(code: str, status: int, operation: str) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


class LambdaKilled(BaseException):
    """Lambda ending the process (a timeout, out of memory): no handler of ours runs."""


def stored(stack: MotoStack, conversation_id: str) -> Any:
    return stack.services.store.get_conversation(conversation_id)


def test_a_scheduler_failure_refuses_the_toggle_and_claims_no_tick(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = stored(stack, conversation_id)
    scheduler = stack.services.timer.scheduler  # type: ignore[attr-defined]

    def refuse(**_: Any) -> None:
        raise client_error("ThrottlingException", 429, "CreateSchedule")

    monkeypatch.setattr(scheduler, "create_schedule", refuse)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    error = stack.frames("ws-1", "error")[-1]
    assert (error["code"], error["conversationId"]) == ("upstream_error", conversation_id)
    after = stored(stack, conversation_id)
    assert after.version == before.version and not after.warming.enabled
    assert stack.live_schedules() == []


def test_a_warm_whose_booking_failed_is_finished_by_lambdas_first_retry(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    scheduler = stack.services.timer.scheduler  # type: ignore[attr-defined]
    real_create = scheduler.create_schedule

    def refuse(**_: Any) -> None:
        raise client_error("InternalServerException", 500, "CreateSchedule")

    monkeypatch.setattr(scheduler, "create_schedule", refuse)
    (schedule,) = stack.live_schedules(conversation_id)
    # The warm is sent but its successor cannot be booked: the claim is released and the tick
    # reported failed, so the queue brings it back after a few seconds (tick_batch.py).
    result = stack.fire_due()
    assert result["action"] == "failed" and len(result["batchItemFailures"]) == 1
    assert stack.live_schedules() == [] and stack.queue.retries[-1][1] == 5
    monkeypatch.setattr(scheduler, "create_schedule", real_create)
    stack.clock.advance(5)
    body = json.dumps(json.loads(schedule["Target"]["Input"]), separators=(",", ":"))
    assert stack.deliver(body)["action"] == "warmed"
    state = stored(stack, conversation_id).warming
    assert state.status == "scheduled" and state.next_warm_at > stack.clock.now
    (rebooked,) = stack.live_schedules(conversation_id)
    assert rebooked["Name"] == state.timer_ref


def test_a_warm_whose_lambda_was_killed_is_taken_over_by_the_retry_after_its_deadline(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(
        stack,
        "ws-1",
        conversation_id,
        "toggle",
        True,
    )
    (schedule,) = stack.live_schedules(conversation_id)
    payload = json.loads(schedule["Target"]["Input"])
    stack.scheduler.delete_schedule(Name=schedule["Name"], GroupName=ENV["SCHEDULE_GROUP"])
    stack.clock.now = max(stack.clock.now, payload["target"])

    def killed(prompt: Any) -> Any:
        raise LambdaKilled()  # the function's timeout: Lambda ends the process mid-warm

    monkeypatch.setattr(stack.model, "warm", killed)
    with pytest.raises(LambdaKilled):
        stack.http.lambda_.invoke("warm", payload)
    assert stored(stack, conversation_id).warming.status == "warming"
    monkeypatch.undo()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    # The function's timeout (300 s) ends the invocation; Lambda retries about a minute later.
    stack.clock.advance(300 + 60)
    assert stack.http.lambda_.invoke("warm", payload).payload["action"] in (
        "warmed",
        "cache-expired",
    )
    assert stored(stack, conversation_id).warming.status != "warming"


def _warming_with_a_dead_tick(stack: MotoStack) -> str:
    """A conversation warming, subscribed by ws-1, whose booked tick is lost (dead-lettered after
    its retries: nothing ever fires it), minutes past its target."""
    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    join(stack, "ws-1", conversation_id)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    (schedule,) = stack.live_schedules(conversation_id)
    stack.scheduler.delete_schedule(Name=schedule["Name"], GroupName=ENV["SCHEDULE_GROUP"])
    stack.clock.advance(240 + 120)
    return conversation_id


@pytest.mark.parametrize("action,payload", [("toggle", True), ("set-interval", 120)])
def test_a_dead_tick_is_re_armed_by_the_user(stack: MotoStack, action: str, payload: Any) -> None:
    conversation_id = _warming_with_a_dead_tick(stack)
    before = stored(stack, conversation_id).warming
    assert before.status == "scheduled" and before.next_warm_at < stack.clock.now - 60_000
    invoke(stack, "ws-1", conversation_id, action, payload)
    state = stored(stack, conversation_id).warming
    assert state.status == "scheduled" and state.next_warm_at >= stack.clock.now
    assert len(stack.live_schedules(conversation_id)) + len(stack.queue.sent) >= 1
    update = stack.frames("ws-1", "update")[-1]
    assert update["fields"][2]["value"]["nextWarmAt"] >= stack.clock.now


def test_opening_the_panel_re_arms_a_dead_tick(stack: MotoStack) -> None:
    conversation_id = _warming_with_a_dead_tick(stack)
    join(stack, "ws-2", conversation_id)  # the user comes back and opens the conversation
    surface = stack.frames("ws-2", "surface")[-1]
    timer = next(f for f in surface["spec"]["fields"] if f["id"] == "timer")
    assert timer["value"]["nextWarmAt"] >= stack.clock.now
    assert stored(stack, conversation_id).warming.status == "scheduled"


def test_a_crash_between_arming_and_the_write_leaves_a_harmless_orphan(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stack.services.store

    def crash(*_: Any, **__: Any) -> None:
        raise LambdaKilled()

    monkeypatch.setattr(store, "save_conversation", crash)
    with pytest.raises(LambdaKilled):
        invoke(stack, "ws-1", conversation_id, "toggle", True)
    monkeypatch.undo()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert len(stack.live_schedules(conversation_id)) == 1  # the orphan
    before = stored(stack, conversation_id)
    assert not before.warming.enabled
    (schedule,) = stack.live_schedules(conversation_id)
    target = json.loads(schedule["Target"]["Input"])["target"]
    # Its seq is ahead of the stored one, as a tick that beats its booking write is: it is
    # looked at again every few seconds while a write could still land (60 s), then dropped.
    stack.fire_schedule(schedule, jitter_s=0)
    actions: list[str] = []
    while not actions or actions[-1] == "requeued":
        sent = stack.queue.sent.pop()
        stack.clock.now = max(stack.clock.now, sent.due_ms)
        actions.append(stack.deliver(sent.body)["action"])
    assert actions[-1] == "noop" and set(actions[:-1]) == {"requeued"}
    assert target + 60_000 <= stack.clock.now <= target + 70_000
    assert stored(stack, conversation_id).version == before.version
    assert stack.model.warms == []


def test_a_write_that_certainly_failed_cancels_the_timer_it_armed(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = stack.services.store.client  # type: ignore[attr-defined]

    def refused(**_: Any) -> None:
        raise client_error("ValidationException", 400, "TransactWriteItems")

    monkeypatch.setattr(client, "transact_write_items", refused)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    assert stack.frames("ws-1", "error")[-1]["code"] == "upstream_error"
    assert stack.live_schedules() == []  # nothing left to fire for a state that never changed
    assert not stored(stack, conversation_id).warming.enabled


def test_a_write_of_unknown_outcome_keeps_the_timer_it_armed(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = stack.services.store.client  # type: ignore[attr-defined]

    failing: list[str] = []
    real_get = client.get_item

    def unknown(**_: Any) -> None:
        failing.append("down")  # from here on, DynamoDB answers nothing
        raise client_error("InternalServerError", 500, "TransactWriteItems")

    def unreadable(**kwargs: Any) -> Any:
        if failing:
            raise client_error("InternalServerError", 500, "GetItem")
        return real_get(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", unknown)
    monkeypatch.setattr(client, "get_item", unreadable)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    assert stack.frames("ws-1", "error")[-1]["code"] in ("upstream_error", "internal_error")
    # It may have landed: the timer it would reference stays (a no-op by its seq if not).
    assert len(stack.live_schedules(conversation_id)) == 1


def test_a_conditional_check_storm_gives_up_cleanly_without_orphans(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stack.services.store

    def always_conflict(conversation: Any, *_: Any) -> Any:
        raise VersionConflict(conversation.id)

    monkeypatch.setattr(store, "save_conversation", always_conflict)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    assert stack.frames("ws-1", "error")[-1]["code"] == "conflict"
    assert stack.live_schedules() == []  # every schedule armed in a losing attempt was cancelled


def test_a_dynamodb_outage_answers_upstream_error_on_both_apis(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation_id = create(stack)
    join(stack, "ws-1", conversation_id)
    client = stack.services.store.client  # type: ignore[attr-defined]

    def down(**_: Any) -> None:
        raise client_error("ProvisionedThroughputExceededException", 400, "GetItem")

    monkeypatch.setattr(client, "get_item", down)
    stack.send(
        "ws-1",
        {
            "type": "subscribe",
            "surfaceId": "cache-warming",
            "conversationId": conversation_id,
            "requestId": "q",
        },
    )
    error = stack.frames("ws-1", "error")[-1]
    assert (error["code"], error["requestId"]) == ("upstream_error", "q")
    response = stack.http.http.get(
        f"/conversations/{conversation_id}", headers=stack.headers(OWNER)
    )
    assert response.status_code == 502
    assert response.json_body["error"]["code"] == "upstream_error"


def test_an_undelivered_disconnect_expires_with_the_connection_lifetime(stack: MotoStack) -> None:
    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    join(stack, "ws-old", conversation_id)
    join(stack, "ws-new", conversation_id)
    invoke(stack, "ws-new", conversation_id, "set-interval", 200)
    invoke(stack, "ws-new", conversation_id, "toggle", True)
    # ws-old vanished without $disconnect; two hours later only its subscription's TTL remains.
    stack.clock.advance(2 * 3600 + 1)
    stack.connect("ws-new", stack.token(OWNER))
    stack.send(
        "ws-new",
        {"type": "subscribe", "surfaceId": "cache-warming", "conversationId": conversation_id},
    )
    pushed_before = len(stack.frames("ws-old"))
    stack.send(
        "ws-new",
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": conversation_id,
            "action": "cache-warming/set-interval",
            "payload": 100,
        },
    )
    assert len(stack.frames("ws-old")) == pushed_before
    assert field_value(stack.frames("ws-new", "update")[-1], "interval") == 100


def test_a_failed_generate_invoke_fails_the_turn_with_502(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation_id = create(stack)

    def throttled(*_: Any, **__: Any) -> None:
        raise client_error("TooManyRequestsException", 429, "Invoke")

    monkeypatch.setattr(stack.invoker, "generate", throttled)
    response = stack.http.http.post(
        f"/conversations/{conversation_id}/turns",
        headers=stack.headers(OWNER),
        body='{"text": "hi"}',
    )
    assert response.status_code == 502 and response.json_body["error"]["code"] == "upstream_error"
    detail = stack.http.http.get(f"/conversations/{conversation_id}", headers=stack.headers(OWNER))
    assert [t["status"] for t in detail.json_body["turns"]] == ["failed"]
    assert detail.json_body["activeTurnId"] is None
