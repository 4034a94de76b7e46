"""The application wired to moto: real adapters for DynamoDB, Scheduler and the management API,
a fake model and a controllable clock. Schedules never fire in moto, so `fire_due` does what
EventBridge Scheduler would: pick the due one-shot, deliver its Input to the warm function, and
delete it (ActionAfterCompletion DELETE)."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import moto.apigatewaymanagementapi.models as apigw_models
from chalice.local import LambdaContext
from chalice.test import Client, InvokeResponse, TestLambdaClient
from moto.core.exceptions import JsonRESTError
from moto.core.models import DEFAULT_ACCOUNT_ID

import app as application
from chalicelib import auth, bootstrap
from chalicelib.adapters.lambdas import AsyncInvoker
from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.adapters.sockets import ManagementApiSockets
from chalicelib.adapters.store import DynamoStore, create_table
from chalicelib.adapters.timer import PreciseTimer
from chalicelib.services import Ports, Services
from tests.conftest import SCHEDULE_GROUP, SESSION, TABLE_NAME
from tests.fakes.ports import FakeClock, FakeModel

# The real price library: pure data, loaded once per test process.
PRICES = GenaiPriceBook()

API_ID = "abc123"
STAGE = "api"
REGION = "us-east-1"
WARM_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:warm"
ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/scheduler"
SECRET = "test-secret-of-at-least-thirty-two-bytes"
ENV = {
    "TABLE_NAME": TABLE_NAME,
    "SCHEDULE_GROUP": SCHEDULE_GROUP,
    "JWT_SECRET": SECRET,
    "WEBSOCKET_API_ID": API_ID,
    "WEBSOCKET_STAGE": STAGE,
    "WARM_FUNCTION_ARN": WARM_ARN,
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
    gone: set[str] = field(default_factory=set)

    @property
    def scheduler(self) -> Any:
        return SESSION.client("scheduler")

    def token(self, owner: str) -> str:
        return auth.mint(owner, SECRET)

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
        data = connection.data.decode() if connection else ""
        decoder = json.JSONDecoder()
        frames, position = [], 0
        while position < len(data):
            frame, position = decoder.raw_decode(data, position)
            frames.append(frame)
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
        """Fire the one live schedule (or the pending direct invoke) like AWS would."""
        schedules = self.live_schedules()
        if schedules:
            assert len(schedules) == 1, [s["Name"] for s in schedules]
            schedule = schedules[0]
            at = datetime.strptime(schedule["ScheduleExpression"][3:-1], "%Y-%m-%dT%H:%M:%S")
            at_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
            # Scheduler fires anywhere in [at, at + 59 s].
            jitter = random.uniform(0, 59) if jitter_s is None else jitter_s
            self.clock.now = max(self.clock.now, at_ms + int(jitter * 1000))
            payload = json.loads(schedule["Target"]["Input"])
            if schedule["ActionAfterCompletion"] == "DELETE":
                self.scheduler.delete_schedule(Name=schedule["Name"], GroupName=SCHEDULE_GROUP)
        else:
            warm_calls = [p for f, p in self.invoker.calls if f == WARM_ARN]
            assert warm_calls, "nothing is booked"
            payload = warm_calls[-1]
            self.invoker.calls = [(f, p) for f, p in self.invoker.calls if p is not payload]
        response = self.http.lambda_.invoke("warm", payload)
        return dict(response.payload)


def build(clock: FakeClock | None = None) -> MotoStack:
    """Call inside an active moto mock with ENV applied."""
    create_table(SESSION.client("dynamodb"), TABLE_NAME)
    SESSION.client("scheduler").create_schedule_group(Name=SCHEDULE_GROUP)
    clock = clock or FakeClock(int(datetime(2027, 1, 5, 12, 0, 7, tzinfo=UTC).timestamp() * 1000))
    model = FakeModel(clock)
    invoker = RecordingInvoker()
    endpoint = f"https://{API_ID}.execute-api.{REGION}.amazonaws.com/{STAGE}"
    services = Services(
        Ports(
            store=DynamoStore(TABLE_NAME, client_factory=lambda: SESSION.client("dynamodb")),
            timer=PreciseTimer(
                lambda: SESSION.client("scheduler"),
                invoker,
                group=SCHEDULE_GROUP,
                warm_function_arn=WARM_ARN,
                role_arn=ROLE_ARN,
            ),
            sockets=ManagementApiSockets(
                lambda: SESSION.client("apigatewaymanagementapi", endpoint_url=endpoint)
            ),
            clock=clock,
            model=lambda: model,
            invoker=lambda: invoker,
            prices=lambda: PRICES,
            new_id=lambda: uuid.uuid4().hex,
        )
    )
    bootstrap.use(services)
    return MotoStack(services, clock, model, invoker, lambda_client(Client(application.app)))


def patch_gone(monkeypatch: Any, gone: set[str]) -> None:
    """Make the management API answer 410 for the chosen connection ids, as AWS does."""
    original = apigw_models.ApiGatewayManagementApiBackend.post_to_connection

    def post(self: Any, data: bytes, connection_id: str) -> None:
        if connection_id in gone:
            raise GoneException()
        original(self, data, connection_id)

    monkeypatch.setattr(apigw_models.ApiGatewayManagementApiBackend, "post_to_connection", post)


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
