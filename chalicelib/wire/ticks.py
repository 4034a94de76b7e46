"""Warm ticks as they reach the warm function: a raw tick, or a batch of SQS records.

Two shapes arrive (docs/architecture.md, "The precise timer"):

- a raw tick `{"conversationId", "seq", "target"}`: an asynchronous invoke (schedules booked
  before the tick queue existed, or an operator's `aws lambda invoke`);
- an SQS batch from the event source mapping, `{"Records": [...]}`, each record's `body` a tick.
  The record fields used are those of Lambda's SQS event: `messageId`, `receiptHandle`, `body`,
  `attributes.ApproximateReceiveCount` (the SqsEvent schema of Powertools for AWS Lambda,
  docs.aws.amazon.com/powertools, and AWS's serverless-snippets examples; read 2026-12-01).

A replayed dead letter may also carry the tick under `requestPayload` (a Lambda on-failure
destination's invocation record holds the request payload: "Capturing records of Lambda
asynchronous invocations", Lambda Developer Guide, and the record format in the AWS CDK's Lambda
destinations README), so a DLQ moved back to the tick queue replays those ticks too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import Refused
from chalicelib.wire.frames import conversation_id_of

# A tick body is under 200 bytes; anything much larger is not one.
MAX_TICK_BYTES = 4096


class BadTick(ValueError):
    """A message that is not a tick: left for the DLQ, never retried as if it could succeed."""


@dataclass(frozen=True)
class TickMessage:
    conversation_id: str
    seq: int
    target: int


@dataclass(frozen=True)
class TickRecord:
    """One SQS record of a batch: its id (for `batchItemFailures`), receipt and body."""

    message_id: str
    receipt: str
    receive_count: int
    body: str


def is_batch(event: Any) -> bool:
    return isinstance(event, dict) and isinstance(event.get("Records"), list)


def tick_of(value: Any) -> TickMessage:
    """The tick in a raw event or a decoded body; BadTick when there is none."""
    if isinstance(value, dict) and isinstance(value.get("requestPayload"), dict):
        value = value["requestPayload"]
    if not isinstance(value, dict):
        raise BadTick("a tick is a JSON object")
    seq, target = value.get("seq"), value.get("target")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise BadTick("'seq' must be a non-negative integer")
    if not isinstance(target, int) or isinstance(target, bool) or target < 0:
        raise BadTick("'target' must be epoch milliseconds")
    try:
        conversation_id = conversation_id_of(value.get("conversationId"))
    except Refused as refused:
        raise BadTick(str(refused)) from refused
    return TickMessage(conversation_id, seq, target)


def tick_of_body(body: str) -> TickMessage:
    if len(body.encode("utf-8", "surrogatepass")) > MAX_TICK_BYTES:
        raise BadTick("too large for a tick")
    try:
        value = json.loads(body)
    except ValueError as error:
        raise BadTick("not JSON") from error
    return tick_of(value)


def records_of(event: dict[str, Any]) -> list[TickRecord]:
    records = []
    for raw in event["Records"]:
        attributes = raw.get("attributes") or {}
        records.append(
            TickRecord(
                message_id=str(raw.get("messageId", "")),
                receipt=str(raw.get("receiptHandle", "")),
                receive_count=_int(attributes.get("ApproximateReceiveCount"), 1),
                body=str(raw.get("body", "")),
            )
        )
    return records


def batch_response(failed: list[str]) -> dict[str, list[dict[str, str]]]:
    """The partial batch response (`ReportBatchItemFailures`): only these messages come back."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
