"""Lambda's event source mapping for an SQS queue: what moto leaves out (it stores a mapping but
invokes functions in Docker, which the local stack does not use).

The app's warm function reads its tick queue through a mapping (infra/template.yaml,
`TickEventSourceMapping`); this poller drives the same handler the same way, through an ordinary
boto3 ``sqs`` client against moto. What it reproduces, with the AWS Lambda Developer Guide pages
it follows (read 2026-12-01):

- Long polling ("Configuring scaling behavior for SQS event source mappings": "Lambda uses long
  polling to poll a queue"); up to ``batch_size`` messages per invocation, invoked as soon as a
  poll returns messages when the batching window is 0 (the SQS default, "Lambda parameters for
  Amazon SQS event source mappings"), else after gathering for up to the window.
- Scaling: five concurrent batches to start with, up to 300 more per minute while messages keep
  coming, never more than ``max_concurrency`` (ScalingConfig.MaximumConcurrency); back to five
  when the queue runs dry (same page).
- The function is invoked synchronously; a received message stays invisible for the queue's
  visibility timeout. On success Lambda deletes the batch. On a function error nothing is deleted:
  every message comes back after its visibility timeout ("Handling errors for an SQS event source
  in Lambda"). With ``ReportBatchItemFailures`` only the listed ``itemIdentifier``s come back; an
  empty or null identifier, or one that is not in the batch, fails the whole batch (the success
  and failure conditions of partial batch responses). Redrive to the DLQ is the queue's own
  ``maxReceiveCount``, which moto applies on receive.

Not emulated: the backoff of failed invocations and throttling (no concurrency quota here), FIFO
queues, filter criteria, provisioned pollers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("devstack.esm")

Invoke = Callable[[dict[str, Any]], Any]
# ReceiveMessage returns at most 10 messages per call.
_RECEIVE_MAX = 10
_SCALE_STEP_S = 60.0 / 300  # up to 300 more concurrent batches per minute


@dataclass(frozen=True)
class MappingConfig:
    batch_size: int = 10
    batching_window_s: float = 0.0
    max_concurrency: int = 1000
    report_batch_item_failures: bool = True
    wait_time_s: int = 20
    initial_pollers: int = 5


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event (the SqsEvent schema of Powertools for AWS Lambda)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(response: Any, batch: list[str]) -> list[str] | None:
    """Message ids to return to the queue per a partial batch response; None: the whole batch."""
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return []  # an empty or null list: complete success
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return None
    ids = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch:
            return None
        ids.append(str(identifier))
    return ids


class SqsEventSourceMapping:
    """Start with ``start()``; ``stop()`` ends polling (an invocation in progress finishes)."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        invoke: Invoke,
        config: MappingConfig | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.invoke = invoke
        self.config = config or MappingConfig()
        self.region = region
        self.invocations = 0
        self.busy = 0
        self._pollers = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_scale = 0.0

    @property
    def pollers(self) -> int:
        return self._pollers

    def start(self) -> SqsEventSourceMapping:
        self._stop.clear()
        for _ in range(min(self.config.initial_pollers, self.config.max_concurrency)):
            self._add_poller()
        return self

    def stop(self) -> None:
        self._stop.set()

    # --- pollers -------------------------------------------------------------------------

    def _add_poller(self) -> None:
        with self._lock:
            self._pollers += 1
            number = self._pollers
        threading.Thread(target=self._poll, name=f"esm-poller-{number}", daemon=True).start()

    def _poll(self) -> None:
        retired = False
        try:
            while not self._stop.is_set():
                messages = self._receive_batch()
                if not messages:
                    retired = self._retire_if_spare()
                    if retired:
                        return
                    continue
                self._maybe_scale_up(len(messages))
                self._deliver(messages)
        finally:
            if not retired:
                with self._lock:
                    self._pollers -= 1

    def _receive_batch(self) -> list[dict[str, Any]]:
        config = self.config
        messages = self._receive(config.wait_time_s, min(_RECEIVE_MAX, config.batch_size))
        if not messages or config.batching_window_s <= 0:
            return messages
        deadline = time.monotonic() + config.batching_window_s
        while len(messages) < config.batch_size and time.monotonic() < deadline:
            wait = max(0, min(20, int(deadline - time.monotonic())))
            more = self._receive(wait, min(_RECEIVE_MAX, config.batch_size - len(messages)))
            messages += more
        return messages

    def _receive(self, wait_s: int, count: int) -> list[dict[str, Any]]:
        try:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=wait_s,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except (BotoCoreError, ClientError, OSError) as error:
            if not self._stop.is_set():
                log.warning("receive from %s failed: %s", self.queue_url, error)
                self._stop.wait(1.0)
            return []
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _retire_if_spare(self) -> bool:
        """The queue ran dry: scale back to the initial pollers (this one leaves if spare)."""
        with self._lock:
            if self._pollers <= self.config.initial_pollers:
                return False
            self._pollers -= 1
            return True

    def _maybe_scale_up(self, received: int) -> None:
        """Messages keep coming and every poller is busy: one more, at most 300 per minute."""
        now = time.monotonic()
        with self._lock:
            saturated = self.busy + 1 >= self._pollers and received > 0
            room = self._pollers < self.config.max_concurrency
            due = now - self._last_scale >= _SCALE_STEP_S
            if not (saturated and room and due):
                return
            self._last_scale = now
        self._add_poller()

    # --- one invocation ------------------------------------------------------------------

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, self.queue_arn, self.region) for m in messages]}
        with self._lock:
            self.busy += 1
            self.invocations += 1
        try:
            response = self.invoke(event)
        except Exception:  # a function error: the whole batch comes back after its timeout
            log.exception("invocation with %d records failed", len(messages))
            return
        finally:
            with self._lock:
                self.busy -= 1
        ids = [m["MessageId"] for m in messages]
        failed: list[str] | None = []
        if self.config.report_batch_item_failures:
            failed = failed_ids(response, ids)
        if failed is None:
            log.warning("invalid partial batch response %r: the whole batch fails", response)
            return
        self._delete([m for m in messages if m["MessageId"] not in failed])

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _RECEIVE_MAX):
            chunk = messages[start : start + _RECEIVE_MAX]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            try:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError, OSError) as error:
                log.warning("delete from %s failed: %s", self.queue_url, error)
