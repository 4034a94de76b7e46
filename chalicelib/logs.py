"""Structured logs and CloudWatch metrics: one JSON object per log line, EMF metrics per warm and turn.

Every line of the app's loggers (`cache_warming` and the Chalice app's) is one JSON object with
the same field names in every function (docs/operations.md, "Structured logs"):

- `level`, `location`, `message`, `timestamp`, `service`, `name`, and on errors `exception`,
  `exception_name`, `stack_trace`; `xray_trace_id` when Lambda passes a trace: the names and
  layout of Powertools' `LambdaPowertoolsFormatter` (aws_lambda_powertools/logging/formatter.py);
- the invocation's context, set at the edge: `requestId` (Lambda's `aws_request_id`),
  `apiRequestId` and `route` (API Gateway's request id and route), `connectionId` (WebSocket),
  `conversationId`, `turnId`, `seq` (a tick's);
- the caller's `extra` fields (the tick line's `event`, `action`, `latenessMs`, ...).

The warm and generate functions format through Powertools' Logger: they import Powertools for
their metrics anyway. The WebSocket and REST handlers use `JsonFormatter` below, which writes the
same fields, because importing Powertools' logger costs their cold start about 5 ms of ~200 ms
(`python -X importtime`, 2026-12-07). The handlers are attached only inside Lambda
(`AWS_LAMBDA_FUNCTION_NAME` is one of Lambda's defined runtime environment variables, "Defined
runtime environment variables", Lambda Developer Guide, read 2026-12-07); elsewhere (tests, the
local stack) the host's logging configuration stays as it is.

Metrics go through Powertools' embedded metric format (a JSON log line CloudWatch turns into
metrics, no API call). Powertools is imported inside functions: only the warm and generate
Lambdas pay for it, never the WebSocket handlers' cold start.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from chalicelib import log_context
from chalicelib.domain.conversation import turn_id
from chalicelib.metrics import namespace
from chalicelib.services.ticks import TickReport

APP_LOGGER = "cache_warming"
log = logging.getLogger(APP_LOGGER)
tick_log = logging.getLogger(f"{APP_LOGGER}.ticks")
# What every LogRecord has; anything else on a record is a structured field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
_loggers: list[str] = [APP_LOGGER]


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: the context the filter added and the caller's extra."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class ContextFilter(logging.Filter):
    """Adds the invocation's context to each record; a caller's own extra field wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in log_context.current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class StdoutHandler(logging.Handler):
    """One line per record on the current `sys.stdout` (Lambda sends stdout to CloudWatch Logs)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never fail the handler
            self.handleError(record)


class JsonFormatter(logging.Formatter):
    """The fields of Powertools' formatter (as the warm function configures it), without
    importing Powertools: RFC 3339 UTC timestamps, None values left out."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "name": record.name,
            **record_fields(record),
        }
        if isinstance(record.exc_info, tuple) and record.exc_info[0] is not None:
            line |= _exception_fields(record.exc_info, self.formatException(record.exc_info))
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            line["xray_trace_id"] = trace.split(";")[0].replace("Root=", "")
        clean = {key: value for key, value in line.items() if value is not None}
        return json.dumps(clean, default=str, separators=(",", ":"), ensure_ascii=False)


def _exception_fields(exc_info: Any, text: str) -> dict[str, Any]:
    kind, error, trace = exc_info
    return {
        "exception": text,
        "exception_name": kind.__name__,
        "exception_notes": getattr(error, "__notes__", None),
        "stack_trace": {
            "type": kind.__name__,
            "value": str(error),
            "module": type(error).__module__,
            "frames": [
                {"file": f.filename, "line": f.lineno, "function": f.name, "statement": f.line}
                for f in traceback.extract_tb(trace)
            ],
        },
    }


# --- Attaching the handlers (once per logger, inside Lambda only) ----------------------------


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@functools.cache
def _json_handler() -> logging.Handler:
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    return handler


@functools.cache
def _powertools_handler(service: str) -> logging.Handler:
    from aws_lambda_powertools import Logger

    # `name`: the emitting logger's name, the key Powertools' copy_config_to_registered_loggers
    # adds; the handler is ours so that it writes to the current stdout.
    logger = Logger(
        service=service,
        level="INFO",
        utc=True,
        use_rfc3339=True,
        logger_handler=StdoutHandler(),
        name="%(name)s",
    )
    handler: logging.Handler = logger.logger_handler
    handler.addFilter(ContextFilter())
    return handler


def install(service: str, powertools: bool = False) -> None:
    """Route the app's loggers through the JSON handler (Powertools' for `powertools`); as
    Powertools' copy_config_to_registered_loggers does: INFO, not propagated to the runtime's
    root handler (which would print each line a second time, as text)."""
    handler = _powertools_handler(service) if powertools else _json_handler()
    for name in _loggers:
        logger = logging.getLogger(name)
        if handler not in logger.handlers:
            logger.handlers = [handler]
            logger.setLevel(logging.INFO)
            logger.propagate = False


# --- The edge: context per invocation --------------------------------------------------------


def _begin(service: str, context: Any, powertools: bool = False, **fields: object) -> None:
    if in_lambda():
        install(service, powertools)
    request_id = getattr(context, "aws_request_id", None)
    log_context.start(service=service, requestId=request_id, **fields)


def wire(app: Any) -> None:
    """Context for every REST and WebSocket invocation of `app` (a Chalice app), and its own
    logger (Chalice's `app.log`) formatted like the others."""
    if app.log.name not in _loggers:
        _loggers.append(app.log.name)
    app.register_middleware(_on_http, "http")
    app.register_middleware(_on_websocket, "websocket")


def _on_http(request: Any, get_response: Callable[[Any], Any]) -> Any:
    context = request.context or {}
    _begin(
        "rest",
        request.lambda_context,
        apiRequestId=context.get("requestId"),
        route=f"{request.method} {request.path}",
        conversationId=(request.uri_params or {}).get("conversation_id"),
    )
    return _run(get_response, request)


def _on_websocket(event: Any, get_response: Callable[[Any], Any]) -> Any:
    context = event.to_dict().get("requestContext") or {}
    route = context.get("routeKey")
    _begin(
        "websocket",
        event.context,
        apiRequestId=context.get("requestId"),
        route=route,
        connectionId=event.connection_id,
        conversationId=_conversation_of(event.to_dict().get("body"))
        if route == "$default"
        else None,
    )
    return _run(get_response, event)


class _Addressed(msgspec.Struct, rename="camel"):
    conversation_id: str | None = None


def _conversation_of(body: object) -> str | None:
    """The frame's `conversationId`, if it has one (the frame is parsed for real later)."""
    if not isinstance(body, str | bytes):
        return None
    try:
        return msgspec.json.decode(body, type=_Addressed).conversation_id
    except (msgspec.MsgspecError, UnicodeError):  # a str frame may hold lone surrogates
        return None


def _run(handler: Callable[..., Any], *args: Any) -> Any:
    try:
        return handler(*args)
    except Exception:
        log.exception("invocation failed")  # with its context; Lambda logs it again, as text
        raise
    finally:
        log_context.end()


def lambda_handler(service: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Context for a pure Lambda function's invocations (`event`, `context`), Powertools' Logger
    formatting its lines. Picks the conversation, tick seq and turn out of a direct invoke."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapped(event: Any, context: Any) -> Any:
            fields = event if isinstance(event, dict) else {}
            index = fields.get("turnIndex")
            _begin(
                service,
                context,
                powertools=True,
                conversationId=fields.get("conversationId"),
                seq=fields.get("seq"),
                turnId=turn_id(index) if isinstance(index, int) else None,
            )
            return _run(handler, event, context)

        return wrapped

    return decorate


# --- The tick line and the metrics -----------------------------------------------------------


def tick_record(report: TickReport) -> dict[str, object]:
    return {
        "event": "tick",
        "conversationId": report.conversation_id,
        "seq": report.seq,
        "target": report.target,
        "action": report.action,
        "latenessMs": report.lateness_ms,
        "usage": report.usage.to_dict() if report.usage else None,
        "costUsd": report.cost_usd,
        "error": report.error,
        **report.extra,
    }


class TickLineFormatter(logging.Formatter):
    """The tick record alone, as one JSON line (the local stack's stdout, bench/stack.py)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), separators=(",", ":"), default=str)


def log_tick(report: TickReport) -> None:
    # Its conversation and seq are the line's own fields: the invocation may be a whole batch.
    tick_log.info("tick", extra=tick_record(report))
    if report.action in ("warmed", "warm-failed"):
        emit_tick_metrics(report)


def emit_tick_metrics(report: TickReport) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace=namespace(), service="warm")
    if report.action == "warmed":
        metrics.add_metric(name="Warms", unit=MetricUnit.Count, value=1)
        if report.cost_usd is not None:
            metrics.add_metric(name="WarmCostUsd", unit=MetricUnit.NoUnit, value=report.cost_usd)
        hit = report.usage.cache_hit_pct if report.usage else None
        if hit is not None:
            metrics.add_metric(name="CacheHitPct", unit=MetricUnit.Percent, value=hit)
    else:
        metrics.add_metric(name="WarmFailures", unit=MetricUnit.Count, value=1)
    if report.lateness_ms is not None:
        metrics.add_metric(
            name="TickLatenessMs", unit=MetricUnit.Milliseconds, value=report.lateness_ms
        )
    # Per-conversation detail stays in the log line, not in a (costly) metric dimension.
    metrics.add_metadata(key="conversationId", value=report.conversation_id)
    metrics.flush_metrics()


def emit_turn_metrics(status: str) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    name = {"sealed": "TurnsSealed", "aborted": "TurnsAborted", "failed": "TurnsFailed"}.get(status)
    if name is None:
        return
    metrics = Metrics(namespace=namespace(), service="generate")
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
