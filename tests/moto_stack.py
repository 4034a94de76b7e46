"""The application wired to moto: real adapters for DynamoDB, Scheduler, SQS and the management
API, a fake model and a controllable clock.

Schedules never fire in moto and nothing consumes its queues, so `fire_due` does what AWS would:
Scheduler fires the due one-shot (its templated SQS target sends the Input to the tick queue, and
ActionAfterCompletion DELETE removes it), then the event source mapping receives each tick when it
is due and invokes the warm function with an SQS batch, deleting what succeeded. moto counts
`DelaySeconds` on the wall clock while the app runs on the fake clock: a tick's due time on the
fake clock is taken from the booking (its `DelaySeconds` after the fake time it was sent), and its
moto message is made visible when the fake clock reaches it.

The timer runs with a 150 s queue delay here instead of SQS's 900 s (the old direct-invoke
threshold), so the default 240 s interval exercises the Scheduler path and short intervals the
queue path; a test sets the timer's `queue_max_delay_ms` back to 900 s for the production split.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import moto.apigatewaymanagementapi.models as apigw_models
from chalice.local import LambdaContext
from chalice.test import Client, InvokeResponse, TestLambdaClient
from moto.core.exceptions import JsonRESTError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

import app as application
from chalicelib import auth, bootstrap
from chalicelib.adapters.lambdas import AsyncInvoker
from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.adapters.sockets import ManagementApiSockets
from chalicelib.adapters.store import DynamoStore, create_table
from chalicelib.adapters.store_table import client_config
from chalicelib.adapters.tick_queue import SqsTickQueue
from chalicelib.adapters.timer import PreciseTimer
from chalicelib.domain.timing import TIMINGS
from chalicelib.logs import record_fields
from chalicelib.services import Ports, Services
from tests.conftest import SCHEDULE_GROUP, SESSION, TABLE_NAME
from tests.fakes.ports import FakeClock, FakeModel

# The real price library: pure data, loaded once per test process.
PRICES = GenaiPriceBook()

API_ID = "abc123"
STAGE = "api"
REGION = "us-east-1"
TICK_QUEUE = "cache-warming-ticks"
TICK_DLQ = "cache-warming-dlq"
TICK_QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{DEFAULT_ACCOUNT_ID}/{TICK_QUEUE}"
TICK_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{TICK_QUEUE}"
TICK_DLQ_ARN = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{TICK_DLQ}"
ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/scheduler"
# The old direct-invoke threshold: 240 s goes by Scheduler, 20 s by the queue (module docstring).
TEST_QUEUE_MAX_DELAY_MS = 150_000
# The redrive policy of the deployed queue (infra/template.yaml).
MAX_RECEIVE_COUNT = 5
SECRET = "test-secret-of-at-least-thirty-two-bytes"
ENV = {
    "TABLE_NAME": TABLE_NAME,
    "SCHEDULE_GROUP": SCHEDULE_GROUP,
    "JWT_SECRET": SECRET,
    "WEBSOCKET_API_ID": API_ID,
    "WEBSOCKET_STAGE": STAGE,
    "TICK_QUEUE_URL": TICK_QUEUE_URL,
    "TICK_QUEUE_ARN": TICK_QUEUE_ARN,
    "SCHEDULER_ROLE_ARN": ROLE_ARN,
}


class GoneException(JsonRESTError):
    code = 410

    def __init__(self) -> None:
        super().__init__("GoneException", "the connection is gone")


class RecordingInvoker(AsyncInvoker):
    """moto runs Lambdas in Docker (absent here): record async invokes instead."""

    def __init__(self) -> None:
        super().__init__(lambda: SESSION.client("lambda"), "generate")
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function: str, payload: dict[str, Any]) -> None:
        self.calls.append((function, payload))


@dataclass
class Sent:
    """A tick the app (or Scheduler) sent to the tick queue, timed on the fake clock."""

    payload: dict[str, Any]
    delay_s: int
    at_ms: int

    @property
    def due_ms(self) -> int:
        return self.at_ms + self.delay_s * 1000

    @property
    def body(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"))


class RecordingTickQueue(SqsTickQueue):
    """The real SQS adapter, noting each send's fake time (moto's delays run on the wall clock)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(lambda: SESSION.client("sqs"), TICK_QUEUE_URL)
        self.clock = clock
        self.sent: list[Sent] = []
        self.backups: list[Sent] = []  # each booked tick's backup, sent with it
        self.retries: list[tuple[str, int]] = []

    def send(self, payload: dict[str, Any], delay_s: int) -> None:
        super().send(payload, delay_s)
        self.sent.append(Sent(dict(payload), delay_s, self.clock.now))

    def send_with_backup(self, payload: dict[str, Any], delay_s: int, backup_delay_s: int) -> None:
        super().send_with_backup(payload, delay_s, backup_delay_s)
        self.sent.append(Sent(dict(payload), delay_s, self.clock.now))
        backup = {**payload, "backup": True}
        self.backups.append(Sent(backup, backup_delay_s, self.clock.now))

    def retry_later(self, receipt: str, delay_s: int) -> None:
        super().retry_later(receipt, delay_s)
        self.retries.append((receipt, delay_s))


class TickCapture(logging.Handler):
    """The warm function's tick log lines (what an operator reads), captured during one invoke."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ticks: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.ticks.append(record_fields(record))


class TimedLambdaClient(TestLambdaClient):
    """chalice.test's Lambda client, but the context counts down from the function's configured
    timeout as Lambda's does (chalice.test gives every function 3 s)."""

    def invoke(self, function_name: str, payload: Any = None) -> InvokeResponse:
        scoped = self._config.scope(self._config.chalice_stage, function_name)
        context = LambdaContext(
            function_name,
            memory_size=scoped.lambda_memory_size,
            max_runtime_ms=scoped.lambda_timeout * 1000,
        )
        with self._patched_env_vars(scoped.environment_variables):
            response = self._app.handler_map[function_name](payload or {}, context)
        return InvokeResponse(payload=response)


def lambda_client(client: Client) -> Client:
    client._lambda_client = TimedLambdaClient(client._app, client._chalice_config)
    return client


@dataclass
class MotoStack:
    services: Services
    clock: FakeClock
    model: FakeModel
    invoker: RecordingInvoker
    http: Client
    queue: RecordingTickQueue
    gone: set[str] = field(default_factory=set)

    @property
    def sqs(self) -> Any:
        return SESSION.client("sqs")

    @property
    def scheduler(self) -> Any:
        return SESSION.client("scheduler")

    def token(self, owner: str, lifetime_s: int = auth.DEV_TOKEN_LIFETIME_S) -> str:
        """A dev token valid `lifetime_s` on this stack's clock: PyJWT checks `exp` on the wall
        clock at `$connect`, the app checks a connection's expiry on the stack's (fake) clock."""
        ahead_s = self.clock.now_ms() // 1000 - int(time.time())
        return auth.mint(owner, SECRET, lifetime_s=lifetime_s + max(0, ahead_s))

    def headers(self, owner: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(owner)}", "Content-Type": "application/json"}

    # --- WebSocket events, as API Gateway sends them -------------------------------------

    def ws_event(self, route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
        event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        return {
            "requestContext": {
                "routeKey": route,
                "eventType": event_type,
                "connectionId": connection_id,
                "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
                "stage": STAGE,
                "apiId": API_ID,
            },
            "isBase64Encoded": False,
            **extra,
        }

    def connect(self, connection_id: str, token: str | None) -> dict[str, Any]:
        query = {"token": token} if token is not None else None
        event = self.ws_event("$connect", connection_id, queryStringParameters=query)
        result: dict[str, Any] = application.app.handler_map["connect"](event, None)
        return result

    def send(self, connection_id: str, frame: dict[str, Any] | str) -> None:
        body = frame if isinstance(frame, str) else json.dumps(frame)
        application.app.handler_map["message"](
            self.ws_event("$default", connection_id, body=body), None
        )

    def disconnect(self, connection_id: str) -> None:
        application.app.handler_map["disconnect"](self.ws_event("$disconnect", connection_id), None)

    def frames(self, connection_id: str, frame_type: str | None = None) -> list[dict[str, Any]]:
        backend = apigw_models.apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION]
        connection = backend.connections.get(connection_id)
        frames = _frames_of(connection.data.decode() if connection else "")
        return [f for f in frames if frame_type is None or f["type"] == frame_type]

    # --- the Scheduler's side -------------------------------------------------------------

    def live_schedules(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        names = [
            s["Name"]
            for s in self.scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]
            if conversation_id is None or conversation_id in s["Name"]
        ]
        return [self.scheduler.get_schedule(Name=n, GroupName=SCHEDULE_GROUP) for n in names]

    def fire_due(self, jitter_s: float | None = None) -> dict[str, Any]:
        """Deliver the pending tick like AWS would, through to the warm: `{"action": ...}` of its
        last delivery (plus `batchItemFailures` when the warm function reported it failed)."""
        schedules = self.live_schedules()
        if schedules:
            assert len(schedules) == 1, [s["Name"] for s in schedules]
            self.fire_schedule(schedules[0], jitter_s)
        assert self.queue.sent, "nothing is booked"
        for _ in range(4):  # a Scheduler delivery is requeued once; more would be a bug
            sent = self.queue.sent.pop()  # the latest booking; older (stale) ones stay queued
            self.clock.now = max(self.clock.now, sent.due_ms)
            result = self.deliver(sent.body)
            if result["action"] != "requeued":
                return result
        raise AssertionError("the tick kept being requeued")

    def fire_schedule(self, schedule: dict[str, Any], jitter_s: float | None) -> None:
        at = datetime.strptime(schedule["ScheduleExpression"][3:-1], "%Y-%m-%dT%H:%M:%S")
        at_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
        # Scheduler fires anywhere in [at, at + 59 s].
        jitter = random.uniform(0, 59) if jitter_s is None else jitter_s
        self.clock.now = max(self.clock.now, at_ms + int(jitter * 1000))
        target = schedule["Target"]
        assert target["Arn"] == TICK_QUEUE_ARN  # the templated SQS SendMessage target
        self.sqs.send_message(QueueUrl=TICK_QUEUE_URL, MessageBody=target["Input"])
        self.queue.sent.append(Sent(json.loads(target["Input"]), 0, self.clock.now))
        if schedule["ActionAfterCompletion"] == "DELETE":
            self.scheduler.delete_schedule(Name=schedule["Name"], GroupName=SCHEDULE_GROUP)

    def deliver(self, body: str, *, copies: int = 1) -> dict[str, Any]:
        """The event source mapping's part: receive the tick (and `copies - 1` duplicates, as SQS
        may deliver), invoke the warm function with the batch, delete what it did not fail."""
        for _ in range(copies - 1):
            self.sqs.send_message(QueueUrl=TICK_QUEUE_URL, MessageBody=body)
        self.make_visible(body)
        messages = self.sqs.receive_message(
            QueueUrl=TICK_QUEUE_URL, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        mine = [m for m in messages if m["Body"] == body]
        assert len(mine) == copies, f"tick not receivable: {body}"
        booked_before = len(self.queue.sent)
        response, ticks = self.invoke_warm(sqs_event(messages))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(
                    QueueUrl=TICK_QUEUE_URL, ReceiptHandle=message["ReceiptHandle"]
                )
        # Older bookings consumed in this batch are delivered; what the warm booked stays.
        consumed = {m["Body"] for m in messages if m["MessageId"] not in failed}
        older, booked = self.queue.sent[:booked_before], self.queue.sent[booked_before:]
        self.queue.sent = [s for s in older if s.body not in consumed] + booked
        payload = json.loads(body)
        actions = [t["action"] for t in ticks if tick_key(t) == tick_key(payload)]
        result: dict[str, Any] = {"action": actions[-1] if actions else "failed"}
        if failed:
            result["batchItemFailures"] = sorted(failed)
        return result

    def invoke_warm(self, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Invoke the warm function; its answer and the tick lines it logged."""
        logger = logging.getLogger("cache_warming.ticks")
        capture, level = TickCapture(), logger.level
        logger.addHandler(capture)
        logger.setLevel(logging.INFO)
        try:
            response = self.http.lambda_.invoke("warm", event).payload
        finally:
            logger.removeHandler(capture)
            logger.setLevel(level)
        return dict(response), capture.ticks

    def make_visible(self, body: str) -> None:
        """The fake clock reached the tick's due time (or the end of its retry backoff): end its
        wall-clock delay or invisibility in moto. One message only: copies put back side by side
        carry the same body, and each comes due on its own delivery."""
        for message in self.moto_queue(TICK_QUEUE)._messages:
            if message.body == body:
                message.delayed_until = 0
                message.visible_at = 0
                return

    def moto_queue(self, name: str) -> Any:
        return sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[name]

    def queued_bodies(self, name: str = TICK_QUEUE) -> list[str]:
        """Every message in a queue, delayed, visible or in flight."""
        return [m.body for m in self.moto_queue(name)._messages]


def tick_key(tick: dict[str, Any]) -> tuple[Any, Any, Any]:
    return tick.get("conversationId"), tick.get("seq"), tick.get("target")


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Lambda's SQS event for received messages (the fields of Powertools' SqsEvent schema)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": TICK_QUEUE_ARN,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def create_tick_queues(sqs: Any) -> None:
    """The tick queue and its DLQ, as infra/template.yaml declares them."""
    sqs.create_queue(QueueName=TICK_DLQ)
    redrive = {"deadLetterTargetArn": TICK_DLQ_ARN, "maxReceiveCount": MAX_RECEIVE_COUNT}
    sqs.create_queue(
        QueueName=TICK_QUEUE,
        Attributes={
            "VisibilityTimeout": str(TIMINGS.warm_visibility_s),
            "RedrivePolicy": json.dumps(redrive),
        },
    )


def build(clock: FakeClock | None = None) -> MotoStack:
    """Call inside an active moto mock with ENV applied."""
    create_table(SESSION.client("dynamodb"), TABLE_NAME)
    SESSION.client("scheduler").create_schedule_group(Name=SCHEDULE_GROUP)
    create_tick_queues(SESSION.client("sqs"))
    clock = clock or FakeClock(int(datetime(2027, 1, 5, 12, 0, 7, tzinfo=UTC).timestamp() * 1000))
    model = FakeModel(clock)
    invoker = RecordingInvoker()
    queue = RecordingTickQueue(clock)
    endpoint = f"https://{API_ID}.execute-api.{REGION}.amazonaws.com/{STAGE}"
    services = Services(
        Ports(
            store=DynamoStore(
                TABLE_NAME,
                client_factory=lambda: SESSION.client("dynamodb", config=client_config()),
            ),
            timer=PreciseTimer(
                lambda: SESSION.client("scheduler"),
                queue,
                group=SCHEDULE_GROUP,
                queue_arn=TICK_QUEUE_ARN,
                role_arn=ROLE_ARN,
                dead_letter_arn=TICK_DLQ_ARN,
                queue_max_delay_ms=TEST_QUEUE_MAX_DELAY_MS,
            ),
            sockets=ManagementApiSockets(
                lambda: SESSION.client("apigatewaymanagementapi", endpoint_url=endpoint)
            ),
            clock=clock,
            model=lambda: model,
            invoker=lambda: invoker,
            prices=lambda: PRICES,
            new_id=lambda: uuid.uuid4().hex,
            tick_queue=queue,
        )
    )
    bootstrap.use(services)
    return MotoStack(services, clock, model, invoker, lambda_client(Client(application.app)), queue)


def patch_gone(monkeypatch: Any, gone: set[str]) -> None:
    """Make the management API answer 410 for the chosen connection ids, as AWS does."""
    original = apigw_models.ApiGatewayManagementApiBackend.post_to_connection

    def post(self: Any, data: bytes, connection_id: str) -> None:
        if connection_id in gone:
            raise GoneException()
        original(self, data, connection_id)

    monkeypatch.setattr(apigw_models.ApiGatewayManagementApiBackend, "post_to_connection", post)


def record_deleted(monkeypatch: Any) -> dict[str, list[dict[str, Any]]]:
    """Connection id -> the frames posted to it when DeleteConnection forgot it (moto's delete
    drops the connection with what it received)."""
    seen: dict[str, list[dict[str, Any]]] = {}
    original = apigw_models.ApiGatewayManagementApiBackend.delete_connection

    def delete(self: Any, connection_id: str) -> None:
        connection = self.connections.get(connection_id)
        seen[connection_id] = _frames_of(connection.data.decode() if connection else "")
        original(self, connection_id)

    monkeypatch.setattr(apigw_models.ApiGatewayManagementApiBackend, "delete_connection", delete)
    return seen


def _frames_of(data: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    frames, position = [], 0
    while position < len(data):
        frame, position = decoder.raw_decode(data, position)
        frames.append(frame)
    return frames


# --- driving the app like a front end ----------------------------------------------------

OWNER = "alice"


def create(stack: MotoStack, owner: str = OWNER, **body: Any) -> str:
    response = stack.http.http.post(
        "/conversations", headers=stack.headers(owner), body=json.dumps(body)
    )
    assert response.status_code == 201, response.body
    return str(response.json_body["conversationId"])


def sealed_turn(stack: MotoStack, conversation_id: str, text: str = "hello") -> None:
    response = stack.http.http.post(
        f"/conversations/{conversation_id}/turns",
        headers=stack.headers(OWNER),
        body=json.dumps({"text": text}),
    )
    assert response.status_code == 202, response.body
    index = response.json_body["index"]
    result = stack.http.lambda_.invoke(
        "generate", {"conversationId": conversation_id, "turnIndex": index}
    )
    assert result.payload == {"status": "sealed"}


def join(stack: MotoStack, connection_id: str, conversation_id: str, owner: str = OWNER) -> None:
    assert stack.connect(connection_id, stack.token(owner))["statusCode"] == 200
    stack.send(
        connection_id,
        {"type": "subscribe", "surfaceId": "cache-warming", "conversationId": conversation_id},
    )


def invoke(
    stack: MotoStack, connection_id: str, conversation_id: str, action: str, payload: Any
) -> None:
    stack.send(
        connection_id,
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": conversation_id,
            "action": f"cache-warming/{action}",
            "payload": payload,
        },
    )
