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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.lazy import Lazy

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# SendMessage refuses a DelaySeconds outside 0..900 (InvalidParameterValue).
MAX_DELAY_S = 900


class SqsTickQueue:
    def __init__(self, client_factory: Callable[[], SQSClient], queue_url: str) -> None:
        self._client = Lazy(client_factory)
        self.queue_url = queue_url

    @property
    def client(self) -> SQSClient:
        return self._client()

    def send(self, payload: dict[str, Any], delay_s: int) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(payload, separators=(",", ":")),
            DelaySeconds=max(0, min(int(delay_s), MAX_DELAY_S)),
        )

    def retry_later(self, receipt: str, delay_s: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=max(0, int(delay_s))
        )
