"""The local stack's tick path against a (tuned) moto server: the event source mapping poller, the
scheduler runner's SQS target, and the moto tuning the stack applies. Each test drives the pieces
through the boto3 clients the app and the stack use; the whole stack is covered by tests/e2e."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from devstack import moto_tuning
from devstack.esm import MappingConfig, SqsEventSourceMapping, failed_ids
from devstack.gateway import new_connection_id
from devstack.scheduler import SchedulerRunner
from devstack.ticks import create_tick_queues
from tests.devstack_helpers import client, wait_until


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    moto_tuning.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Function:
    """A warm function stand-in: records batches; `answer(event)` decides the response."""

    def __init__(self, answer: Any = None, hold_s: float = 0.0) -> None:
        self.answer = answer
        self.hold_s = hold_s
        self.batches: list[list[dict[str, Any]]] = []
        self.arrivals: list[float] = []
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> Any:
        with self._lock:
            self.batches.append(event["Records"])
            self.arrivals.append(time.time())
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.hold_s)
            return self.answer(event) if callable(self.answer) else self.answer
        finally:
            with self._lock:
                self.running -= 1

    def bodies(self) -> list[str]:
        return [record["body"] for batch in self.batches for record in batch]


def queue(moto_url: str, visibility_s: int = 1, max_receive: int = 3) -> tuple[Any, str, str, str]:
    """A fresh queue with a DLQ: (client, url, arn, dlq url)."""
    sqs = client("sqs", moto_url)
    prefix = f"t-{new_connection_id()[:8].lower().replace('=', '')}"
    dlq = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    redrive = {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": max_receive}
    url = sqs.create_queue(
        QueueName=f"{prefix}-ticks",
        Attributes={"VisibilityTimeout": str(visibility_s), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return sqs, url, arn["QueueArn"], dlq


def mapping(sqs: Any, url: str, arn: str, function: Function, **config: Any) -> Any:
    settings = {"wait_time_s": 2, **config}
    return SqsEventSourceMapping(sqs, url, arn, function, MappingConfig(**settings)).start()


def count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


# --- the event source mapping ------------------------------------------------------------


def test_a_delayed_tick_is_delivered_as_soon_as_its_delay_ends(moto_url: str) -> None:
    sqs, url, arn, _ = queue(moto_url)
    function = Function({"batchItemFailures": []})
    esm = mapping(sqs, url, arn, function)
    try:
        time.sleep(0.3)  # the pollers are in their long poll
        sent = time.time()
        sqs.send_message(QueueUrl=url, MessageBody='{"n":1}', DelaySeconds=1)
        assert wait_until(lambda: function.batches, timeout_s=5)
        late = function.arrivals[0] - (sent + 1)
        # Never before the delay; moto's own long poll would wake up to a second late.
        assert -0.05 <= late < 0.3, late
        assert wait_until(lambda: count(sqs, url) == 0)  # deleted after the success
    finally:
        esm.stop()


def test_batches_hold_at_most_ten_records_and_every_tick_arrives_once(moto_url: str) -> None:
    sqs, url, arn, _ = queue(moto_url, visibility_s=30)
    function = Function(None)
    for start in range(0, 25, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "MessageBody": json.dumps({"n": n})}
                for n in range(start, min(start + 10, 25))
            ],
        )
    esm = mapping(sqs, url, arn, function, initial_pollers=2)
    try:
        assert wait_until(lambda: len(function.bodies()) >= 25, timeout_s=10)
        assert all(1 <= len(batch) <= 10 for batch in function.batches)
        assert sorted(json.loads(b)["n"] for b in function.bodies()) == list(range(25))
        record = function.batches[0][0]
        assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert wait_until(lambda: count(sqs, url) == 0)
    finally:
        esm.stop()


def test_only_the_reported_failures_come_back_after_the_visibility_timeout(moto_url: str) -> None:
    sqs, url, arn, _ = queue(moto_url, visibility_s=1)

    def fail_b(event: dict[str, Any]) -> dict[str, Any]:
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "b"]
        first = all(r["attributes"]["ApproximateReceiveCount"] == "1" for r in event["Records"])
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed] if first else []}

    function = Function(fail_b)
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": x, "MessageBody": x} for x in ("a", "b", "c")]
    )
    esm = mapping(sqs, url, arn, function, initial_pollers=1)
    try:
        assert wait_until(lambda: function.bodies().count("b") == 2, timeout_s=6)
        assert sorted(function.bodies()) == ["a", "b", "b", "c"]
        (retry,) = [r for batch in function.batches[1:] for r in batch]
        assert retry["attributes"]["ApproximateReceiveCount"] == "2"
        # Back no sooner than the visibility timeout.
        assert function.arrivals[-1] - function.arrivals[0] >= 0.9
        assert wait_until(lambda: count(sqs, url) == 0)
    finally:
        esm.stop()


def redelivered(function: Function) -> set[str]:
    return {record["body"] for batch in function.batches[1:] for record in batch}


@pytest.mark.parametrize(
    "answer",
    [
        RuntimeError("function error"),
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
    ],
    ids=["function-error", "empty-identifier", "unknown-identifier"],
)
def test_a_failed_invocation_returns_the_whole_batch(moto_url: str, answer: Any) -> None:
    sqs, url, arn, _ = queue(moto_url, visibility_s=1)
    calls = {"n": 0}

    def once(event: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            if isinstance(answer, Exception):
                raise answer
            return answer
        return None

    function = Function(once)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": x, "MessageBody": x} for x in "xy"])
    esm = mapping(sqs, url, arn, function, initial_pollers=1)
    try:
        # Both records come back, not only the one named (or none named). Delivery is at least
        # once: with a 1 s visibility timeout, a loaded machine can see a record a third time.
        assert wait_until(lambda: redelivered(function) == {"x", "y"}, timeout_s=6)
        assert sorted(record["body"] for record in function.batches[0]) == ["x", "y"]
        assert wait_until(lambda: count(sqs, url) == 0)
    finally:
        esm.stop()


def test_a_tick_that_always_fails_ends_in_the_dlq_after_max_receive_count(moto_url: str) -> None:
    sqs, url, arn, dlq = queue(moto_url, visibility_s=1, max_receive=2)
    function = Function(RuntimeError("always"))
    function.answer = lambda event: (_ for _ in ()).throw(RuntimeError("always"))
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    esm = mapping(sqs, url, arn, function, initial_pollers=1)
    try:
        assert wait_until(lambda: count(sqs, dlq) == 1, timeout_s=8)
        assert function.bodies() == ["poison", "poison"]
        (message,) = sqs.receive_message(QueueUrl=dlq)["Messages"]
        assert message["Body"] == "poison"
    finally:
        esm.stop()


def test_pollers_scale_up_while_messages_keep_coming_but_never_past_the_ceiling(
    moto_url: str,
) -> None:
    sqs, url, arn, _ = queue(moto_url, visibility_s=30)
    function = Function(None, hold_s=0.5)
    for start in range(0, 100, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)],
        )
    esm = mapping(sqs, url, arn, function, batch_size=1, max_concurrency=8)
    try:
        assert wait_until(lambda: len(function.bodies()) == 100, timeout_s=20)
        assert 5 < function.most_running <= 8
        assert esm.pollers <= 8
    finally:
        esm.stop()


def test_partial_batch_responses_are_read_like_lambda_does() -> None:
    batch = ["m1", "m2"]
    assert failed_ids(None, batch) == []
    assert failed_ids({"batchItemFailures": []}, batch) == []
    assert failed_ids({"batchItemFailures": None}, batch) == []
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "m2"}]}, batch) == ["m2"]
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": None}]}, batch) is None
    assert failed_ids({"batchItemFailures": [{"itemId": "m2"}]}, batch) is None


# --- the scheduler runner's SQS target and the stack's queues ---------------------------------


def test_the_runner_sends_a_due_schedules_input_to_its_sqs_target(moto_url: str) -> None:
    scheduler = client("scheduler", moto_url)
    sqs, url, arn, _ = queue(moto_url)
    group = f"sqs-{new_connection_id()[:8].lower().replace('=', '')}"
    scheduler.create_schedule_group(Name=group)
    at = datetime.fromtimestamp(time.time() - 61, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    tick = {"conversationId": "c", "seq": 3, "target": 1}
    scheduler.create_schedule(
        Name="warm-c-3-x",
        GroupName=group,
        ScheduleExpression=f"at({at})",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": arn,
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "Input": json.dumps(tick),
        },
    )
    runner = SchedulerRunner(scheduler, None, [group], exact=True, sqs_client=sqs)
    assert [due.name for due in runner.tick()] == ["warm-c-3-x"]
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"]) == tick
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []


def test_the_stack_creates_the_tick_queue_as_the_template_does(moto_url: str) -> None:
    sqs = client("sqs", moto_url)
    prefix = f"app-{new_connection_id()[:6].lower().replace('=', '')}"
    queues = create_tick_queues(sqs, prefix)
    attributes = sqs.get_queue_attributes(QueueUrl=queues.url, AttributeNames=["All"])
    attributes = attributes["Attributes"]
    assert attributes["VisibilityTimeout"] == "1800"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert (redrive["deadLetterTargetArn"], int(redrive["maxReceiveCount"])) == (queues.dlq_arn, 5)
    assert queues.url.endswith(f"/{prefix}-ticks") and queues.arn.endswith(f":{prefix}-ticks")


# --- moto tuning ---------------------------------------------------------------------------


def test_a_failed_transaction_still_rolls_back_every_item_it_wrote(moto_url: str) -> None:
    dynamodb = client("dynamodb", moto_url)
    table = f"tx-{new_connection_id()[:8].lower().replace('=', '')}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "v": {"N": "2"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "b"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    items = dynamodb.scan(TableName=table)["Items"]
    assert items == [{"pk": {"S": "a"}, "v": {"N": "1"}}]


def test_an_index_query_returns_the_same_items_in_the_same_order(moto_url: str) -> None:
    """The tuned index query (filter on the index's hash key, then sort) answers like moto's."""
    from chalicelib.adapters.store import GSI_NAME, create_table

    dynamodb = client("dynamodb", moto_url)
    table = f"gsi-{new_connection_id()[:8].lower().replace('=', '')}"
    create_table(dynamodb, table)
    for n in range(30):
        owner = ("alice", "bob", "carol")[n % 3]
        item = {"pk": {"S": f"CONV#{n:02d}"}, "sk": {"S": "META"}}
        item.update(gsi1pk={"S": f"OWNER#{owner}"}, gsi1sk={"S": f"{(n * 7) % 30:013d}#{n:02d}"})
        dynamodb.put_item(TableName=table, Item=item)
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"CONV#{n:02d}"}, "sk": {"S": "T"}})

    def page(**extra: Any) -> list[str]:
        response = dynamodb.query(
            TableName=table,
            IndexName=GSI_NAME,
            KeyConditionExpression="gsi1pk = :o",
            ExpressionAttributeValues={":o": {"S": "OWNER#bob"}},
            **extra,
        )
        return [item["pk"]["S"] for item in response["Items"]]

    expected = sorted((f"{(n * 7) % 30:013d}#{n:02d}", f"CONV#{n:02d}") for n in range(1, 30, 3))
    assert page() == [pk for _, pk in expected]
    assert page(ScanIndexForward=False, Limit=4) == [pk for _, pk in reversed(expected)][:4]


def test_moto_in_a_process_of_its_own_serves_tuned_and_stops() -> None:
    from pathlib import Path

    from devstack.moto_server import start_process

    url, stop = start_process("127.0.0.1", 0, Path(__file__).resolve().parents[2])
    try:
        sqs = client("sqs", url)
        queue_url = sqs.create_queue(QueueName="in-a-process")["QueueUrl"]
        sent = time.time()
        sqs.send_message(QueueUrl=queue_url, MessageBody="x", DelaySeconds=1)
        (message,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]
        # Tuned: the long poll returns when the delay ends, not up to a second later.
        assert 0.95 <= time.time() - sent < 1.4
        assert message["Body"] == "x"
    finally:
        stop()
    with pytest.raises(Exception):  # noqa: B017 - connection refused, whichever botocore says
        client("sqs", url).list_queues()
