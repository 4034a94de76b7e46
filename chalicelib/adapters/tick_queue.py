"""Amazon SQS: the standard queue that holds warm ticks until they are due.

A tick is one message, `{"conversationId", "seq", "target"}`, sent with a per-message
`DelaySeconds` so it stays invisible until (just before) its target; the warm function reads it
through a Lambda event source mapping. Facts relied on (SQS Developer Guide, read 2026-12-01):

- "Amazon SQS message timers": a message sent with a timer stays hidden from consumers for that
  many seconds, 0 to 900 (15 minutes); FIFO queues do not support per-message timers, so this is
  a standard queue. No finer precision is documented than the whole seconds of `DelaySeconds`.
- "Amazon SQS at-least-once delivery" / "Amazon SQS standard queues": a message may be delivered
  more than once and out of order. Every tick carries its `seq`, which makes a duplicate a no-op.
- `ChangeMessageVisibility` (SQS API Reference) sets how long a received message stays hidden;
  the warm function uses it to bring a failed tick back in seconds rather than after the queue's
  whole visibility timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.lazy import Lazy

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("cache_warming")

# SendMessage refuses a DelaySeconds outside 0..900 (InvalidParameterValue).
MAX_DELAY_S = 900


class TickNotQueued(Exception):
    """SendMessageBatch answered 200 but refused the tick's entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _body(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _delay(delay_s: int) -> int:
    return max(0, min(int(delay_s), MAX_DELAY_S))


class SqsTickQueue:
    def __init__(self, client_factory: Callable[[], SQSClient], queue_url: str) -> None:
        self._client = Lazy(client_factory)
        self.queue_url = queue_url

    @property
    def client(self) -> SQSClient:
        return self._client()

    def send(self, payload: dict[str, Any], delay_s: int) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url, MessageBody=_body(payload), DelaySeconds=_delay(delay_s)
        )

    def send_with_backup(self, payload: dict[str, Any], delay_s: int, backup_delay_s: int) -> None:
        """One `SendMessageBatch` request for both ("Amazon SQS batch actions", SQS Developer
        Guide: up to 10 messages in one action, to reduce costs; `sqs:SendMessage` covers the
        batch). Its entries succeed or fail one by one under an HTTP 200 (SendMessageBatch, SQS
        API Reference: "check for batch errors even when the call returns an HTTP status code
        of 200"; both read 2026-12-07): a tick whose own entry failed is an error; a failed
        backup alone is logged, the tick itself is on its way."""
        entries = [
            {"Id": "tick", "MessageBody": _body(payload), "DelaySeconds": _delay(delay_s)},
            {
                "Id": "backup",
                "MessageBody": _body({**payload, "backup": True}),
                "DelaySeconds": _delay(backup_delay_s),
            },
        ]
        response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]
        failed = {entry["Id"]: entry for entry in response.get("Failed", [])}
        if "tick" in failed:
            raise TickNotQueued(failed["tick"].get("Code", ""), failed["tick"].get("Message", ""))
        if "backup" in failed:
            log.warning("the backup of tick %s was not queued: %s", payload, failed["backup"])

    def retry_later(self, receipt: str, delay_s: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=max(0, int(delay_s))
        )
