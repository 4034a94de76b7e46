"""The local stack's runtime pieces, each against the real client that talks to it in the stack.

The app reaches these stand-ins only through boto3 (``lambda``, ``apigatewaymanagementapi``,
``scheduler``) and a browser's WebSocket, so each test drives them through exactly those clients:
if botocore accepts the answers here, the unchanged app does too. Handlers are small fakes, which
keeps every test fast and independent of the app's state; the whole stack is covered by
``tests/e2e``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.adapters.sockets import ManagementApiSockets
from devstack.gateway import WebSocketGateway, new_connection_id
from devstack.lambdas import LambdaEmulator, function_key
from devstack.scheduler import SchedulerRunner, parse_at
from tests.devstack_helpers import FakeWsApp, client, wait_until

WARM_ARN = "arn:aws:lambda:us-east-1:123456789012:function:cache-warming-dev-warm"
# --- Lambda invoke emulator ---------------------------------------------------------------


class Recorder:
    """A Lambda handler that records its events; `hold` blocks it until released."""

    def __init__(self, result: Any = None, hold: bool = False) -> None:
        self.result = result
        self.events: list[Any] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, event: Any, context: Any) -> Any:
        self.events.append(event)
        self.started.set()
        self.release.wait(10)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def lambdas() -> Iterator[tuple[LambdaEmulator, dict[str, Recorder]]]:
    handlers = {
        "warm": Recorder({"action": "warmed"}, hold=True),
        "generate": Recorder({"status": "sealed"}),
        "broken": Recorder(RuntimeError("boom")),
    }
    emulator = LambdaEmulator(handlers, workers=4).start()
    yield emulator, handlers
    for handler in handlers.values():
        handler.release.set()
    emulator.stop()


def test_function_names_and_arns_map_to_handlers() -> None:
    assert function_key("arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Awarm") == "warm"
    emulator = LambdaEmulator({"warm": Recorder(), "generate": Recorder()})
    assert emulator.resolve("warm") == "warm"
    assert emulator.resolve(WARM_ARN) == "warm"
    assert emulator.resolve("cache-warming-dev-generate") == "generate"
    assert emulator.resolve("arn:aws:lambda:us-east-1:1:function:other") is None


def test_event_invoke_answers_202_at_once_and_runs_in_the_pool(
    lambdas: tuple[LambdaEmulator, dict[str, Recorder]],
) -> None:
    emulator, handlers = lambdas
    lam = client("lambda", emulator.url)
    started = time.monotonic()
    response = lam.invoke(
        FunctionName=WARM_ARN, InvocationType="Event", Payload=b'{"conversationId":"c","seq":1}'
    )
    assert response["StatusCode"] == 202
    # The handler is still blocked: the invoke did not wait for it.
    assert time.monotonic() - started < 2
    assert handlers["warm"].started.wait(5)
    assert not handlers["warm"].release.is_set()
    assert handlers["warm"].events == [{"conversationId": "c", "seq": 1}]
    # A held warm never blocks other invokes.
    sync = lam.invoke(FunctionName="generate", Payload=b'{"turnIndex":0}')
    assert sync["StatusCode"] == 200
    assert json.loads(sync["Payload"].read()) == {"status": "sealed"}


def test_request_response_returns_the_result_or_lambdas_error_document(
    lambdas: tuple[LambdaEmulator, dict[str, Recorder]],
) -> None:
    emulator, handlers = lambdas
    lam = client("lambda", emulator.url)
    ok = lam.invoke(
        FunctionName="cache-warming-dev-generate",
        InvocationType="RequestResponse",
        Payload=b'{"conversationId":"c","turnIndex":2}',
    )
    assert ok["StatusCode"] == 200 and "FunctionError" not in ok
    assert json.loads(ok["Payload"].read()) == {"status": "sealed"}
    assert handlers["generate"].events == [{"conversationId": "c", "turnIndex": 2}]

    failed = lam.invoke(FunctionName="broken", Payload=b"{}")
    assert failed["FunctionError"] == "Unhandled"
    document = json.loads(failed["Payload"].read())
    assert document["errorType"] == "RuntimeError" and document["errorMessage"] == "boom"

    with pytest.raises(ClientError) as missing:
        lam.invoke(FunctionName="nope", InvocationType="Event", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# --- WebSocket gateway --------------------------------------------------------------------


@pytest.fixture
def gateway() -> Iterator[tuple[WebSocketGateway, FakeWsApp]]:
    fake = FakeWsApp()
    handlers = {"connect": fake.connect, "message": fake.message, "disconnect": fake.disconnect}
    gateway = WebSocketGateway(handlers).start()
    yield gateway, fake
    gateway.stop()


def test_connection_ids_look_like_api_gateways() -> None:
    ids = {new_connection_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 16 and i.endswith("=") and "/" not in i and "+" not in i for i in ids)


def test_a_bad_token_is_refused_with_401(gateway: tuple[WebSocketGateway, FakeWsApp]) -> None:
    server, fake = gateway
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws_url}/?token=bad", open_timeout=5)
    assert refused.value.response.status_code == 401
    event = fake.events[0]
    assert event["requestContext"]["routeKey"] == "$connect"
    assert event["requestContext"]["eventType"] == "CONNECT"
    assert event["queryStringParameters"] == {"token": "bad"}
    assert server.connection_ids() == []


def test_the_real_connect_handler_refuses_a_forged_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import app
    from chalicelib import bootstrap

    monkeypatch.setenv("JWT_SECRET", "a-secret-for-the-gateway-test-of-32-bytes")
    monkeypatch.delenv("JWT_JWKS_URL", raising=False)
    bootstrap.reset()
    server = WebSocketGateway({"connect": app.handler_map["connect"]}).start()
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{server.ws_url}/?token=forged.token.here", open_timeout=5)
        assert refused.value.response.status_code == 401
    finally:
        server.stop()
        bootstrap.reset()


def test_messages_become_default_events_and_pushes_reach_the_socket(
    gateway: tuple[WebSocketGateway, FakeWsApp],
) -> None:
    server, fake = gateway
    management = client("apigatewaymanagementapi", server.management_url)
    with connect(f"{server.ws_url}/?token=good&x=1", open_timeout=5) as ws:
        ws.send('{"type":"ping"}')
        assert wait_until(lambda: "$default" in fake.routes())
        connect_event, message_event = fake.events[0], fake.events[1]
        context = message_event["requestContext"]
        connection_id = context["connectionId"]
        assert connect_event["requestContext"]["connectionId"] == connection_id
        assert connect_event["queryStringParameters"] == {"token": "good", "x": "1"}
        assert connect_event["headers"]["Host"]
        assert context["eventType"] == "MESSAGE" and context["stage"] == "api"
        assert context["apiId"] == "local" and context["domainName"] == server.domain_name
        assert message_event["body"] == '{"type":"ping"}'
        assert message_event["isBase64Encoded"] is False

        # The id ends in "=", so botocore URL-quotes it: the gateway must unquote it.
        management.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"pong"}')
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
        described = management.get_connection(ConnectionId=connection_id)
        assert described["Identity"]["SourceIp"] == "127.0.0.1"
        # The app's own adapter, as the Lambdas use it.
        sockets = ManagementApiSockets(lambda: management)
        assert sockets.post(connection_id, {"type": "update"}) == "delivered"
        assert json.loads(ws.recv(timeout=5)) == {"type": "update"}


def test_a_closed_socket_answers_410_gone(gateway: tuple[WebSocketGateway, FakeWsApp]) -> None:
    server, fake = gateway
    management = client("apigatewaymanagementapi", server.management_url)
    with connect(f"{server.ws_url}/?token=good", open_timeout=5):
        assert wait_until(lambda: len(server.connection_ids()) == 1)
        connection_id = server.connection_ids()[0]
    assert fake.disconnected.wait(5)
    disconnect_event = fake.events[-1]
    assert disconnect_event["requestContext"]["routeKey"] == "$disconnect"
    assert disconnect_event["requestContext"]["connectionId"] == connection_id

    with pytest.raises(ClientError) as gone:
        management.post_to_connection(ConnectionId=connection_id, Data=b"{}")
    assert gone.value.response["Error"]["Code"] == "GoneException"
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    assert type(gone.value).__name__ == "GoneException"
    assert ManagementApiSockets(lambda: management).post(connection_id, {"type": "x"}) == "gone"
    # An id that never existed is gone too, with or without the stage prefix.
    bare = client("apigatewaymanagementapi", f"http://127.0.0.1:{server.management_port}")
    with pytest.raises(ClientError) as unknown:
        bare.delete_connection(ConnectionId="never-connected=")
    assert unknown.value.response["Error"]["Code"] == "GoneException"


# --- Scheduler runner ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def at_expression(epoch_s: float) -> str:
    return "at(" + datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + ")"


def book(scheduler: Any, group: str, name: str, at_s: float, payload: dict[str, Any]) -> None:
    scheduler.create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=at_expression(at_s),
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": WARM_ARN,
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "Input": json.dumps(payload),
        },
    )


def names(scheduler: Any, group: str) -> list[str]:
    return sorted(s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"])


def test_parse_at_reads_one_shot_expressions_only() -> None:
    assert (
        parse_at("at(2027-01-05T12:00:00)", "UTC")
        == datetime(2027, 1, 5, 12, tzinfo=UTC).timestamp()
    )
    assert (
        parse_at("at(2027-01-05T13:00:00)", "Europe/Paris")
        == datetime(2027, 1, 5, 12, tzinfo=UTC).timestamp()
    )
    assert parse_at("rate(5 minutes)", "UTC") is None
    assert parse_at("at(yesterday)", "UTC") is None


def test_the_runner_fires_a_due_schedule_and_deletes_it(moto_url: str) -> None:
    warm = Recorder({"action": "warmed"})
    emulator = LambdaEmulator({"warm": warm}).start()
    try:
        scheduler = client("scheduler", moto_url)
        group = f"runner-{new_connection_id()[:8].lower()}"
        scheduler.create_schedule_group(Name=group)
        now = time.time()
        book(scheduler, group, "warm-due", now - 61, {"conversationId": "c", "seq": 3, "target": 1})
        book(
            scheduler,
            group,
            "warm-later",
            now + 600,
            {"conversationId": "c", "seq": 4, "target": 2},
        )
        runner = SchedulerRunner(scheduler, client("lambda", emulator.url), [group], exact=True)
        fired = runner.tick()
        assert [due.name for due in fired] == ["warm-due"]
        assert wait_until(lambda: warm.events == [{"conversationId": "c", "seq": 3, "target": 1}])
        assert names(scheduler, group) == ["warm-later"]
        assert runner.tick() == []
    finally:
        emulator.stop()


def test_jitter_is_drawn_once_per_schedule_and_delays_the_fire(moto_url: str) -> None:
    warm = Recorder({"action": "warmed"})
    emulator = LambdaEmulator({"warm": warm}).start()
    try:
        scheduler = client("scheduler", moto_url)
        group = f"jitter-{new_connection_id()[:8].lower()}"
        scheduler.create_schedule_group(Name=group)
        at_s = float(int(time.time()) // 60 * 60 + 120)
        book(
            scheduler, group, "warm-jittered", at_s, {"conversationId": "c", "seq": 1, "target": 1}
        )
        draws: list[float] = []

        def jitter() -> float:
            draws.append(30.0)
            return 30.0

        clock = {"now": at_s + 10}
        runner = SchedulerRunner(
            scheduler,
            client("lambda", emulator.url),
            [group],
            jitter=jitter,
            clock=lambda: clock["now"],
        )
        assert runner.tick() == []  # at + 10 s: inside the window, before this one's draw
        assert runner.tick() == []
        clock["now"] = at_s + 31
        assert [due.name for due in runner.tick()] == ["warm-jittered"]
        assert draws == [30.0]
        assert wait_until(lambda: len(warm.events) == 1)
        assert names(scheduler, group) == []
    finally:
        emulator.stop()
