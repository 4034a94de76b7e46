"""Chalice wiring only: each handler parses its input at the edge, calls one use case, responds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Response, WebsocketEvent

from chalicelib import auth, bootstrap, logs
from chalicelib.domain.errors import Refused
from chalicelib.logs import emit_turn_metrics, log_tick
from chalicelib.wire import commands, ticks, views
from chalicelib.wire.errors import STATUS, http_body, refusal_of
from chalicelib.wire.frames import conversation_id_of

app = Chalice(app_name="cache-warming")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.log.setLevel("INFO")
logs.wire(app)  # JSON log lines with each invocation's request, connection and conversation


# --- HTTP -----------------------------------------------------------------------------------


def _body() -> dict[str, Any]:
    return commands.decode_body(app.current_request.raw_body if app.current_request else None)


def _owner() -> str:
    headers = dict(app.current_request.headers) if app.current_request else {}
    return bootstrap.verifier().verify(auth.bearer(headers))


def api(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Every refusal and failure as the documented `{"error": {"code", "message"}}` response."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:  # the client gets a stable code, the log the trace
            if not isinstance(error, Refused):
                app.log.exception("request failed")
            refusal = refusal_of(error)
            return Response(
                status_code=STATUS[refusal.code],
                body=http_body(refusal),
                headers={"Content-Type": "application/json"},
            )

    return wrapped


@app.route("/health", methods=["GET"], cors=True)
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/conversations", methods=["POST"], cors=True)
@api
def create_conversation() -> Response:
    command = commands.create_conversation(_body())
    conversation = bootstrap.services().create_conversation(_owner(), command)
    return Response(status_code=201, body=views.conversation_view(conversation))


@app.route("/conversations", methods=["GET"], cors=True)
@api
def list_conversations() -> dict[str, Any]:
    query = app.current_request.query_params if app.current_request else None
    command = commands.list_conversations(query)
    page = bootstrap.services().list_conversations(_owner(), command.limit, command.after)
    return views.conversation_list(page)


@app.route("/savings", methods=["GET"], cors=True)
@api
def savings() -> dict[str, Any]:
    """What warming spent and saved over all of the caller's conversations."""
    return views.user_savings_view(bootstrap.services().savings(_owner()))


@app.route("/conversations/{conversation_id}", methods=["GET"], cors=True)
@api
def get_conversation(conversation_id: str) -> dict[str, Any]:
    owner, cid = _owner(), conversation_id_of(conversation_id)
    conversation, turns = bootstrap.services().get_conversation(owner, cid)
    return views.conversation_detail(conversation, turns)


@app.route("/conversations/{conversation_id}/history", methods=["GET"], cors=True)
@api
def conversation_history(conversation_id: str) -> dict[str, Any]:
    owner, cid = _owner(), conversation_id_of(conversation_id)
    query = app.current_request.query_params if app.current_request else None
    command = commands.list_history(query)
    page = bootstrap.services().history(owner, cid, command.limit, command.before)
    return views.history_view(page)


@app.route("/conversations/{conversation_id}/turns", methods=["POST"], cors=True)
@api
def start_turn(conversation_id: str) -> Response:
    owner, cid = _owner(), conversation_id_of(conversation_id)
    turn = bootstrap.services().start_turn(owner, cid, commands.start_turn(_body()))
    return Response(status_code=202, body={"turnId": turn.turn_id, "index": turn.index})


@app.route("/conversations/{conversation_id}/cancel", methods=["POST"], cors=True)
@api
def cancel_turn(conversation_id: str) -> dict[str, Any]:
    owner, cid = _owner(), conversation_id_of(conversation_id)
    aborting = bootstrap.services().cancel(owner, cid)
    return {"conversationId": cid, "aborting": aborting}


@app.route("/conversations/{conversation_id}/close", methods=["POST"], cors=True)
@api
def close_conversation(conversation_id: str) -> dict[str, Any]:
    owner, cid = _owner(), conversation_id_of(conversation_id)
    return views.conversation_view(bootstrap.services().close(owner, cid))


# --- WebSocket ------------------------------------------------------------------------------


@app.on_ws_connect()
def connect(event: WebsocketEvent) -> Response | None:
    query = event.to_dict().get("queryStringParameters") or {}
    try:
        identity = bootstrap.verifier().identify(query.get("token"))
    except Refused:
        return Response(status_code=401, body="")
    # The connection's authority ends with its token's (chalicelib/services/frames.py).
    bootstrap.services().connect(event.connection_id, identity.subject, identity.authorized_until)
    return None


@app.on_ws_message()
def message(event: WebsocketEvent) -> None:
    # When API Gateway received the frame ($context.requestTimeEpoch, API Gateway developer
    # guide, "WebSocket API mapping template reference"): the frame limit counts by arrival.
    arrived = event.to_dict().get("requestContext", {}).get("requestTimeEpoch")
    arrived_ms = int(arrived) if isinstance(arrived, int | str) and str(arrived).isdigit() else None
    bootstrap.services().handle_frame(event.connection_id, event.body, arrived_ms)


@app.on_ws_disconnect()
def disconnect(event: WebsocketEvent) -> None:
    bootstrap.services().disconnect(event.connection_id)


# --- Lambdas --------------------------------------------------------------------------------


@app.lambda_function(name="warm")
@logs.lambda_handler("warm")
def warm(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Ticks: an SQS batch from the tick queue's event source mapping (answered with the partial
    batch response), or one raw `{"conversationId", "seq", "target"}` from an async invoke."""
    services = bootstrap.services()
    # A claimed warm is held until Lambda would kill this invocation, no longer.
    deadline = services.clock.now_ms() + int(context.get_remaining_time_in_millis())
    if ticks.is_batch(event):
        outcome = services.handle_tick_batch(ticks.records_of(event), deadline)
        for report in outcome.reports:
            log_tick(report)
        return ticks.batch_response(outcome.failed)
    tick = ticks.tick_of(event)
    report = services.handle_tick(tick.conversation_id, tick.seq, tick.target, deadline)
    log_tick(report)
    return {"action": report.action}


@app.lambda_function(name="generate")
@logs.lambda_handler("generate")
def generate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    services = bootstrap.services()
    # The turn is claimed until Lambda would kill this invocation, no longer.
    deadline = services.clock.now_ms() + int(context.get_remaining_time_in_millis())
    status = services.generate(str(event["conversationId"]), int(event["turnIndex"]), deadline)
    emit_turn_metrics(status)
    return {"status": status}
