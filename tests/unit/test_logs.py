"""Structured logs: a handler's log line, parsed as JSON, carries its invocation's context, with
the same field names on the stdlib path (WebSocket, REST) and the Powertools path (warm, generate)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import app as application
from chalicelib import auth, bootstrap, log_context, logs
from chalicelib.services import TickReport
from chalicelib.services.tick_batch import TickBatch
from chalicelib.wire.ticks import TickRecord
from tests.fakes.ports import world

SECRET = "test-secret-of-at-least-thirty-two-bytes"
# What every line has, on both paths (docs/operations.md, "Structured logs").
BASE = {"level", "location", "message", "timestamp", "service", "name", "requestId"}


@dataclass
class FakeContext:
    """The attributes of Lambda's context object the handlers read."""

    aws_request_id: str = "lambda-req-1"
    function_name: str = "cache-warming-dev-fn"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run as in Lambda (the app's loggers get the JSON handlers); the loggers put back after."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "cache-warming-dev-fn")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    saved = [
        (logger, list(logger.handlers), logger.level, logger.propagate)
        for logger in map(logging.getLogger, logs._loggers)
    ]
    bootstrap.reset()
    w = world()
    bootstrap.use(w.services)
    yield w
    for logger, handlers, level, propagate in saved:
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)
    log_context.end()
    bootstrap.reset()


def json_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" not in line]  # EMF metric lines aside


def ws_event(route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": "MESSAGE",
            "connectionId": connection_id,
            "requestId": "api-req-7",
            "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "stage": "dev",
            "apiId": "abc",
        },
        "isBase64Encoded": False,
        **extra,
    }


def rest_event(conversation_id: str, token: str) -> dict[str, Any]:
    resource = "/conversations/{conversation_id}"
    return {
        "resource": resource,
        "path": f"/conversations/{conversation_id}",
        "httpMethod": "GET",
        "headers": {"Authorization": f"Bearer {token}"},
        "multiValueQueryStringParameters": None,
        "pathParameters": {"conversation_id": conversation_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "requestId": "api-req-3",
        },
        "body": None,
        "isBase64Encoded": False,
    }


def test_a_websocket_frame_line_has_the_connection_request_and_conversation(
    lambda_logs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def handle_frame(connection_id: str, body: str, arrived_ms: int | None) -> None:
        logging.getLogger("cache_warming").warning("frame of %s", connection_id)

    monkeypatch.setattr(lambda_logs.services, "handle_frame", handle_frame)
    frame = {"type": "ping", "requestId": "r1", "conversationId": "c0042"}
    event = ws_event("$default", "ws-9", body=json.dumps(frame))
    application.app.handler_map["message"](event, FakeContext())
    (line,) = json_lines(capsys.readouterr().out)
    assert set(line) >= BASE
    assert line["message"] == "frame of ws-9" and line["level"] == "WARNING"
    assert line["service"] == "websocket" and line["route"] == "$default"
    assert (line["requestId"], line["apiRequestId"]) == ("lambda-req-1", "api-req-7")
    assert (line["connectionId"], line["conversationId"]) == ("ws-9", "c0042")


def test_a_frame_that_is_not_json_still_logs_its_connection(
    lambda_logs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def handle_frame(connection_id: str, body: str, arrived_ms: int | None) -> None:
        logging.getLogger("cache_warming").warning("bad frame")

    monkeypatch.setattr(lambda_logs.services, "handle_frame", handle_frame)
    application.app.handler_map["message"](ws_event("$default", "ws-1", body="{nope"), None)
    (line,) = json_lines(capsys.readouterr().out)
    assert line["connectionId"] == "ws-1" and "conversationId" not in line
    assert "requestId" not in line  # no Lambda context, no request id: left out, not null


def test_a_frame_with_a_lone_surrogate_still_reaches_its_handler(
    lambda_logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    monkeypatch.setattr(lambda_logs.services, "handle_frame", lambda c, b, a: seen.append(b))
    application.app.handler_map["message"](ws_event("$default", "ws-1", body="\udcff"), None)
    assert seen == ["\udcff"]  # the frame is refused by its parser, not by the log context


def test_a_failed_rest_request_logs_its_exception_with_the_request_context(
    lambda_logs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def get_conversation(owner: str, cid: str) -> Any:
        raise RuntimeError("store on fire")

    monkeypatch.setattr(lambda_logs.services, "get_conversation", get_conversation)
    event = rest_event("c0007", auth.mint("alice", SECRET))
    response = application.app(event, FakeContext(aws_request_id="lambda-req-3"))
    assert response["statusCode"] == 500
    (line,) = json_lines(capsys.readouterr().out)
    assert BASE | {"exception", "exception_name", "stack_trace"} <= set(line)
    assert (line["service"], line["route"]) == ("rest", "GET /conversations/{conversation_id}")
    assert (line["requestId"], line["apiRequestId"]) == ("lambda-req-3", "api-req-3")
    assert line["conversationId"] == "c0007" and line["exception_name"] == "RuntimeError"
    assert line["name"] == application.app.log.name  # Chalice's own logger, formatted alike


def test_the_warm_tick_line_goes_through_powertools_with_the_same_fields(
    lambda_logs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def handle_tick(cid: str, seq: int, target: int, deadline: int | None) -> TickReport:
        logging.getLogger("cache_warming").info("warming %s", cid)
        return TickReport(cid, seq, target, "noop", extra={"status": "active"})

    monkeypatch.setattr(lambda_logs.services, "handle_tick", handle_tick)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-abc-def;Parent=12;Sampled=1")
    tick = {"conversationId": "c0001", "seq": 4, "target": 1000}
    application.app.handler_map["warm"](tick, FakeContext(aws_request_id="lambda-req-4"))
    inside, line = json_lines(capsys.readouterr().out)
    for each in (inside, line):
        assert BASE | {"xray_trace_id"} <= set(each)
        assert (each["service"], each["requestId"]) == ("warm", "lambda-req-4")
        assert (each["conversationId"], each["seq"]) == ("c0001", 4)
        assert each["xray_trace_id"] == "1-abc-def"
    assert (line["message"], line["event"], line["action"]) == ("tick", "tick", "noop")
    assert (line["target"], line["status"], line["name"]) == (1000, "active", "cache_warming.ticks")


def test_generate_lines_carry_the_turn(
    lambda_logs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def generate(cid: str, index: int, deadline: int | None) -> str:
        logging.getLogger("cache_warming").info("generating")
        return "noop"

    monkeypatch.setattr(lambda_logs.services, "generate", generate)
    event = {"conversationId": "c0003", "turnIndex": 2}
    application.app.handler_map["generate"](event, FakeContext())
    (line,) = json_lines(capsys.readouterr().out)
    assert (line["service"], line["conversationId"], line["turnId"]) == (
        "generate",
        "c0003",
        "t000002",
    )


def test_each_tick_of_a_batch_logs_its_own_conversation_and_seq(
    lambda_logs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    class FailingTicks:
        def handle(self, cid: str, seq: int, target: int, deadline: int | None) -> TickReport:
            raise RuntimeError(f"{cid} failed in {threading.current_thread().name}")

    logs.install("warm", powertools=True)
    log_context.start(service="warm", requestId="lambda-req-5")
    batch = TickBatch(FailingTicks(), lambda_logs.services.ports)  # type: ignore[arg-type]
    records = [
        TickRecord(f"m{n}", "", 1, json.dumps({"conversationId": f"c{n}", "seq": n, "target": 1}))
        for n in (1, 2)
    ]
    assert batch.handle(records).failed == ["m1", "m2"]
    lines = json_lines(capsys.readouterr().out)
    seen = {(line["conversationId"], line["seq"], line["requestId"]) for line in lines}
    assert seen == {("c1", 1, "lambda-req-5"), ("c2", 2, "lambda-req-5")}
    assert all(line["exception_name"] == "RuntimeError" for line in lines)


def test_both_formatters_write_the_same_fields() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("cache_warming").makeRecord(
            "cache_warming", logging.ERROR, __file__, 7, "oops %s", ("x",), sys.exc_info(), "f"
        )
    record.conversationId, record.seq = "c1", 3
    powertools = logs._powertools_handler("warm").formatter
    assert powertools is not None
    stdlib = json.loads(logs.JsonFormatter().format(record))
    assert {**stdlib, "service": "warm"} == json.loads(powertools.format(record))
    assert {"exception", "exception_name", "stack_trace", "conversationId", "seq"} <= set(stdlib)


def test_outside_lambda_the_hosts_logging_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    logger = logging.getLogger("cache_warming")
    handlers, propagate = list(logger.handlers), logger.propagate
    bootstrap.use(world().services)
    try:
        application.app.handler_map["warm"]({"Records": []}, FakeContext())
    finally:
        bootstrap.reset()
    assert (logger.handlers, logger.propagate) == (handlers, propagate)
    assert log_context.current() == {}  # the invocation's context ends with it
