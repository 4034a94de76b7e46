"""The warming lifecycle end to end under moto: Chalice handlers, DynamoDB, Scheduler, sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.store import create_table
from chalicelib.adapters.timer import QUEUE_MAX_DELAY_MS, schedule_lead_ms
from tests.conftest import SESSION
from tests.fakes.ports import field_value
from tests.moto_stack import (
    ENV,
    OWNER,
    TEST_QUEUE_MAX_DELAY_MS,
    TICK_QUEUE_ARN,
    MotoStack,
    build,
    create,
    invoke,
    join,
    patch_gone,
    sealed_turn,
)


def test_cr4a_new_conversation_surface_is_off_and_no_schedule_exists(stack: MotoStack) -> None:
    conversation_id = create(stack)
    join(stack, "ws-1", conversation_id)
    (surface,) = stack.frames("ws-1", "surface")
    assert surface["conversationId"] == conversation_id
    assert field_value(surface, "enabled") is False
    assert field_value(surface, "status") == "off"
    assert field_value(surface, "timer")["nextWarmAt"] is None
    assert stack.live_schedules() == [] and stack.invoker.calls == []


def test_cr4b_three_scheduled_warms_each_push_a_future_next_warm(
    stack: MotoStack, conversation_id: str
) -> None:
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    (schedule,) = stack.live_schedules(conversation_id)
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["Target"]["Arn"] == TICK_QUEUE_ARN  # Scheduler hands the tick to the queue
    for number in range(3):
        announced = field_value(stack.frames("ws-1", "update")[-1], "timer")["nextWarmAt"]
        (schedule,) = stack.live_schedules(conversation_id)
        payload = json.loads(schedule["Target"]["Input"])
        assert payload == {
            "conversationId": conversation_id,
            "seq": payload["seq"],
            "target": announced,
        }
        result = stack.fire_due(jitter_s=59 if number == 0 else None)
        assert result == {"action": "warmed"}
        update = stack.frames("ws-1", "update")[-1]
        timer = field_value(update, "timer")
        assert timer["lastWarmAt"] == announced  # the warm started exactly at the promise
        assert timer["nextWarmAt"] > timer["lastWarmAt"]
        assert timer["nextWarmAt"] > stack.clock.now
        assert len(stack.live_schedules(conversation_id)) == 1
        assert field_value(update, "warm-cost")["warms"] == number + 1


def test_short_intervals_go_by_the_tick_queue_with_one_pending_tick(
    stack: MotoStack, conversation_id: str
) -> None:
    invoke(stack, "ws-1", conversation_id, "set-interval", 20)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    for _ in range(3):
        assert stack.live_schedules() == []
        (pending,) = stack.queue.sent
        announced = field_value(stack.frames("ws-1", "update")[-1], "timer")["nextWarmAt"]
        assert pending.payload["target"] == announced
        # DelaySeconds rounded down: visible less than a second before the target.
        assert 0 <= announced - pending.due_ms < 1000
        # With its backup, 4 s later (domain/timing.py, `backup_after_s`); older backups are
        # still queued and will be no-ops.
        backup = stack.queue.backups[-1]
        assert backup.payload == {**pending.payload, "backup": True}
        assert backup.delay_s == pending.delay_s + 4
        assert stack.queued_bodies()[-2:] == [pending.body, backup.body]
        assert stack.fire_due() == {"action": "warmed"}
        timer = field_value(stack.frames("ws-1", "update")[-1], "timer")
        assert timer["lastWarmAt"] == announced and timer["nextWarmAt"] == announced + 20_000


def test_the_default_interval_goes_by_the_queue_at_sqs_s_900_s_limit(stack: MotoStack) -> None:
    """With the production threshold, the 290 s default is one delayed message, no schedule."""
    stack.services.timer.queue_max_delay_ms = QUEUE_MAX_DELAY_MS  # type: ignore[attr-defined]
    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    join(stack, "ws-1", conversation_id)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    for _ in range(2):
        assert stack.live_schedules() == []
        (pending,) = stack.queue.sent
        assert 280 <= pending.delay_s <= 290
        messages = stack.moto_queue("cache-warming-ticks")._messages
        (message,) = [m for m in messages if m.body == pending.body]
        # moto hides it for DelaySeconds on the wall clock (moto/sqs/models.py, Message.delay).
        assert abs(message.delayed_until - message.sent_timestamp - pending.delay_s * 1000) < 50
        announced = field_value(stack.frames("ws-1", "update")[-1], "timer")["nextWarmAt"]
        assert stack.fire_due() == {"action": "warmed"}
        assert field_value(stack.frames("ws-1", "update")[-1], "timer")["lastWarmAt"] == announced


def test_a_schedule_fires_its_lead_before_the_target_and_within_the_queue_s_delay(
    stack: MotoStack,
    conversation_id: str,
) -> None:
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    (schedule,) = stack.live_schedules(conversation_id)
    target = json.loads(schedule["Target"]["Input"])["target"]
    lead = schedule_lead_ms(TEST_QUEUE_MAX_DELAY_MS)
    for jitter_s in (59, 0):  # the latest and the earliest AWS may fire
        at_ms = int(
            datetime.strptime(schedule["ScheduleExpression"][3:-1], "%Y-%m-%dT%H:%M:%S")
            .replace(tzinfo=UTC)
            .timestamp()
            * 1000
        )
        fired = at_ms + jitter_s * 1000
        assert fired <= target - lead
        assert target - fired <= TEST_QUEUE_MAX_DELAY_MS  # the requeue fits one delayed message
    stack.fire_schedule(schedule, 59)
    assert stack.fire_due() == {"action": "warmed"}  # delivered, requeued, then warmed on time
    assert field_value(stack.frames("ws-1", "update")[-1], "timer")["lastWarmAt"] == target


def test_toggle_off_deletes_the_schedule_and_a_late_tick_does_nothing(
    stack: MotoStack, conversation_id: str
) -> None:
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    (schedule,) = stack.live_schedules(conversation_id)
    payload = json.loads(schedule["Target"]["Input"])
    invoke(stack, "ws-1", conversation_id, "toggle", False)
    assert stack.live_schedules() == []
    frames = len(stack.frames("ws-1"))
    stack.clock.now = payload["target"]
    assert stack.http.lambda_.invoke("warm", payload).payload == {"action": "noop"}
    assert len(stack.frames("ws-1")) == frames and stack.model.warms == []


def test_a_duplicate_delivery_warms_once(stack: MotoStack, conversation_id: str) -> None:
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    (schedule,) = stack.live_schedules(conversation_id)
    payload = json.loads(schedule["Target"]["Input"])
    assert stack.fire_due() == {"action": "warmed"}
    assert stack.http.lambda_.invoke("warm", payload).payload == {"action": "noop"}
    assert len(stack.model.warms) == 1 and len(stack.live_schedules(conversation_id)) == 1


def stored_state(stack: MotoStack, conversation_id: str) -> Any:
    conversation = stack.services.store.get_conversation(conversation_id)
    assert conversation is not None
    return conversation.warming


def test_duplicates_in_one_batch_warm_once_and_both_are_deleted(
    stack: MotoStack, conversation_id: str
) -> None:
    """SQS may deliver a message more than once, even in the same batch: one warm, no retry."""
    invoke(stack, "ws-1", conversation_id, "set-interval", 20)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    (pending,) = stack.queue.sent
    stack.clock.now = pending.due_ms
    # Side by side: one copy claims and warms; a copy that reads during the warm is put back
    # until the claim ends, one that reads after it sees a newer seq. None is retried as failed.
    result = stack.deliver(pending.body, copies=3)
    assert result["action"] in ("noop", "requeued") and "batchItemFailures" not in result
    assert len(stack.model.warms) == 1
    state = stored_state(stack, conversation_id)
    requeued = [s for s in stack.queue.sent if s.payload["seq"] == pending.payload["seq"]]
    (booked,) = [s for s in stack.queue.sent if s.payload["seq"] == state.seq]
    for again in requeued:  # they come back stale: no-ops
        stack.clock.now = max(stack.clock.now, again.due_ms)
        assert stack.deliver(again.body) == {"action": "noop"}
    assert len(stack.model.warms) == 1
    # Only the next tick, and the backups of both (each a no-op unless its tick was lost).
    assert stack.queued_bodies() == [b.body for b in stack.queue.backups[:1]] + [
        booked.body,
        stack.queue.backups[-1].body,
    ]
    assert field_value(stack.frames("ws-1", "update")[-1], "warm-cost")["warms"] == 1


def test_a_tick_that_fails_comes_back_soon_and_reaches_the_dlq_after_five_receives(
    stack: MotoStack, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(stack, "ws-1", conversation_id, "set-interval", 20)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    (pending,) = stack.queue.sent
    stack.clock.now = pending.due_ms
    client = stack.services.store.client  # type: ignore[attr-defined]

    def outage(**_: Any) -> None:
        raise RuntimeError("DynamoDB unreachable")

    monkeypatch.setattr(client, "query", outage)
    for attempt in range(1, 6):
        result = stack.deliver(pending.body)
        assert result["action"] == "failed" and len(result["batchItemFailures"]) == 1
        # Back after a short backoff, not after the queue's 30-minute visibility timeout.
        assert stack.queue.retries[-1][1] == min(60, 5 * 2 ** (attempt - 1))
    # The sixth receive finds it over the redrive policy's maxReceiveCount: moved to the DLQ.
    stack.make_visible(pending.body)
    assert stack.sqs.receive_message(QueueUrl=stack.queue.queue_url).get("Messages") is None
    assert stack.queued_bodies("cache-warming-dlq") == [pending.body]
    # Replayed (what StartMessageMoveTask does: the body back on the tick queue) once DynamoDB is
    # back, the tick warms.
    monkeypatch.undo()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    stack.sqs.send_message(QueueUrl=stack.queue.queue_url, MessageBody=pending.body)
    assert stack.deliver(pending.body) == {"action": "warmed"}


def test_a_gone_socket_is_forgotten_and_the_others_still_get_pushes(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    for connection_id in ("ws-1", "ws-2", "ws-3"):
        join(stack, connection_id, conversation_id)
    patch_gone(monkeypatch, {"ws-2"})
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    stack.fire_due()
    assert len(stack.frames("ws-3", "update")) == 2
    table = SESSION.resource("dynamodb").Table(ENV["TABLE_NAME"])
    assert "Item" not in table.get_item(Key={"pk": "CONN#ws-2", "sk": "META"})
    store = stack.services.store
    assert store.subscribers(conversation_id, "surface", stack.clock.now // 1000) == [
        "ws-1",
        "ws-3",
    ]


def test_disconnect_leaves_warming_running(stack: MotoStack, conversation_id: str) -> None:
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    stack.disconnect("ws-1")
    assert stack.services.store.get_connection("ws-1") is None
    for _ in range(2):
        assert stack.fire_due() == {"action": "warmed"}
    assert len(stack.live_schedules(conversation_id)) == 1


def test_connect_without_a_valid_token_is_refused_and_records_nothing(stack: MotoStack) -> None:
    for token in (None, "", "not-a-jwt", stack.token(OWNER)[:-3] + "abc"):
        assert stack.connect("ws-x", token)["statusCode"] == 401
    assert stack.services.store.get_connection("ws-x") is None


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}]
)
def test_http_without_a_valid_token_is_401(stack: MotoStack, headers: dict[str, str]) -> None:
    response = stack.http.http.post("/conversations", headers=headers, body="{}")
    assert response.status_code == 401
    assert response.json_body["error"]["code"] == "unauthorized"


def test_another_owners_conversation_is_not_found_over_http(stack: MotoStack) -> None:
    conversation_id = create(stack)
    for method, path in [
        ("get", f"/conversations/{conversation_id}"),
        ("post", f"/conversations/{conversation_id}/turns"),
        ("post", f"/conversations/{conversation_id}/cancel"),
        ("post", f"/conversations/{conversation_id}/close"),
    ]:
        response = getattr(stack.http.http, method)(
            path, headers=stack.headers("mallory"), body=json.dumps({"text": "hi"})
        )
        assert response.status_code == 404, path
        assert response.json_body["error"]["code"] == "not_found"
    listing = stack.http.http.get("/conversations", headers=stack.headers("mallory"))
    assert listing.json_body == {"conversations": [], "nextCursor": None}


def test_http_routes_create_list_get_and_health(stack: MotoStack) -> None:
    first = create(stack, title="First")
    stack.clock.advance(1)
    second = create(stack, title="Second", cacheRetention="1h")
    listing = stack.http.http.get("/conversations", headers=stack.headers(OWNER)).json_body
    assert [c["conversationId"] for c in listing["conversations"]] == [second, first]
    detail = stack.http.http.get(f"/conversations/{second}", headers=stack.headers(OWNER)).json_body
    assert detail["cacheRetention"] == "1h" and detail["turns"] == []
    assert detail["warming"]["enabled"] is False
    assert (detail["warming"]["cacheInUse"], detail["warming"]["intervalSeconds"]) == ("1h", 3590)
    # "auto" is the default: it starts on the 5-minute cache.
    default = stack.http.http.get(f"/conversations/{first}", headers=stack.headers(OWNER)).json_body
    assert default["cacheRetention"] == "auto"
    assert (default["warming"]["cacheInUse"], default["warming"]["intervalSeconds"]) == ("5m", 290)
    assert stack.http.http.get("/health").json_body == {"status": "ok"}


@pytest.mark.parametrize(
    "body,code",
    [
        ("not json", "bad_json"),
        ("[1]", "bad_json"),
        ('{"maxTokens": "many"}', "invalid_field"),
        ('{"cacheRetention": "2h"}', "invalid_field"),
        ('{"title": 5}', "invalid_field"),
    ],
)
def test_bad_create_requests_get_400_and_write_nothing(
    stack: MotoStack, body: str, code: str
) -> None:
    response = stack.http.http.post("/conversations", headers=stack.headers(OWNER), body=body)
    assert response.status_code == 400 and response.json_body["error"]["code"] == code
    assert stack.http.http.get("/conversations", headers=stack.headers(OWNER)).json_body == {
        "conversations": [],
        "nextCursor": None,
    }


def test_a_second_turn_while_generating_is_409(stack: MotoStack) -> None:
    conversation_id = create(stack)
    path = f"/conversations/{conversation_id}/turns"
    first = stack.http.http.post(path, headers=stack.headers(OWNER), body='{"text": "one"}')
    second = stack.http.http.post(path, headers=stack.headers(OWNER), body='{"text": "two"}')
    assert (first.status_code, second.status_code) == (202, 409)
    assert second.json_body["error"]["code"] == "turn_in_progress"


def test_ws_errors_for_bad_frames_echo_ids(stack: MotoStack) -> None:
    conversation_id = create(stack)
    join(stack, "ws-1", conversation_id)
    stack.send("ws-1", "{not json")
    stack.send(
        "ws-1",
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": conversation_id,
            "action": "cache-warming/set-interval",
            "payload": 1,
            "requestId": "r7",
        },
    )
    errors = stack.frames("ws-1", "error")
    assert [e["code"] for e in errors] == ["bad_json", "invalid_interval"]
    assert errors[1]["requestId"] == "r7" and errors[1]["conversationId"] == conversation_id


def test_the_real_composition_root_works_under_moto(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    # chalice.test.Client applies the app's config.json environment over ours.
    config = json.loads(Path(".chalice/config.json").read_text())
    SESSION.client("dynamodb")
    bootstrap.reset()
    try:
        stack = build()
        table = config.get("environment_variables", {}).get("TABLE_NAME", ENV["TABLE_NAME"])
        if table != ENV["TABLE_NAME"]:
            create_table(SESSION.client("dynamodb"), table)
        bootstrap.reset()  # drop the test wiring: handlers now build the real adapters lazily
        conversation_id = create(stack)
        join(stack, "ws-real", conversation_id)
        (surface,) = stack.frames("ws-real", "surface")
        assert surface["conversationId"] == conversation_id
    finally:
        bootstrap.reset()


@pytest.mark.parametrize("module", ["anthropic", "genai_prices", "pydantic"])
def test_the_http_and_websocket_handlers_never_import_the_sdk_or_the_price_library(
    module: str,
) -> None:
    code = f"import sys, app; assert {module!r} not in sys.modules, '{module} imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_toggles_closes_and_refused_turns_never_need_prices(stack: MotoStack) -> None:
    def no_prices() -> Any:
        raise AssertionError("the price library was asked for on a WebSocket or HTTP path")

    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    stack.services.ports.prices = no_prices
    join(stack, "ws-1", conversation_id)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    invoke(stack, "ws-1", conversation_id, "set-interval", 60)
    # Neither does the auto cache at creation, nor the savings the panel and routes show.
    create(stack, cacheRetention="auto")
    for path in ("/savings", f"/conversations/{conversation_id}", "/conversations"):
        assert stack.http.http.get(path, headers=stack.headers(OWNER)).status_code == 200

    def lambda_down(conversation_id: str, turn_index: int) -> None:
        raise RuntimeError("Lambda is down")

    stack.invoker.generate = lambda_down  # type: ignore[method-assign]
    turn = stack.http.http.post(
        f"/conversations/{conversation_id}/turns",
        headers=stack.headers(OWNER),
        body=json.dumps({"text": "hi"}),
    )
    assert turn.status_code == 502, turn.body
    closed = stack.http.http.post(
        f"/conversations/{conversation_id}/close", headers=stack.headers(OWNER)
    )
    assert closed.json_body["warming"]["status"] == "closed"


def test_a_warm_costs_eight_aws_calls_plus_one_post_per_subscriber(stack: MotoStack) -> None:
    conversation_id = create(stack)
    sealed_turn(stack, conversation_id)
    for connection_id in ("ws-1", "ws-2", "ws-3"):
        join(stack, connection_id, conversation_id)
    invoke(stack, "ws-1", conversation_id, "toggle", True)
    calls: list[str] = []
    services = stack.services
    for client in (
        services.store.client,  # type: ignore[attr-defined]
        services.timer.scheduler,  # type: ignore[attr-defined]
        services.sockets.client,  # type: ignore[attr-defined]
    ):
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    (schedule,) = stack.live_schedules(conversation_id)
    payload = json.loads(schedule["Target"]["Input"])
    stack.scheduler.delete_schedule(Name=schedule["Name"], GroupName=ENV["SCHEDULE_GROUP"])
    stack.clock.now = payload["target"]
    calls.clear()
    assert stack.http.lambda_.invoke("warm", payload).payload == {"action": "warmed"}
    posts = [c for c in calls if c == "PostToConnection"]
    assert len(posts) == 3
    # Load (the state and subscribers strongly consistent, the prompt's fixed part eventually
    # consistent: two queries), read the owner's spend today (the budget: a query of the day's
    # items), claim (an update of the state item), book the next tick, count the warm against the
    # day (its own small item), write the result (the state, with the conversation's savings
    # counters), put its history entry: no transaction, each write a single item under 1 KB.
    assert sorted(c for c in calls if c != "PostToConnection") == [
        "CreateSchedule",
        "PutItem",
        "Query",
        "Query",
        "Query",
        "UpdateItem",
        "UpdateItem",
        "UpdateItem",
    ]


def test_the_list_pages_over_http_and_refuses_a_bad_cursor(stack: MotoStack) -> None:
    created = [create(stack) for _ in range(3)]
    seen: list[str] = []
    path = "/conversations?limit=2"
    while True:
        response = stack.http.http.get(path, headers=stack.headers(OWNER))
        assert response.status_code == 200
        seen += [c["conversationId"] for c in response.json_body["conversations"]]
        cursor = response.json_body["nextCursor"]
        if cursor is None:
            break
        path = f"/conversations?limit=2&cursor={cursor}"
    assert sorted(seen) == sorted(created) and len(seen) == 3
    bad = stack.http.http.get("/conversations?cursor=%24%24", headers=stack.headers(OWNER))
    assert (bad.status_code, bad.json_body["error"]["code"]) == (400, "invalid_field")
    # Another user's cursor position lists nothing of this user's.
    other = stack.http.http.get(path.replace("limit=2", "limit=1"), headers=stack.headers("eve"))
    assert other.json_body["conversations"] == []
